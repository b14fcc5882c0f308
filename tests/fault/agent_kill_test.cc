// Fault campaign 1: a real agent killed with SIGKILL at seeded points inside every step of a
// full 4.0.0 -> 4.2.0 plan, over gRPC. Each trial lands its kill one of two ways, both
// measured in events, never in time:
//   write  the testing agent (--hold-write N) blocks at the N-th write point: in the middle of a
//          chunk an atomic write or copy writes (its temporary file exists, not yet renamed;
//          snapshot saves count too; the change set's earlier writes are temporaries too, not
//          yet synced), or just before a synced temporary of a change set is renamed into place
//          (some of its writes renamed, the others not), N drawn among the write points of the
//          trial's step in an uninterrupted run;
//   event  the kill comes as the client receives the K-th event, K drawn among the events of
//          the trial's step.
// After a restart of the agent: the run is INTERRUPTED; every event the client had received is
// in the agent's journal, byte for byte, seq 1..N without a gap; no `.mimic-tmp-*` file is left
// in the target. Then, drawn per trial, either the plan runs again (a new run on the same homes)
// and the target ends identical to an uninterrupted run's (content, modes, owners, symlinks), or
// the interrupted run is rolled back and the target is the pre-run tree, byte for byte, with
// owners and modes. The homes belong to a non-root user (as root; keystores 0600,
// deployment.toml 0640), so owners are part of every comparison.
//
// CI size: 50 trials. Bigger: MIMIC_FAULT_TRIALS=500 build/tests/fault/fault_agent_kill_test,
// or tests/fault/run-campaigns.sh. MIMIC_FAULT_SEED=N replays a campaign.
#include <signal.h>
#include <unistd.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/fault/fault_env.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

struct Chunk {
  int step;
  std::string path;
};

class AgentKillCampaign : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = MakeTempDir("fault-kill");
    if (MountScratch(dir)) scratch_ = dir;
    ASSERT_NO_FATAL_FAILURE(h_.Make(dir));
    target_ = h_.target;
  }
  void TearDown() override {
    if (!scratch_.empty()) UnmountScratch(scratch_);
  }
  void ResetTarget() { h_.ResetTarget(); }
  mimic::v1::HostPlan Plan(const std::string& run_id) { return h_.Plan(run_id); }
  mimic::v1::HostPlan RollbackPlan(const std::string& of) { return MigrationHomes::RollbackPlan(of); }

  AgentProcess::Options AgentOptions(const std::string& state) {
    AgentProcess::Options o;
    o.name = "p1";
    o.plaintext = true;  // loopback only
    o.state_dir = state;
    o.allowed_roots = {h_.dir + "/mi"};
    return o;
  }

  MigrationHomes h_;
  std::string target_, scratch_;
};

// Which step the journal's events end in: "inside <step>" when its last step started and did
// not finish, else "between steps" / "after the run".
std::string WhereItStopped(const std::vector<mimic::v1::Event>& journal) {
  std::string in;
  for (const auto& e : journal) {
    if (e.has_step_started()) in = e.step_started().step();
    if (e.has_step_finished()) in = "";
    if (e.has_run_finished()) return "after the run";
  }
  return in.empty() ? "between steps" : "inside " + in;
}

