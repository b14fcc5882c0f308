// The copy_custom_components step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using CopyCustomComponentsTest = PopulatedHomesTest;

TEST_F(CopyCustomComponentsTest, CopyCustomComponents) {
  StepPlan plan = ExpectExactIdempotentReversible("copy_custom_components");
  EXPECT_THAT(OpPaths(plan, dst_), ElementsAre("dropins", "dropins/custom-mediator_1.0.0.jar",
                                               "lib/mysql-connector-java-8.0.28.jar"));
  EXPECT_THAT(plan.message, HasSubstr("1 dropins file to copy; 1 lib jar to copy"));
  EXPECT_THAT(plan.message, HasSubstr("lib/differs.jar"));
  EXPECT_THAT(plan.message, HasSubstr("target ships newer/other version of shared-lib-1.0.jar "
                                      "(target: shared-lib-2.0.jar)"));
  EXPECT_EQ(Read(dst_ / "lib/differs.jar"), "the target's differs.jar");  // operator decides
  EXPECT_FALSE(fs::exists(dst_ / "lib/shared-lib-1.0.jar"));
}

// The old version's HL7 jars are left to hl7_transport only when it runs in the same plan;
// without it they are carried with a warning, never dropped.
TEST_F(CopyCustomComponentsTest, OldHl7JarsNeverDroppedWithoutHl7Step) {
  const std::string jar = "org.wso2.micro.integrator.business.messaging.hl7_1.2.0.jar";
  Write(src_ / "dropins" / jar, "old hl7 jar");
  plan_.add_steps()->set_name("copy_custom_components");
  absl::StatusOr<StepPlan> without = PlanStep("copy_custom_components");
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_NE(FindOp(*without, "/dropins/" + jar), nullptr);
  EXPECT_THAT(Logs(), HasSubstr("hl7_transport is not in the plan, so it is carried"));
  plan_.add_steps()->set_name("hl7_transport");
  absl::StatusOr<StepPlan> with = PlanStep("copy_custom_components");
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ(FindOp(*with, "/dropins/" + jar), nullptr);
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
