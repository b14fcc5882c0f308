// DiffChangeSet on real files: the diff of what a change set would write, from the disk or from
// earlier planned writes, redacted, bounded, binary files in one line.
#include "agent/engine/file_diffs.h"

#include <filesystem>
#include <string>

#include "agent/engine/change_set.h"
#include "agent/engine/step_test_util.h"
#include "common/base/redact.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Write;

class FileDiffsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::MakeTempRoot("file_diffs_", &root_));
    fs::create_directories(root_ / "conf");
    Write(root_ / "conf/deployment.toml", "[server]\nhostname = \"a\"\npassword = \"Old-Pw-1\"\n");
    Write(root_ / "conf/gone.properties", "x=1\n");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string P(const std::string& rel) { return (root_ / rel).string(); }

  FileDiffOptions Redacting() {
    FileDiffOptions o;
    o.filter_line = [](std::string_view l) { return common::RedactText(l); };
    return o;
  }

  fs::path root_;
};

TEST_F(FileDiffsTest, UpdateCreateDeleteFromDiskRedacted) {
  ChangeSet cs;
  cs.ops.push_back(*MakeWriteOp(P("conf/deployment.toml"),
                                "[server]\nhostname = \"b\"\npassword = \"New-Pw-2\"\n")
                        .value());
  cs.ops.push_back(*MakeWriteOp(P("conf/new.xml"),
                                "<a>\n  <Password>Xml-Pw-3</Password>\n</a>\n")
                        .value());
  FileOp del;
  del.kind = FileOp::Kind::kDelete;
  del.path = P("conf/gone.properties");
  cs.ops.push_back(del);
  auto diffs = DiffChangeSet(cs, nullptr, Redacting());
  ASSERT_EQ(diffs.size(), 3u);
  const std::string& toml = diffs[P("conf/deployment.toml")];
  EXPECT_THAT(toml, HasSubstr("--- " + P("conf/deployment.toml") + "\n+++ " +
                              P("conf/deployment.toml") + "\n"));
  EXPECT_THAT(toml, HasSubstr("\n-hostname = \"a\"\n"));
  EXPECT_THAT(toml, HasSubstr("\n+hostname = \"b\"\n"));
  EXPECT_THAT(toml, HasSubstr("+password = \"<redacted>\""));
  EXPECT_THAT(toml, Not(HasSubstr("Pw-")));
  const std::string& xml = diffs[P("conf/new.xml")];
  EXPECT_THAT(xml, HasSubstr("--- /dev/null\n+++ " + P("conf/new.xml")));
  EXPECT_THAT(xml, HasSubstr("+  <Password><redacted></Password>"));
  EXPECT_THAT(xml, Not(HasSubstr("Xml-Pw-3")));
  EXPECT_THAT(diffs[P("conf/gone.properties")], HasSubstr("+++ /dev/null\n@@ -1 +0,0 @@\n-x=1\n"));
  // Without the filter the secret shows: the filter is what hides it.
  auto raw = DiffChangeSet(cs, nullptr, FileDiffOptions());
  EXPECT_THAT(raw[P("conf/new.xml")], HasSubstr("Xml-Pw-3"));
}

TEST_F(FileDiffsTest, CheckModeDiffsAgainstThePlannedWritesOfEarlierSteps) {
  std::map<std::string, FileOp> overlay;
  overlay[P("conf/deployment.toml")] =
      ContentWriteOp(P("conf/deployment.toml"), "", "planned = 1\n", 0644);
  ChangeSet cs;
  cs.ops.push_back(
      ContentWriteOp(P("conf/deployment.toml"), "x", "planned = 1\nmore = 2\n", 0644));
  auto diffs = DiffChangeSet(cs, &overlay, FileDiffOptions());
  EXPECT_THAT(diffs[P("conf/deployment.toml")], HasSubstr(" planned = 1\n+more = 2\n"));
  EXPECT_THAT(diffs[P("conf/deployment.toml")], Not(HasSubstr("hostname")));
}

TEST_F(FileDiffsTest, BinaryByNameOrContentOneLineAndNoDiffForSameBytes) {
  Write(root_ / "src.jks", "fake keystore");
  Write(root_ / "blob.txt", std::string("a\0b", 3));
  ChangeSet cs;
  cs.ops.push_back(*MakeCopyOp(P("src.jks"), P("conf/client-truststore.jks")).value());
  cs.ops.push_back(*MakeCopyOp(P("blob.txt"), P("conf/blob.txt")).value());
  FileOp same = ContentWriteOp(P("conf/gone.properties"), "x", "x=1\n", 0600);  // mode only
  cs.ops.push_back(same);
  FileOp dir;
  dir.kind = FileOp::Kind::kMkdir;
  dir.path = P("conf/newdir");
  cs.ops.push_back(dir);
  auto diffs = DiffChangeSet(cs, nullptr, FileDiffOptions());
  EXPECT_EQ(diffs.size(), 2u);
  EXPECT_EQ(diffs[P("conf/client-truststore.jks")],
            "Binary files /dev/null and " + P("conf/client-truststore.jks") + " differ\n");
  EXPECT_EQ(diffs[P("conf/blob.txt")], "Binary files /dev/null and " + P("conf/blob.txt") +
                                           " differ\n");
}

TEST_F(FileDiffsTest, BoundedPerFileAndPerStep) {
  std::string big;
  for (int i = 0; i < 5000; ++i) big += "line " + std::to_string(i) + " of a long file\n";
  FileDiffOptions o;
  o.max_bytes_per_file = 4096;
  o.max_bytes_per_step = 6000;
  ChangeSet cs;
  for (int f = 0; f < 3; ++f) {
    cs.ops.push_back(*MakeWriteOp(P("conf/big" + std::to_string(f) + ".txt"), big).value());
  }
  auto diffs = DiffChangeSet(cs, nullptr, o);
  ASSERT_EQ(diffs.size(), 3u);
  const std::string& first = diffs[P("conf/big0.txt")];
  EXPECT_LE(first.size(), 4096u + 64);
  EXPECT_THAT(first, HasSubstr("... diff truncated ("));
  EXPECT_EQ(first.back(), '\n');
  EXPECT_THAT(diffs[P("conf/big1.txt")], HasSubstr("... diff truncated ("));
  EXPECT_EQ(diffs[P("conf/big2.txt")], "... diff left out: this step's diffs passed 5 KiB\n");
}

TEST_F(FileDiffsTest, AttachDiffsSetsTheLastChangeOfEachPath) {
  std::vector<mimic::v1::FileChange> changes(3);
  changes[0].set_path(P("conf"));
  changes[0].set_action(mimic::v1::ACTION_MKDIR);
  changes[1].set_path(P("conf/a"));
  changes[1].set_action(mimic::v1::ACTION_CREATE);
  changes[2].set_path(P("conf/b"));
  changes[2].set_action(mimic::v1::ACTION_UPDATE);
  AttachDiffs({{P("conf"), "x"}, {P("conf/a"), "diff a"}}, &changes);
  EXPECT_EQ(changes[0].diff(), "");
  EXPECT_EQ(changes[1].diff(), "diff a");
  EXPECT_EQ(changes[2].diff(), "");
}

}  // namespace
}  // namespace mimic::agent
