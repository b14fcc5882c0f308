// The exec step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"
#include "common/base/subprocess.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>

namespace mimic::agent::steps_testing::generated_homes {
namespace {

using ExecTest = GeneratedHomesTest;

TEST_F(ExecTest, ExecCheckNeverRunsApplyDoes) {
  const std::map<std::string, std::string> params = {{"command", "touch marker && pwd"},
                                                     {"creates", "marker"}};
  absl::StatusOr<StepPlan> check = PlanStep("exec", params, /*check=*/true);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->forced_status, mimic::v1::STEP_CHANGED);
  EXPECT_THAT(check->message, HasSubstr("would run: touch marker && pwd (in " + dst_.string()));
  EXPECT_FALSE(fs::exists(dst_ / "marker"));
  EXPECT_THAT(Logs(), HasSubstr("W the command's effects are outside the run's snapshot"));

  absl::StatusOr<StepPlan> apply = PlanStep("exec", params, /*check=*/false);
  ASSERT_TRUE(apply.ok()) << apply.status();
  EXPECT_EQ(apply->forced_status, mimic::v1::STEP_CHANGED);
  EXPECT_TRUE(apply->changes.empty());
  EXPECT_THAT(apply->message, HasSubstr("ran: touch marker && pwd (exit code 0"));
  EXPECT_TRUE(fs::exists(dst_ / "marker"));
  EXPECT_THAT(Logs(), HasSubstr("I " + dst_.string()));  // pwd: cwd is the target home

  // creates now exists: skipped, in check and in apply alike.
  for (bool check_mode : {true, false}) {
    absl::StatusOr<StepPlan> again = PlanStep("exec", params, check_mode);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->forced_status, mimic::v1::STEP_SKIPPED);
    EXPECT_THAT(again->message, HasSubstr("creates: " + (dst_ / "marker").string() + " exists"));
  }
}

TEST_F(ExecTest, ExecRemovesGuardAndChdir) {
  fs::create_directories(root_ / "homes/work");
  const std::map<std::string, std::string> params = {
      {"command", "rm todo && echo \"$MIMIC_TARGET_HOME\""},
      {"chdir", (root_ / "homes/work").string()},
      {"removes", "todo"}};
  absl::StatusOr<StepPlan> plan = PlanStep("exec", params, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
  EXPECT_THAT(plan->message, HasSubstr("does not exist"));
  Write(root_ / "homes/work/todo", "x");
  plan = PlanStep("exec", params, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_CHANGED);
  EXPECT_FALSE(fs::exists(root_ / "homes/work/todo"));
  EXPECT_THAT(Logs(), HasSubstr("I " + dst_.string()));

  EXPECT_EQ(PlanStep("exec", {{"command", "true"}, {"chdir", (root_ / "outside").string()}})
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(
      PlanStep("exec", {{"command", "true"}, {"creates", "../../../etc/passwd"}}).status().code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(PlanStep("exec", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanStep("exec", {{"command", "true"}, {"timeout_seconds", "soon"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ExecTest, ExecExitCodeFailure) {
  absl::StatusOr<StepPlan> plan =
      PlanStep("exec", {{"command", "echo one; echo two >&2; exit 3"}}, false);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("exit code 3"));
  EXPECT_THAT(plan.status().message(), HasSubstr("two"));
  EXPECT_THAT(Logs(), HasSubstr("I [stderr] two"));
}

TEST_F(ExecTest, ExecTimeout) {
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<StepPlan> plan =
      PlanStep("exec", {{"command", "echo started; sleep 30"}, {"timeout_seconds", "1"}}, false);
  const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(plan.status().message(), HasSubstr("timed out after 1 s"));
  EXPECT_THAT(plan.status().message(), HasSubstr("started"));
  EXPECT_LT(secs, 8.0);
}

TEST_F(ExecTest, ExecOutputIsCapturedAndRedacted) {
  absl::StatusOr<StepPlan> plan =
      PlanStep("exec", {{"command", "echo password=hunter2; echo done"}}, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Logs(), HasSubstr("I password=<redacted>"));
  EXPECT_THAT(Logs(), HasSubstr("I done"));
  EXPECT_THAT(Logs(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(plan->message, Not(HasSubstr("hunter2")));
  absl::StatusOr<StepPlan> check = PlanStep("exec", {{"command", "echo password=hunter2"}});
  ASSERT_TRUE(check.ok());
  EXPECT_THAT(check->message, HasSubstr("would run: echo password=<redacted>"));
}

// The run's cancel token ends a running command at once, with its whole process group, even a
// background child that ignores SIGTERM (it gets SIGKILL after the grace): the step returns
// CANCELLED naming the command. The command is held on a FIFO, so nothing depends on timing.
TEST_F(ExecTest, ExecCancelEndsTheCommandsProcessGroup) {
  const fs::path fifo = root_ / "pids";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string command =
      "trap '' TERM; sleep 1000 & echo $$ $! > " + fifo.string() + "; echo started; wait";
  StepContext ctx = Context("exec", {{"command", command}}, /*check=*/false, Run("current"));
  std::atomic<bool> cancel{false};
  ctx.cancel = &cancel;
  std::unique_ptr<Step> step = Make("exec");
  absl::StatusOr<StepPlan> plan = absl::UnknownError("not run");
  std::thread runner([&] { plan = step->Plan(ctx); });
  pid_t sh_pid = 0, sleep_pid = 0;
  {
    std::ifstream in(fifo);  // blocks until the command writes its pids
    in >> sh_pid >> sleep_pid;
  }
  ASSERT_GT(sleep_pid, 0);
  EXPECT_TRUE(common::ProcessAlive(sleep_pid));
  cancel = true;
  runner.join();
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kCancelled) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("process group was ended"));
  EXPECT_THAT(plan.status().message(), HasSubstr("started"));  // the output's tail
  EXPECT_TRUE(common::WaitProcessEnded(sh_pid, absl::Seconds(30)));
  EXPECT_TRUE(common::WaitProcessEnded(sleep_pid, absl::Seconds(30)))
      << "the command's background child survived the cancel";
  EXPECT_FALSE(common::ProcessAlive(sleep_pid));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::generated_homes
