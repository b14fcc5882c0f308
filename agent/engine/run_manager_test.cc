// The run manager: the run memo, plans made ahead, cancels reaching a step's processes, secrets
// kept out of events and the journal.
#include "agent/engine/run_manager_test_fixture.h"
#include "common/base/subprocess.h"

namespace mimic::agent::run_manager_testing {
namespace {

// Any live process whose process group is `pgid`.
std::vector<pid_t> LiveInGroup(pid_t pgid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    int ppid = 0, pgrp = 0;
    if (std::sscanf(line.c_str() + paren + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') out.push_back(pid);
  }
  return out;
}

// What a step put into the run's memo is there for the later steps, until a step that may act
// beyond its change set (here "counted_acts") applies: what it learnt may no longer hold.
TEST_F(RunManagerTest, TheRunsMemoIsEmptiedAfterAStepThatActsBeyondItsPlan) {
  for (const auto mode : {mimic::v1::MODE_APPLY, mimic::v1::MODE_CHECK}) {
    auto m = Manager();
    mimic::v1::HostPlan plan =
        Plan(absl::StrCat("memo-", mode), {"memo_put", "memo_get", "counted_acts", "memo_get"});
    plan.set_mode(mode);
    auto run = RunToEnd(*m, plan);
    ASSERT_NE(run, nullptr);
    std::vector<std::string> said;
    for (const Event& e : All(*run)) {
      if (e.has_step_finished() && e.step_finished().step() != "counted_acts") {
        said.push_back(e.step_finished().message());
      }
    }
    const std::vector<std::string> expected = {
        "put", "remembered", mode == mimic::v1::MODE_APPLY ? "forgotten" : "remembered"};
    EXPECT_EQ(said, expected) << mimic::v1::Mode_Name(mode);
  }
}

// A cancel (the operator's, or the agent stopping) reaches inside the step: the step's command
// (a shell and its `sleep 1000`, held on a FIFO, no timing) is ended with its whole process
// group, the step ends FAILED "cancelled", the run CANCELLED (or INTERRUPTED when the agent
// stops), journaled; a restart keeps that, and the run rolls back exactly.
TEST_F(RunManagerTest, CancelEndsTheRunningStepAndItsProcessGroup) {
  const std::string fifo = (root_ / "pids").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const auto before = testing::Tree(target_);
  for (bool interrupt : {false, true}) {
    SCOPED_TRACE(interrupt ? "agent stopping" : "operator cancel");
    const std::string id = interrupt ? "stopped" : "cancelled";
    mimic::v1::HostPlan plan = Plan(id, {"log1x10", "block", "log1x10"});
    (*plan.mutable_steps(1)->mutable_params())["fifo"] = fifo;
    pid_t sh_pid = 0, sleep_pid = 0;
    {
      auto m = Manager();
      bool existed = false;
      auto run = m->StartOrGet(plan, &existed);
      ASSERT_TRUE(run.ok()) << run.status();
      {
        std::ifstream in(fifo);  // blocks until the step's shell writes its pids
        in >> sh_pid >> sleep_pid;
      }
      ASSERT_GT(sh_pid, 0);
      ASSERT_GT(sleep_pid, 0);
      ASSERT_TRUE(common::ProcessAlive(sleep_pid));
      if (interrupt) {
        m->BeginShutdown();
        EXPECT_EQ(m->InterruptRunning(), 1);
      } else {
        std::string state;
        ASSERT_TRUE(m->Cancel(id, &state).ok());
        EXPECT_EQ(state, "cancelling");
      }
      m->WaitFinished(*run);
      EXPECT_TRUE(common::WaitProcessEnded(sh_pid, absl::Seconds(30)));
      EXPECT_TRUE(common::WaitProcessEnded(sleep_pid, absl::Seconds(30)))
          << "the step's background process survived the cancel";
      EXPECT_FALSE(common::ProcessAlive(sleep_pid));
      EXPECT_TRUE(LiveInGroup(sh_pid).empty()) << "a process of the step's group is alive";
      std::vector<Event> events = All(**run);
      ASSERT_TRUE(events.back().has_run_finished());
      const auto& fin = events.back().run_finished();
      EXPECT_EQ(fin.status(), interrupt ? mimic::v1::RUN_INTERRUPTED : mimic::v1::RUN_CANCELLED)
          << fin.message();
      EXPECT_NE(fin.message().find("during step block"), std::string::npos) << fin.message();
      int started = 0;
      bool block_cancelled = false;
      for (const Event& e : events) {
        started += e.has_step_started();
        if (e.has_step_finished() && e.step_finished().step() == "block") {
          block_cancelled = e.step_finished().status() == mimic::v1::STEP_FAILED &&
                            e.step_finished().message().find("cancelled") != std::string::npos;
        }
      }
      EXPECT_EQ(started, 2) << "a step started after the cancel";
      EXPECT_TRUE(block_cancelled);
      EXPECT_TRUE(common::PathExists(target_ + "/out-0.txt"));
      EXPECT_FALSE(common::PathExists(target_ + "/out-2.txt"));
    }
    // After a restart the run is as it ended (journaled), and it rolls back exactly.
    auto m = Manager();
    ASSERT_TRUE(m->Recover().ok());
    auto found = m->Find(id);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ((*found)->Summary().status(),
              interrupt ? mimic::v1::RUN_INTERRUPTED : mimic::v1::RUN_CANCELLED);
    auto rolled = RollBack(*m, id, id + "-rollback");
    ASSERT_NE(rolled, nullptr);
    EXPECT_EQ(rolled->Summary().status(), mimic::v1::RUN_CHANGED)
        << All(*rolled).back().DebugString();
    EXPECT_EQ(testing::Tree(target_), before);
  }
}

TEST(BoundEventTest, ManyChangesAreCutToTheEventLimitAndCounted) {
  Event e;
  e.set_seq(1);
  auto* sf = e.mutable_step_finished();
  sf->set_message("copied");
  for (int i = 0; i < 20000; ++i) {
    auto* c = sf->add_changes();
    c->set_path(absl::StrCat("/opt/mi/repository/deployment/server/carbonapps/", std::string(60, 'x'), i, ".car"));
    c->set_sha256_after(std::string(64, 'a'));
  }
  BoundEvent(&e);
  EXPECT_LE(e.ByteSizeLong(), kMaxEventBytes);
  EXPECT_GT(sf->changes_size(), 1000);
  EXPECT_NE(sf->message().find(absl::StrCat(20000 - sf->changes_size(), " of 20000 file changes")),
            std::string::npos) << sf->message();
}

// Group commit: a log line is streamed only once the journal has it on disk, and a run syncs
// its journal once per other event (run start, step start, run end), not per line; a step's
// end rides with the next step's start (one sync for both), the last step's end alone.
TEST_F(RunManagerTest, LogLinesStreamOnlyOnceDurableOneSyncPerStepEvent) {
  const std::string id = "group";
  const std::string jpath = state_ + "/runs/" + id + "/journal";
  common::Mutex mu;
  uint64_t durable = 0;
  int syncs = 0;
  std::map<uint64_t, uint64_t> durable_at_publish;  // seq -> durable bytes when streamed
  SetJournalSyncHookForTesting([&](const std::string& p, uint64_t d) {
    if (p != jpath) return;
    common::MutexLock l(&mu);
    durable = d;
    ++syncs;
  });
  RunManagerOptions o;
  o.state_dir = state_;
  o.allowed_roots = {(root_ / "homes").string()};
  o.make_step = &MakeFake;
  o.log_flush_delay = absl::InfiniteDuration();  // only events sync: the count is exact
  RunManager* manager = nullptr;
  std::shared_ptr<RunState> watched;
  int sub = -1;
  o.before_step = [&](const std::string& run_id, int index) {
    if (index != 0) return;
    watched = *manager->Find(run_id);
    sub = watched->Subscribe([&] {
      common::MutexLock l(&mu);
      const uint64_t seq = watched->Summary().last_seq();
      if (!durable_at_publish.count(seq)) durable_at_publish[seq] = durable;
    });
  };
  RunManager m(std::move(o), &executor_);
  manager = &m;
  auto run = RunToEnd(m, Plan(id, {"log20x100", "log20x100", "log3x10"}));
  ASSERT_NE(run, nullptr);
  watched->Unsubscribe(sub);
  SetJournalSyncHookForTesting(nullptr);

  const std::vector<Event> events = All(*run);
  auto journal = Journal::Read(jpath);
  ASSERT_TRUE(journal.ok()) << journal.status();
  ASSERT_EQ(journal->events.size(), events.size());
  common::MutexLock l(&mu);
  int logs = 0;
  for (size_t i = 1; i < events.size(); ++i) {  // run_started was streamed before the watch
    const uint64_t end = i + 1 < journal->offsets.size() ? journal->offsets[i + 1]
                                                         : journal->valid_end;
    ASSERT_TRUE(durable_at_publish.count(events[i].seq())) << i;
    EXPECT_LE(end, durable_at_publish[events[i].seq()])
        << "streamed before it was durable: " << events[i].DebugString();
    logs += events[i].has_log();
  }
  EXPECT_GE(logs, 43);
  // Run start, step starts (each with the step before's end), the last step's end, run end.
  EXPECT_EQ(syncs, 1 + 3 + 1 + 1);
}

// A run plans a file step once: the plan snapshot_target made ahead is the one reported (check)
// and applied, with its log lines. A step that may act in apply mode plans again.
TEST_F(RunManagerTest, RunsUseThePlansMadeAheadForFileSteps) {
  auto m = Manager();
  mimic::v1::HostPlan check = Plan("r-check", {"plan_ahead", "counted", "counted_acts"});
  check.set_mode(mimic::v1::MODE_CHECK);
  counted_plans = 0;
  auto run = RunToEnd(*m, check);
  ASSERT_NE(run, nullptr);
  EXPECT_EQ(counted_plans, 2);  // each once, ahead
  bool logged = false, reported = false;
  for (const Event& e : All(*run)) {
    if (e.has_log() && e.log().step() == "counted" && e.log().text() == "counted plan says hello") {
      logged = true;
    }
    if (e.has_step_finished() && e.step_finished().step() == "counted") {
      reported = e.step_finished().status() == mimic::v1::STEP_CHANGED &&
                 e.step_finished().changes_size() == 1 &&
                 e.step_finished().changes(0).path() == target_ + "/counted.txt";
    }
  }
  EXPECT_TRUE(logged);
  EXPECT_TRUE(reported);
  EXPECT_FALSE(common::PathExists(target_ + "/counted.txt"));

  counted_plans = 0;
  auto apply = RunToEnd(*m, Plan("r-apply", {"plan_ahead", "counted", "counted_acts"}));
  ASSERT_NE(apply, nullptr);
  EXPECT_EQ(counted_plans, 3);  // counted once (ahead), counted_acts ahead and again
  logged = false;
  for (const Event& e : All(*apply)) {
    if (e.has_log() && e.log().step() == "counted" && e.log().text() == "counted plan says hello") {
      logged = true;
    }
  }
  EXPECT_TRUE(logged);
  EXPECT_EQ(*common::ReadFile(target_ + "/counted_acts.txt"), "counted\n");
  EXPECT_EQ(*common::ReadFile(target_ + "/counted.txt"), "counted\n");

  // After a step that may act (exec, verify, ...), the later steps plan again.
  counted_plans = 0;
  ASSERT_NE(RunToEnd(*m, Plan("r-apply2", {"plan_ahead", "counted_acts", "counted"})), nullptr);
  EXPECT_EQ(counted_plans, 4);
}


// Issue 9, secrets by value: a step that prints secret values the run knows under keys that do
// not look secret (here, a "text" param) must not put them in any event or in the journal. The
// values come from the plan's vars, a command param and the source home's deployment.toml.
TEST_F(RunManagerTest, SecretValuesOfThePlanAndTheSourceNeverReachEventsOrJournal) {
  ASSERT_TRUE(common::MakeDirs(source_ + "/conf").ok());
  ASSERT_TRUE(common::WriteFileAtomic(source_ + "/conf/deployment.toml",
                                      "[keystore.tls]\npassword = \"Toml-Pw-S3cr3t\"\n"
                                      "[secrets]\nmy_alias = \"[Alias-S3cr3t]\"\n")
                  .ok());
  const std::vector<std::string> secrets = {"Var-Pass-S3cr3t", "Toml-Pw-S3cr3t", "Alias-S3cr3t",
                                            "Cmd-Store-S3cr3t"};
  mimic::v1::HostPlan plan = Plan("sec1", {"text"});
  (*plan.mutable_vars())["db_pass"] = secrets[0];
  auto& params = *plan.mutable_steps(0)->mutable_params();
  params["text"] = "echo Var-Pass-S3cr3t Toml-Pw-S3cr3t Alias-S3cr3t Cmd-Store-S3cr3t";
  params["command"] = "keytool -list -storepass Cmd-Store-S3cr3t";
  std::string events_text;
  {
    auto m = Manager();
    auto run = RunToEnd(*m, plan);
    ASSERT_NE(run, nullptr);
    for (const Event& e : All(*run)) events_text += e.DebugString();
  }
  auto journal = common::ReadFile(state_ + "/runs/sec1/journal");
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_NE(events_text.find("echo <redacted> <redacted> <redacted> <redacted>"),
            std::string::npos)
      << events_text;
  for (const std::string& v : secrets) {
    EXPECT_EQ(events_text.find(v), std::string::npos) << v << " in events:\n" << events_text;
    EXPECT_EQ(journal->find(v), std::string::npos) << v << " in the journal";
  }
}

}  // namespace
}  // namespace mimic::agent::run_manager_testing
