// The run manager against a real file system: a state directory on a small tmpfs that fills
// mid-run, journals with invalid UTF-8 and huge texts, many finished runs.
#include "agent/engine/run_manager.h"

#include <stdlib.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/mutex.h"
#include "agent/engine/change_set.h"
#include "agent/engine/journal.h"
#include "agent/engine/snapshot.h"
#include "agent/engine/step_test_util.h"
#include "common/base/fs.h"
#include "common/base/subprocess.h"
#include "common/base/text.h"
#include "gtest/gtest.h"

namespace mimic::agent {
namespace {

using mimic::v1::Event;
using testing::Ends;
using testing::Running;

// A step that logs `lines` lines of `line_bytes` bytes, then writes <target>/out-<index>.txt.
// The step name is "log<lines>x<line_bytes>" or "text" (one line: the spec's param "text").
class FakeStep final : public Step {
 public:
  explicit FakeStep(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    StepPlan p;
    if (name_ == "block") {
      // A shell that starts `sleep 1000` in its process group, reports both pids through the
      // FIFO named by param "fifo", and waits: only the run's cancel token ends it.
      common::SubprocessOptions o;
      o.argv = {"/bin/sh", "-c", "sleep 1000 & echo $$ $! > \"$1\"; wait", "sh",
                ctx.Param("fifo")};
      o.cancel = ctx.cancel;
      auto r = common::RunSubprocess(o);
      if (!r.ok()) return r.status();
      if (r->cancelled) return absl::CancelledError("block: cancelled; its process group ended");
      return absl::InternalError("block ended by itself: " + r->Describe());
    }
    if (name_ == "text") {
      ctx.log(LogLevel::kWarning, ctx.Param("text"));
      p.message = ctx.Param("text");
    } else {
      int lines = 0, bytes = 0;
      if (sscanf(name_.c_str(), "log%dx%d", &lines, &bytes) != 2) return absl::InternalError(name_);
      for (int i = 0; i < lines; ++i) ctx.log(LogLevel::kInfo, std::string(bytes, 'a' + i % 26));
    }
    const std::string out = ctx.target_home + "/out-" + ctx.Param("index") + ".txt";
    auto op = MakeWriteOp(out, "written by " + name_ + "\n");
    if (!op.ok()) return op.status();
    if (op->has_value()) p.changes.ops.push_back(**op);
    return p;
  }

 private:
  std::string name_;
};

// "plan_ahead" plans the later steps as snapshot_target does; "counted" and "counted_acts" count
// their plans, log one line and write <target>/<name>.txt; only "counted" PlansFilesOnly.
int counted_plans = 0;
class PlanAheadStep final : public Step {
 public:
  explicit PlanAheadStep(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  bool PlansFilesOnly() const override { return name_ == "counted"; }
  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    StepPlan p;
    if (name_ == "plan_ahead") {
      auto paths = ctx.paths_of_later_steps();
      if (!paths.ok()) return paths.status();
      p.message = absl::StrCat(paths->size(), " paths");
      return p;
    }
    ++counted_plans;
    ctx.log(LogLevel::kInfo, "counted plan says hello");
    auto op = MakeWriteOp(ctx.target_home + "/" + name_ + ".txt", "counted\n");
    if (!op.ok()) return op.status();
    if (op->has_value()) p.changes.ops.push_back(**op);
    p.message = "counted";
    return p;
  }

 private:
  std::string name_;
};

// "memo_put" puts a value into the run's memo; "memo_get" says whether it is there. Both plan
// files only (nothing), so they keep what the memo holds.
class MemoStep final : public Step {
 public:
  explicit MemoStep(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  bool PlansFilesOnly() const override { return true; }
  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    if (ctx.memo == nullptr) return absl::InternalError("no memo");
    StepPlan p;
    if (name_ == "memo_put") {
      ctx.memo->Put<std::string>("learnt", "from the source");
      p.message = "put";
    } else {
      p.message = ctx.memo->Find<std::string>("learnt") != nullptr ? "remembered" : "forgotten";
    }
    return p;
  }

 private:
  std::string name_;
};

std::unique_ptr<Step> MakeFake(const std::string& name) {
  if (name == "memo_put" || name == "memo_get") return std::make_unique<MemoStep>(name);
  if (name == "text" || name == "block" || name.rfind("log", 0) == 0) {
    return std::make_unique<FakeStep>(name);
  }
  if (name == "plan_ahead" || name == "counted" || name == "counted_acts") {
    return std::make_unique<PlanAheadStep>(name);
  }
  return nullptr;
}

class RunManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(testing::MakeTempRoot("runmgr_", &root_));
    state_ = (root_ / "state").string();
    target_ = (root_ / "homes" / "target").string();
    source_ = (root_ / "homes" / "source").string();
    ASSERT_TRUE(common::MakeDirs(state_).ok());
    ASSERT_TRUE(common::MakeDirs(target_).ok());
    ASSERT_TRUE(common::MakeDirs(source_).ok());
  }
  void TearDown() override {
    if (mounted_) ::umount2(state_.c_str(), MNT_DETACH);
    std::error_code ec;  // a test's tree is its own: nothing is left in /tmp
    std::filesystem::remove_all(root_, ec);
  }

