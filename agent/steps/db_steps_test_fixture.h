// The fixture of the database step tests (backup_databases_test.cc, migrate_userstore_db_test.cc):
// a real PostgreSQL or MariaDB server started by tests/db/run_db_tests.sh (the test is skipped
// when its MIMIC_TEST_* variables are absent), and MI homes from the test generator.
#ifndef MIMIC_AGENT_STEPS_DB_STEPS_TEST_FIXTURE_H_
#define MIMIC_AGENT_STEPS_DB_STEPS_TEST_FIXTURE_H_

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

namespace mimic::agent::steps_testing::databases {


namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// One database server of run_db_tests.sh.
struct Server {
  bool pg = true;
  std::string host, port, user, password;

  // Runs `sql` (or the file `file`) on database `db`; returns stdout; fails the test on error.
  std::string Run(const std::string& db, const std::string& sql, const std::string& file = "") {
    std::string cmd;
    if (pg) {
      ::setenv("PGPASSWORD", password.c_str(), 1);
      cmd = absl::StrCat("psql -X -q -A -t -v ON_ERROR_STOP=1 -h ", host, " -p ", port, " -U ",
                         user, " -d ", db);
      cmd += file.empty() ? absl::StrCat(" -c ", ShellQuote(sql)) : absl::StrCat(" -f ", file);
    } else {
      ::setenv("MYSQL_PWD", password.c_str(), 1);
      cmd = absl::StrCat("mysql --protocol=TCP --batch --skip-column-names -h ", host, " -P ",
                         port, " -u ", user, " ", db);
      cmd += file.empty() ? absl::StrCat(" -e ", ShellQuote(sql)) : absl::StrCat(" < ", file);
    }
    return Shell(cmd);
  }
  std::string Shell(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(absl::StrCat(cmd, " 2>&1").c_str(), "r");
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    const int rc = ::pclose(p);
    EXPECT_EQ(rc, 0) << cmd << "\n" << out;
    return out;
  }
  void CreateDb(const std::string& db, const std::string& script = "") {
    Run(pg ? "postgres" : "", absl::StrCat("DROP DATABASE IF EXISTS ", db));
    Run(pg ? "postgres" : "", absl::StrCat("CREATE DATABASE ", db));
    if (!script.empty()) Run(db, "", script);
  }
  std::string Url(const std::string& db) const {
    return absl::StrCat("jdbc:", pg ? "postgresql" : "mysql", "://", host, ":", port, "/", db,
                        pg ? "" : "?useSSL=false");
  }
  // UM_USER's columns (name type nullable) and unique constraints, sorted, comparable across DBs.
  std::string Schema(const std::string& db) {
    if (pg) {
      return Run(db,
                 "SELECT column_name, data_type, character_maximum_length, is_nullable, "
                 "column_default FROM information_schema.columns WHERE table_name = 'um_user' "
                 "AND table_schema = 'public' ORDER BY column_name") +
             Run(db,
                 "SELECT c.conname, (SELECT string_agg(a.attname, ',' ORDER BY a.attname) FROM "
                 "pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)) "
                 "FROM pg_constraint c WHERE c.conrelid = 'um_user'::regclass AND c.contype IN "
                 "('u', 'p') ORDER BY 2");
    }
    return Run(db,
               "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM "
               "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
               "'UM_USER' ORDER BY COLUMN_NAME") +
           Run(db,
               "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY COLUMN_NAME) FROM "
               "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
               "'UM_USER' AND NON_UNIQUE = 0 GROUP BY INDEX_NAME ORDER BY 2");
  }
};

class DbStepsTest : public ::testing::TestWithParam<bool>, public testing::StepHarness {
 public:
  static void SetUpTestSuite() { testing::PrepareMiHomes(); }

 protected:
  using StepHarness::Run;  // not ::testing::Test::Run

