// The copy_keystores step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using CopyKeystoresTest = PopulatedHomesTest;

TEST_F(CopyKeystoresTest, CopyKeystores) {
  StepPlan plan = ExpectExactIdempotentReversible("copy_keystores");
  const FileOp* primary = FindOp(plan, "/wso2carbon.jks");
  ASSERT_NE(primary, nullptr);
  EXPECT_EQ(primary->note, "replaces the new version's shipped keystore");
  const FileOp* p12 = FindOp(plan, "/partner.p12");
  ASSERT_NE(p12, nullptr);
  EXPECT_EQ(p12->expected_sha256, "");
  EXPECT_EQ(p12->mode, 0600u);  // a private keystore stays private
  EXPECT_THAT(plan.message, HasSubstr("3 keystore files to copy (1 new, 2 replacing"));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
