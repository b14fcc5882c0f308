// Runs and their journals against a real file system: a state directory on a small tmpfs that fills
// mid-run, journals with invalid UTF-8 and huge texts, many finished runs.
#include "agent/engine/run_manager_test_fixture.h"

namespace mimic::agent::run_manager_testing {
namespace {

// The state disk fills at a seeded point of the run: the first journal error stops the run
// (FAILED, naming the state dir and the errno), nothing after it is streamed as if it had been
// journaled, no further step starts; after a restart with space freed the run is there
// (INTERRUPTED), its journal clean, and rolling it back restores the target exactly.
TEST_F(RunManagerTest, FullStateDiskStopsTheRunAndRecoveryKeepsIt) {
  const uint32_t seed = 8;
  std::mt19937 rng(seed);
  const size_t kDisk = 512 << 10;
  if (!MountStateTmpfs(kDisk)) {
    GTEST_SKIP() << "cannot mount a tmpfs on the state dir (" << std::strerror(errno)
                 << "): this test needs root or CAP_SYS_ADMIN";
  }
  const std::vector<std::string> steps = {"log20x1000", "log20x1000", "log20x1000", "log20x1000",
                                          "log20x1000", "log20x1000"};  // ~125 KB of journal
  const auto before = testing::Tree(target_);
  for (int trial = 0; trial < 6; ++trial) {
    const size_t free_bytes = (1 + rng() % 24) * 4096;  // 4 KiB .. 96 KiB left
    SCOPED_TRACE(absl::StrCat("seed ", seed, " trial ", trial, ": ", free_bytes, " bytes free"));
    const std::string filler = state_ + "/filler";
    {
      // Fill the disk (earlier trials' runs stay on it) until `free_bytes` are left.
      struct statvfs vfs;
      ASSERT_EQ(::statvfs(state_.c_str(), &vfs), 0);
      const size_t avail = static_cast<size_t>(vfs.f_bavail) * vfs.f_frsize;
      std::string block(4096, 'f');
      FILE* f = std::fopen(filler.c_str(), "w");
      ASSERT_NE(f, nullptr);
      for (size_t used = 0; used + free_bytes + 4096 <= avail; used += 4096) {
        if (std::fwrite(block.data(), 1, block.size(), f) != block.size()) break;
      }
      std::fclose(f);
    }
    const std::string id = absl::StrCat("full-", trial);
    std::vector<Event> streamed;
    {
      auto m = Manager();
      ASSERT_TRUE(m->Recover().ok());
      auto run = RunToEnd(*m, Plan(id, steps));
      ASSERT_NE(run, nullptr);
      streamed = All(*run);
    }
    ASSERT_FALSE(streamed.empty());
    const Event& last = streamed.back();
    ASSERT_TRUE(last.has_run_finished());
    EXPECT_EQ(last.run_finished().status(), mimic::v1::RUN_FAILED) << last.DebugString();
    EXPECT_NE(last.run_finished().message().find(state_), std::string::npos)
        << last.run_finished().message();
    EXPECT_NE(last.run_finished().message().find("errno 28"), std::string::npos)
        << last.run_finished().message();

    // Everything streamed before the run's last words is in the journal, in order.
    auto journal = Journal::Read(state_ + "/runs/" + id + "/journal");
    ASSERT_TRUE(journal.ok()) << journal.status();
    EXPECT_TRUE(journal->damaged.empty());
    size_t journaled = journal->events.size();
    ASSERT_LE(journaled, streamed.size());
    for (size_t i = 0; i < journaled; ++i) {
      EXPECT_EQ(journal->events[i].SerializeAsString(), streamed[i].SerializeAsString()) << i;
    }
    for (size_t i = journaled; i < streamed.size(); ++i) {  // only the failed step and the end
      const Event& e = streamed[i];
      EXPECT_TRUE(e.has_run_finished() ||
                  (e.has_step_finished() && e.step_finished().status() == mimic::v1::STEP_FAILED))
          << "streamed after the journal failed: " << e.DebugString();
    }
    // No step started after the failure: a step wrote only if the journal has its start.
    int started = 0;
    for (const Event& e : journal->events) started += e.has_step_started();
    for (size_t i = started; i < steps.size(); ++i) {
      EXPECT_FALSE(common::PathExists(absl::StrCat(target_, "/out-", i, ".txt"))) << i;
    }

    // Restart with space freed: the run is kept, interrupted; a rollback restores the target.
    ASSERT_EQ(::unlink(filler.c_str()), 0);
    auto m = Manager();
    ASSERT_TRUE(m->Recover().ok());
    auto found = m->Find(id);
    if (journaled == 0) {  // the disk was full at the run's first record: it did nothing
      EXPECT_FALSE(found.ok());
      EXPECT_EQ(testing::Tree(target_), before);
      continue;
    }
    ASSERT_TRUE(found.ok()) << found.status();
    std::vector<Event> replayed = All(**found);
    ASSERT_EQ(replayed.size(), journaled + 1);
    EXPECT_EQ(replayed.back().run_finished().status(), mimic::v1::RUN_INTERRUPTED);
    auto again = Journal::Read(state_ + "/runs/" + id + "/journal");
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again->torn);
    EXPECT_TRUE(again->damaged.empty());
    auto rolled = RollBack(*m, id, id + "-rollback");
    ASSERT_NE(rolled, nullptr);
    auto rs = rolled->Summary().status();
    EXPECT_TRUE(rs == mimic::v1::RUN_OK || rs == mimic::v1::RUN_CHANGED)
        << All(*rolled).back().DebugString();
    EXPECT_EQ(testing::Tree(target_), before);
  }
}

// A damaged run_started record (the journal's first) never costs the run its rollback: the
// snapshot names the target home and holds what to restore. Nor does a journal lost whole.
TEST_F(RunManagerTest, RollbackWorksWhenTheStartRecordIsDamaged) {
  const auto before = testing::Tree(target_);
  for (bool lose_journal : {false, true}) {
    SCOPED_TRACE(lose_journal ? "journal lost" : "first record damaged");
    const std::string id = lose_journal ? "lost" : "damaged";
    const std::string jpath = state_ + "/runs/" + id + "/journal";
    {
      auto m = Manager();
      auto run = RunToEnd(*m, Plan(id, {"log1x10", "log1x10"}));
      ASSERT_NE(run, nullptr);
      ASSERT_EQ(run->Summary().status(), mimic::v1::RUN_CHANGED);
    }
    ASSERT_NE(testing::Tree(target_), before);
    if (lose_journal) {
      ASSERT_EQ(::unlink(jpath.c_str()), 0);
    } else {
      auto clean = Journal::Read(jpath);
      ASSERT_TRUE(clean.ok());
      ASSERT_TRUE(clean->events.front().has_run_started());
      std::string data = *common::ReadFile(jpath);
      data[clean->offsets[0] + 9] ^= 0x40;  // in run_started's body
      ASSERT_TRUE(common::WriteFileAtomic(jpath, data, 0600).ok());
    }
    auto m = Manager();
    ASSERT_TRUE(m->Recover().ok());
    if (!lose_journal) {
      auto found = m->Find(id);
      ASSERT_TRUE(found.ok()) << "the damaged record cost the run: " << found.status();
    }
    absl::Status refused;
    auto rolled = RollBack(*m, id, id + "-rollback", &refused);
    ASSERT_NE(rolled, nullptr) << refused;
    std::vector<Event> events = All(*rolled);
    EXPECT_EQ(rolled->Summary().status(), mimic::v1::RUN_CHANGED) << events.back().DebugString();
    EXPECT_EQ(events.front().run_started().plan().target_home(), target_);
    EXPECT_EQ(testing::Tree(target_), before);
  }
}

// The snapshot manifest carries its format version; a version the agent does not know is
// refused with a message naming it (rollback never guesses), and so is a manifest without one.
// The target is left as it is.
TEST_F(RunManagerTest, UnknownSnapshotFormatVersionIsRefused) {
  {
    auto m = Manager();
    auto run = RunToEnd(*m, Plan("r1", {"log1x10"}));
    ASSERT_NE(run, nullptr);
  }
  const std::string manifest = state_ + "/runs/r1/snapshot/manifest";
  const std::string text = *common::ReadFile(manifest);
  EXPECT_EQ(text.rfind("# mimic snapshot manifest v2\nH\t" + target_ + "\n", 0), 0u) << text;
  const auto after_run = testing::Tree(target_);
  const std::string rest = text.substr(text.find('\n'));
  struct Case {
    std::string first_line;
    absl::StatusCode code;
    std::string says;
  };
  int n = 0;
  for (const Case& c : std::vector<Case>{
           {"# mimic snapshot manifest v9", absl::StatusCode::kFailedPrecondition,
            "snapshot format version v9 is unknown to this agent (it reads v1 to v2)"},
           {"# some other file", absl::StatusCode::kDataLoss, "no format version line"}}) {
    SCOPED_TRACE(c.first_line);
    ASSERT_TRUE(common::WriteFileAtomic(manifest, c.first_line + rest, 0600).ok());
    auto planned = PlanRollback(state_ + "/runs/r1", /*force=*/true);
    EXPECT_EQ(planned.status().code(), c.code) << planned.status();
    EXPECT_NE(planned.status().message().find(c.says), std::string::npos) << planned.status();
    EXPECT_EQ(Snapshot::Open(state_ + "/runs/r1").status().code(), c.code);
    auto m = Manager();
    ASSERT_TRUE(m->Recover().ok());
    auto rolled = RollBack(*m, "r1", absl::StrCat("r1-rollback-", ++n));
    ASSERT_NE(rolled, nullptr);
    std::vector<Event> events = All(*rolled);
    EXPECT_EQ(rolled->Summary().status(), mimic::v1::RUN_FAILED);
    std::string step_message;
    for (const Event& e : events) {
      if (e.has_step_finished()) step_message = e.step_finished().message();
    }
    EXPECT_NE(step_message.find(c.says), std::string::npos) << step_message;
    EXPECT_EQ(testing::Tree(target_), after_run);
  }
  // v1, as older agents wrote it (no target home line), still rolls back.
  std::string v1 = "# mimic snapshot manifest v1" + rest;
  v1.erase(v1.find("\nH\t") + 1, v1.find('\n', v1.find("\nH\t") + 1) - v1.find("\nH\t"));
  ASSERT_TRUE(common::WriteFileAtomic(manifest, v1, 0600).ok());
  auto m = Manager();
  ASSERT_TRUE(m->Recover().ok());
  auto rolled = RollBack(*m, "r1", "r1-rollback-v1");
  ASSERT_NE(rolled, nullptr);
  EXPECT_EQ(rolled->Summary().status(), mimic::v1::RUN_CHANGED) << All(*rolled).back().DebugString();
  EXPECT_FALSE(common::PathExists(target_ + "/out-0.txt"));
}

// A torn tail is truncated on recovery, the records before it kept; a damaged record before
// the tail is skipped, the run kept.
TEST_F(RunManagerTest, RecoveryTruncatesTornTailAndSkipsDamagedRecord) {
  std::string jpath = state_ + "/runs/r1/journal";
  size_t events = 0;
  {
    auto m = Manager();
    auto run = RunToEnd(*m, Plan("r1", {"log3x10", "log3x10"}));
    ASSERT_NE(run, nullptr);
    events = All(*run).size();
  }
  auto clean = Journal::Read(jpath);
  ASSERT_TRUE(clean.ok());
  // Cut the last record in half, and damage the third record's body.
  std::string data = *common::ReadFile(jpath);
  const uint64_t last = clean->offsets.back();
  std::string bad = data.substr(0, last + (data.size() - last) / 2);
  bad[clean->offsets[2] + 9] ^= 0x40;
  ASSERT_TRUE(common::WriteFileAtomic(jpath, bad, 0600).ok());
  auto m = Manager();
  ASSERT_TRUE(m->Recover().ok());
  auto run = m->Find("r1");
  ASSERT_TRUE(run.ok()) << run.status();
  std::vector<Event> got = All(**run);
  // all but the damaged and the torn (run_finished) one, plus the interruption
  ASSERT_EQ(got.size(), events - 2 + 1);
  EXPECT_EQ(got.back().run_finished().status(), mimic::v1::RUN_INTERRUPTED);
  EXPECT_EQ(got[2].seq(), 4u);  // seq 3 was damaged
  auto after = Journal::Read(jpath);
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->torn);
  EXPECT_EQ(after->damaged.size(), 1u);
}

