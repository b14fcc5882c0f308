// End to end, two real agents and the real `mimic`: `--diff` shows the unified diff of every
// text file a run changes, the dry run's diff is exactly the applied one, a rollback's diff is
// the way back; `rollback --check` says on every line that nothing is written; after a
// rollback, `mimic status` and `mimic audit` show the hosts as rolled back (not ok), with the
// apply runs they undid, and dry runs as dry runs.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kHosts = {"mi-a", "mi-b"};

// `text` cut at each '\n' (Debian's Abseil has its own string_view: no absl::StrSplit here).
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  for (size_t b = 0; b <= text.size();) {
    size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    out.push_back(text.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

class DiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("difffleet");
    MakeCerts(dir_ + "/certs", kHosts);
    for (const std::string& h : kHosts) {
      MakeMiHome("4.0.0", Source(h), "source", h);
      MakeMiHome("4.2.0", Target(h), "target", h);
      AgentProcess::Options o;
      o.name = h;
      o.certs_dir = dir_ + "/certs";
      o.state_dir = dir_ + "/agent-state/" + h;
      o.allowed_roots = {Root(h)};
      agents_.push_back(std::make_unique<AgentProcess>(o));
      ASSERT_TRUE(agents_.back()->Start()) << h;
    }
    std::string inv =
        "[controller]\nstate_dir = \"controller-state\"\nca = \"certs/ca.pem\"\n"
        "cert = \"certs/controller.pem\"\nkey = \"certs/controller.key\"\n";
    for (size_t i = 0; i < kHosts.size(); ++i) {
      absl::StrAppend(&inv, "\n[hosts.", kHosts[i], "]\naddress = \"", agents_[i]->address(),
                      "\"\nenvironment = \"dev\"\nvars = { source_home = \"",
                      Source(kHosts[i]), "\", target_home = \"", Target(kHosts[i]), "\" }\n");
    }
    WriteText(dir_ + "/inventory.toml", inv);
    WriteText(dir_ + "/plan.toml",
              absl::StrCat("[migration]\npath = \"4.0.0->4.2.0\"\n",
                           "\n[[steps]]\nname = \"preflight\"\n",
                           "[[steps]]\nname = \"snapshot_target\"\n",
                           "[[steps]]\nname = \"copy_keystores\"\n",
                           "[[steps]]\nname = \"merge_config\"\n",
                           SkipAllBut({"preflight", "snapshot_target", "copy_keystores",
                                       "merge_config"},
                                      "the --diff test runs these steps only"),
                           "\n[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\n"));
  }
  void TearDown() override { agents_.clear(); }

  std::string Root(const std::string& h) { return dir_ + "/mi/" + h; }
  std::string Source(const std::string& h) { return Root(h) + "/wso2mi-4.0.0"; }
  std::string Target(const std::string& h) { return Root(h) + "/wso2mi-4.2.0"; }
  CommandResult Mimic(const std::string& args) {
    return RunMimic(dir_, args + " --inventory inventory.toml");
  }

  // The diff printed for `path`: the lines from its "--- PATH" header on, as long as they are
  // indented as deep as the header, without the indentation.
  static std::string DiffOf(const std::string& output, const std::string& path) {
    std::string out;
    size_t depth = std::string::npos;
    for (const std::string& line : Lines(output)) {
      const size_t first = line.find_first_not_of(' ');
      if (depth == std::string::npos) {
        if (first != std::string::npos && line.substr(first) == "--- " + path) depth = first;
        else continue;
      } else if (first == std::string::npos || first < depth) {
        break;
      }
      absl::StrAppend(&out, line.substr(depth), "\n");
    }
    return out;
  }

  std::string dir_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

TEST_F(DiffTest, DryRunDiffIsTheAppliedDiffAndRollbackIsShownHonestly) {
  const std::string toml = Target("mi-a") + "/conf/deployment.toml";
  const std::string before = ReadText(toml);

  CommandResult check = Mimic("run --plan plan.toml --check --diff");
  ASSERT_EQ(check.exit_code, 0) << check.output;
  const std::string check_diff = DiffOf(check.output, toml);
  ASSERT_FALSE(check_diff.empty()) << check.output;
  EXPECT_THAT(check_diff, HasSubstr("+++ " + toml + "\n@@ "));
  EXPECT_THAT(check.output, HasSubstr("would update " + toml + "\n"));
  EXPECT_THAT(check.output, HasSubstr("Binary files"));  // the keystores: one line each
  EXPECT_EQ(ReadText(toml), before);  // a dry run

  // Without --diff: no diff (diffs cost bytes; they are asked for).
  CommandResult plain = Mimic("run --plan plan.toml --check");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_THAT(plain.output, Not(HasSubstr("@@ ")));

  CommandResult apply = Mimic("run --plan plan.toml --diff");
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  const std::string apply_id = RolloutIdFrom(apply.output);
  EXPECT_EQ(DiffOf(apply.output, toml), check_diff);  // the dry run showed exactly this
  EXPECT_THAT(apply.output, HasSubstr("updated " + toml + "\n"));
  // The diff is the change made: its + lines are in the file now, its - lines were before.
  for (const std::string& line : Lines(check_diff)) {
    if (line.starts_with("+") && !line.starts_with("+++") && line.find("<redacted>") == line.npos) {
      EXPECT_THAT(ReadText(toml), HasSubstr(line.substr(1))) << line;
    }
    if (line.starts_with("-") && !line.starts_with("---") && line.find("<redacted>") == line.npos) {
      EXPECT_THAT(before, HasSubstr(line.substr(1))) << line;
    }
  }
  // Kept in the audit: the report made later shows it.
  CommandResult report = Mimic("report " + apply_id + " --format json");
  ASSERT_EQ(report.exit_code, 0) << report.output;
  EXPECT_THAT(report.output, HasSubstr("\"diff\": \"--- " + toml));

  // A second run changes nothing: no diff.
  CommandResult again = Mimic("run --plan plan.toml --diff");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, Not(HasSubstr("@@ ")));

  // rollback --check: every line of the hosts' runs says nothing is written.
  CommandResult rb_check = Mimic("rollback " + apply_id + " --check --diff");
  ASSERT_EQ(rb_check.exit_code, 0) << rb_check.output;
  const std::string back_diff = DiffOf(rb_check.output, toml);
  EXPECT_THAT(rb_check.output, HasSubstr("would restore " + toml + "\n"));
  EXPECT_THAT(rb_check.output, HasSubstr("dry run, nothing was written"));
  for (const std::string& line : Lines(rb_check.output)) {
    if (line.find(" mi-a ") == line.npos && line.find(" mi-b ") == line.npos) continue;
    if (line.find("HOST") != line.npos || line.starts_with("mi-")) continue;  // recap table
    EXPECT_TRUE(line.find("(dry run") != line.npos || line.find("would ") != line.npos) << line;
  }
  EXPECT_NE(ReadText(toml), before);  // still migrated
  // The way back is the reverse of the way there.
  ASSERT_FALSE(back_diff.empty()) << rb_check.output;
  for (const std::string& line : Lines(check_diff)) {
    if (line.starts_with("+") && !line.starts_with("+++")) {
      EXPECT_THAT(back_diff, HasSubstr("\n-" + line.substr(1) + "\n")) << line;
    }
  }

  CommandResult rb = Mimic("rollback " + apply_id + " --diff");
  ASSERT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_EQ(DiffOf(rb.output, toml), back_diff);
  EXPECT_EQ(ReadText(toml), before);

  // status: the rollout is rolled back, its hosts are not "ok"; the apply runs stay in view.
  CommandResult list = Mimic("status");
  ASSERT_EQ(list.exit_code, 0) << list.output;
  std::string row;
  for (const std::string& line : Lines(list.output)) {
    if (line.starts_with(apply_id)) row = line;
  }
  EXPECT_THAT(row, ::testing::EndsWith("apply      2   0       0        0            2  rolled back"))
      << list.output;
  CommandResult one = Mimic("status " + apply_id);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_THAT(one.output, HasSubstr("Status     rolled back\n"));
  for (const std::string& h : kHosts) {
    const std::string run = apply_id + "." + h;
    EXPECT_THAT(one.output, HasSubstr(run + "                  apply")) << one.output;
    EXPECT_THAT(one.output, HasSubstr(run + ".rollback1-check  rollback-check  changed (dry run)"));
    EXPECT_THAT(one.output, HasSubstr(run + ".rollback2        rollback        rolled back"));
  }
  // audit: dry runs and rollbacks as such.
  CommandResult audit = Mimic("audit --host mi-a");
  ASSERT_EQ(audit.exit_code, 0) << audit.output;
  for (const char* mode : {" check ", " apply ", " rollback-check ", " rollback "}) {
    EXPECT_THAT(audit.output, HasSubstr(mode)) << audit.output;
  }
}

}  // namespace
}  // namespace mimic::testing
