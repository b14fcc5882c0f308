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

// A half-migrated schema (MySQL commits each ALTER on its own; an operator may have run part of
// WSO2's script): each part is detected on its own, check mode lists only what is missing and
// changes nothing, apply does only that (UUIDs already given are kept) and ends with 4.0.0's
// schema; it is never recorded as done while a part is missing.
TEST_P(MigrateUserstoreDbTest, HalfMigratedSchemaGetsOnlyWhatIsMissing) {
  db_.CreateDb("mimic_ref40", script40_);
  const std::string add = db_.pg
      ? "ALTER TABLE UM_USER ADD COLUMN UM_USER_ID VARCHAR(255); "
        "UPDATE UM_USER SET UM_USER_ID = md5(UM_ID::text || UM_USER_NAME); "
        "ALTER TABLE UM_USER ALTER COLUMN UM_USER_ID SET NOT NULL"
      : "ALTER TABLE UM_USER ADD COLUMN UM_USER_ID VARCHAR(255) NOT NULL DEFAULT 'NONE' AFTER "
        "UM_ID; UPDATE UM_USER SET UM_USER_ID = UUID(); "
        "ALTER TABLE UM_USER ALTER COLUMN UM_USER_ID DROP DEFAULT";
  const std::string drop_old = db_.pg
      ? "ALTER TABLE UM_USER DROP CONSTRAINT um_user_um_user_name_um_tenant_id_key"
      : "ALTER TABLE UM_USER DROP INDEX UM_USER_NAME";
  struct Half {
    std::string name, sql;
    bool ids_kept;              // the UUIDs given before are kept
    std::vector<std::string> not_logged;  // SQL the step must not run again
  };
  const std::vector<Half> halves = {
      {"column added and filled, new UNIQUE missing", add, true, {"ADD COLUMN", "UPDATE UM_USER"}},
      {"column added and filled, old UNIQUE dropped, new one missing", add + "; " + drop_old, true,
       {"ADD COLUMN", "UPDATE UM_USER", "DROP"}},
      {"column added, not filled yet",
       db_.pg ? "ALTER TABLE UM_USER ADD COLUMN UM_USER_ID VARCHAR(255)"
              : "ALTER TABLE UM_USER ADD COLUMN UM_USER_ID VARCHAR(255) NOT NULL DEFAULT 'NONE' "
                "AFTER UM_ID",
       false, {"ADD COLUMN"}},
  };
  for (const Half& half : halves) {
    SCOPED_TRACE(half.name);
    db_.CreateDb("mimic_src", script12_);
    db_.Run("mimic_src",
            "INSERT INTO UM_USER (UM_USER_NAME, UM_USER_PASSWORD, UM_SALT_VALUE, "
            "UM_CHANGED_TIME, UM_TENANT_ID) VALUES "
            "('alice', 'h1', 's1', CURRENT_TIMESTAMP, -1234), "
            "('bob', 'h2', 's2', CURRENT_TIMESTAMP, -1234), "
            "('alice', 'h3', 's3', CURRENT_TIMESTAMP, 1)");
    db_.Run("mimic_src", half.sql);
    const std::string schema_before = db_.Schema("mimic_src");
    const std::string ids = db_.Run("mimic_src", "SELECT UM_USER_ID FROM UM_USER ORDER BY UM_ID");

    logs_.clear();
    absl::StatusOr<StepPlan> plan = PlanStep(NewMigrateUserstoreDbStep(), /*check=*/true);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->forced_status, mimic::v1::STEP_CHANGED);
    EXPECT_THAT(plan->message, HasSubstr("would complete the migration"));
    EXPECT_THAT(plan->message, HasSubstr("UNIQUE(UM_USER_ID, UM_TENANT_ID)"));
    EXPECT_THAT(Logs(), HasSubstr("ADD UNIQUE (UM_USER_ID, UM_TENANT_ID)"));
    EXPECT_THAT(Logs(), HasSubstr("half-migrated"));
    for (const std::string& sql : half.not_logged) EXPECT_THAT(Logs(), Not(HasSubstr(sql)));
    EXPECT_EQ(db_.Schema("mimic_src"), schema_before) << "check mode changed the database";

    logs_.clear();
    plan = PlanStep(NewMigrateUserstoreDbStep(), /*check=*/false);
    ASSERT_TRUE(plan.ok()) << plan.status() << "\n" << Logs();
    EXPECT_EQ(plan->forced_status, mimic::v1::STEP_CHANGED) << plan->message;
    EXPECT_THAT(plan->message, HasSubstr("completed the migration"));
    EXPECT_EQ(db_.Schema("mimic_src"), db_.Schema("mimic_ref40"));
    if (half.ids_kept) {
      EXPECT_EQ(db_.Run("mimic_src", "SELECT UM_USER_ID FROM UM_USER ORDER BY UM_ID"), ids);
    }
    EXPECT_EQ(db_.Run("mimic_src",
                      "SELECT COUNT(DISTINCT UM_USER_ID), COUNT(*) FROM UM_USER WHERE UM_USER_ID "
                      "<> 'NONE'"),
              db_.pg ? "3|3\n" : "3\t3\n");
    logs_.clear();
    plan = PlanStep(NewMigrateUserstoreDbStep(), /*check=*/false);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->forced_status, mimic::v1::STEP_OK);
    EXPECT_THAT(plan->message, HasSubstr("already migrated"));
  }
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
