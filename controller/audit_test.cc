#include "controller/audit.h"

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

  std::unique_ptr<Audit> OpenAudit(AuditOptions options = {}) {
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

TEST(RolloutIdTest, Format) {
  absl::Time t = absl::FromCivil(absl::CivilSecond(2026, 11, 21, 22, 44, 23), absl::UTCTimeZone());
  EXPECT_EQ(FormatRolloutId(t, 0xab12cd), "r-20261121-224423-ab12cd");
  EXPECT_EQ(FormatRolloutId(t, 0xff000001), "r-20261121-224423-000001");
  EXPECT_TRUE(std::regex_match(NewRolloutId(), std::regex("r-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}")));
}

TEST_F(AuditTest, OpenUrls) {
  // Nothing listens on port 1: UNAVAILABLE, and the password is not repeated.
  for (const char* scheme : {"postgresql", "postgres"}) {
    absl::StatusOr<std::unique_ptr<Audit>> pg = Audit::Open(
        absl::StrCat(scheme, "://mimic:", kSecret, "@127.0.0.1:1/audit?connect_timeout=5"));
    EXPECT_EQ(pg.status().code(), absl::StatusCode::kUnavailable) << pg.status();
    EXPECT_THAT(pg.status().message(), Not(HasSubstr(kSecret)));
    EXPECT_THAT(pg.status().message(), HasSubstr("127.0.0.1"));
  }
  absl::StatusOr<std::unique_ptr<Audit>> pg = Audit::Open(
      absl::StrCat("postgresql://mimic@127.0.0.1:1/audit?connect_timeout=5&password=", kSecret));
  EXPECT_EQ(pg.status().code(), absl::StatusCode::kUnavailable) << pg.status();
  EXPECT_THAT(pg.status().message(), Not(HasSubstr(kSecret)));
  EXPECT_EQ(Audit::Open("mysql://db/audit").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Audit::Open("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Audit::Open(dir_ + "/missing/dir/audit.sqlite").status().code(),
            absl::StatusCode::kUnavailable);
  // A plain path, "sqlite:PATH" and "sqlite://PATH" name the same file; reopening keeps data.
  {
    absl::StatusOr<std::unique_ptr<Audit>> a = Audit::Open(path_);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE((*a)->BeginRollout({.id = kRollout, .os_user = "alice"}).ok());
  }
  absl::StatusOr<std::unique_ptr<Audit>> b = Audit::Open("sqlite://" + path_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE((*b)->GetRollout(kRollout).ok());
}

TEST_F(AuditTest, PostgresUrls) {
  if (!pg_) GTEST_SKIP() << "MIMIC_TEST_PG_URL is not set (tests/db/run_pg_audit_tests.sh sets it)";
  // postgresql:// and postgres:// reach the same database; reopening keeps data.
  {
    auto a = OpenAudit();
    ASSERT_NE(a, nullptr);
    ASSERT_TRUE(a->BeginRollout({.id = kRollout, .os_user = "alice"}).ok());
  }
  ASSERT_TRUE(absl::StartsWith(url_, "postgresql://"));
  absl::StatusOr<std::unique_ptr<Audit>> b = Audit::Open("postgres://" + url_.substr(13));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->GetRollout(kRollout)->rollout.os_user, "alice");
  // The tables live in this test's schema (the url's search_path), not in public.
  EXPECT_EQ(PgExec(PgUrl(), "SELECT count(*) FROM " + schema_ + ".events"), 0);
  std::string error;
  EXPECT_NE(PgExec(PgUrl(), "SELECT count(*) FROM public.events", &error), 0);
  // A wrong password: UNAVAILABLE, and neither password is repeated.
  std::string wrong = url_;
  size_t at = wrong.find('@');
  size_t colon = wrong.rfind(':', at);
  ASSERT_NE(at, std::string::npos);
  ASSERT_GT(colon, 13u);
  const std::string real_password = wrong.substr(colon + 1, at - colon - 1);
  wrong.replace(colon + 1, at - colon - 1, kSecret);
  absl::StatusOr<std::unique_ptr<Audit>> bad = Audit::Open(wrong);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnavailable) << bad.status();
  EXPECT_THAT(bad.status().message(), Not(HasSubstr(kSecret)));
  EXPECT_THAT(bad.status().message(), Not(HasSubstr(real_password)));
  // TRUNCATE is refused like UPDATE and DELETE.
  ASSERT_TRUE((*b)->FinishRollout(kRollout, "ok", "").ok());
  EXPECT_NE(RawExec("TRUNCATE events", &error), 0);
  EXPECT_THAT(error, HasSubstr("append-only"));
}

TEST_F(AuditTest, NewerSchemaRefused) {
  OpenAudit();
  ASSERT_EQ(RawExec("UPDATE schema_meta SET value = '99' WHERE key = 'schema_version'"), SQLITE_OK);
  EXPECT_EQ(Audit::Open(url_).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(AuditTest, EventsRoundTrip) {
  auto audit = OpenAudit();
  std::vector<v1::Event> a = SampleRun("run-a", "mi-1");
  std::vector<v1::Event> b = SampleRun("run-b", "mi-2");
  for (size_t i = 0; i < a.size(); ++i) {  // interleaved, as two streams would deliver them
    ASSERT_TRUE(audit->AppendEvent(kRollout, a[i]).ok());
    ASSERT_TRUE(audit->AppendEvent(kRollout, b[i]).ok());
  }
  ASSERT_TRUE(audit->Flush().ok());

  absl::StatusOr<std::vector<v1::Event>> all = audit->Events(kRollout);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), a.size() + b.size());
  EXPECT_EQ(all->at(0).run_id(), "run-a");
  EXPECT_EQ(all->at(1).run_id(), "run-b");

  absl::StatusOr<std::vector<v1::Event>> host_b = audit->Events(kRollout, "mi-2");
  ASSERT_TRUE(host_b.ok());
  ASSERT_EQ(host_b->size(), b.size());
  // Stored as given, except the secret the audit redacted (event 8 of each run).
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i].has_step_finished() && b[i].step_finished().config_changes_size() > 0) continue;
    EXPECT_TRUE(MessageDifferencer::Equals(host_b->at(i), b[i])) << i;
  }
  absl::StatusOr<std::vector<v1::Event>> preflight = audit->Events(kRollout, "mi-1", "preflight");
  ASSERT_TRUE(preflight.ok());
  ASSERT_EQ(preflight->size(), 3u);  // started, log line, finished
  EXPECT_EQ(preflight->at(1).log().text(), "source 1.2.0, target 4.0.0");

  EXPECT_EQ(*audit->EventCount(kRollout), 18);
  EXPECT_EQ(*audit->EventCount("r-other"), 0);
  EXPECT_EQ(*audit->LastSeq("run-a"), 9u);
  EXPECT_EQ(*audit->LastSeq("run-unknown"), 0u);
}

