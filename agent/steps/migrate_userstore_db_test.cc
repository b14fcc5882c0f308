// migrate_userstore_db against a real PostgreSQL and MariaDB (tests/db/run_db_tests.sh).
#include "agent/steps/db_steps_test_fixture.h"

namespace mimic::agent::steps_testing::databases {
namespace {

using MigrateUserstoreDbTest = DbStepsTest;

TEST_P(MigrateUserstoreDbTest, MigratesUserstoreLikeTheMi400Schema) {
  db_.CreateDb("mimic_ref40", script40_);
  const std::string users_before = Users("mimic_src");
  const std::string schema_before = db_.Schema("mimic_src");
  ASSERT_NE(schema_before, db_.Schema("mimic_ref40"));

  absl::StatusOr<StepPlan> plan = PlanStep(NewMigrateUserstoreDbStep(), /*check=*/true);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_CHANGED);
  EXPECT_THAT(Logs(), HasSubstr("ALTER TABLE UM_USER ADD COLUMN UM_USER_ID VARCHAR(255)"));
  EXPECT_THAT(Logs(), HasSubstr("ADD UNIQUE (UM_USER_ID, UM_TENANT_ID)"));
  EXPECT_EQ(db_.Schema("mimic_src"), schema_before) << "check mode changed the database";

  logs_.clear();
  plan = PlanStep(NewMigrateUserstoreDbStep(), /*check=*/false);
  ASSERT_TRUE(plan.ok()) << plan.status() << "\n" << Logs();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_CHANGED) << plan->message;
  EXPECT_THAT(Logs(), Not(HasSubstr(db_.password)));
  EXPECT_EQ(db_.Schema("mimic_src"), db_.Schema("mimic_ref40"));
  EXPECT_EQ(Users("mimic_src"), users_before) << "a user lost its password hash or salt";
  EXPECT_EQ(db_.Run("mimic_src",
                    "SELECT COUNT(DISTINCT UM_USER_ID), COUNT(*), SUM(CASE WHEN UM_USER_ID LIKE "
                    "'________-____-____-____-____________' THEN 1 ELSE 0 END) FROM UM_USER"),
            db_.pg ? "3|3|3\n" : "3\t3\t3\n");

  const std::string ids = db_.Run("mimic_src", "SELECT UM_USER_ID FROM UM_USER ORDER BY UM_ID");
  for (bool check : {false, true}) {
    logs_.clear();
    plan = PlanStep(NewMigrateUserstoreDbStep(), check);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->forced_status, mimic::v1::STEP_OK);
    EXPECT_THAT(plan->message, HasSubstr("already migrated"));
  }
  EXPECT_EQ(db_.Run("mimic_src", "SELECT UM_USER_ID FROM UM_USER ORDER BY UM_ID"), ids);
}

TEST_P(MigrateUserstoreDbTest, SkipsWhenNotJdbc) {
  fs::remove(src_ / "conf/deployment.toml");
  testing::Write(src_ / "conf/deployment.toml", *common::ShippedDeploymentToml("1.2.0"));
  absl::StatusOr<StepPlan> plan = PlanStep(NewMigrateUserstoreDbStep(), /*check=*/false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_SKIPPED);
}

INSTANTIATE_TEST_SUITE_P(Servers, MigrateUserstoreDbTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "PostgreSQL" : "MariaDB"; });

}  // namespace
}  // namespace mimic::agent::steps_testing::databases
