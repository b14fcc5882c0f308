// Fault campaign 2: the controller (`mimic run`) killed with SIGKILL at seeded moments of a
// rollout of a small fleet (three real agents with mutual TLS: d1 in a dev stage, p1 and p2 in a
// prod stage of two batches). The moment is measured in events: the kill comes once the
// controller has printed its N-th JSON event line (N drawn over a whole rollout's lines), so it
// lands before, between and inside stages, batches and runs. Then `mimic resume R` must finish
// (exit 0) and:
//   - no host was migrated twice: each host has one apply run in the rollout (audit) and one
//     run directory on its agent, whose journal starts each step once;
//   - every event is audited once: each run's audit events are seq 1..N, no gap or duplicate,
//     ending in run_finished, and equal byte for byte to the agent's journal;
//   - `mimic audit verify R` passes (the hash chain is intact);
//   - the rollout's scope (rollout_scopes: stage, limit, hosts, batches) is unchanged;
//   - every target ends as in an uninterrupted rollout (content, modes, owners).
//
// CI size: 20 trials. Bigger: MIMIC_FAULT_TRIALS=200 (tests/fault/run-campaigns.sh);
// MIMIC_FAULT_SEED=N replays a campaign.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/fs.h"
#include "controller/audit/audit.h"
#include "gtest/gtest.h"
#include "tests/fault/fault_env.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

const std::vector<std::string> kHosts = {"d1", "p1", "p2"};

