// Shared fixture of the audit tests: a fresh SQLite file per test, or, when
// MIMIC_TEST_PG_URL is set (tests/db/run_pg_audit_tests.sh), a fresh PostgreSQL schema;
// helpers that build realistic event sequences and tamper with stored rows.
#ifndef MIMIC_CONTROLLER_AUDIT_AUDIT_TEST_FIXTURE_H_
#define MIMIC_CONTROLLER_AUDIT_AUDIT_TEST_FIXTURE_H_

#include "controller/audit/audit.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRollout[] = "r-20261121-224423-ab12cd";
constexpr char kSecret[] = "s3cr3t-Hunter2";
constexpr int64_t kT0 = 1795300000000000;  // a fixed time, unix micros

// The audit URL of the PostgreSQL server to test against (tests/db/run_pg_audit_tests.sh sets
// it), or nullptr: then every AuditTest runs on a SQLite file.
const char* PgUrl() {
  const char* url = getenv("MIMIC_TEST_PG_URL");
  return url != nullptr && *url != '\0' ? url : nullptr;
}

// Runs `sql` on a fresh libpq connection to `url`; 0 on success, else 1 with the message.
int PgExec(const std::string& url, const std::string& sql, std::string* error = nullptr) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    if (error != nullptr) *error = PQerrorMessage(conn);
    ADD_FAILURE() << "cannot connect to the test PostgreSQL server: " << PQerrorMessage(conn);
    PQfinish(conn);
    return 1;
  }
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  PGresult* r = PQexec(conn, sql.c_str());
  ExecStatusType st = PQresultStatus(r);
  int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : 1;
  if (rc != 0 && error != nullptr) *error = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(conn);
  return rc;
}

// A fresh audit database per test: a SQLite file in a fresh folder, or (with MIMIC_TEST_PG_URL)
// a fresh schema on the PostgreSQL server that the audit's connection uses as its search_path.
// Both are removed afterwards.
class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mimic-audit-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/audit.sqlite";
    url_ = "sqlite:" + path_;
    if (const char* pg = PgUrl()) {
      pg_ = true;
      std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? std::tolower(c) : '_';
      schema_ = absl::StrCat("mimic_t_", name.substr(0, 36), "_",
                             absl::StrFormat("%08x", std::random_device()()));
      ASSERT_EQ(PgExec(pg, "CREATE SCHEMA " + schema_), 0);
      std::string base = pg;
      url_ = absl::StrCat(base, base.find('?') == std::string::npos ? "?" : "&",
                          "options=-csearch_path%3D", schema_);
    }
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    if (pg_) PgExec(PgUrl(), "DROP SCHEMA " + schema_ + " CASCADE");
  }

  // The signing key lives in the test's folder (for PostgreSQL too).
  std::unique_ptr<Audit> OpenAudit(AuditOptions options = {}) {
    if (options.signing_key_path.empty()) options.signing_key_path = dir_ + "/audit.key";
    absl::StatusOr<std::unique_ptr<Audit>> a = Audit::Open(url_, options);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? std::move(*a) : nullptr;
  }

  // Runs one statement on the audit database with a separate, raw connection (sqlite3 or
  // libpq): 0 (SQLITE_OK) on success.
  int RawExec(const std::string& sql, std::string* error = nullptr) {
    if (pg_) return PgExec(url_, sql, error);
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* msg = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
    if (error != nullptr && msg != nullptr) *error = msg;
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc;
  }

  // Removes one of the append-only guards on the events table, as a tamperer with DDL rights.
  int DropTrigger(const std::string& name) {
    return RawExec(pg_ ? absl::StrCat("DROP TRIGGER ", name, " ON events")
                       : absl::StrCat("DROP TRIGGER ", name));
  }

  // An SQL literal of the bytes, for the payload column.
  std::string BlobLiteral(const std::string& bytes) const {
    std::string hex;
    for (unsigned char c : bytes) hex += absl::StrFormat("%02x", c);
    return pg_ ? absl::StrCat("'\\x", hex, "'::bytea") : absl::StrCat("x'", hex, "'");
  }

  bool pg_ = false;
  std::string schema_;  // PostgreSQL: this test's schema
  std::string url_;     // the audit database of this test
  std::string dir_;
  std::string path_;
};

