// The fixture of the change set and snapshot tests: a temporary root with a target folder
// (conf/a.txt, conf/b.txt at 0600), runs beneath root/runs, and a sample change set.
#ifndef MIMIC_AGENT_ENGINE_CHANGE_SET_TEST_FIXTURE_H_
#define MIMIC_AGENT_ENGINE_CHANGE_SET_TEST_FIXTURE_H_

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "agent/engine/change_set.h"
#include "agent/engine/snapshot.h"
#include "agent/engine/step_test_util.h"
#include "common/base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::agent::change_set_testing {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

using testing::Read;
using testing::Tree;
using testing::Write;

class ChangeSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::MakeTempRoot("change_set_", &root_));
    target_ = root_ / "target";
    fs::create_directories(target_ / "conf");
    Write(target_ / "conf/a.txt", "original a\n");
    Write(target_ / "conf/b.txt", "original b\n");
    fs::permissions(target_ / "conf/b.txt", fs::perms(0600));
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Run(const std::string& id) { return (root_ / "runs" / id).string(); }

  // Applies `cs` as run `id` (its own snapshot); returns the status.
  absl::Status ApplyAs(const std::string& id, const ChangeSet& cs,
                       std::vector<mimic::v1::FileChange>* applied = nullptr) {
    return testing::ApplyInRun(Run(id), cs, applied);
  }

  // A change set that updates a.txt (copy), creates new/dir/c.txt (content, 0600), deletes b.txt.
  ChangeSet Sample() {
    Write(root_ / "src/a.txt", "new a from the source\n");
    ChangeSet cs;
    cs.ops.push_back(
        *MakeCopyOp((root_ / "src/a.txt").string(), (target_ / "conf/a.txt").string(), "copied")
             .value());
    cs.ops.push_back(*MakeWriteOp((target_ / "new/dir/c.txt").string(), "c content", 0600).value());
    FileOp del;
    del.kind = FileOp::Kind::kDelete;
    del.path = (target_ / "conf/b.txt").string();
    del.expected_sha256 = common::Sha256Hex("original b\n");
    cs.ops.push_back(del);
    AddParentDirOps(&cs);
    return cs;
  }

  fs::path root_, target_;
};

}  // namespace mimic::agent::change_set_testing

#endif  // MIMIC_AGENT_ENGINE_CHANGE_SET_TEST_FIXTURE_H_