class ControllerKillCampaign : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("fault-ctl");
    if (MountScratch(dir_)) scratch_ = dir_;
    ASSERT_NO_FATAL_FAILURE(MakeCerts(dir_ + "/certs", kHosts));
    MakeMiHome("4.0.0", dir_ + "/pristine/src", "source", "fleet");
    MakeMiHome("4.2.0", dir_ + "/pristine/dst", "target", "fleet");
    if (geteuid() == 0) {
      ASSERT_EQ(RunCommand("chown -R 65534:65534 " + ShellQuote(dir_ + "/pristine")).exit_code, 0);
    }
    std::string cmd = "set -e; mkdir -p " + ShellQuote(dir_ + "/agent-state") + "; ";
    for (const std::string& h : kHosts) {
      absl::StrAppend(&cmd, "mkdir -p ", ShellQuote(Root(h)), "; cp -a ",
                      ShellQuote(dir_ + "/pristine/src"), " ", ShellQuote(Source(h)), "; ");
    }
    ASSERT_EQ(RunCommand(cmd).exit_code, 0);
    ASSERT_NO_FATAL_FAILURE(ResetTargets());
    for (const std::string& h : kHosts) {
      AgentProcess::Options o;
      o.name = h;
      o.certs_dir = dir_ + "/certs";
      o.state_dir = StateDir(h);
      o.allowed_roots = {Root(h)};
      agents_.push_back(std::make_unique<AgentProcess>(o));
      ASSERT_TRUE(agents_.back()->Start());
    }
    std::string inv =
        "[controller]\nstate_dir = \"controller-state\"\nca = \"certs/ca.pem\"\n"
        "cert = \"certs/controller.pem\"\nkey = \"certs/controller.key\"\n";
    for (size_t i = 0; i < kHosts.size(); ++i) {
      absl::StrAppend(&inv, "\n[hosts.", kHosts[i], "]\naddress = \"", agents_[i]->address(),
                      "\"\nenvironment = \"", i == 0 ? "dev" : "prod",
                      "\"\nvars = { source_home = \"", Source(kHosts[i]), "\", target_home = \"",
                      Target(kHosts[i]), "\" }\n");
    }
    WriteText(dir_ + "/inventory.toml", inv);
    WriteText(dir_ + "/plan.toml",
              "[migration]\npath = \"4.0.0->4.2.0\"\n\n"
              "[[steps]]\nname = \"preflight\"\n"
              "[[steps]]\nname = \"snapshot_target\"\n"
              "[[steps]]\nname = \"copy_carbonapps\"\n"
              "[[steps]]\nname = \"copy_registry\"\n"
              "[[steps]]\nname = \"copy_deployment\"\n"
              "[[steps]]\nname = \"copy_custom_components\"\n"
              "[[steps]]\nname = \"copy_keystores\"\n"
              "[[steps]]\nname = \"merge_config\"\nparams = { conflict = \"source\" }\n" +
              SkipAllBut({"preflight", "snapshot_target", "copy_carbonapps", "copy_registry",
                          "copy_deployment", "copy_custom_components", "copy_keystores",
                          "merge_config"},
                         "the campaign runs the file steps only") +
              "\n[[stages]]\nname = \"dev\"\nenvironments = [\"dev\"]\nbatch = 1\n"
              "\n[[stages]]\nname = \"prod\"\nenvironments = [\"prod\"]\nbatch = 1\n");
  }

  void TearDown() override {
    agents_.clear();
    if (!scratch_.empty()) UnmountScratch(scratch_);
  }

  std::string Root(const std::string& h) { return dir_ + "/mi/" + h; }
  std::string Source(const std::string& h) { return Root(h) + "/wso2mi-4.0.0"; }
  std::string Target(const std::string& h) { return Root(h) + "/wso2mi-4.2.0"; }
  std::string StateDir(const std::string& h) { return dir_ + "/agent-state/" + h; }

  void ResetTargets() {
    std::string cmd = "set -e; ";
    for (const std::string& h : kHosts) {
      absl::StrAppend(&cmd, "rm -rf ", ShellQuote(Target(h)), "; cp -a ",
                      ShellQuote(dir_ + "/pristine/dst"), " ", ShellQuote(Target(h)), "; ");
    }
    CommandResult r = RunCommand(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  std::map<std::string, std::string> Targets() {
    std::map<std::string, std::string> all;
    for (const std::string& h : kHosts) {
      for (auto& [k, v] : TreeState(Target(h))) all[h + "/" + k] = v;
    }
    return all;
  }

  std::unique_ptr<controller::Audit> OpenAudit() {
    auto a = controller::Audit::Open(dir_ + "/controller-state/audit.db");
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? std::move(*a) : nullptr;
  }

  static std::string Scope(const controller::RolloutDetail& d) {
    const auto& s = d.rollout.scope;
    std::string out = absl::StrCat(d.rollout.has_scope ? "scoped" : "unscoped", " stage=", s.stage, " limit=", s.limit,
                                   " hosts=", absl::StrJoin(s.hosts, ","));
    for (const auto& b : s.batches) {
      absl::StrAppend(&out, " [", b.stage, "#", b.idx, ":", absl::StrJoin(b.hosts, ","), "]");
    }
    return out;
  }

  static int Lines(const std::string& path) {
    const std::string s = ReadText(path);
    return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
  }

  std::string dir_, scratch_;
  std::vector<std::unique_ptr<AgentProcess>> agents_;
};

TEST_F(ControllerKillCampaign, KillNineAtSeededMomentsThenResumeFinishesEachHostOnce) {
  const uint32_t seed = FaultSeed(20261201);
  const int trials = FaultTrials(20);
  std::printf("[fault] controller-kill: seed=%u trials=%d\n", seed, trials);
  SCOPED_TRACE(absl::StrCat("controller-kill campaign seed=", seed));

  // An uninterrupted rollout: the reference targets and how many lines a whole rollout prints.
  CommandResult ref = RunMimic(dir_, "run --inventory inventory.toml --plan plan.toml --output json");
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  const auto reference = Targets();
  const int total_lines = static_cast<int>(std::count(ref.output.begin(), ref.output.end(), '\n'));
  ASSERT_GT(total_lines, 10) << ref.output;

  std::mt19937 rng(seed);
  int survived = 0, finished_before_kill = 0, failed_trials = 0;
  std::map<std::string, int> moments;  // how far the rollout was when killed
  for (int t = 0; t < trials && failed_trials < 5; ++t) {
    const int parts_before =
        ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    const int n = 1 + static_cast<int>(rng() % static_cast<uint32_t>(total_lines - 1));
    const std::string what = absl::StrCat("trial ", t, " seed=", seed, ": kill after output line ",
                                          n, " of ", total_lines);
    SCOPED_TRACE(what);
    ASSERT_NO_FATAL_FAILURE(ResetTargets());
    const std::string out = absl::StrCat(dir_, "/run-", t, ".out");
    pid_t pid = StartMimic(dir_, {"run", "--inventory", "inventory.toml", "--plan", "plan.toml",
                                  "--output", "json"},
                           out);
    int st = 0;
    bool exited = false;
    ASSERT_TRUE(WaitUntil(
        [&] {
          exited = waitpid(pid, &st, WNOHANG) == pid;
          return exited || Lines(out) >= n;
        },
        120, {.dirs = {common::Dirname(out)}, .pids = {pid}}));
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
    } else {
      ++finished_before_kill;
    }
    const std::string rollout = RolloutIdFrom(ReadText(out));
    ASSERT_FALSE(rollout.empty()) << ReadText(out);
    std::string scope_before;
    {
      auto audit = OpenAudit();
      ASSERT_NE(audit, nullptr);
      auto d = audit->GetRollout(rollout);
      ASSERT_TRUE(d.ok()) << d.status();
      scope_before = Scope(*d);
      int finished = 0;
      for (const auto& r : d->runs) finished += r.finished_at_us != 0;
      moments[absl::StrCat(d->runs.size(), " runs registered, ", finished, " finished")]++;
    }

    CommandResult resumed = RunMimic(dir_, "resume " + rollout + " --inventory inventory.toml");
    EXPECT_EQ(resumed.exit_code, 0) << resumed.output << "\nkilled run:\n" << ReadText(out);

    auto audit = OpenAudit();
    ASSERT_NE(audit, nullptr);
    auto d = audit->GetRollout(rollout);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(Scope(*d), scope_before) << "resume changed the rollout's scope";
    std::map<std::string, std::vector<std::string>> apply_runs;  // host -> run ids
    for (const auto& r : d->runs) {
      if (r.mode == "apply") apply_runs[r.host].push_back(r.run_id);
    }
    auto events = audit->Events(rollout);
    ASSERT_TRUE(events.ok()) << events.status();
    std::map<std::string, std::vector<mimic::v1::Event>> audited;
    for (const auto& e : *events) audited[e.run_id()].push_back(e);
    for (const std::string& h : kHosts) {
      ASSERT_EQ(apply_runs[h].size(), 1u) << h << " has " << apply_runs[h].size() << " apply runs";
      const std::string run = apply_runs[h][0];
      // The agent ran it once: one run directory of this rollout, each step started once.
      auto files = common::ListFilesRecursive(StateDir(h) + "/runs");
      ASSERT_TRUE(files.ok());
      std::set<std::string> dirs;
      for (const auto& f : *files) {
        const std::string top = f.substr(0, f.find('/'));
        if (absl::StartsWith(top, rollout + ".")) dirs.insert(top);
      }
      EXPECT_EQ(dirs, std::set<std::string>{run}) << h;
      const auto journal = JournalEvents(StateDir(h) + "/runs/" + run + "/journal");
      std::map<int, int> starts;
      for (const auto& e : journal) {
        if (e.has_step_started()) starts[e.step_started().index()]++;
      }
      for (const auto& [i, c] : starts) EXPECT_EQ(c, 1) << h << " step " << i << " started " << c << " times";
      // Every event audited once, as the agent journaled it.
      std::vector<mimic::v1::Event> a = audited[run];
      std::sort(a.begin(), a.end(), [](const auto& x, const auto& y) { return x.seq() < y.seq(); });
      ASSERT_FALSE(a.empty()) << run;
      EXPECT_TRUE(a.back().has_run_finished()) << run << " has no run_finished in the audit";
      EXPECT_EQ(CompareEvents(a, journal), "") << run;
      EXPECT_EQ(a.size(), journal.size()) << run;
    }
    CommandResult verify = RunMimic(dir_, "audit verify " + rollout + " --inventory inventory.toml");
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    const auto now = Targets();
    EXPECT_EQ(now, reference) << TreeDiff(reference, now);

    const int parts_after =
        ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    if (parts_after == parts_before) {
      ++survived;
    } else {
      ++failed_trials;
      std::printf("[fault] FAILED %s\n", what.c_str());
    }
  }
  std::vector<std::string> m;
  for (const auto& [k, v] : moments) m.push_back(absl::StrCat(v, "x ", k));
  PrintFigures("controller-kill", std::min(trials, survived + failed_trials), survived, seed,
               absl::StrCat("(3 agents, 2 stages, 3 batches; ", finished_before_kill,
                            " rollouts ended before their kill; at the kill: ",
                            absl::StrJoin(m, "; "), ")"));
  EXPECT_EQ(survived, trials);
}

}  // namespace
}  // namespace mimic::testing
