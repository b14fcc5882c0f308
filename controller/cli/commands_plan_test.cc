// `mimic plan new`'s plan text from the agents' findings: complete, commented, and accepted by
// the same checks `mimic run` and preflight make.
#include "controller/cli/commands_plan.h"

#include "common/config/catalogue.h"
#include "common/config/plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

HostFinding Host(const std::string& name, const std::string& from, const std::string& to) {
  HostFinding h;
  h.host = name;
  h.source_home = "/opt/wso2/wso2mi-" + from;
  h.target_home = "/opt/wso2/wso2mi-" + to;
  h.features.source_version = from;
  h.features.target_version = to;
  return h;
}

std::vector<std::string> StepNames(const std::string& text) {
  absl::StatusOr<common::Plan> plan =
      common::LoadPlanFromString(text, "plan.toml", common::StepCatalogue());
  EXPECT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> names;
  if (plan.ok()) {
    for (const auto& s : plan->steps) names.push_back(s.name);
  }
  return names;
}

TEST(PlanNewTest, FeaturesOfAnyHostBringTheirSteps) {
  HostFinding a = Host("a", "4.0.0", "4.2.0");
  a.features.datamapper = {"repository/deployment/server/carbonapps/dm.car: 2 stylesheets"};
  a.source_update_level = "57";
  HostFinding b = Host("b", "4.0.0", "4.2.0");
  b.features.hl7 = {"dropins/org.wso2.micro.integrator.business.messaging.hl7_1.0.jar"};
  b.features.secure_vault = {"conf/deployment.toml:12: a $secret{} value"};
  HostFinding c;
  c.host = "c";
  c.problem = "unreachable: connection refused";
  absl::StatusOr<std::string> text = PlanTextFor({a, b, c});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(StepNames(*text),
              ::testing::ElementsAre("preflight", "snapshot_target", "migrate_userstore_config",
                                     "copy_carbonapps", "copy_registry", "copy_deployment",
                                     "migrate_datamapper", "copy_custom_components",
                                     "copy_keystores", "merge_config", "hl7_transport"));
  EXPECT_THAT(*text, HasSubstr("path = \"4.0.0->4.2.0\""));
  EXPECT_THAT(*text, HasSubstr("source_home = \"/opt/wso2/wso2mi-4.0.0\""));
  EXPECT_THAT(*text, HasSubstr("# required: a: Data Mapper stylesheets need the Saxon 10"));
  EXPECT_THAT(*text, HasSubstr("# required: b: the source uses HL7"));
  EXPECT_THAT(*text, HasSubstr("#   c: NOT PLANNED: unreachable: connection refused"));
  EXPECT_THAT(*text, HasSubstr("(update level 57)"));
  EXPECT_THAT(*text, HasSubstr("hl7_zip"));
}

TEST(PlanNewTest, MixedPathsAndJdbcUserStore) {
  HostFinding a = Host("a", "1.2.0", "4.0.0");
  a.features.jdbc_userstore = {"conf/deployment.toml: [user_store] type = \"database\""};
  HostFinding b = Host("b", "4.0.0", "4.2.0");
  b.target_home = "/srv/mi/4.2.0";
  absl::StatusOr<std::string> text = PlanTextFor({a, b});
  ASSERT_TRUE(text.ok()) << text.status();
  std::vector<std::string> names = StepNames(*text);
  EXPECT_THAT(names, ::testing::Contains("migrate_userstore_db"));
  EXPECT_THAT(names, ::testing::Contains("backup_databases"));
  EXPECT_THAT(names, Not(::testing::Contains("migrate_datamapper")));
  EXPECT_THAT(*text, HasSubstr("path = \"auto\""));
  EXPECT_THAT(*text, HasSubstr("target_home = \"{{target_home}}\""));
}

TEST(PlanNewTest, NoHostToPlanIsAnError) {
  HostFinding c;
  c.host = "c";
  c.problem = "no source and target MI home";
  EXPECT_EQ(PlanTextFor({c}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mimic::controller
