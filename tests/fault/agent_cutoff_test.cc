// Fault campaign 3: an agent cut off mid-run. The agent (the testing binary, mutual TLS) runs
// inside a network namespace this test makes, reached over a veth pair (10.x/30 addresses); the
// controller (`mimic run`) runs outside. With the run held at a gate before a step, the link is
// set down on the controller's side, then the run is let go: it finishes on the agent, its
// events journaled there while none can reach the controller.
//
// The bound: the controller's channel (controller/rollout/agent_client.cc) pings every
// keepalive_time = 30 s and gives up on a ping after keepalive_timeout = 10 s; the stream then
// fails and the host is re-tried with a backoff of 250, 500 and 1000 ms (max_attempts = 4;
// with the route down each connect fails at once). So the host is reported unreachable within
// 30 + 10 + 1.75 s ~ 42 s of the cut (plus scheduling). The test waits for it at most 90 s and
// prints what it measured.
//
// Then the link comes back up and `mimic resume R` re-attaches: the run's events in the audit
// are seq 1..N, no gap or duplicate, byte for byte the agent's journal; the rollout ends ok.
// Needs root and `ip`; skips, saying so, otherwise.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/fs.h"
#include "controller/audit/audit.h"
#include "gtest/gtest.h"
#include "tests/fault/fault_env.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

constexpr int kHeldAt = 5;  // copy_carbonapps
constexpr int kUnreachableBoundSeconds = 42;  // 30 + 10 + 0.25 + 0.5 + 1, see above
constexpr int kWaitSeconds = 90;

class AgentCutOffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "makes a network namespace and a veth pair: needs root";
    if (access("/usr/sbin/ip", X_OK) != 0) GTEST_SKIP() << "no /usr/sbin/ip (iproute2)";
    const int id = getpid();
    ns_ = absl::StrCat("mimic-fault-", id);
    host_if_ = absl::StrCat("mfh", id % 1000000);
    agent_if_ = absl::StrCat("mfa", id % 1000000);
    const std::string net = absl::StrCat("10.", 200 + id % 50, ".", (id / 50) % 250, ".");
    host_ip_ = net + "1";
    agent_ip_ = net + "2";
    CommandResult r = RunCommand(absl::StrCat(
        "set -e; ip netns add ", ns_, "; ip link add ", host_if_, " type veth peer name ",
        agent_if_, "; ip link set ", agent_if_, " netns ", ns_, "; ip addr add ", host_ip_,
        "/30 dev ", host_if_, "; ip link set ", host_if_, " up; ip -n ", ns_, " addr add ",
        agent_ip_, "/30 dev ", agent_if_, "; ip -n ", ns_, " link set ", agent_if_, " up; ip -n ",
        ns_, " link set lo up"));
    made_ = true;
    if (r.exit_code != 0) GTEST_SKIP() << "cannot make a network namespace with a veth pair: " << r.output;
    ASSERT_NO_FATAL_FAILURE(h_.Make(MakeTempDir("fault-cut")));
    ASSERT_NO_FATAL_FAILURE(h_.ResetTarget());
    ASSERT_NO_FATAL_FAILURE(MakeCerts(h_.dir + "/certs", {"p1"}));
  }

  void TearDown() override {
    if (agent_ != nullptr) agent_->Kill(SIGKILL);
    agent_.reset();
    if (made_) {
      RunCommand("ip link del " + host_if_ + " 2>/dev/null; ip netns del " + ns_);
    }
  }

  std::string ns_, host_if_, agent_if_, host_ip_, agent_ip_;
  bool made_ = false;
  MigrationHomes h_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(AgentCutOffTest, LinkDownMidRunIsReportedUnreachableThenResumeLosesNoEvent) {
  AgentProcess::Options o;
  o.name = "p1";
  o.certs_dir = h_.dir + "/certs";
  o.state_dir = h_.dir + "/state";
  o.allowed_roots = {h_.dir + "/mi"};
  o.gate = true;
  o.hold_steps = {kHeldAt};
  o.netns = ns_;
  o.listen_host = agent_ip_;
  agent_ = std::make_unique<AgentProcess>(o);
  ASSERT_TRUE(agent_->Start());
  const std::string dir = h_.dir;
  WriteText(dir + "/inventory.toml",
            absl::StrCat("[controller]\nstate_dir = \"controller-state\"\nca = \"certs/ca.pem\"\n"
                         "cert = \"certs/controller.pem\"\nkey = \"certs/controller.key\"\n\n"
                         "[hosts.p1]\naddress = \"", agent_->address(),
                         "\"\ntls_server_name = \"p1\"\nenvironment = \"prod\"\n"
                         "vars = { source_home = \"", h_.source, "\", target_home = \"", h_.target,
                         "\" }\n"));
  std::string plan = "[migration]\npath = \"4.0.0->4.2.0\"\n";
  for (const std::string& s : MigrationHomes::Steps()) {
    absl::StrAppend(&plan, "\n[[steps]]\nname = \"", s, "\"\n",
                    s == "merge_config" ? "params = { conflict = \"source\" }\n" : "");
  }
  absl::StrAppend(&plan, "\n[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\n");
  WriteText(dir + "/plan.toml", plan);

  const std::string out = dir + "/run.out";
  pid_t pid = StartMimic(dir, {"run", "--inventory", "inventory.toml", "--plan", "plan.toml"}, out);
  const std::string run = agent_->WaitReached(kHeldAt);
  ASSERT_FALSE(run.empty()) << ReadText(out);
  const std::string rollout = run.substr(0, run.rfind('.'));

  // Cut: the controller's side of the link goes down; the run goes on, journaled on the agent.
  ASSERT_EQ(RunCommand("ip link set " + host_if_ + " down").exit_code, 0);
  const auto cut = std::chrono::steady_clock::now();
  agent_->Release(kHeldAt);
  const std::string journal_path = o.state_dir + "/runs/" + run + "/journal";
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto j = JournalEvents(journal_path);
        return !j.empty() && j.back().has_run_finished();
      },
      kWaitSeconds, {.dirs = {common::Dirname(journal_path)}}))
      << "the run did not finish on the agent while cut off";
  const bool reported = WaitUntil(
      [&] { return absl::StrContains(ReadText(out), "unreachable"); }, kWaitSeconds,
      {.dirs = {common::Dirname(out)}, .pids = {pid}});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - cut).count();
  EXPECT_TRUE(reported) << "p1 was not reported unreachable within " << kWaitSeconds
                        << " s of the cut:\n" << ReadText(out);
  EXPECT_EQ(WaitExit(pid), 2) << ReadText(out);

  // Heal, then resume: every event reaches the audit once.
  ASSERT_EQ(RunCommand("ip link set " + host_if_ + " up").exit_code, 0);
  CommandResult resumed = RunMimic(dir, "resume " + rollout + " --inventory inventory.toml");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  const auto journal = JournalEvents(journal_path);
  auto audit = controller::Audit::Open(dir + "/controller-state/audit.db");
  ASSERT_TRUE(audit.ok()) << audit.status();
  auto events = (*audit)->Events(rollout);
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<mimic::v1::Event> audited;
  for (const auto& e : *events) {
    if (e.run_id() == run) audited.push_back(e);
  }
  std::sort(audited.begin(), audited.end(),
            [](const auto& a, const auto& b) { return a.seq() < b.seq(); });
  EXPECT_EQ(audited.size(), journal.size());
  EXPECT_EQ(CompareEvents(audited, journal), "");
  auto r = (*audit)->GetRun(run);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, "changed");
  PrintFigures("agent-cut-off", 1, ::testing::Test::HasFailure() ? 0 : 1, 0,
               absl::StrFormat("(unreachable reported %.1f s after the cut, bound %d s; %zu events "
                               "journaled while cut off reached the audit on resume)",
                               seconds, kUnreachableBoundSeconds, journal.size()));
}

}  // namespace
}  // namespace mimic::testing
