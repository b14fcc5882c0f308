// The verify step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::conf_homes {
namespace {

TEST_F(VerifyTest, HealthyServerIsOkAndStopped) {
  StepPlan plan = Verify();
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_OK) << plan.message << "\n" << Logs();
  EXPECT_THAT(plan.message, HasSubstr(absl::StrCat("127.0.0.1:", port_, "/healthz")));
  EXPECT_THAT(plan.message, HasSubstr("ready"));
}

TEST_F(VerifyTest, FaultyCappsFail) {
  Write(dst_ / "FAULTY", "");
  StepPlan plan = Verify();
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_FAILED) << plan.message;
  EXPECT_THAT(plan.message, HasSubstr("bad.car"));
}

TEST_F(VerifyTest, LogLineCountsWhenProbeNeverAnswers) {
  Write(dst_ / "NOPROBE", "");
  // Grace 0: the start-up line is the event the step waits for; no 10 s of probe silence.
  StepPlan plan = Verify({{"probe_grace_seconds", "0"}});
  EXPECT_EQ(plan.forced_status, mimic::v1::STEP_OK) << plan.message;
  EXPECT_THAT(plan.message, HasSubstr("WSO2 Micro Integrator started"));
  EXPECT_THAT(plan.message, HasSubstr("never answered ready"));
}

TEST_F(VerifyTest, NegativeProbeGraceIsRefusedNamingTheParam) {
  absl::StatusOr<StepPlan> plan = PlanStep("verify", {{"probe_grace_seconds", "-1"}}, false);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("probe_grace_seconds"));
  EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid")) << "nothing may start on bad input";
}

TEST_F(VerifyTest, CheckModeNeverStarts) {
  absl::StatusOr<StepPlan> plan = PlanStep("verify");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
  EXPECT_THAT(plan->message, HasSubstr("verify runs only in apply mode"));
  EXPECT_THAT(plan->message, HasSubstr(absl::StrCat(":", port_, "/healthz")));
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_FALSE(fs::exists(dst_ / "wso2carbon.pid"));
  EXPECT_FALSE(fs::exists(dst_ / "repository/logs/wso2carbon.log"));

  plan = PlanStep("verify", {{"probe_port", "12345"}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->message, HasSubstr("127.0.0.1:12345/healthz"));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::conf_homes
