// The copy_secondary_userstores step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::generated_homes {
namespace {

using CopySecondaryUserstoresTest = GeneratedHomesTest;

TEST_F(CopySecondaryUserstoresTest, CopySecondaryUserstores) {
  Write(src_ / kUserstores / "example_com.xml", "<UserStoreManager domain=\"example.com\"/>");
  Write(src_ / kUserstores / "partners.xml", "<UserStoreManager domain=\"partners\"/>");
  Write(src_ / kUserstores / "README.txt", "notes");
  Write(src_ / kUserstores / "old/backup.xml", "<UserStoreManager/>");
  StepPlan plan = ExpectExactIdempotentReversible("copy_secondary_userstores", {},
                                                  "up to date (2 secondary user stores)");
  EXPECT_EQ(plan.message, "2 secondary user stores to copy (2 new, 0 replaced, 0 already there)");
  EXPECT_EQ(FindOp(plan, "README.txt"), nullptr);
  EXPECT_EQ(FindOp(plan, "backup.xml"), nullptr);
}

TEST_F(CopySecondaryUserstoresTest, CopySecondaryUserstoresSkippedWhenAbsent) {
  absl::StatusOr<StepPlan> plan = PlanStep("copy_secondary_userstores");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
  EXPECT_THAT(plan->message, HasSubstr("no secondary user stores"));
  EXPECT_TRUE(plan->changes.empty());
}

// ---- hl7_transport ----------------------------------------------------------------------------

}  // namespace
}  // namespace mimic::agent::steps_testing::generated_homes
