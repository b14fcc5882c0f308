// The copy_carbonapps step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using CopyCarbonappsTest = PopulatedHomesTest;

TEST_F(CopyCarbonappsTest, CopyCarbonapps) {
  // A target without a carbonapps/ folder yet: the plan lists its creation first.
  fs::remove(dst_ / kCapps);
  StepPlan plan = ExpectExactIdempotentReversible("copy_carbonapps");
  EXPECT_EQ(plan.message, "2 CApps to copy (2 new, 0 replaced, 0 already there)");
  EXPECT_THAT(
      OpPaths(plan, dst_),
      ElementsAre(kCapps,
                  absl::StrCat(kCapps, "/1_1_3_synapse-configCompositeApplication_1.0.0.car"),
                  absl::StrCat(kCapps, "/orders_1.0.0.car")));  // README.txt is no CApp
}

TEST_F(CopyCarbonappsTest, CopyCarbonappsReplacesADifferentCapp) {
  Write(dst_ / kCapps / "orders_1.0.0.car", "an older build");
  StepPlan plan = ExpectExactIdempotentReversible("copy_carbonapps");
  const FileOp* op = FindOp(plan, "orders_1.0.0.car");
  ASSERT_NE(op, nullptr);
  EXPECT_EQ(op->expected_sha256, common::Sha256Hex("an older build"));
  EXPECT_THAT(plan.message, HasSubstr("1 replaced"));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