TEST_F(AuditTest, InvalidEventsRefused) {
  auto audit = OpenAudit();
  v1::Event e = Base("run-a", "mi-1", 1);
  EXPECT_EQ(audit->AppendEvent("", e).code(), absl::StatusCode::kInvalidArgument);
  e.set_seq(0);
  EXPECT_EQ(audit->AppendEvent(kRollout, e).code(), absl::StatusCode::kInvalidArgument);
  e = Base("", "mi-1", 1);
  EXPECT_EQ(audit->AppendEvent(kRollout, e).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AuditTest, DuplicatesIgnoredAndNotChained) {
  auto audit = OpenAudit();
  std::vector<v1::Event> run = SampleRun("run-a", "mi-1");
  for (const v1::Event& e : run) ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  ASSERT_TRUE(audit->Flush().ok());
  // A re-attach replays from seq 4, and the same batch holds a repeat too.
  for (size_t i = 3; i < run.size(); ++i) ASSERT_TRUE(audit->AppendEvent(kRollout, run[i]).ok());
  ASSERT_TRUE(audit->AppendEvent(kRollout, run[5]).ok());
  ASSERT_TRUE(audit->Flush().ok());

  EXPECT_EQ(*audit->EventCount(kRollout), static_cast<int64_t>(run.size()));
  EXPECT_EQ(audit->FileChanges("run-a")->size(), 2u);
  absl::StatusOr<VerifyResult> v = audit->VerifyChain(kRollout);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->reason;
  EXPECT_EQ(v->events, static_cast<int64_t>(run.size()));
}

TEST_F(AuditTest, RunsStepsAndChangesMaintained) {
  auto audit = OpenAudit();
  ASSERT_TRUE(audit->RegisterRun("run-a", kRollout, "mi-1", "dev", 0, v1::MODE_APPLY).ok());
  absl::StatusOr<RunRecord> run = audit->GetRun("run-a");
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, "pending");
  EXPECT_EQ(run->last_seq, 0u);

  std::vector<v1::Event> events = SampleRun("run-a", "mi-1");
  for (size_t i = 0; i < 5; ++i) ASSERT_TRUE(audit->AppendEvent(kRollout, events[i]).ok());
  ASSERT_TRUE(audit->Flush().ok());
  run = audit->GetRun("run-a");
  EXPECT_EQ(run->status, "running");
  EXPECT_EQ(run->started_at_us, kT0 + 1000000);
  EXPECT_EQ(run->finished_at_us, 0);
  EXPECT_EQ(run->last_seq, 5u);
  EXPECT_EQ(run->source_version, "1.2.0");
  EXPECT_EQ(run->target_version, "4.0.0");
  absl::StatusOr<std::vector<StepRecord>> steps = audit->Steps("run-a");
  ASSERT_EQ(steps->size(), 2u);
  EXPECT_EQ(steps->at(1).name, "copy_carbonapps");
  EXPECT_EQ(steps->at(1).status, "running");

  for (size_t i = 5; i < events.size(); ++i) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, events[i]).ok());
  }
  ASSERT_TRUE(audit->Flush().ok());
  run = audit->GetRun("run-a");
  EXPECT_EQ(run->status, "changed");
  EXPECT_EQ(run->finished_at_us, kT0 + 9000000);
  EXPECT_EQ(run->stage, "dev");
  EXPECT_EQ(run->batch_idx, 0);
  EXPECT_EQ(run->mode, "apply");
  EXPECT_EQ(run->last_seq, 9u);

  steps = audit->Steps("run-a");
  ASSERT_EQ(steps->size(), 3u);
  EXPECT_EQ(steps->at(0).status, "ok");
  EXPECT_EQ(steps->at(0).duration_us, 1500);
  EXPECT_EQ(steps->at(1).status, "changed");
  EXPECT_EQ(steps->at(1).message, "2 CApps copied");
  EXPECT_EQ(steps->at(2).name, "merge_config");

  absl::StatusOr<std::vector<FileChangeRecord>> files = audit->FileChanges("run-a");
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ(files->at(0).step, "copy_carbonapps");
  EXPECT_EQ(files->at(0).step_idx, 1);
  EXPECT_EQ(files->at(0).seq, 6u);
  EXPECT_EQ(files->at(0).action, "create");
  EXPECT_EQ(files->at(1).path, "/opt/mi-4.0.0/repository/deployment/server/carbonapps/b.car");
  EXPECT_EQ(files->at(1).size, 1234u);
  EXPECT_EQ(files->at(1).sha256_before, "");
  EXPECT_EQ(files->at(1).sha256_after, std::string(64, 'a'));

  absl::StatusOr<std::vector<ConfigChangeRecord>> configs = audit->ConfigChanges("run-a");
  ASSERT_EQ(configs->size(), 2u);
  EXPECT_EQ(configs->at(0).new_value, "\"repository/resources/security/wso2carbon.jks\"");
  EXPECT_FALSE(configs->at(0).redacted);
  EXPECT_EQ(configs->at(1).old_value, "<redacted>");
  EXPECT_EQ(configs->at(1).new_value, "<redacted>");
  EXPECT_TRUE(configs->at(1).redacted);
  // The secret is not in the stored payload either.
  absl::StatusOr<std::vector<v1::Event>> stored = audit->Events(kRollout);
  ASSERT_TRUE(stored.ok());
  for (const v1::Event& e : *stored) EXPECT_THAT(e.DebugString(), Not(HasSubstr(kSecret)));
}

