// End to end: rollout rules with twelve real mimic-agent processes on 127.0.0.1 (mutual TLS)
// in three stages (dev 2, staging 4, prod 6) and the real `mimic` binary: the batch sequence
// and the sliding window, every failure-budget edge (which host the rollout stops at), and
// `mimic logs`, `mimic audit` and `mimic cancel`.
//
// A host FAILS by having a target_home that is not an MI home (preflight fails); a host is
// UNREACHABLE when its address is a closed loopback port.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/fs.h"
#include "controller/audit/audit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kHostCount = 12;

std::string HostName(int i) { return absl::StrFormat("h%02d", i); }  // 1-based
std::string EnvOf(int i) { return i <= 2 ? "dev" : (i <= 6 ? "staging" : "prod"); }
std::vector<std::string> AllHosts() {
  std::vector<std::string> v;
  for (int i = 1; i <= kHostCount; ++i) v.push_back(HostName(i));
  return v;
}

// Built once: certificates and ONE pristine source/target pair, copied for every host.
std::string* g_pristine = nullptr;

// A loopback port nothing listens on (bound, then closed).
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return 1;  // port 1: nothing listens there either
  }
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

class RolloutTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_pristine = new std::string(MakeTempDir("rollout-pristine"));
    MakeCerts(*g_pristine + "/certs", AllHosts());
    MakeMiHome("4.0.0", *g_pristine + "/src", "source", "fleet");
    MakeMiHome("4.2.0", *g_pristine + "/dst", "target");
  }

  void SetUp() override {
    dir_ = MakeTempDir("rollout");
    // agent-state/ exists before the agents start, so their stderr logs can be opened.
    std::string cmd = "set -e; mkdir -p " + ShellQuote(dir_ + "/agent-state") + "; cp -a " +
                      ShellQuote(*g_pristine + "/certs") + " " + ShellQuote(dir_) + "; ";
    for (const std::string& h : AllHosts()) {
      absl::StrAppend(&cmd, "mkdir -p ", ShellQuote(Root(h) + "/not-mi"), "; cp -a ",
                      ShellQuote(*g_pristine + "/src"), " ", ShellQuote(Source(h)), "; cp -a ",
                      ShellQuote(*g_pristine + "/dst"), " ", ShellQuote(Target(h)), "; ");
    }
    CommandResult r = RunCommand(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  void TearDown() override { agents_.clear(); }

  std::string Root(const std::string& host) { return dir_ + "/mi/" + host; }
  std::string Source(const std::string& host) { return Root(host) + "/wso2mi-4.0.0"; }
  std::string Target(const std::string& host) { return Root(host) + "/wso2mi-4.2.0"; }

  // Starts the twelve agents; the hosts in `holds` run the testing agent, holding every run
  // before the given step until the test releases it (AgentProcess::WaitReached/Release).
  void StartAgents(const std::map<std::string, int>& holds = {}) {
    for (const std::string& h : AllHosts()) {
      AgentProcess::Options o;
      o.name = h;
      o.certs_dir = dir_ + "/certs";
      o.state_dir = dir_ + "/agent-state/" + h;
      o.allowed_roots = {Root(h)};
      if (auto it = holds.find(h); it != holds.end()) {
        o.gate = true;
        o.hold_steps = {it->second};
      }
      agents_.push_back(std::make_unique<AgentProcess>(o));
      if (!agents_.back()->Start()) {
        FAIL() << "agent " << h << " did not start; log " << agents_.back()->log_path();
      }
    }
  }

  AgentProcess& Agent(const std::string& host) { return *agents_[std::stoi(host.substr(1)) - 1]; }

  // inventory for the agents; `faults` maps a host to "fail" (target is not an MI home) or
  // "down" (address is a closed port).
  std::string WriteInventory(const std::string& name,
                             const std::map<std::string, std::string>& faults = {}) {
    std::string inv =
        "[controller]\nstate_dir = \"controller-state\"\nca = \"certs/ca.pem\"\n"
        "cert = \"certs/controller.pem\"\nkey = \"certs/controller.key\"\n";
    for (int i = 1; i <= kHostCount; ++i) {
      const std::string h = HostName(i);
      auto f = faults.find(h);
      const std::string fault = f == faults.end() ? "" : f->second;
      std::string address = agents_[i - 1]->address();
      if (fault == "down") address = absl::StrCat("127.0.0.1:", ClosedPort());
      std::string target = fault == "fail" ? Root(h) + "/not-mi" : Target(h);
      absl::StrAppend(&inv, "\n[hosts.", h, "]\naddress = \"", address,
                      "\"\ntls_server_name = \"", h, "\"\nenvironment = \"", EnvOf(i),
                      "\"\nvars = { source_home = \"", Source(h), "\", target_home = \"", target,
                      "\" }\n");
    }
    WriteText(dir_ + "/" + name, inv);
    return name;
  }

  // A plan with only cheap steps and the given [[stages]] text.
  std::string WritePlan(const std::string& name, const std::string& stages) {
    WriteText(dir_ + "/" + name,
              absl::StrCat("[migration]\npath = \"4.0.0->4.2.0\"\n\n"
                           "[[steps]]\nname = \"preflight\"\n"
                           "[[steps]]\nname = \"copy_carbonapps\"\n"
                           "[[steps]]\nname = \"copy_keystores\"\n\n",
                           CheapPlanSkips(), "\n",
                           stages));
    return name;
  }

  CommandResult Mimic(const std::string& args) { return RunMimic(dir_, args); }

  static std::string RolloutId(const std::string& output) { return RolloutIdFrom(output); }

  pid_t StartMimic(const std::vector<std::string>& args, const std::string& out_path) {
    return mimic::testing::StartMimic(dir_, args, out_path);
  }


  controller::RolloutDetail Detail(const std::string& rollout) {
    auto a = controller::Audit::Open(dir_ + "/controller-state/audit.db");
    EXPECT_TRUE(a.ok()) << a.status();
    if (!a.ok()) return {};
    auto d = (*a)->GetRollout(rollout);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *d : controller::RolloutDetail{};
  }

  // host -> its (latest) run in the rollout.
  static std::map<std::string, controller::RunRecord> Runs(const controller::RolloutDetail& d) {
    std::map<std::string, controller::RunRecord> m;
    for (const auto& r : controller::LatestRunPerHost(d.runs)) m[r.host] = r;
    return m;
  }

  // stage -> its batches as "h01,h02" strings, in order.
  static std::map<std::string, std::vector<std::string>> Batches(
      const controller::RolloutDetail& d) {
    std::map<std::string, std::vector<std::string>> m;
    for (const auto& b : d.batches) m[b.stage].push_back(absl::StrJoin(b.hosts, ","));
    return m;
  }

  // Runs `mimic run` with the plan and inventory; returns the output, the rollout and detail.
  struct Rollout {
    CommandResult result;
    std::string id;
    controller::RolloutDetail detail;
    std::map<std::string, controller::RunRecord> runs;
    bool Ran(const std::string& h) const {
      auto it = runs.find(h);
      return it != runs.end() && it->second.started_at_us > 0;
    }
    std::string Status(const std::string& h) const {
      auto it = runs.find(h);
      return it == runs.end() ? "(no run)" : it->second.status;
    }
  };
  Rollout Run(const std::string& inventory, const std::string& plan) {
    return Collect(Mimic("run --inventory " + inventory + " --plan " + plan));
  }
  Rollout Collect(CommandResult result) {
    Rollout r;
    r.result = std::move(result);
    r.id = RolloutId(r.result.output);
    EXPECT_FALSE(r.id.empty()) << r.result.output;
    if (r.id.empty()) return r;
    r.detail = Detail(r.id);
    r.runs = Runs(r.detail);
    return r;
  }

  std::string dir_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

// The batch sequence is exactly as specified and the window never holds more than
// `concurrency` hosts; a batch starts only after the previous one finished.
TEST_F(RolloutTest, BatchSequenceAndSlidingWindow) {
  // prod batch 2 is h08, h09, h10 with concurrency 2: each of them is held before its first
  // step, so the test sees the window full (two held), the third waiting, and the third
  // starting only when one of the two is let go.
  const std::vector<std::string> window = {"h08", "h09", "h10"};
  ASSERT_NO_FATAL_FAILURE(StartAgents({{"h08", 0}, {"h09", 0}, {"h10", 0}}));
  std::string inv = WriteInventory("inventory.toml");
  std::string plan = WritePlan(
      "plan.toml",
      "[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\nbatch = 1\n\n"
      "[[stages]]\nname = \"staging\"\nenvironments = [\"staging\"]\nbatch = \"50%\"\n"
      "concurrency = 2\n\n"
      "[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\nbatch = [1, \"50%\"]\n"
      "concurrency = 2\n");
  const std::string out_path = dir_ + "/run.out";
  pid_t pid = StartMimic({"run", "--inventory", inv, "--plan", plan}, out_path);
  std::vector<std::string> held;
  ASSERT_TRUE(WaitUntil(
      [&] {
        held.clear();
        for (const std::string& h : window) {
          if (Agent(h).Reached(0)) held.push_back(h);
        }
        return held.size() >= 2;
      },
      AgentProcess::kGateWaitSeconds,
      {.dirs = {Agent("h08").gate_dir(), Agent("h09").gate_dir(), Agent("h10").gate_dir()},
       .pids = {pid}}))
      << ReadText(out_path);
  ASSERT_EQ(held.size(), 2u) << "the window of 2 holds a third run";
  std::string waiting;
  for (const std::string& h : window) {
    if (std::find(held.begin(), held.end(), h) == held.end()) waiting = h;
  }
  // The third starts once one of the two finishes, not before.
  EXPECT_FALSE(Agent(waiting).Reached(0)) << waiting << " started with the window full";
  Agent(held[0]).Release(0);
  EXPECT_FALSE(Agent(waiting).WaitReached(0).empty()) << ReadText(out_path);
  Agent(held[1]).Release(0);
  Agent(waiting).Release(0);
  ASSERT_EQ(WaitExit(pid), 0) << ReadText(out_path);
  Rollout r = Collect({0, ReadText(out_path)});
  EXPECT_EQ(r.detail.rollout.status, "ok");
  auto batches = Batches(r.detail);
  EXPECT_THAT(batches["dev"], ElementsAre("h01", "h02"));
  EXPECT_THAT(batches["staging"], ElementsAre("h03,h04", "h05,h06"));
  // [1, "50%"] over 6: 1, ceil(3) = 3, then 50% again but only 2 left.
  EXPECT_THAT(batches["prod"], ElementsAre("h07", "h08,h09,h10", "h11,h12"));
  ASSERT_EQ(r.runs.size(), static_cast<size_t>(kHostCount));
  for (const auto& [h, run] : r.runs) {
    EXPECT_TRUE(controller::IsSuccessStatus(run.status)) << h << " " << run.status;
    EXPECT_GT(run.started_at_us, 0) << h;
    EXPECT_GE(run.finished_at_us, run.started_at_us) << h;
  }
  // Batches in order (stage by stage): every host of a batch starts at or after the last
  // host of the previous batch finished.
  int64_t prev_batch_end = 0;
  std::string prev_name = "(none)";
  for (const auto& b : r.detail.batches) {  // by stage idx, then batch idx
    int64_t end = 0;
    for (const std::string& h : b.hosts) {
      const auto& run = r.runs[h];
      EXPECT_GE(run.started_at_us, prev_batch_end)
          << h << " (" << b.stage << " batch " << b.idx << ") started before " << prev_name
          << " finished";
      end = std::max(end, run.finished_at_us);
    }
    prev_batch_end = end;
    prev_name = absl::StrCat(b.stage, " batch ", b.idx);
  }
  // The window: at no time more than 2 runs in flight (ends sort before starts at a tie).
  auto max_in_flight = [&](const std::vector<std::string>& hosts) {
    std::vector<std::pair<int64_t, int>> ev;
    for (const std::string& h : hosts) {
      ev.push_back({r.runs[h].started_at_us, +1});
      ev.push_back({r.runs[h].finished_at_us, -1});
    }
    std::sort(ev.begin(), ev.end());
    int now = 0, most = 0;
    for (const auto& [t, d] : ev) most = std::max(most, now += d);
    return most;
  };
  EXPECT_LE(max_in_flight(AllHosts()), 2);
  // The batch of 3 with concurrency 2 filled its window (two held at once) and never more.
  EXPECT_EQ(max_in_flight(window), 2);
  EXPECT_EQ(max_in_flight({"h01", "h02"}), 1);  // batch = 1
}

// Each failure budget stops (or does not stop) at the right host.
TEST_F(RolloutTest, FailureBudgetEdges) {
  ASSERT_NO_FATAL_FAILURE(StartAgents());
  const std::string later_staging =
      "\n[[stages]]\nname = \"staging\"\nenvironments = [\"staging\"]\n";

  {  // max_fail_percentage = 0, one failure in a batch of 4 (one at a time): stops right there.
    SCOPED_TRACE("max_fail_percentage = 0");
    std::string inv = WriteInventory("inv-mfp0.toml", {{"h08", "fail"}});
    std::string plan = WritePlan(
        "plan-mfp0.toml",
        "[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\nbatch = 4\nconcurrency = 1\n"
        "max_fail_percentage = 0\n" + later_staging);
    Rollout r = Run(inv, plan);
    EXPECT_EQ(r.result.exit_code, 2) << r.result.output;
    EXPECT_EQ(r.detail.rollout.status, "stopped");
    EXPECT_THAT(r.detail.rollout.message, HasSubstr("max_fail_percentage 0"));
    EXPECT_THAT(r.detail.rollout.message, HasSubstr("prod batch 1: 1 of 4"));
    EXPECT_THAT(r.result.output, HasSubstr("max_fail_percentage 0"));
    EXPECT_TRUE(r.Ran("h07"));
    EXPECT_EQ(r.Status("h08"), "failed");
    EXPECT_FALSE(r.Ran("h09")) << "no new host starts once the budget is exceeded";
    EXPECT_FALSE(r.Ran("h10"));
    EXPECT_THAT(Batches(r.detail)["prod"], ElementsAre("h07,h08,h09,h10"));  // batch 2 never
    for (const char* h : {"h11", "h12", "h03", "h04", "h05", "h06"}) {
      EXPECT_EQ(r.runs.count(h), 0u) << h << " is in a later batch or stage";
    }
  }
  {  // 25% equalled (1 of 4) is not exceeded; 100% with every host failing is not exceeded.
    SCOPED_TRACE("max_fail_percentage = 25 / 100");
    std::string inv = WriteInventory(
        "inv-mfp25.toml",
        {{"h03", "fail"}, {"h04", "fail"}, {"h05", "fail"}, {"h06", "fail"}, {"h08", "fail"}});
    std::string plan = WritePlan(
        "plan-mfp25.toml",
        "[[stages]]\nname = \"staging\"\nenvironments = [\"staging\"]\nbatch = 4\n"
        "max_fail_percentage = 100\n\n"
        "[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\nbatch = 4\nconcurrency = 1\n"
        "max_fail_percentage = 25\n");
    Rollout r = Run(inv, plan);
    EXPECT_EQ(r.result.exit_code, 2) << r.result.output;  // hosts failed, but no stop
    EXPECT_EQ(r.detail.rollout.status, "failed") << r.detail.rollout.message;
    EXPECT_EQ(r.detail.rollout.message, "");
    for (const char* h : {"h03", "h04", "h05", "h06", "h08"}) EXPECT_EQ(r.Status(h), "failed") << h;
    for (const char* h : {"h07", "h09", "h10", "h11", "h12"}) {
      EXPECT_TRUE(controller::IsSuccessStatus(r.Status(h))) << h << " " << r.Status(h);
    }
    EXPECT_THAT(Batches(r.detail)["prod"], ElementsAre("h07,h08,h09,h10", "h11,h12"));
  }
  {  // A batch of one host: its failure is 100% of the batch, over max_fail_percentage 99.
    SCOPED_TRACE("one-host batch");
    std::string inv = WriteInventory("inv-one.toml", {{"h07", "fail"}});
    std::string plan = WritePlan(
        "plan-one.toml",
        "[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\nbatch = 1\n"
        "max_fail_percentage = 99\n");
    Rollout r = Run(inv, plan);
    EXPECT_EQ(r.result.exit_code, 2) << r.result.output;
    EXPECT_EQ(r.detail.rollout.status, "stopped");
    EXPECT_THAT(r.detail.rollout.message, HasSubstr("prod batch 1: 1 of 1 hosts failed"));
    EXPECT_EQ(r.Status("h07"), "failed");
    EXPECT_EQ(r.runs.count("h08"), 0u);
  }
  {  // stage max_failures = 1: the second failure (first host of batch 2) stops the rollout.
    SCOPED_TRACE("max_failures = 1");
    std::string inv = WriteInventory("inv-mf1.toml", {{"h04", "fail"}, {"h05", "fail"}});
    std::string plan = WritePlan(
        "plan-mf1.toml",
        "[[stages]]\nname = \"staging\"\nenvironments = [\"staging\"]\nbatch = 2\n"
        "concurrency = 1\nmax_failures = 1\n\n"
        "[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\n");
    Rollout r = Run(inv, plan);
    EXPECT_EQ(r.result.exit_code, 2) << r.result.output;
    EXPECT_EQ(r.detail.rollout.status, "stopped");
    EXPECT_THAT(r.detail.rollout.message, HasSubstr("stage staging: 2 hosts failed"));
    EXPECT_THAT(r.detail.rollout.message, HasSubstr("max_failures 1"));
    EXPECT_TRUE(controller::IsSuccessStatus(r.Status("h03"))) << r.Status("h03");
    EXPECT_EQ(r.Status("h04"), "failed");  // 1 failure: tolerated, batch 2 starts
    EXPECT_EQ(r.Status("h05"), "failed");  // 2 failures: over the budget
    EXPECT_FALSE(r.Ran("h06"));
    for (const char* h : {"h07", "h08", "h09", "h10", "h11", "h12"}) {
      EXPECT_EQ(r.runs.count(h), 0u) << h << " is in a later stage";
    }
  }
  {  // rollout max_failures = 2 over stages that tolerate any number: the third failure stops.
    SCOPED_TRACE("rollout max_failures = 2");
    std::string inv = WriteInventory("inv-rmf.toml",
                                     {{"h01", "fail"}, {"h03", "fail"}, {"h04", "fail"}});
    std::string plan = WritePlan(
        "plan-rmf.toml",
        "[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\nmax_failures = -1\n\n"
        "[[stages]]\nname = \"staging\"\nenvironments = [\"staging\"]\nbatch = 1\n"
        "max_failures = -1\n\n"
        "[rollout]\nmax_failures = 2\n");
    Rollout r = Run(inv, plan);
    EXPECT_EQ(r.result.exit_code, 2) << r.result.output;
    EXPECT_EQ(r.detail.rollout.status, "stopped");
    EXPECT_THAT(r.detail.rollout.message, HasSubstr("rollout: 3 hosts failed"));
    EXPECT_EQ(r.Status("h01"), "failed");
    EXPECT_TRUE(controller::IsSuccessStatus(r.Status("h02")));
    EXPECT_EQ(r.Status("h03"), "failed");
    EXPECT_EQ(r.Status("h04"), "failed");
    EXPECT_EQ(r.runs.count("h05"), 0u);
    EXPECT_EQ(r.runs.count("h06"), 0u);
  }
  {  // unreachable_is_failure = false: an unreachable host does not count; the rollout goes on.
    SCOPED_TRACE("unreachable_is_failure = false");
    std::string inv = WriteInventory("inv-down.toml", {{"h01", "down"}});
    std::string plan = WritePlan(
        "plan-down-ok.toml",
        "[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\nbatch = 1\n"
        "unreachable_is_failure = false\n" + later_staging);
    Rollout r = Run(inv, plan);
    EXPECT_EQ(r.result.exit_code, 2) << r.result.output;  // not every host migrated
    EXPECT_EQ(r.detail.rollout.status, "failed") << r.detail.rollout.message;
    EXPECT_THAT(r.result.output, HasSubstr("unreachable"));
    EXPECT_FALSE(r.Ran("h01"));
    for (const char* h : {"h02", "h03", "h04", "h05", "h06"}) {
      EXPECT_TRUE(controller::IsSuccessStatus(r.Status(h))) << h << " " << r.Status(h);
    }
  }
  {  // unreachable_is_failure = true (the default): the unreachable host stops the rollout.
    SCOPED_TRACE("unreachable_is_failure = true");
    std::string inv = WriteInventory("inv-down2.toml", {{"h01", "down"}});
    std::string plan = WritePlan(
        "plan-down-fail.toml",
        "[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\nbatch = 1\n"
        "unreachable_is_failure = true\n" + later_staging);
    Rollout r = Run(inv, plan);
    EXPECT_EQ(r.result.exit_code, 2) << r.result.output;
    EXPECT_EQ(r.detail.rollout.status, "stopped");
    EXPECT_THAT(r.detail.rollout.message, HasSubstr("stage dev: 1 hosts failed, over max_failures 0"));
    EXPECT_FALSE(r.Ran("h01"));
    EXPECT_EQ(r.runs.count("h02"), 0u) << "dev batch 2 must not start";
    for (const char* h : {"h03", "h04", "h05", "h06"}) EXPECT_EQ(r.runs.count(h), 0u) << h;
  }
}

TEST_F(RolloutTest, LogsAndAuditListing) {
  ASSERT_NO_FATAL_FAILURE(StartAgents());
  std::string plan = WritePlan(
      "plan.toml", "[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\nmax_failures = -1\n");
  Rollout good = Run(WriteInventory("inventory.toml"), plan);
  ASSERT_EQ(good.result.exit_code, 0) << good.result.output;
  Rollout bad = Run(WriteInventory("inv-bad.toml", {{"h02", "fail"}}), plan);
  ASSERT_EQ(bad.result.exit_code, 2) << bad.result.output;

  CommandResult logs = Mimic("logs " + good.id + " h01 --inventory inv-bad.toml");
  ASSERT_EQ(logs.exit_code, 0) << logs.output;
  EXPECT_THAT(logs.output, HasSubstr("run " + good.id + ".h01 started"));
  EXPECT_THAT(logs.output, HasSubstr("step preflight "));
  EXPECT_THAT(logs.output, HasSubstr("step copy_carbonapps "));
  EXPECT_THAT(logs.output, HasSubstr("step copy_keystores "));
  EXPECT_THAT(logs.output, HasSubstr("run finished: "));
  EXPECT_THAT(logs.output, HasSubstr("Z  "));  // each line starts with its UTC time
  EXPECT_THAT(logs.output, Not(HasSubstr("h02")));

  CommandResult one_step = Mimic("logs " + good.id + " h01 preflight");
  ASSERT_EQ(one_step.exit_code, 0) << one_step.output;
  EXPECT_THAT(one_step.output, HasSubstr("step preflight "));
  EXPECT_THAT(one_step.output, Not(HasSubstr("copy_carbonapps")));

  CommandResult failed = Mimic("logs " + bad.id + " h02");
  ASSERT_EQ(failed.exit_code, 0) << failed.output;
  EXPECT_THAT(failed.output, HasSubstr("step preflight failed"));
  EXPECT_THAT(failed.output, HasSubstr("run finished: failed"));

  EXPECT_EQ(Mimic("logs " + bad.id + " h09").exit_code, 1);  // no run there
  EXPECT_EQ(Mimic("logs r-nosuch h01").exit_code, 1);

  CommandResult by_host = Mimic("audit --host h02");
  ASSERT_EQ(by_host.exit_code, 0) << by_host.output;
  EXPECT_THAT(by_host.output, HasSubstr("TIME"));
  EXPECT_THAT(by_host.output, HasSubstr(good.id));
  EXPECT_THAT(by_host.output, HasSubstr(bad.id));
  EXPECT_THAT(by_host.output, Not(HasSubstr(" h01 ")));
  // time, rollout, host, stage, mode, status, message; oldest first.
  EXPECT_LT(by_host.output.find(good.id), by_host.output.find(bad.id));
  EXPECT_THAT(by_host.output, ContainsRegex("Z +" + bad.id + " +h02 +dev +apply +failed +step preflight failed"));

  CommandResult by_status =
      Mimic("audit --status failed --since 1h --audit controller-state/audit.db");
  ASSERT_EQ(by_status.exit_code, 0) << by_status.output;
  EXPECT_THAT(by_status.output, HasSubstr(bad.id));
  EXPECT_THAT(by_status.output, Not(HasSubstr(good.id)));
  EXPECT_THAT(by_status.output, Not(HasSubstr(" h01 ")));

  CommandResult week = Mimic("audit --since 7d --host h01");
  EXPECT_EQ(week.exit_code, 0) << week.output;
  EXPECT_THAT(week.output, HasSubstr(good.id));
  CommandResult all = Mimic("audit --since 2000-01-01");
  EXPECT_EQ(all.exit_code, 0) << all.output;
  EXPECT_THAT(all.output, ContainsRegex(good.id + " +h01 +dev +apply +(ok|changed)"));
  CommandResult future = Mimic("audit --since 2099-01-01T00:00:00Z");
  EXPECT_EQ(future.exit_code, 0) << future.output;
  EXPECT_THAT(future.output, HasSubstr("no runs match"));
  CommandResult bogus = Mimic("audit --since yesterday-ish");
  EXPECT_EQ(bogus.exit_code, 1) << bogus.output;
  EXPECT_THAT(bogus.output, HasSubstr("--since"));
  // `audit verify` still works next to the listing.
  EXPECT_EQ(Mimic("audit verify " + good.id).exit_code, 0);

  // Names are checked, never silently matched against nothing.
  CommandResult no_step = Mimic("logs " + good.id + " h01 merge_confg");
  EXPECT_EQ(no_step.exit_code, 1) << no_step.output;
  EXPECT_THAT(no_step.output, HasSubstr("no step 'merge_confg' (steps: "));
  CommandResult no_status = Mimic("audit --status bogus");
  EXPECT_EQ(no_status.exit_code, 1) << no_status.output;
  EXPECT_THAT(no_status.output, HasSubstr("use one of pending, running, ok"));
  CommandResult no_stage = Mimic("approve " + good.id + " --stage Dev");
  EXPECT_EQ(no_stage.exit_code, 1) << no_stage.output;
  EXPECT_THAT(no_stage.output, HasSubstr("has no stage 'Dev' (its stages: dev)"));
  EXPECT_EQ(Mimic("audit --limit h01").exit_code, 1);  // not a flag of audit

  // JSON where tables are printed: numbers as numbers, a schema version.
  CommandResult audit_json = Mimic("audit --host h02 --output json");
  ASSERT_EQ(audit_json.exit_code, 0) << audit_json.output;
  EXPECT_THAT(audit_json.output, HasSubstr("{\"schema_version\":1,\"runs\":[{"));
  EXPECT_THAT(audit_json.output, HasSubstr("\"host\":\"h02\",\"stage\":\"dev\",\"mode\":\"apply\",\"status\":\"failed\""));
  CommandResult status_json = Mimic("status --output json");
  ASSERT_EQ(status_json.exit_code, 0) << status_json.output;
  EXPECT_THAT(status_json.output, HasSubstr("\"id\":\"" + bad.id + "\""));
  EXPECT_THAT(status_json.output, ContainsRegex("\"hosts\":[0-9]+,\"ok\":[0-9]+,\"failed\":1,"));
  CommandResult facts_json = Mimic("facts --inventory inv-bad.toml --limit h01 --output json");
  EXPECT_EQ(facts_json.exit_code, 0) << facts_json.output;
  EXPECT_THAT(facts_json.output, ContainsRegex("\"name\":\"h01\",\"reachable\":true,.*\"disk_free_bytes\":[0-9]+,"));

  // The failed rollout wrote a retry file with the host that failed and said what to do next.
  const std::string retry = dir_ + "/controller-state/" + bad.id + ".retry";
  EXPECT_THAT(bad.result.output, HasSubstr("not done: h02 (listed in " + retry + ")"));
  EXPECT_THAT(bad.result.output, HasSubstr("mimic resume " + bad.id));
  EXPECT_THAT(bad.result.output, HasSubstr("mimic rollback " + bad.id + " --limit @" + retry));
  CommandResult listed = Mimic("inventory list --inventory inv-bad.toml --limit @" + retry);
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_EQ(listed.output, "h02\n");
  // A new rollout of just that host, from the retry file, with the fault fixed.
  Rollout rerun = Collect(Mimic("run --inventory inventory.toml --plan " + plan + " --limit @" + retry));
  EXPECT_EQ(rerun.result.exit_code, 0) << rerun.result.output;
  EXPECT_TRUE(rerun.Ran("h02"));
  EXPECT_FALSE(rerun.Ran("h01"));
  EXPECT_THAT(rerun.result.output, Not(HasSubstr("not done:")));

  // The whole audit (every rollout, the signed ledger) verifies, and a head exported now is
  // kept; a forged run row is then found, by rollout and against the head alike.
  CommandResult whole = Mimic("audit verify");
  EXPECT_EQ(whole.exit_code, 0) << whole.output;
  EXPECT_THAT(whole.output, HasSubstr("audit: intact: "));
  CommandResult exported = Mimic("audit export -o head.txt");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_THAT(ReadText(dir_ + "/head.txt"), HasSubstr("format mimic-audit-head-v2"));
  CommandResult against = Mimic("audit verify --against head.txt");
  EXPECT_EQ(against.exit_code, 0) << against.output;
  EXPECT_THAT(against.output, HasSubstr("extends the head exported"));
  // The auditor's check needs the public key only; the private key is never printed.
  const std::string head_key = dir_ + "/controller-state/audit-head.key";
  const std::string private_pem = ReadText(head_key);
  ASSERT_THAT(private_pem, HasSubstr("PRIVATE KEY"));
  const std::string private_line = private_pem.substr(private_pem.find('\n') + 1, 40);
  EXPECT_THAT(exported.output, HasSubstr("--public-key " + head_key + ".pub"));
  CommandResult genuine =
      Mimic("audit verify --against head.txt --public-key " + ShellQuote(head_key + ".pub"));
  EXPECT_EQ(genuine.exit_code, 0) << genuine.output;
  EXPECT_THAT(genuine.output, HasSubstr("genuine"));
  CommandResult given_private =
      Mimic("audit verify --against head.txt --public-key " + ShellQuote(head_key));
  EXPECT_EQ(given_private.exit_code, 1) << given_private.output;
  EXPECT_THAT(given_private.output, HasSubstr("holds a private key"));
  for (const CommandResult* r : {&exported, &genuine, &given_private}) {
    EXPECT_THAT(r->output, Not(HasSubstr(private_line)));
  }
  EXPECT_THAT(ReadText(dir_ + "/head.txt"), Not(HasSubstr(private_line)));
  std::string head_text = ReadText(dir_ + "/head.txt");
  const size_t at = head_text.find("\nentries ");
  ASSERT_NE(at, std::string::npos);
  head_text.replace(at, 9, "\nentries 1");  // entries N -> 1N
  WriteText(dir_ + "/edited-head.txt", head_text);
  CommandResult edited =
      Mimic("audit verify --against edited-head.txt --public-key " + ShellQuote(head_key + ".pub"));
  EXPECT_EQ(edited.exit_code, 2) << edited.output;
  EXPECT_THAT(edited.output, HasSubstr("FORGED"));
  CommandResult edit = RunCommand("sqlite3 " + ShellQuote(dir_ + "/controller-state/audit.db") +
                                  " \"UPDATE runs SET message = 'all fine' WHERE rollout_id = '" +
                                  bad.id + "'\"");
  ASSERT_EQ(edit.exit_code, 0) << edit.output;
  CommandResult forged = Mimic("audit verify --rollout " + bad.id);
  EXPECT_EQ(forged.exit_code, 2) << forged.output;
  EXPECT_THAT(forged.output, HasSubstr("TAMPERED"));
  EXPECT_THAT(forged.output, HasSubstr("table runs"));
  EXPECT_EQ(Mimic("audit verify --against head.txt").exit_code, 2);
  EXPECT_EQ(Mimic("audit verify --rollout " + good.id).exit_code, 0);
}

// The three runs of prod batch 1 are each held before step 1 (copy_carbonapps) when
// `mimic cancel` runs: every one is cancelled before that step starts, and the rollout stops.
TEST_F(RolloutTest, CancelStopsTheRunsInFlight) {
  const std::vector<std::string> batch = {"h07", "h08", "h09"};
  ASSERT_NO_FATAL_FAILURE(StartAgents({{"h07", 1}, {"h08", 1}, {"h09", 1}}));
  WriteInventory("inventory.toml");
  WritePlan("plan.toml",
            "[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\nbatch = 3\n"
            "concurrency = 3\n");
  std::string out_path = dir_ + "/run.out";
  pid_t pid = StartMimic({"run", "--inventory", "inventory.toml", "--plan", "plan.toml"}, out_path);
  std::map<std::string, std::string> run_of;
  for (const std::string& h : batch) {
    run_of[h] = Agent(h).WaitReached(1);
    ASSERT_FALSE(run_of[h].empty()) << ReadText(out_path);
  }
  // Run ids are "<rollout>.<host>".
  const std::string rollout = run_of["h07"].substr(0, run_of["h07"].rfind('.'));
  ASSERT_EQ(run_of["h07"], rollout + ".h07");
  // No --inventory: the one the rollout recorded.
  CommandResult cancel = Mimic("cancel " + rollout);
  EXPECT_EQ(cancel.exit_code, 0) << cancel.output;
  for (const std::string& h : batch) {
    EXPECT_THAT(cancel.output, ContainsRegex(h + " +" + run_of[h] + ": cancel accepted \\(cancelling\\)"))
        << cancel.output;
    Agent(h).Release(1);
  }
  int code = WaitExit(pid);
  EXPECT_EQ(code, 2) << ReadText(out_path);
  auto d = Detail(rollout);
  auto runs = Runs(d);
  auto audit = controller::Audit::Open(dir_ + "/controller-state/audit.db");
  ASSERT_TRUE(audit.ok()) << audit.status();
  for (const std::string& h : batch) {
    SCOPED_TRACE(h);
    EXPECT_EQ(runs[h].status, "cancelled");
    // preflight ran; copy_carbonapps, held when the cancel came, never started.
    auto steps = (*audit)->Steps(run_of[h]);
    ASSERT_TRUE(steps.ok()) << steps.status();
    std::vector<std::string> names;
    for (const auto& s : *steps) names.push_back(s.name);
    EXPECT_THAT(names, ElementsAre("preflight"));
    const std::string capps = "/repository/deployment/server/carbonapps";
    EXPECT_EQ(TreeHash(Target(h) + capps), TreeHash(*g_pristine + "/dst" + capps));
  }
  // Cancelled hosts count as failed: the stage's budget (max_failures 0) stops the rollout
  // and the second batch never starts.
  EXPECT_EQ(d.rollout.status, "stopped");
  for (const char* h : {"h10", "h11", "h12"}) EXPECT_EQ(runs.count(h), 0u) << h;
  CommandResult again = Mimic("cancel " + rollout + " --inventory inventory.toml");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr("nothing to cancel"));
}

}  // namespace
}  // namespace mimic::testing