// Invalid UTF-8 (an exec step's output cut mid-character) and a 5 MiB text: the events are
// bounded and valid, the journal reads back after a restart, the run is kept.
TEST_F(RunManagerTest, InvalidUtf8AndHugeTextsAreBoundedAndJournalReadsBack) {
  mimic::v1::HostPlan plan = Plan("u1", {"text", "text"});
  (*plan.mutable_steps(0)->mutable_params())["text"] = "caf\xC3 cut \xFF\xFE mid-character \xE2\x82";
  (*plan.mutable_steps(1)->mutable_params())["text"] = std::string(5 << 20, 'v');
  {
    auto m = Manager();
    auto run = RunToEnd(*m, plan);
    ASSERT_NE(run, nullptr);
    for (const Event& e : All(*run)) {
      EXPECT_LE(e.ByteSizeLong(), kMaxEventBytes);
      if (e.has_log()) {
        EXPECT_TRUE(common::IsValidUtf8(e.log().text()));
      }
    }
  }
  auto m = Manager();
  ASSERT_TRUE(m->Recover().ok());
  auto run = m->Find("u1");
  ASSERT_TRUE(run.ok()) << run.status();
  std::vector<Event> got = All(**run);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().run_finished().status(), mimic::v1::RUN_CHANGED);
  std::vector<std::string> texts;
  for (const Event& e : got) {
    if (e.has_log()) texts.push_back(e.log().text());
    EXPECT_LE(e.ByteSizeLong(), kMaxEventBytes);
  }
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_TRUE(common::IsValidUtf8(texts[0]));
  EXPECT_EQ(texts[0], "caf\xEF\xBF\xBD cut \xEF\xBF\xBD\xEF\xBF\xBD mid-character \xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_NE(texts[1].find("... [truncated: "), std::string::npos);
  EXPECT_LE(texts[1].size(), kMaxEventFieldBytes);
}

// A finished run keeps no event in memory; Attach of an old run still replays every event.
TEST_F(RunManagerTest, FinishedRunsKeepNoEventsInMemoryAndStillReplay) {
  auto m = Manager();
  const int kRuns = 40;
  for (int i = 0; i < kRuns; ++i) {
    ASSERT_NE(RunToEnd(*m, Plan(absl::StrCat("many-", i), {"log5x100", "log5x100"})), nullptr);
  }
  EXPECT_EQ(m->EventsInMemory(), 0u);
  auto first = m->Find("many-0");
  ASSERT_TRUE(first.ok());
  std::vector<Event> got = All(**first);
  ASSERT_EQ(got.size(), 1u + 2 * (1 + 5 + 1) + 1);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].seq(), i + 1);
  EXPECT_EQ(got[2].log().text(), std::string(100, 'a'));
  // From the middle, a few at a time, as a stream re-attaching does.
  std::vector<Event> part;
  bool finished = true;
  (*first)->Events(5, 3, &part, &finished);
  ASSERT_EQ(part.size(), 3u);
  EXPECT_EQ(part[0].seq(), 5u);
  EXPECT_FALSE(finished);
  // Check runs keep their events in memory (no journal), and only the last kMaxMemoryOnlyRuns.
  for (int i = 0; i < static_cast<int>(kMaxMemoryOnlyRuns) + 5; ++i) {
    mimic::v1::HostPlan p = Plan(absl::StrCat("check-", i), {"log5x100"});
    p.set_mode(mimic::v1::MODE_CHECK);
    ASSERT_NE(RunToEnd(*m, p), nullptr);
  }
  EXPECT_LE(m->EventsInMemory(), kMaxMemoryOnlyRuns * (1 + 1 + 5 + 1 + 1));
  EXPECT_FALSE(m->Find("check-0").ok());
  EXPECT_TRUE(m->Find(absl::StrCat("check-", kMaxMemoryOnlyRuns + 4)).ok());
}

}  // namespace
}  // namespace mimic::agent::run_manager_testing
