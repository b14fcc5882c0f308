// Fault campaign 4: full disks. A real agent (over gRPC, plaintext on loopback) runs a full
// 4.0.0 -> 4.2.0 plan with
//   - the target home on a small tmpfs (bind-mounted over the target's path), or
//   - the agent's state directory on a small tmpfs,
// filled (by the test, while the run is held at a gate after preflight, which checks free space)
// so that K bytes stay free, K drawn from the seed below what the run needs (so the disk fills
// at a different point of the run each trial); one trial in four fills the target's disk before
// the run, and preflight must refuse it clearly. Each trial checks: the run fails
// clearly (FAILED, the message names ENOSPC: "No space left on device"); nothing half-written
// in the target (every file is as before the run or as an uninterrupted run leaves it; no
// `.mimic-tmp-*` file); after an agent restart the run is still known and its journal reads
// back (every event the client received, byte for byte; the failed journal's last word may
// differ); once space is freed, rollback restores the pre-run tree byte for byte with owners
// and modes. Needs root (mount); skips, saying so, otherwise.
//
// CI size: 6 trials each. Bigger: MIMIC_FAULT_TRIALS=40; MIMIC_FAULT_SEED=N replays.
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/fault/fault_env.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

uint64_t UsedBytes(const std::string& path) {
  struct statvfs v;
  if (statvfs(path.c_str(), &v) != 0) return 0;
  return (v.f_blocks - v.f_bfree) * v.f_frsize;
}

uint64_t FreeBytes(const std::string& path) {
  struct statvfs v;
  if (statvfs(path.c_str(), &v) != 0) return 0;
  return v.f_bavail * v.f_frsize;
}

bool MountTmpfs(const std::string& at, uint64_t bytes) {
  RunCommand("mkdir -p " + ShellQuote(at));
  const uint64_t size = (bytes / 4096 + 1) * 4096;
  return ::mount("tmpfs", at.c_str(), "tmpfs", 0, absl::StrCat("size=", size).c_str()) == 0;
}

void Unmount(const std::string& at) { ::umount2(at.c_str(), MNT_DETACH); }

// Fills the filesystem of `dir` (with the file `dir`/filler) until `keep` bytes are free.
void FillLeaving(const std::string& dir, uint64_t keep) {
  const uint64_t free_now = FreeBytes(dir);
  if (free_now <= keep) return;
  const uint64_t fill = (free_now - keep) / 4096 * 4096;
  CommandResult r = RunCommand(absl::StrCat("fallocate -l ", fill, " ", ShellQuote(dir + "/filler"),
                                            " || head -c ", fill, " /dev/zero > ",
                                            ShellQuote(dir + "/filler")));
  (void)r;  // a head that stops at ENOSPC is what we want too
}

bool NamesEnospc(const std::vector<mimic::v1::Event>& events) {
  for (const auto& e : events) {
    const std::string s = e.ShortDebugString();
    if (absl::StrContains(s, "No space left on device")) return true;
  }
  return false;
}

class DiskFullCampaign : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounts tmpfs file systems: needs root";
    ASSERT_NO_FATAL_FAILURE(h_.Make(MakeTempDir("fault-disk")));
  }
  void TearDown() override {
    for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) Unmount(*it);
  }

  AgentProcess::Options AgentOptions(const std::string& state) {
    AgentProcess::Options o;
    o.name = "p1";
    o.plaintext = true;
    o.state_dir = state;
    o.allowed_roots = {h_.dir + "/mi"};
    return o;
  }

  // Nothing half-written: every path of `now` is as before the run, as a whole run leaves it,
  // or (a copy a later step would rewrite, e.g. a CApp migrate_datamapper re-packs) has the
  // content of the source's file at the same path.
  std::string HalfWritten(const std::map<std::string, std::string>& pre,
                          const std::map<std::string, std::string>& ref,
                          const std::map<std::string, std::string>& now) {
    const auto source = TreeState(h_.source);
    auto content = [](const std::string& v) { return v.substr(0, v.find(' ')); };
    std::string out;
    for (const auto& [k, v] : now) {
      auto p = pre.find(k);
      auto r = ref.find(k);
      auto s = source.find(k);
      if ((p != pre.end() && p->second == v) || (r != ref.end() && r->second == v) ||
          (s != source.end() && content(s->second) == content(v))) {
        continue;
      }
      absl::StrAppend(&out, "  ", k, ": ", v, " (before: ", p == pre.end() ? "absent" : p->second,
                      ", after a whole run: ", r == ref.end() ? "absent" : r->second, ")\n");
    }
    return out;
  }

  MigrationHomes h_;
  std::vector<std::string> mounts_;
};