TEST_F(AgentKillCampaign, KillNineInsideEveryStepThenRunAgainOrRollBack) {
  const uint32_t seed = FaultSeed(20261130);
  const int trials = FaultTrials(50);
  std::printf("[fault] agent-kill: seed=%u trials=%d (MIMIC_FAULT_SEED / MIMIC_FAULT_TRIALS)\n",
              seed, trials);
  SCOPED_TRACE(absl::StrCat("agent-kill campaign seed=", seed,
                            " (rerun: MIMIC_FAULT_SEED=", seed, ")"));

  // The uninterrupted run, twice on fresh targets: the reference tree (the same both times, or
  // the comparison would mean nothing), the events of each step and the map of write chunks.
  ASSERT_NO_FATAL_FAILURE(ResetTarget());
  const auto pre = TreeState(target_);
  std::map<std::string, std::string> reference;
  std::vector<mimic::v1::Event> ref_events;
  const std::string write_log = h_.dir + "/writes.log";
  for (int i = 0; i < 2; ++i) {
    ASSERT_NO_FATAL_FAILURE(ResetTarget());
    AgentProcess::Options o = AgentOptions(h_.dir + "/state-ref" + std::to_string(i));
    o.gate = true;
    if (i == 0) o.testing_args = {"--write-log", write_log};
    AgentProcess agent(o);
    ASSERT_TRUE(agent.Start());
    grpc::Status st;
    auto events = RunToEnd(PlainChannel(agent.address()), Plan("ref"), &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(Finished(events).status(), mimic::v1::RUN_CHANGED) << Finished(events).message();
    const auto state = TreeState(target_);
    if (i == 0) {
      reference = state;
      ref_events = events;
    } else {
      ASSERT_EQ(state, reference) << "two uninterrupted runs differ:\n" << TreeDiff(reference, state);
    }
  }
  ASSERT_NE(reference, pre);
  std::vector<Chunk> chunks;
  for (absl::string_view line : absl::StrSplit(ReadText(write_log), '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits('\t', 2));
    int step = 0;
    if (f.size() == 3 && absl::SimpleAtoi(f[0], &step)) chunks.push_back({step, f[2]});
  }
  ASSERT_FALSE(chunks.empty()) << "the testing agent logged no write";
  // step index -> the 1-based numbers of its chunks / of its events in the reference run.
  std::map<int, std::vector<int>> chunks_of, events_of;
  for (size_t i = 0; i < chunks.size(); ++i) chunks_of[chunks[i].step].push_back(i + 1);
  int cur = -1;
  for (size_t i = 0; i < ref_events.size(); ++i) {
    const auto& e = ref_events[i];
    if (e.has_step_started()) cur = e.step_started().index();
    if (cur >= 0 && !e.has_run_finished()) events_of[cur].push_back(i + 1);
    if (e.has_step_finished()) cur = -1;
  }

  std::mt19937 rng(seed);
  int survived = 0, by_write = 0, by_event = 0, resumed = 0, rolled_back = 0, debris = 0;
  std::map<std::string, int> where;
  int failed_trials = 0;
  for (int t = 0; t < trials && failed_trials < 5; ++t) {
    const int parts_before =
        ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    const int step = t % static_cast<int>(MigrationHomes::Steps().size());
    const bool write_mode = !chunks_of[step].empty() && rng() % 3 != 0;
    const auto& pool = write_mode ? chunks_of[step] : events_of[step];
    const int k = pool.empty() ? 1 : pool[rng() % pool.size()];
    const bool rollback = rng() % 2 == 1;
    const std::string what = absl::StrCat(
        "trial ", t, " seed=", seed, ": kill in step ", step, " (", MigrationHomes::Steps()[step], ") ",
        write_mode ? absl::StrCat("mid-write of chunk ", k, " (", chunks[k - 1].path, ")")
                   : absl::StrCat("after event ", k),
        ", then ", rollback ? "rollback" : "run again");
    SCOPED_TRACE(what);
    if (OnlyTrial() >= 0 && t != OnlyTrial()) continue;
    ASSERT_NO_FATAL_FAILURE(ResetTarget());
    const std::string state = absl::StrCat(h_.dir, "/state-", t);
    const std::string run_id = absl::StrCat("t", t);
    std::vector<mimic::v1::Event> streamed, journal;
    {
      AgentProcess::Options o = AgentOptions(state);
      o.gate = true;
      if (write_mode) o.testing_args = {"--hold-write", std::to_string(k)};
      AgentProcess agent(o);
      ASSERT_TRUE(agent.Start());
      EventStream stream(PlainChannel(agent.address()), Plan(run_id));
      const std::string held = agent.gate_dir() + "/held-write";
      ASSERT_TRUE(WaitUntil(
          [&] {
            return stream.done() ||
                   (write_mode ? access(held.c_str(), F_OK) == 0
                               : stream.count() >= static_cast<size_t>(k));
          },
          120, {.dirs = {agent.gate_dir()}, .eventfds = {stream.wake_fd()}}))
          << "the fault point was never reached";
      agent.Kill(SIGKILL);
      stream.Wait();
      streamed = stream.events();
      EXPECT_FALSE(write_mode && access(held.c_str(), F_OK) != 0)
          << "the run ended before chunk " << k;
      journal = JournalEvents(state + "/runs/" + run_id + "/journal");
    }
    (write_mode ? by_write : by_event)++;
    where[WhereItStopped(journal)]++;
    if (!TempFilesUnder(target_).empty()) ++debris;

    AgentProcess agent(AgentOptions(state));  // the production binary, restarted
    ASSERT_TRUE(agent.Start());
    auto channel = PlainChannel(agent.address());
    grpc::Status st;
    auto replay = AttachAll(channel, run_id, &st);
    ASSERT_TRUE(st.ok()) << "the run is lost after the restart: " << st.error_message();
    const auto fin = Finished(replay);
    if (WhereItStopped(journal) != "after the run") {
      EXPECT_EQ(fin.status(), mimic::v1::RUN_INTERRUPTED) << fin.message();
    }
    EXPECT_EQ(CompareEvents(streamed, replay), "");
    EXPECT_EQ(replay.size(), journal.size() + (WhereItStopped(journal) == "after the run" ? 0 : 1))
        << "the restarted agent replays other events than its journal holds";
    EXPECT_EQ(TempFilesUnder(target_), std::vector<std::string>{})
        << "recovery left the crash's temporary files";

    if (rollback) {
      ++rolled_back;
      auto rb = RunToEnd(channel, RollbackPlan(run_id), &st);
      ASSERT_TRUE(st.ok()) << st.error_message();
      const auto rf = Finished(rb);
      EXPECT_TRUE(rf.status() == mimic::v1::RUN_CHANGED || rf.status() == mimic::v1::RUN_OK)
          << Why(rb);
      const auto now = TreeState(target_);
      EXPECT_EQ(now, pre) << "rollback is not exact:\n" << TreeDiff(pre, now);
    } else {
      ++resumed;
      auto again = RunToEnd(channel, Plan(run_id + "-again"), &st);
      ASSERT_TRUE(st.ok()) << st.error_message();
      const auto af = Finished(again);
      EXPECT_TRUE(af.status() == mimic::v1::RUN_CHANGED || af.status() == mimic::v1::RUN_OK)
          << Why(again);
      const auto now = TreeState(target_);
      EXPECT_EQ(now, reference) << "the run again does not end as an uninterrupted run:\n"
                                << TreeDiff(reference, now);
    }
    EXPECT_EQ(TempFilesUnder(target_), std::vector<std::string>{});
    agent.Kill(SIGTERM);
    RunCommand("rm -rf " + ShellQuote(state));
    const int parts_after =
        ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    if (parts_after == parts_before) {
      ++survived;
    } else {
      ++failed_trials;
      std::printf("[fault] FAILED %s\n", what.c_str());
    }
  }
  std::vector<std::string> w;
  for (const auto& [k, v] : where) w.push_back(absl::StrCat(k, " ", v));
  PrintFigures("agent-kill", by_write + by_event, survived, seed,
               absl::StrCat("(", by_write, " mid-write, ", by_event, " after an event; ", resumed,
                            " run again, ", rolled_back, " rolled back; ", debris,
                            " left a temp file that recovery removed; killed: ",
                            absl::StrJoin(w, ", "), ")"));
  EXPECT_EQ(survived, by_write + by_event);
  if (OnlyTrial() < 0) {
    EXPECT_EQ(by_write + by_event, trials);
  }
}

}  // namespace
}  // namespace mimic::testing
