// The snapshot_target step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using SnapshotTargetTest = PopulatedHomesTest;

TEST_F(SnapshotTargetTest, SnapshotTargetListsLaterPaths) {
  auto none = PlanStep("snapshot_target");
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(none->snapshot_paths, IsEmpty());
  const std::string a = (dst_ / "conf/deployment.toml").string();
  const std::string b = (dst_ / kSecurity / "wso2carbon.jks").string();
  later_paths_ = [&]() -> absl::StatusOr<std::vector<std::string>> {
    return std::vector<std::string>{b, a, b, (dst_ / "conf").string()};  // a dir: no bytes
  };
  auto plan = PlanStep("snapshot_target");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_THAT(plan->snapshot_paths, ElementsAre(a, b));
  EXPECT_EQ(plan->message, "2 paths to snapshot");
  later_paths_ = [&]() -> absl::StatusOr<std::vector<std::string>> {
    return std::vector<std::string>{(root_ / "outside.txt").string()};
  };
  EXPECT_EQ(PlanStep("snapshot_target").status().code(), absl::StatusCode::kPermissionDenied);
}

// A whole run the way the agent does it: snapshot_target saves what the later steps will touch,
// each step is planned and applied in turn, and one rollback restores the original target.

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
