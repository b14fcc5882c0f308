// Datasource discovery and JDBC URL parsing (db_discovery.h), which need no server.
#include <stdlib.h>
#include <unistd.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "agent/steps/db_discovery.h"
#include "agent/steps/steps.h"
#include "agent/engine/step_test_util.h"
#include "common/base/fs.h"
#include "common/base/path_guard.h"
#include "common/mi/shipped_defaults.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mi_home/fixtures.h"

namespace mimic::agent {
namespace {


namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(DbDiscoveryTest, ParsesJdbcUrls) {
  JdbcUrl u = ParseJdbcUrl("jdbc:postgresql://db.example:6432/carbon?ssl=true");
  EXPECT_EQ(u.type, DbType::kPostgresql);
  EXPECT_EQ(u.host, "db.example");
  EXPECT_EQ(u.port, 6432);
  EXPECT_EQ(u.database, "carbon");
  u = ParseJdbcUrl("jdbc:postgresql://localhost/carbon");
  EXPECT_EQ(u.port, 5432);
  u = ParseJdbcUrl("jdbc:mysql://10.0.0.5:3307/userdb?useSSL=false&amp;autoReconnect=true");
  EXPECT_EQ(u.type, DbType::kMysql);
  EXPECT_EQ(u.host, "10.0.0.5");
  EXPECT_EQ(u.port, 3307);
  EXPECT_EQ(u.database, "userdb");
  u = ParseJdbcUrl("jdbc:mariadb://m1:3306,m2:3306/reg");
  EXPECT_EQ(u.type, DbType::kMariadb);
  EXPECT_EQ(u.host, "m1");
  EXPECT_EQ(u.database, "reg");
  u = ParseJdbcUrl("jdbc:mysql://dbhost/x");
  EXPECT_EQ(u.port, 3306);
  u = ParseJdbcUrl("jdbc:h2:file:/opt/mi/repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE");
  EXPECT_EQ(u.type, DbType::kH2);
  EXPECT_EQ(u.database, "/opt/mi/repository/database/WSO2CARBON_DB");
  u = ParseJdbcUrl("jdbc:h2:./repository/database/WSO2_COORD;AUTO_SERVER=TRUE", "/mi");
  EXPECT_EQ(u.database, "/mi/repository/database/WSO2_COORD");
  u = ParseJdbcUrl("jdbc:h2:${carbon.home}/repository/database/X", "/mi");
  EXPECT_EQ(u.database, "/mi/repository/database/X");
  u = ParseJdbcUrl("jdbc:sqlserver://sql1:1533;databaseName=wso2;encrypt=true");
  EXPECT_EQ(u.type, DbType::kMssql);
  EXPECT_EQ(u.port, 1533);
  EXPECT_EQ(u.database, "wso2");
  u = ParseJdbcUrl("jdbc:oracle:thin:@ora:1521/ORCLPDB");
  EXPECT_EQ(u.type, DbType::kOracle);
  EXPECT_EQ(u.host, "ora");
  EXPECT_EQ(u.database, "ORCLPDB");
  u = ParseJdbcUrl("jdbc:db2://d2:50001/WSO2");
  EXPECT_EQ(u.type, DbType::kDb2);
  EXPECT_EQ(u.port, 50001);
  EXPECT_EQ(ParseJdbcUrl("jdbc:derby:x").type, DbType::kOther);
  EXPECT_EQ(ParseJdbcUrl("not a url").type, DbType::kOther);
}

TEST(DbDiscoveryTest, RedactsUrlsAndFindsTheRealmDatasource) {
  EXPECT_EQ(RedactJdbcUrl("jdbc:mysql://h/db?user=a&password=s3cret&x=1"),
            "jdbc:mysql://h/db?user=a&password=<redacted>&x=1");
  EXPECT_THAT(RedactJdbcUrl("jdbc:sqlserver://h;password=s3cret"), Not(HasSubstr("s3cret")));
  const std::string toml = R"(
[[datasource]]
id = "WSO2_COORDINATION_DB"
url = "jdbc:h2:./repository/database/COORD"
[[datasource]]
id = "USER_DB"
url = "jdbc:postgresql://pg:5433/users"
username = "wso2"
password = "$secret{user_db_pw}"
[realm_manager]
data_source = "USER_DB"
[user_store]
type = "database"
)";
  absl::StatusOr<DbDiscovery> d = DiscoverDatabases(toml, "deployment.toml", "/mi");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->datasources.size(), 2u);
  EXPECT_TRUE(d->jdbc_user_store);
  const Datasource* ds = d->Find(d->realm_data_source);
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->type, DbType::kPostgresql);
  EXPECT_EQ(ds->port, 5433);
  EXPECT_EQ(d->datasources[0].database, "/mi/repository/database/COORD");

  StepContext ctx;
  mimic::v1::StepSpec spec;
  ctx.spec = &spec;
  absl::StatusOr<std::string> pw = ResolvePassword(ctx, *ds);
  ASSERT_FALSE(pw.ok());
  EXPECT_THAT(pw.status().message(), HasSubstr("password.USER_DB"));
  EXPECT_THAT(pw.status().message(), Not(HasSubstr("user_db_pw")));
  ::setenv("MIMIC_DB_TEST_PW", "from-env", 1);
  (*spec.mutable_params())["password.USER_DB"] = "MIMIC_DB_TEST_PW";
  EXPECT_EQ(ResolvePassword(ctx, *ds).value_or(""), "from-env");

  d = DiscoverDatabases("[user_store]\ntype = \"read_only_ldap\"\n", "t", "/mi");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->jdbc_user_store);
  EXPECT_EQ(d->realm_data_source, "WSO2CarbonDB");
}

}  // namespace
}  // namespace mimic::agent
