#include "common/config/required_steps.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config/catalogue.h"
#include "common/config/plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

using ::testing::HasSubstr;

const char kFullSteps[] = R"([[steps]]
name = "preflight"
[[steps]]
name = "snapshot_target"
[[steps]]
name = "migrate_userstore_config"
[[steps]]
name = "copy_carbonapps"
[[steps]]
name = "copy_registry"
[[steps]]
name = "copy_deployment"
[[steps]]
name = "migrate_datamapper"
[[steps]]
name = "copy_custom_components"
[[steps]]
name = "copy_keystores"
[[steps]]
name = "merge_config"
)";

absl::StatusOr<Plan> Load(const std::string& text) {
  absl::StatusOr<Plan> plan = LoadPlanFromString(text, "plan.toml", StepCatalogue());
  if (!plan.ok()) return plan;
  absl::Status st = CheckPlanCoversPath(*plan);
  if (!st.ok()) return st;
  return plan;
}

TEST(RequiredStepsTest, FullPlanPasses) {
  absl::StatusOr<Plan> plan = Load(std::string("[migration]\npath = \"4.0.0->4.2.0\"\n") + kFullSteps);
  ASSERT_TRUE(plan.ok()) << plan.status();
}

// deploy/plan.toml.example is what operators copy: it must pass the checks `mimic run` makes.
TEST(RequiredStepsTest, ShippedExamplePlanCoversThePath) {
  absl::StatusOr<Plan> plan =
      LoadPlan(std::string(MIMIC_SOURCE_DIR) + "/deploy/plan.toml.example", StepCatalogue());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(CheckPlanCoversPath(*plan).ok()) << CheckPlanCoversPath(*plan);
  std::vector<std::string> names;
  for (const StepConfig& s : plan->steps) names.push_back(s.name);
  // Its path is 4.0.0 -> 4.2.0: a Data Mapper CApp on a host needs migrate_datamapper.
  MigrationFeatures f;
  f.source_version = "4.0.0";
  f.target_version = "4.2.0";
  f.datamapper = {"a.car: 1 stylesheet"};
  EXPECT_TRUE(CheckRequiredSteps(names, {}, FeatureRequiredSteps(f), "example").ok());
}

TEST(RequiredStepsTest, MissingStepNamedWithLineAndHowToSkip) {
  const std::string text =
      "[[steps]]\nname = \"preflight\"\n[[steps]]\nname = \"snapshot_target\"\n"
      "[[steps]]\nname = \"copy_carbonapps\"\n";
  absl::StatusOr<Plan> plan = Load(text);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(),
              HasSubstr("plan.toml:1: key 'steps': the plan does not run required step "
                        "'migrate_userstore_config'"));
  EXPECT_THAT(plan.status().message(), HasSubstr("[[skip]] step = \"migrate_userstore_config\""));
}

TEST(RequiredStepsTest, SkipWithReasonIsTheWayPast) {
  std::string text = "[[steps]]\nname = \"preflight\"\n[[steps]]\nname = \"snapshot_target\"\n"
                     "[[steps]]\nname = \"copy_carbonapps\"\n";
  for (const char* s : {"migrate_userstore_config", "copy_registry", "copy_deployment",
                        "copy_custom_components", "copy_keystores", "merge_config"}) {
    absl::StrAppend(&text, "[[skip]]\nstep = \"", s, "\"\nreason = \"done by hand\"\n");
  }
  absl::StatusOr<Plan> plan = Load(text);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->skips.size(), 6u);
  EXPECT_EQ(plan->skips[0].step, "migrate_userstore_config");
  EXPECT_EQ(plan->skips[0].reason, "done by hand");
  EXPECT_EQ(plan->skips[0].line, 7);
}

TEST(RequiredStepsTest, MisorderedDatamapperRefusedNamingBoth) {
  std::string text = kFullSteps;
  // migrate_datamapper before copy_carbonapps: it would find nothing to migrate.
  text.replace(text.find("name = \"copy_carbonapps\""), 24, "name = \"migrate_datamapperX\"");
  text.replace(text.find("name = \"migrate_datamapper\"\n"), 27, "name = \"copy_carbonapps\"\n");
  text.replace(text.find("migrate_datamapperX"), 19, "migrate_datamapper");
  absl::StatusOr<Plan> plan = Load(text);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(),
              HasSubstr("plan.toml:7: key 'steps[3].name': step 'migrate_datamapper' (step 4) "
                        "runs before 'copy_carbonapps' (step 7)"));
}