  // Mounts a tmpfs of `size` bytes on the state dir; false (and the test skipped) when the
  // system does not allow it.
  bool MountStateTmpfs(size_t size) {
    if (::mount("tmpfs", state_.c_str(), "tmpfs", 0, absl::StrCat("size=", size).c_str()) != 0) {
      return false;
    }
    mounted_ = true;
    return true;
  }

  std::unique_ptr<RunManager> Manager() {
    RunManagerOptions o;
    o.state_dir = state_;
    o.allowed_roots = {(root_ / "homes").string()};
    o.make_step = &MakeFake;
    return std::make_unique<RunManager>(std::move(o), &executor_);
  }

  mimic::v1::HostPlan Plan(const std::string& id, const std::vector<std::string>& steps) {
    mimic::v1::HostPlan p;
    p.set_run_id(id);
    p.set_host("h1");
    p.set_mode(mimic::v1::MODE_APPLY);
    p.set_source_home(source_);
    p.set_target_home(target_);
    for (size_t i = 0; i < steps.size(); ++i) {
      auto* s = p.add_steps();
      s->set_name(steps[i]);
      (*s->mutable_params())["index"] = std::to_string(i);
    }
    return p;
  }

  std::shared_ptr<RunState> RunToEnd(RunManager& m, const mimic::v1::HostPlan& plan) {
    bool existed = false;
    auto run = m.StartOrGet(plan, &existed);
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok()) return nullptr;
    m.WaitFinished(*run);
    return *run;
  }

  static std::vector<Event> All(RunState& run) {
    std::vector<Event> out;
    bool finished = false;
    run.Events(1, SIZE_MAX, &out, &finished);
    EXPECT_TRUE(finished);
    return out;
  }

  std::filesystem::path root_;
  std::string state_, target_, source_;
  bool mounted_ = false;
  Executor executor_{1};
};

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
    mimic::v1::HostPlan rb;
    rb.set_run_id(id + "-rollback");
    rb.set_host("h1");
    rb.set_mode(mimic::v1::MODE_ROLLBACK);
    rb.set_rollback_run_id(id);
    auto rolled = RunToEnd(*m, rb);
    ASSERT_NE(rolled, nullptr);
    auto rs = rolled->Summary().status();
    EXPECT_TRUE(rs == mimic::v1::RUN_OK || rs == mimic::v1::RUN_CHANGED)
        << All(*rolled).back().DebugString();
    EXPECT_EQ(testing::Tree(target_), before);
  }
}

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
      ASSERT_TRUE(Running(sleep_pid));
      if (interrupt) {
        m->BeginShutdown();
        EXPECT_EQ(m->InterruptRunning(), 1);
      } else {
        std::string state;
        ASSERT_TRUE(m->Cancel(id, &state).ok());
        EXPECT_EQ(state, "cancelling");
      }
      m->WaitFinished(*run);
      EXPECT_TRUE(Ends(sh_pid));
      EXPECT_TRUE(Ends(sleep_pid)) << "the step's background process survived the cancel";
      EXPECT_FALSE(Running(sleep_pid));
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
    mimic::v1::HostPlan rb;
    rb.set_run_id(id + "-rollback");
    rb.set_host("h1");
    rb.set_mode(mimic::v1::MODE_ROLLBACK);
    rb.set_rollback_run_id(id);
    auto rolled = RunToEnd(*m, rb);
    ASSERT_NE(rolled, nullptr);
    EXPECT_EQ(rolled->Summary().status(), mimic::v1::RUN_CHANGED)
        << All(*rolled).back().DebugString();
    EXPECT_EQ(testing::Tree(target_), before);
  }
}

// Starts rollback run `id` of run `of` (no target home given: the agent finds it) to its end.
std::shared_ptr<RunState> RollBack(RunManager& m, const std::string& of, const std::string& id,
                                   absl::Status* refused = nullptr) {
  mimic::v1::HostPlan rb;
  rb.set_run_id(id);
  rb.set_host("h1");
  rb.set_mode(mimic::v1::MODE_ROLLBACK);
  rb.set_rollback_run_id(of);
  bool existed = false;
  auto run = m.StartOrGet(rb, &existed);
  if (refused != nullptr) *refused = run.status();
  if (!run.ok()) return nullptr;
  m.WaitFinished(*run);
  return *run;
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

}  // namespace
}  // namespace mimic::agent

namespace mimic::agent {
namespace {

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
}  // namespace mimic::agent
