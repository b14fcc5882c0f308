// The run manager tests' fixture: fake steps (logging, planning ahead, counting plans, the
// run's memo), a state directory that can be a small tmpfs, homes beneath root/homes.
#ifndef MIMIC_AGENT_ENGINE_RUN_MANAGER_TEST_FIXTURE_H_
#define MIMIC_AGENT_ENGINE_RUN_MANAGER_TEST_FIXTURE_H_

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

#include "agent/engine/run_manager.h"

namespace mimic::agent::run_manager_testing {

using mimic::v1::Event;

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
inline int counted_plans = 0;
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

inline std::unique_ptr<Step> MakeFake(const std::string& name) {
  if (name == "memo_put" || name == "memo_get") return std::make_unique<MemoStep>(name);
  if (name == "text" || name == "block" || name.rfind("log", 0) == 0) {
    return std::make_unique<FakeStep>(name);
  }
  if (name == "plan_ahead" || name == "counted" || name == "counted_acts") {
    return std::make_unique<PlanAheadStep>(name);
  }
  return nullptr;
}

// Starts rollback run `id` of run `of` (no target home given: the agent finds it) to its end.
inline std::shared_ptr<RunState> RollBack(RunManager& m, const std::string& of,
                                          const std::string& id,
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

}  // namespace mimic::agent::run_manager_testing

#endif  // MIMIC_AGENT_ENGINE_RUN_MANAGER_TEST_FIXTURE_H_
