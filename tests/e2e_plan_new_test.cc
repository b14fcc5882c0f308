// End to end: `mimic plan new` asks live agents (real mimic-agent processes on 127.0.0.1, mutual
// TLS) for their facts and writes a plan that the same fleet then runs: the controller's checks
// accept it and a check run passes on every planned host. A host whose agent does not answer is
// listed as not planned and the command exits 2.
#include <signal.h>

#include <map>
#include <memory>
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

const std::vector<std::string> kHosts = {"a1", "a2", "a3"};

class PlanNewTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pristine_ = new std::string(MakeTempDir("plannew-pristine"));
    MakeCerts(*pristine_ + "/certs", kHosts);
    MakeMiHome("4.0.0", *pristine_ + "/src", "source", "fleet");
    MakeMiHome("4.2.0", *pristine_ + "/dst", "target");
  }

  void SetUp() override {
    dir_ = MakeTempDir("plannew");
    std::string cmd = "set -e; cp -a " + ShellQuote(*pristine_ + "/certs") + " " +
                      ShellQuote(dir_) + "; ";
    for (const std::string& h : kHosts) {
      absl::StrAppend(&cmd, "mkdir -p ", ShellQuote(Root(h)), "; cp -a ",
                      ShellQuote(*pristine_ + "/src"), " ", ShellQuote(Source(h)), "; cp -a ",
                      ShellQuote(*pristine_ + "/dst"), " ", ShellQuote(Target(h)), "; ");
    }
    CommandResult r = RunCommand(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const std::string& h : kHosts) {
      AgentProcess::Options o;
      o.name = h;
      o.certs_dir = dir_ + "/certs";
      o.state_dir = dir_ + "/agent-state-" + h;
      o.allowed_roots = {Root(h)};
      agents_[h] = std::make_unique<AgentProcess>(o);
      ASSERT_TRUE(agents_[h]->Start()) << h;
    }
  }

  std::string Root(const std::string& h) { return dir_ + "/mi/" + h; }
  std::string Source(const std::string& h) { return Root(h) + "/wso2mi-4.0.0"; }
  std::string Target(const std::string& h) { return Root(h) + "/wso2mi-4.2.0"; }

  // With `homes`, each host's vars name its homes; without, the agent's discovery finds them.
  void WriteInventory(bool homes) {
    std::string inv =
        "[controller]\nstate_dir = \"controller-state\"\nca = \"certs/ca.pem\"\n"
        "cert = \"certs/controller.pem\"\nkey = \"certs/controller.key\"\n";
    for (const std::string& h : kHosts) {
      absl::StrAppend(&inv, "\n[hosts.", h, "]\naddress = \"", agents_[h]->address(),
                      "\"\ntls_server_name = \"", h, "\"\nenvironment = \"dev\"\n");
      if (homes) {
        absl::StrAppend(&inv, "vars = { source_home = \"", Source(h), "\", target_home = \"",
                        Target(h), "\" }\n");
      }
    }
    WriteText(dir_ + "/inventory.toml", inv);
  }

  static std::string* pristine_;
  std::string dir_;
  std::map<std::string, std::unique_ptr<AgentProcess>> agents_;
};
std::string* PlanNewTest::pristine_ = nullptr;

TEST_F(PlanNewTest, PlanFromLiveAgentsRunsInCheckMode) {
  WriteInventory(/*homes=*/true);
  CommandResult r = RunMimic(dir_, "plan new --inventory inventory.toml -o plan.toml");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("wrote plan.toml for 3 host(s)"));
  const std::string plan = ReadText(dir_ + "/plan.toml");
  for (const std::string& h : kHosts) {
    EXPECT_THAT(plan, HasSubstr(absl::StrCat("#   ", h, ": MI 4.0.0 at ", Source(h))));
  }
  EXPECT_THAT(plan, HasSubstr("path = \"4.0.0->4.2.0\""));
  // The source profile has a Data Mapper CApp: the step the 4.2.0 path needs for it is planned.
  EXPECT_THAT(plan, HasSubstr("name = \"migrate_datamapper\""));
  EXPECT_THAT(plan, HasSubstr("source_home = \"{{source_home}}\""));

  // The fleet runs what plan new wrote, as written.
  CommandResult run =
      RunMimic(dir_, "run --inventory inventory.toml --plan plan.toml --check");
  EXPECT_EQ(run.exit_code, 0) << plan << "\n---\n" << run.output;
  for (const std::string& h : kHosts) EXPECT_THAT(run.output, HasSubstr(h));
}

TEST_F(PlanNewTest, DiscoversHomesAndLimitSelects) {
  WriteInventory(/*homes=*/false);
  CommandResult r = RunMimic(dir_, "plan new --inventory inventory.toml --limit 'a*:!a3'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("#   a1: MI 4.0.0 at ", Source("a1"))));
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("#   a2: MI 4.0.0 at ", Source("a2"))));
  EXPECT_THAT(r.output, Not(HasSubstr("#   a3:")));
  EXPECT_THAT(r.output, HasSubstr("[migration]"));
}

TEST_F(PlanNewTest, UnreachableHostIsNotPlannedAndExitsTwo) {
  WriteInventory(/*homes=*/true);
  agents_["a2"]->Kill(SIGTERM);
  CommandResult r = RunMimic(dir_, "plan new --inventory inventory.toml");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("#   a2: NOT PLANNED: unreachable"));
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("#   a1: MI 4.0.0 at ", Source("a1"))));
  EXPECT_THAT(r.output, HasSubstr("[migration]"));
}

}  // namespace
}  // namespace mimic::testing