TEST_F(AuditTest, EventsOfAnUnregisteredRunCreateIt) {
  auto audit = OpenAudit();
  for (const v1::Event& e : SampleRun("run-x", "mi-9", v1::RUN_FAILED)) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  }
  ASSERT_TRUE(audit->Flush().ok());
  absl::StatusOr<RunRecord> run = audit->GetRun("run-x");
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->host, "mi-9");
  EXPECT_EQ(run->rollout_id, kRollout);
  EXPECT_EQ(run->status, "failed");
  EXPECT_EQ(run->message, "merge failed");
  EXPECT_EQ(run->stage, "dev");  // from the plan in run_started
  EXPECT_EQ(audit->GetRun("run-none").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AuditTest, VerifyChainDetectsEditedPayload) {
  auto audit = OpenAudit();
  for (const v1::Event& e : SampleRun("run-a", "mi-1")) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  }
  ASSERT_TRUE(audit->Flush().ok());
  absl::StatusOr<VerifyResult> v = audit->VerifyChain(kRollout);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok);
  EXPECT_EQ(v->events, 9);
  EXPECT_EQ(v->head_hash.size(), 64u);

  // The events table refuses edits outright...
  std::string error;
  EXPECT_NE(RawExec("UPDATE events SET message = 'x' WHERE idx = 2", &error), SQLITE_OK);
  EXPECT_THAT(error, HasSubstr("append-only"));
  // ...and when someone removes that guard, the chain still tells.
  ASSERT_EQ(DropTrigger("events_no_update"), SQLITE_OK);
  v1::Event forged = SampleRun("run-a", "mi-1")[5];
  forged.mutable_step_finished()->set_status(v1::STEP_OK);
  ASSERT_EQ(RawExec("UPDATE events SET payload = " + BlobLiteral(forged.SerializeAsString()) +
                    " WHERE idx = 5"),
            SQLITE_OK);
  v = audit->VerifyChain(kRollout);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->bad_index, 5);
  EXPECT_EQ(v->bad_run_id, "run-a");
  EXPECT_EQ(v->bad_seq, 6u);
  EXPECT_THAT(v->reason, HasSubstr("hash mismatch"));
}