TEST(RequiredStepsTest, BadSkipsRefused) {
  const std::string base = kFullSteps;
  auto err = [&](const std::string& extra) {
    absl::StatusOr<Plan> plan = Load(base + extra);
    EXPECT_FALSE(plan.ok()) << extra;
    return plan.ok() ? std::string() : std::string(plan.status().message());
  };
  EXPECT_THAT(err("[[skip]]\nstep = \"hl7_transport\"\n"),
              HasSubstr("key 'skip[0].reason'"));
  EXPECT_THAT(err("[[skip]]\nstep = \"hl7_transport\"\nreason = \"  \"\n"),
              HasSubstr("must say why"));
  EXPECT_THAT(err("[[skip]]\nstep = \"hl7\"\nreason = \"x\"\n"), HasSubstr("unknown step 'hl7'"));
  EXPECT_THAT(err("[[skip]]\nstep = \"merge_config\"\nreason = \"x\"\n"),
              HasSubstr("skipped but also run"));
  EXPECT_THAT(err("[[skip]]\nstep = \"verify\"\nreason = \"x\"\n[[skip]]\nstep = \"verify\"\n"
                  "reason = \"y\"\n"),
              HasSubstr("skipped twice"));
  absl::StatusOr<Plan> flat = Load("skip = [\"verify\", \"x\"]\n" + base);
  ASSERT_FALSE(flat.ok());
  EXPECT_THAT(flat.status().message(), HasSubstr("plan.toml:1: key 'skip': must be an array of tables"));
}

TEST(RequiredStepsTest, FeaturesMakeStepsRequired) {
  MigrationFeatures f;
  f.source_version = "4.0.0";
  f.target_version = "4.2.0";
  f.datamapper = {"carbonapps/orders.car: 2 stylesheets"};
  f.hl7 = {"dropins/hl7.jar"};
  std::vector<RequiredStep> req = FeatureRequiredSteps(f);
  ASSERT_EQ(req.size(), 2u);
  EXPECT_EQ(req[0].step, "migrate_datamapper");
  EXPECT_EQ(req[1].step, "hl7_transport");

  std::vector<std::string> steps = {"preflight", "snapshot_target", "copy_carbonapps"};
  absl::Status st = CheckRequiredSteps(steps, {}, req, "host a");
  EXPECT_THAT(st.message(),
              HasSubstr("host a: the plan does not run required step 'migrate_datamapper' "
                        "(Data Mapper stylesheets need the Saxon 10 rewrite for MI 4.2.0 "
                        "(carbonapps/orders.car: 2 stylesheets)); add [[steps]] name = "
                        "\"migrate_datamapper\" after copy_carbonapps"));
  st = CheckRequiredSteps(steps, {{"migrate_datamapper", "rebuilt", 0}}, req, "host a");
  EXPECT_THAT(st.message(), HasSubstr("required step 'hl7_transport'"));
  EXPECT_TRUE(CheckRequiredSteps(steps, {{"migrate_datamapper", "r", 0}, {"hl7_transport", "r", 0}},
                                 req, "h")
                  .ok());

  // 1.2.0 -> 4.0.0 does not cross the Saxon change; a JDBC user store on 1.2.0 needs the db step.
  f.source_version = "1.2.0";
  f.target_version = "4.0.0";
  f.hl7.clear();
  f.jdbc_userstore = {"[user_store] type = \"database\""};
  f.secure_vault = {"deployment.toml:3: $secret{db_pw}"};
  req = FeatureRequiredSteps(f);
  std::vector<std::string> names;
  for (const RequiredStep& r : req) names.push_back(r.step);
  EXPECT_THAT(names, ::testing::ElementsAre("migrate_userstore_db", "copy_keystores",
                                            "merge_config"));
}

}  // namespace
}  // namespace mimic::common