// The target home on a small tmpfs that fills at seeded points.
TEST_F(DiskFullCampaign, TargetDiskFullFailsCleanlyAndRollsBackExactly) {
  const uint32_t seed = FaultSeed(20261202);
  const int trials = FaultTrials(6);
  SCOPED_TRACE(absl::StrCat("disk-full-target campaign seed=", seed));
  const std::string fs = h_.dir + "/tfs";  // the tmpfs: fs/home is bound over the target
  auto mount_target = [&](uint64_t size) {
    if (!MountTmpfs(fs, size)) return false;
    mounts_.push_back(fs);
    RunCommand("mkdir -p " + ShellQuote(fs + "/home") + " " + ShellQuote(fs + "/fill") +
               " && mkdir -p " + ShellQuote(h_.target));
    if (::mount((fs + "/home").c_str(), h_.target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return false;
    }
    mounts_.push_back(h_.target);
    h_.ResetTarget();
    return true;
  };
  auto unmount_target = [&] {
    Unmount(h_.target);
    Unmount(fs);
    mounts_.clear();
  };
  // What a whole run needs there, and what it leaves.
  if (!mount_target(256 << 20)) GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  const uint64_t home_bytes = UsedBytes(fs);
  const auto pre = TreeState(h_.target);
  std::map<std::string, std::string> ref;
  {
    AgentProcess agent(AgentOptions(h_.dir + "/state-ref"));
    ASSERT_TRUE(agent.Start());
    auto events = RunToEnd(PlainChannel(agent.address()), h_.Plan("ref"));
    ASSERT_EQ(Finished(events).status(), mimic::v1::RUN_CHANGED) << Finished(events).message();
    ref = TreeState(h_.target);
  }
  const uint64_t needed = UsedBytes(fs) - home_bytes;
  unmount_target();
  ASSERT_GT(needed, 8192u);

  std::mt19937 rng(seed);
  int survived = 0, failed_enospc = 0, fitted = 0, refused = 0;
  for (int t = 0; t < trials; ++t) {
    const int parts_before =
        ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    const uint64_t keep = rng() % (needed * 9 / 10);
    // Mostly the disk fills after preflight (held at a gate before step 1, something else fills
    // it): the run meets ENOSPC in its writes. One trial in four it is full before the run:
    // preflight must refuse, naming the free and the needed space.
    const bool before_preflight = rng() % 4 == 0;
    const std::string what = absl::StrCat(
        "trial ", t, " seed=", seed, ": ", keep, " of the ", needed,
        " bytes the run writes to the target are free, filled ",
        before_preflight ? "before the run" : "after preflight");
    SCOPED_TRACE(what);
    ASSERT_TRUE(mount_target(home_bytes + needed + (16 << 20)));
    if (before_preflight) FillLeaving(fs + "/fill", keep);
    const std::string state = absl::StrCat(h_.dir, "/state-", t), run_id = absl::StrCat("t", t);
    std::vector<mimic::v1::Event> streamed;
    {
      AgentProcess::Options o = AgentOptions(state);
      o.gate = true;
      o.hold_steps = {1};
      AgentProcess agent(o);
      ASSERT_TRUE(agent.Start());
      EventStream stream(PlainChannel(agent.address()), h_.Plan(run_id));
      if (!before_preflight) {
        ASSERT_FALSE(agent.WaitReached(1).empty());
        FillLeaving(fs + "/fill", keep);
      }
      agent.Release(1);
      stream.Wait();
      streamed = stream.events();
      agent.Kill(SIGKILL);  // a crash right after the failure, for good measure
    }
    const auto fin = Finished(streamed);
    if (before_preflight) {
      ++refused;
      EXPECT_EQ(fin.status(), mimic::v1::RUN_FAILED) << fin.message();
      EXPECT_TRUE(absl::StrContains(fin.message(), "not enough free disk")) << fin.message();
    } else if (fin.status() == mimic::v1::RUN_CHANGED) {
      ++fitted;  // the run fitted in what was left
    } else {
      EXPECT_EQ(fin.status(), mimic::v1::RUN_FAILED) << fin.message();
      EXPECT_TRUE(NamesEnospc(streamed)) << "the failure does not name ENOSPC: " << fin.message();
      ++failed_enospc;
    }
    const auto now = TreeState(h_.target);
    EXPECT_EQ(TempFilesUnder(h_.target), std::vector<std::string>{});
    EXPECT_EQ(HalfWritten(pre, ref, now), "") << "half-written files in the target";
    AgentProcess agent(AgentOptions(state));
    ASSERT_TRUE(agent.Start());
    auto channel = PlainChannel(agent.address());
    grpc::Status st;
    auto replay = AttachAll(channel, run_id, &st);
    ASSERT_TRUE(st.ok()) << "the run is lost after the restart: " << st.error_message();
    EXPECT_EQ(CompareEvents(streamed, replay), "");
    EXPECT_EQ(JournalEvents(state + "/runs/" + run_id + "/journal").size(), replay.size());
    ASSERT_EQ(::unlink((fs + "/fill/filler").c_str()), 0);
    auto rb = RunToEnd(channel, MigrationHomes::RollbackPlan(run_id), &st);
    ASSERT_TRUE(st.ok()) << st.error_message();
    const auto rf = Finished(rb);
    EXPECT_TRUE(rf.status() == mimic::v1::RUN_CHANGED || rf.status() == mimic::v1::RUN_OK)
        << mimic::v1::RunStatus_Name(rf.status()) << ": " << rf.message();
    const auto after = TreeState(h_.target);
    EXPECT_EQ(after, pre) << "rollback is not exact:\n" << TreeDiff(pre, after);
    agent.Kill(SIGTERM);
    unmount_target();
    RunCommand("rm -rf " + ShellQuote(state));
    const int parts_after =
        ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    if (parts_after == parts_before) {
      ++survived;
    } else {
      std::printf("[fault] FAILED %s\n", what.c_str());
    }
  }
  PrintFigures("disk-full-target", trials, survived, seed,
               absl::StrCat("(", failed_enospc, " failed naming ENOSPC mid-run, ", refused,
                            " refused by preflight (full before the run), ", fitted,
                            " fitted; the run writes ", needed, " bytes there)"));
  EXPECT_EQ(survived, trials);
}

// The agent's state directory on a small tmpfs that fills at seeded points.
TEST_F(DiskFullCampaign, StateDiskFullStopsTheRunAndLosesNothing) {
  const uint32_t seed = FaultSeed(20261203);
  const int trials = FaultTrials(6);
  SCOPED_TRACE(absl::StrCat("disk-full-state campaign seed=", seed));
  const std::string state = h_.dir + "/state";
  if (!MountTmpfs(state, 256 << 20)) {
    GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  }
  mounts_.push_back(state);
  ASSERT_NO_FATAL_FAILURE(h_.ResetTarget());
  const auto pre = TreeState(h_.target);
  std::map<std::string, std::string> ref;
  uint64_t needed = 0;
  {
    const uint64_t before = UsedBytes(state);
    AgentProcess agent(AgentOptions(state));
    ASSERT_TRUE(agent.Start());
    auto events = RunToEnd(PlainChannel(agent.address()), h_.Plan("ref"));
    ASSERT_EQ(Finished(events).status(), mimic::v1::RUN_CHANGED) << Finished(events).message();
    ref = TreeState(h_.target);
    needed = UsedBytes(state) - before;
  }
  Unmount(state);
  mounts_.clear();
  ASSERT_GT(needed, 8192u);

  std::mt19937 rng(seed);
  int survived = 0, failed_enospc = 0, no_run = 0, fitted = 0;
  for (int t = 0; t < trials; ++t) {
    const int parts_before =
        ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    const uint64_t keep = rng() % (needed * 9 / 10);
    const bool free_before_restart = rng() % 2 == 0;
    const std::string what = absl::StrCat(
        "trial ", t, " seed=", seed, ": ", keep, " of the ", needed,
        " bytes the run needs in the state dir are free; space freed ",
        free_before_restart ? "before" : "after", " the agent restarts");
    SCOPED_TRACE(what);
    ASSERT_NO_FATAL_FAILURE(h_.ResetTarget());
    ASSERT_TRUE(MountTmpfs(state, needed + (4 << 20)));
    mounts_.push_back(state);
    FillLeaving(state, keep);
    const std::string run_id = absl::StrCat("t", t);
    std::vector<mimic::v1::Event> streamed;
    grpc::Status run_status;
    {
      AgentProcess agent(AgentOptions(state));
      ASSERT_TRUE(agent.Start());
      streamed = RunToEnd(PlainChannel(agent.address()), h_.Plan(run_id), &run_status);
      agent.Kill(SIGKILL);
    }
    const auto fin = Finished(streamed);
    if (!run_status.ok()) {
      // Refused before anything ran: it must say why, and nothing changed.
      EXPECT_TRUE(absl::StrContains(run_status.error_message(), "No space left on device"))
          << run_status.error_message();
      EXPECT_EQ(TreeState(h_.target), pre);
    } else if (fin.status() == mimic::v1::RUN_CHANGED) {
      ++fitted;
    } else {
      EXPECT_EQ(fin.status(), mimic::v1::RUN_FAILED) << fin.message();
      EXPECT_TRUE(NamesEnospc(streamed)) << "the failure does not name ENOSPC: " << fin.message();
      ++failed_enospc;
    }
    EXPECT_EQ(TempFilesUnder(h_.target), std::vector<std::string>{});
    EXPECT_EQ(HalfWritten(pre, ref, TreeState(h_.target)), "") << "half-written files";
    if (free_before_restart) ::unlink((state + "/filler").c_str());
    AgentProcess agent(AgentOptions(state));
    ASSERT_TRUE(agent.Start());
    auto channel = PlainChannel(agent.address());
    grpc::Status st;
    auto replay = AttachAll(channel, run_id, &st);
    if (!free_before_restart) ::unlink((state + "/filler").c_str());
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
      // The journal failed on the run's very first record: then nothing was written.
      ++no_run;
      EXPECT_EQ(TreeState(h_.target), pre) << "a run the agent does not know changed the target";
      EXPECT_TRUE(streamed.empty() || !run_status.ok() || streamed.size() <= 2)
          << "the client received events of a run the agent lost";
    } else {
      ASSERT_TRUE(st.ok()) << st.error_message();
      EXPECT_TRUE(Finished(replay).status() != mimic::v1::RUN_RUNNING);
      EXPECT_EQ(CompareEvents(streamed, replay, /*last_word_may_differ=*/true), "");
      // The journal reads back: the replay is the journal, plus the interruption recovery
      // marks when the journal has no end (held in memory when the disk is still full).
      const auto journal = JournalEvents(state + "/runs/" + run_id + "/journal");
      const bool ended = !journal.empty() && journal.back().has_run_finished();
      EXPECT_EQ(journal.size() + (ended ? 0 : 1), replay.size())
          << "the journal does not read back as the agent replays it";
      auto rb = RunToEnd(channel, MigrationHomes::RollbackPlan(run_id), &st);
      ASSERT_TRUE(st.ok()) << st.error_message();
      const auto rf = Finished(rb);
      EXPECT_TRUE(rf.status() == mimic::v1::RUN_CHANGED || rf.status() == mimic::v1::RUN_OK)
          << mimic::v1::RunStatus_Name(rf.status()) << ": " << rf.message();
      const auto after = TreeState(h_.target);
      EXPECT_EQ(after, pre) << "rollback is not exact:\n" << TreeDiff(pre, after);
    }
    agent.Kill(SIGTERM);
    Unmount(state);
    mounts_.clear();
    const int parts_after =
        ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    if (parts_after == parts_before) {
      ++survived;
    } else {
      std::printf("[fault] FAILED %s\n", what.c_str());
    }
  }
  PrintFigures("disk-full-state", trials, survived, seed,
               absl::StrCat("(", failed_enospc, " failed naming ENOSPC, ", no_run,
                            " failed on the first journal record (nothing written), ", fitted,
                            " fitted; a run needs ", needed, " bytes of state)"));
  EXPECT_EQ(survived, trials);
}

}  // namespace
}  // namespace mimic::testing