TEST_F(AuditTest, VerifyChainDetectsEditedColumn) {
  auto audit = OpenAudit();
  for (const v1::Event& e : SampleRun("run-a", "mi-1")) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  }
  ASSERT_TRUE(audit->Flush().ok());
  ASSERT_EQ(DropTrigger("events_no_update"), SQLITE_OK);
  ASSERT_EQ(RawExec("UPDATE events SET message = 'all fine' WHERE idx = 2"), SQLITE_OK);
  absl::StatusOr<VerifyResult> v = audit->VerifyChain(kRollout);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->bad_index, 2);
  EXPECT_THAT(v->reason, HasSubstr("columns differ"));
}

TEST_F(AuditTest, VerifyChainDetectsDeletedRows) {
  auto audit = OpenAudit();
  for (const v1::Event& e : SampleRun("run-a", "mi-1")) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  }
  ASSERT_TRUE(audit->Flush().ok());
  std::string error;
  EXPECT_NE(RawExec("DELETE FROM events WHERE idx = 3", &error), SQLITE_OK);
  EXPECT_THAT(error, HasSubstr("append-only"));
  ASSERT_EQ(DropTrigger("events_no_delete"), SQLITE_OK);

  // The last row: only the recorded chain head can tell.
  ASSERT_EQ(RawExec("DELETE FROM events WHERE idx = 8"), SQLITE_OK);
  absl::StatusOr<VerifyResult> v = audit->VerifyChain(kRollout);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->bad_index, 8);
  EXPECT_THAT(v->reason, HasSubstr("deleted"));

  // A row in the middle.
  ASSERT_EQ(RawExec("DELETE FROM events WHERE idx = 3"), SQLITE_OK);
  v = audit->VerifyChain(kRollout);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->bad_index, 3);
  EXPECT_THAT(v->reason, HasSubstr("missing (deleted)"));

  // Renumbering the rows to hide the gap breaks the hash links instead.
  ASSERT_EQ(DropTrigger("events_no_update"), SQLITE_OK);
  ASSERT_EQ(RawExec("UPDATE events SET idx = idx - 1 WHERE idx > 3"), SQLITE_OK);
  v = audit->VerifyChain(kRollout);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->bad_index, 3);
  EXPECT_THAT(v->reason, HasSubstr("prev_hash"));
}

