// The migrate_userstore_config step on generated MI homes (fixtures: steps_test_fixture.h).
#include "agent/steps/steps_test_fixture.h"

namespace mimic::agent::steps_testing::conf_homes {
namespace {

using MigrateUserstoreConfigTest = ConfHomesTest;

TEST_F(MigrateUserstoreConfigTest, DefaultUserStoreIsOk) {
  MakeHomes("4.0.0", "4.2.0");
  const std::string before = Read(dst_ / "conf/deployment.toml");
  absl::StatusOr<StepPlan> plan = PlanStep("migrate_userstore_config");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->forced_status, mimic::v1::STEP_OK);
  EXPECT_EQ(plan->message, "default user store; nothing to carry");
  EXPECT_TRUE(plan->changes.empty());
  EXPECT_EQ(Read(dst_ / "conf/deployment.toml"), before);
}

TEST_F(MigrateUserstoreConfigTest, ReadWriteLdapIsCarriedAndFileUserStoreDisabled) {
  MakeHomes("4.0.0", "4.2.0");
  SetSourceUserStore(kLdap);
  StepPlan plan = ApplyAndCheckConsistency({"LdapS3cret"});
  auto changes = ChangesByKey(plan);
  EXPECT_THAT(changes["user_store.type"], HasSubstr("read_write_ldap"));
  EXPECT_THAT(changes["user_store.connection_url"], HasSubstr("ldap.example.com"));
  EXPECT_THAT(changes["user_store.connection_password"], HasSubstr("<redacted>"));
  EXPECT_THAT(changes["internal_apis.file_user_store.enable"], HasSubstr("false"));
  EXPECT_THAT(changes["internal_apis.file_user_store.enable"], HasSubstr("guides require"));
  const std::string text = Read(dst_ / "conf/deployment.toml");
  EXPECT_THAT(text, HasSubstr("type = \"read_write_ldap\""));
  EXPECT_THAT(text, HasSubstr("[internal_apis.file_user_store]\nenable = false"));
}

TEST_F(MigrateUserstoreConfigTest, JdbcUserStoreWithDatasourceAndRealmManager) {
  MakeHomes("1.2.0", "4.2.0");
  SetSourceUserStore(absl::StrCat(kJdbc, kDatasources));
  StepPlan plan = ApplyAndCheckConsistency({"DbS3cret"});
  auto changes = ChangesByKey(plan);
  EXPECT_THAT(changes["user_store.type"], HasSubstr("database"));
  EXPECT_THAT(changes["realm_manager.data_source"], HasSubstr("WSO2CarbonDB"));
  EXPECT_THAT(Logs(), HasSubstr("migrate_userstore_db must have run"));
  bool datasource = false;
  for (const auto& [key, v] : changes) datasource = datasource || key.rfind("datasource", 0) == 0;
  EXPECT_TRUE(datasource) << absl::StrJoin(changes, "\n", absl::PairFormatter("="));
  // merge_config (applied by ApplyAndCheckConsistency) brought the other datasource; the user
  // store's one is still there, unchanged.
  const std::string text = Read(dst_ / "conf/deployment.toml");
  EXPECT_THAT(text, HasSubstr("jdbc:mysql://db.example.com:3306/userdb"));
  EXPECT_THAT(text, HasSubstr("OrdersDB"));
}

TEST_F(MigrateUserstoreConfigTest, JdbcOnlyUserStoreDatasourceIsTaken) {
  MakeHomes("4.0.0", "4.2.0");
  SetSourceUserStore(absl::StrCat(kJdbc, kDatasources));
  absl::StatusOr<StepPlan> plan = PlanStep("migrate_userstore_config");
  ASSERT_TRUE(plan.ok()) << plan.status();
  Apply("userstore", plan->changes);
  const std::string text = Read(dst_ / "conf/deployment.toml");
  EXPECT_THAT(text, HasSubstr("userdb"));
  EXPECT_THAT(text, Not(HasSubstr("OrdersDB")));
  EXPECT_THAT(Logs(), Not(HasSubstr("migrate_userstore_db")));
}

}  // namespace
}  // namespace mimic::agent::steps_testing::conf_homes
