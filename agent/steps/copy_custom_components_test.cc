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

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