TEST_F(AuditTest, ChainMatchesTheDocumentedFormula) {
  auto audit = OpenAudit();
  std::vector<v1::Event> run = SampleRun("run-a", "mi-1");
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(audit->AppendEvent(kRollout, run[i]).ok());
  ASSERT_TRUE(audit->Flush().ok());
  // Events 1-3 hold no secrets, so the stored payload is the event as serialized here.
  std::string h = kGenesisHash;
  for (size_t i = 0; i < 3; ++i) {
    h = EventChainHash(h, "run-a", run[i].seq(), run[i].SerializeAsString());
  }
  EXPECT_EQ(audit->VerifyChain(kRollout)->head_hash, h);
  EXPECT_NE(EventChainHash(kGenesisHash, "run-a1", 2, "x"),
            EventChainHash(kGenesisHash, "run-a", 12, "x"));
}

TEST_F(AuditTest, ConcurrentAppendsFromEightThreads) {
  AuditOptions options;
  options.batch_size = 64;
  auto audit = OpenAudit(options);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 400;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string run_id = absl::StrCat("run-", t);
      const std::string rollout = t % 2 == 0 ? kRollout : "r-second";
      for (int i = 1; i <= kPerThread; ++i) {
        v1::Event e = Base(run_id, absl::StrCat("mi-", t), i);
        e.mutable_log()->set_text(absl::StrCat("line ", i));
        if (!audit->AppendEvent(rollout, e).ok()) ++failures;
        if (i % 50 == 0 && !audit->AppendEvent(rollout, e).ok()) ++failures;  // a repeat
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(audit->Flush().ok());
  EXPECT_EQ(*audit->EventCount(kRollout), kThreads / 2 * kPerThread);
  EXPECT_EQ(*audit->EventCount("r-second"), kThreads / 2 * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(*audit->LastSeq(absl::StrCat("run-", t)), static_cast<uint64_t>(kPerThread));
    // Each run's events keep their order within the rollout.
    absl::StatusOr<std::vector<v1::Event>> events =
        audit->Events(t % 2 == 0 ? kRollout : "r-second", absl::StrCat("mi-", t));
    ASSERT_EQ(events->size(), static_cast<size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) EXPECT_EQ(events->at(i).seq(), i + 1u);
  }
  for (const char* rollout : {kRollout, "r-second"}) {
    absl::StatusOr<VerifyResult> v = audit->VerifyChain(rollout);
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->ok) << v->reason;
  }
}

TEST_F(AuditTest, LastSeqCountsQueuedEvents) {
  AuditOptions options;
  options.flush_interval = absl::Seconds(30);  // nothing commits unless flushed
  options.batch_size = 1000;
  auto audit = OpenAudit(options);
  for (const v1::Event& e : SampleRun("run-a", "mi-1")) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  }
  EXPECT_EQ(*audit->LastSeq("run-a"), 9u);
}

TEST_F(AuditTest, DestructorFlushes) {
  {
    AuditOptions options;
    options.flush_interval = absl::Seconds(30);
    options.batch_size = 1000;
    auto audit = OpenAudit(options);
    for (const v1::Event& e : SampleRun("run-a", "mi-1")) {
      ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
    }
  }
  auto audit = OpenAudit();
  EXPECT_EQ(*audit->EventCount(kRollout), 9);
  EXPECT_TRUE(audit->VerifyChain(kRollout)->ok);
}

