// The preflight step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::populated_homes {
namespace {

using PreflightTest = PopulatedHomesTest;

TEST_F(PreflightTest, PreflightDetectsVersionsAndChecks) {
  absl::StatusOr<StepPlan> plan = PlanStep("preflight");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_EQ(plan->facts["source_version"], "4.0.0");
  EXPECT_EQ(plan->facts["target_version"], "4.2.0");
  EXPECT_EQ(plan->facts["migration_chain"], "4.0.0->4.2.0");
  EXPECT_THAT(plan->message, HasSubstr("MI 4.0.0 -> 4.2.0"));
  EXPECT_THAT(Logs(), HasSubstr("MI 4.0.0 (from updates/product.txt)"));

  plan_.set_migration_path("4.0.0->4.2.0");
  EXPECT_TRUE(PlanStep("preflight").ok());
  plan_.set_migration_path("1.2.0->4.2.0");
  auto mismatch = PlanStep("preflight");
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(mismatch.status().message(),
              HasSubstr("migration_path is 1.2.0->4.2.0 but the homes are 4.0.0->4.2.0"));
  plan_.set_migration_path("auto");

  auto no_room = PlanStep("preflight", {{"min_free_mb", "1000000000000"}});
  EXPECT_THAT(no_room.status().message(), HasSubstr("not enough free disk"));

  Write(dst_ / "wso2carbon.pid", std::to_string(::getpid()));
  auto running = PlanStep("preflight");
  EXPECT_EQ(running.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(running.status().message(), HasSubstr("the target MI is running"));
}

TEST_F(PreflightTest, PreflightRefusesDowngradeAndNonMiHomes) {
  std::swap(src_, dst_);
  auto down = PlanStep("preflight");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(down.status().message(), HasSubstr("downgrade from 4.2.0 to 4.0.0 is refused"));
  std::swap(src_, dst_);
  src_ = root_ / "homes/absent";
  auto absent = PlanStep("preflight");
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(absent.status().message(), HasSubstr("source MI home"));
  EXPECT_THAT(absent.status().message(), HasSubstr("does not exist"));
  fs::create_directories(root_ / "homes/not-mi/docs");
  src_ = root_ / "homes/not-mi";
  auto not_mi = PlanStep("preflight");
  EXPECT_EQ(not_mi.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(not_mi.status().message(), HasSubstr("source MI home"));
}

TEST_F(PreflightTest, PreflightJavaCheck) {
  const fs::path java = root_ / "fake-java";
  Write(java, "#!/bin/sh\necho 'openjdk version \"1.8.0_292\"' >&2\n");
  fs::permissions(java, fs::perms(0755));
  auto old = PlanStep("preflight", {{"require_java", "true"}, {"java", java.string()}});
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(old.status().message(), HasSubstr("MI 4.2.0 needs JDK 11-17"));
  Write(java, "#!/bin/sh\necho 'openjdk version \"17.0.6\" 2023-01-17' >&2\n");
  auto ok = PlanStep("preflight", {{"require_java", "true"}, {"java", java.string()}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(ok->message, HasSubstr("JDK 17"));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::populated_homes