  void SetUp() override {
    const char* prefix = GetParam() ? "MIMIC_TEST_PG_" : "MIMIC_TEST_MY_";
    for (const char* k : {"HOST", "PORT", "USER", "PASSWORD"}) {
      if (std::getenv(absl::StrCat(prefix, k).c_str()) == nullptr) {
        GTEST_SKIP() << prefix << k << " not set: run through tests/db/run_db_tests.sh";
      }
    }
    // The schemas come from WSO2's real dbscripts/ (the generated homes have none).
    MIMIC_SKIP_WITHOUT_FIXTURES();
    auto env = [&](const char* k) { return std::string(std::getenv(absl::StrCat(prefix, k).c_str())); };
    db_.pg = GetParam();
    db_.host = env("HOST");
    db_.port = env("PORT");
    db_.user = env("USER");
    db_.password = env("PASSWORD");
    ASSERT_NO_FATAL_FAILURE(MakeRoot("db_steps_"));
    src_ = root_ / "homes/wso2mi-1.2.0";
    dst_ = root_ / "homes/wso2mi-4.0.0";
    testing::CopyMiHome("1.2.0", src_, {"conf", "repository", "updates"}, /*writable=*/false);
    testing::CopyMiHome("4.0.0", dst_, {"conf", "repository", "updates"}, /*writable=*/false);
    GuardHomes();
    plan_.set_run_id("run1");
    const fs::path fx = fs::path(mi_home::FixturesDir()) / "mi";
    script12_ = (fx / (db_.pg ? "1.2.0/dbscripts/postgres/postgresql_user.sql"
                              : "1.2.0/dbscripts/mysql/mysql_user.sql")).string();
    script40_ = (fx / (db_.pg ? "4.0.0/dbscripts/postgres/postgresql_user.sql"
                              : "4.0.0/dbscripts/mysql/mysql_user.sql")).string();
    db_.CreateDb("mimic_src", script12_);
    db_.Run("mimic_src",
            "INSERT INTO UM_USER (UM_USER_NAME, UM_USER_PASSWORD, UM_SALT_VALUE, "
            "UM_CHANGED_TIME, UM_TENANT_ID) VALUES "
            "('alice', 'uE0Pxn3sj6Hh0Yh5t2xw+hash/A=', 'salt1', CURRENT_TIMESTAMP, -1234), "
            "('bob', 'Zm9vYmFyYmF6+hash/B=', 'salt2', CURRENT_TIMESTAMP, -1234), "
            "('alice', 'cXV4cXV1eA==+hash/C=', 'salt3', CURRENT_TIMESTAMP, 1)");
    // The source's user store: JDBC on that DB, its password as a $secret{} reference.
    const fs::path toml = src_ / "conf/deployment.toml";
    std::string text = *common::ReadFile(toml.string());
    text = absl::StrReplaceAll(text, {{"type = \"read_only_ldap\"", "type = \"database\""}});
    absl::StrAppend(&text, "\n[[datasource]]\nid = \"WSO2CarbonDB\"\nurl = \"", db_.Url("mimic_src"),
                    "\"\nusername = \"", db_.user, "\"\npassword = \"$secret{carbon_db}\"\n");
    std::ofstream(toml, std::ios::trunc) << text;
    params_["password.WSO2CarbonDB"] = absl::StrCat(prefix, "PASSWORD");
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }

  absl::StatusOr<StepPlan> PlanStep(std::unique_ptr<Step> step, bool check) {
    StepContext ctx = Context(step->name(), params_, check, Run("run1"), false);
    return step->Plan(ctx);
  }
  std::string Users(const std::string& db) {
    return db_.Run(db,
                   "SELECT UM_ID, UM_USER_NAME, UM_USER_PASSWORD, UM_SALT_VALUE, UM_TENANT_ID "
                   "FROM UM_USER ORDER BY UM_TENANT_ID, UM_USER_NAME");
  }

  Server db_;
  std::string script12_, script40_;
  std::map<std::string, std::string> params_;
};

}  // namespace mimic::agent::steps_testing::databases

#endif  // MIMIC_AGENT_STEPS_DB_STEPS_TEST_FIXTURE_H_