TEST_F(AuditTest, LockedDatabaseDelaysButLosesNothing) {
  AuditOptions options;
  options.busy_timeout = absl::Milliseconds(50);
  auto audit = OpenAudit(options);
  // Another process holds the write lock (PostgreSQL: a lock that keeps writers off the
  // chain heads while readers go on).
  sqlite3* other = nullptr;
  PGconn* pg_other = nullptr;
  if (pg_) {
    pg_other = PQconnectdb(url_.c_str());
    ASSERT_EQ(PQstatus(pg_other), CONNECTION_OK) << PQerrorMessage(pg_other);
    PGresult* r = PQexec(pg_other, "BEGIN; LOCK TABLE event_chains IN EXCLUSIVE MODE");
    ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
  } else {
    ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  for (const v1::Event& e : SampleRun("run-a", "mi-1")) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  }
  absl::Status flushed = audit->Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kUnavailable) << flushed;
  EXPECT_EQ(*audit->LastSeq("run-a"), 9u);  // still queued
  if (pg_) {
    PGresult* r = PQexec(pg_other, "COMMIT");
    ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(pg_other);
  } else {
    ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(other);
  }
  ASSERT_TRUE(audit->Flush().ok());  // the writer retried
  EXPECT_EQ(*audit->EventCount(kRollout), 9);
  EXPECT_TRUE(audit->VerifyChain(kRollout)->ok);
}

TEST_F(AuditTest, TwoWritersContinueOneChain) {
  auto first = OpenAudit();
  auto second = OpenAudit();  // e.g. a resumed controller while the old one still runs
  std::vector<v1::Event> run = SampleRun("run-a", "mi-1");
  for (size_t i = 0; i < run.size(); ++i) {
    Audit& a = i % 2 == 0 ? *first : *second;
    ASSERT_TRUE(a.AppendEvent(kRollout, run[i]).ok());
    ASSERT_TRUE(a.Flush().ok());
  }
  absl::StatusOr<VerifyResult> v = first->VerifyChain(kRollout);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->reason;
  EXPECT_EQ(v->events, 9);
}

// Two controllers sharing one database append to the same rollout at the same time: their
// write transactions serialise, so the chain stays one unbroken line.
TEST_F(AuditTest, TwoWritersAppendConcurrentlyToOneChain) {
  AuditOptions options;
  options.batch_size = 16;
  options.busy_timeout = absl::Seconds(20);
  auto first = OpenAudit(options);
  auto second = OpenAudit(options);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  constexpr int kPerWriter = 300;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      Audit& a = w == 0 ? *first : *second;
      const std::string run_id = absl::StrCat("run-", w);
      for (int i = 1; i <= kPerWriter; ++i) {
        v1::Event e = Base(run_id, absl::StrCat("mi-", w), i);
        e.mutable_log()->set_text(absl::StrCat("line ", i));
        if (!a.AppendEvent(kRollout, e).ok()) ++failures;
        if (i % 40 == 0 && !a.Flush().ok()) ++failures;
      }
      if (!a.Flush().ok()) ++failures;
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  for (Audit* a : {first.get(), second.get()}) {
    EXPECT_EQ(*a->EventCount(kRollout), 2 * kPerWriter);
    absl::StatusOr<VerifyResult> v = a->VerifyChain(kRollout);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_TRUE(v->ok) << v->reason;
    EXPECT_EQ(v->events, 2 * kPerWriter);
  }
}