v1::Event Base(const std::string& run_id, const std::string& host, uint64_t seq) {
  v1::Event e;
  e.set_run_id(run_id);
  e.set_host(host);
  e.set_seq(seq);
  e.set_time_unix_micros(kT0 + static_cast<int64_t>(seq) * 1000000);
  return e;
}

// A whole run: started, preflight ok, copy_carbonapps changed (2 files), merge_config changed
// (config changes, one with a secret the agent failed to redact), a log line, finished.
std::vector<v1::Event> SampleRun(const std::string& run_id, const std::string& host,
                                 v1::RunStatus final_status = v1::RUN_CHANGED) {
  std::vector<v1::Event> events;
  uint64_t seq = 0;
  v1::Event e = Base(run_id, host, ++seq);
  v1::RunStarted* rs = e.mutable_run_started();
  rs->mutable_plan()->set_mode(v1::MODE_APPLY);
  rs->mutable_plan()->set_stage("dev");
  rs->set_agent_version("0.1.0");
  rs->set_source_version("1.2.0");
  rs->set_target_version("4.0.0");
  events.push_back(e);

  e = Base(run_id, host, ++seq);
  e.mutable_step_started()->set_step("preflight");
  e.mutable_step_started()->set_index(0);
  events.push_back(e);
  e = Base(run_id, host, ++seq);
  e.mutable_log()->set_step("preflight");
  e.mutable_log()->set_level(v1::LOG_INFO);
  e.mutable_log()->set_text("source 1.2.0, target 4.0.0");
  events.push_back(e);
  e = Base(run_id, host, ++seq);
  e.mutable_step_finished()->set_step("preflight");
  e.mutable_step_finished()->set_index(0);
  e.mutable_step_finished()->set_status(v1::STEP_OK);
  e.mutable_step_finished()->set_duration_micros(1500);
  events.push_back(e);

  e = Base(run_id, host, ++seq);
  e.mutable_step_started()->set_step("copy_carbonapps");
  e.mutable_step_started()->set_index(1);
  events.push_back(e);
  e = Base(run_id, host, ++seq);
  v1::StepFinished* f = e.mutable_step_finished();
  f->set_step("copy_carbonapps");
  f->set_index(1);
  f->set_status(v1::STEP_CHANGED);
  f->set_message("2 CApps copied");
  f->set_duration_micros(250000);
  for (const char* name : {"a.car", "b.car"}) {
    v1::FileChange* c = f->add_changes();
    c->set_path(absl::StrCat("/opt/mi-4.0.0/repository/deployment/server/carbonapps/", name));
    c->set_action(v1::ACTION_CREATE);
    c->set_size(1234);
    c->set_sha256_after(std::string(64, 'a'));
  }
  events.push_back(e);

  e = Base(run_id, host, ++seq);
  e.mutable_step_started()->set_step("merge_config");
  e.mutable_step_started()->set_index(2);
  events.push_back(e);
  e = Base(run_id, host, ++seq);
  f = e.mutable_step_finished();
  f->set_step("merge_config");
  f->set_index(2);
  f->set_status(v1::STEP_CHANGED);
  f->set_duration_micros(40000);
  v1::ConfigChange* cc = f->add_config_changes();
  cc->set_file("conf/deployment.toml");
  cc->set_key("keystore.primary.file_name");
  cc->set_action("rename");
  cc->set_old_value("\"wso2carbon.jks\"");
  cc->set_new_value("\"repository/resources/security/wso2carbon.jks\"");
  cc = f->add_config_changes();
  cc->set_file("conf/deployment.toml");
  cc->set_key("keystore.primary.password");
  cc->set_action("change");
  cc->set_old_value(kSecret);  // not redacted by the "agent": the audit must do it
  cc->set_new_value(absl::StrCat("\"", kSecret, "\""));
  events.push_back(e);

  e = Base(run_id, host, ++seq);
  e.mutable_run_finished()->set_status(final_status);
  e.mutable_run_finished()->set_message(final_status == v1::RUN_FAILED ? "merge failed" : "");
  events.push_back(e);
  return events;
}


}  // namespace
}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_AUDIT_AUDIT_TEST_FIXTURE_H_