TEST_F(AuditTest, RolloutsStagesBatchesApprovals) {
  auto audit = OpenAudit();
  RolloutRecord r{.id = kRollout,
                  .plan_path = "/srv/plan.toml",
                  .plan_sha256 = std::string(64, 'c'),
                  .inventory_path = "/srv/inventory.toml",
                  .os_user = "alice",
                  .cert_subject = "CN=alice",
                  .started_at_us = kT0};
  ASSERT_TRUE(audit->BeginRollout(r).ok());
  EXPECT_EQ(audit->BeginRollout(r).code(), absl::StatusCode::kAlreadyExists);
  RolloutRecord older = r;
  older.id = "r-older";
  older.started_at_us = kT0 - 1000;
  older.check_mode = true;
  ASSERT_TRUE(audit->BeginRollout(older).ok());

  ASSERT_TRUE(audit->RecordStage({kRollout, "prod", 1, "pending", 0, 0}).ok());
  ASSERT_TRUE(audit->RecordStage({kRollout, "dev", 0, "running", kT0, 0}).ok());
  ASSERT_TRUE(audit->RecordStage({kRollout, "dev", 0, "ok", kT0, kT0 + 5}).ok());
  ASSERT_TRUE(audit->RecordBatch({kRollout, "prod", 0, {"mi-3", "mi-4"}}).ok());
  ASSERT_TRUE(audit->RecordBatch({kRollout, "dev", 0, {"mi-1", "mi-2"}}).ok());
  ASSERT_TRUE(audit->RecordApproval({kRollout, "prod", "bob", kT0 + 10, false}).ok());
  ASSERT_TRUE(audit->RegisterRun("run-1", kRollout, "mi-1", "dev", 0, v1::MODE_APPLY).ok());
  ASSERT_TRUE(audit->RegisterRun("run-2", kRollout, "mi-2", "dev", 0, v1::MODE_APPLY).ok());
  ASSERT_TRUE(audit->RegisterRun("run-3", kRollout, "mi-3", "prod", 0, v1::MODE_APPLY).ok());
  for (const v1::Event& e : SampleRun("run-1", "mi-1")) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  }
  for (const v1::Event& e : SampleRun("run-2", "mi-2", v1::RUN_FAILED)) {
    ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  }
  ASSERT_TRUE(audit->FinishRollout(kRollout, "failed", "1 host failed").ok());
  EXPECT_EQ(audit->FinishRollout("r-none", "ok", "").code(), absl::StatusCode::kNotFound);

  absl::StatusOr<std::vector<RolloutSummary>> list = audit->ListRollouts(10);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ(list->at(0).rollout.id, kRollout);  // newest first
  EXPECT_EQ(list->at(0).rollout.os_user, "alice");
  EXPECT_EQ(list->at(0).hosts, 3);
  EXPECT_EQ(list->at(0).hosts_ok, 1);
  EXPECT_EQ(list->at(0).hosts_failed, 1);
  EXPECT_EQ(list->at(0).hosts_pending, 1);
  EXPECT_TRUE(list->at(1).rollout.check_mode);
  EXPECT_EQ(audit->ListRollouts(1)->size(), 1u);

  absl::StatusOr<RolloutDetail> d = audit->GetRollout(kRollout);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->rollout.status, "failed");
  EXPECT_EQ(d->rollout.message, "1 host failed");
  EXPECT_GT(d->rollout.finished_at_us, 0);
  EXPECT_EQ(d->rollout.cert_subject, "CN=alice");
  EXPECT_EQ(d->rollout.plan_sha256, std::string(64, 'c'));
  ASSERT_EQ(d->stages.size(), 2u);
  EXPECT_EQ(d->stages[0].name, "dev");
  EXPECT_EQ(d->stages[0].status, "ok");
  EXPECT_EQ(d->stages[0].finished_at_us, kT0 + 5);
  ASSERT_EQ(d->batches.size(), 2u);
  EXPECT_EQ(d->batches[0].stage, "dev");  // by the stage's position in the plan
  EXPECT_EQ(d->batches[1].hosts, (std::vector<std::string>{"mi-3", "mi-4"}));
  ASSERT_EQ(d->runs.size(), 3u);
  ASSERT_EQ(d->approvals.size(), 1u);
  EXPECT_EQ(d->approvals[0].who, "bob");
  EXPECT_EQ(audit->GetRollout("r-none").status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(audit->ResumeRollout(kRollout).ok());
  d = audit->GetRollout(kRollout);
  EXPECT_EQ(d->rollout.status, "running");
  EXPECT_EQ(d->rollout.finished_at_us, 0);
  EXPECT_EQ(audit->ResumeRollout("r-none").code(), absl::StatusCode::kNotFound);
}

TEST(LatestRunPerHostTest, KeepsLatestInFirstSeenOrder) {
  std::vector<RunRecord> runs(4);
  runs[0] = {.run_id = "a1", .host = "a", .created_at_us = 1};
  runs[1] = {.run_id = "b1", .host = "b", .created_at_us = 2};
  runs[2] = {.run_id = "a2", .host = "a", .created_at_us = 3};
  runs[3] = {.run_id = "b0", .host = "b", .created_at_us = 0};
  std::vector<RunRecord> latest = LatestRunPerHost(runs);
  ASSERT_EQ(latest.size(), 2u);
  EXPECT_EQ(latest[0].run_id, "a2");
  EXPECT_EQ(latest[1].run_id, "b1");
}

}  // namespace
}  // namespace mimic::controller
