// Audit: opening, events, derived tables, rollouts and their records.
#include "controller/audit/audit_test_fixture.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;

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
  {
    // Without a signing key a PostgreSQL audit reads, and refuses writes, naming the setting.
    absl::StatusOr<std::unique_ptr<Audit>> keyless = Audit::Open("postgres://" + url_.substr(13));
    ASSERT_TRUE(keyless.ok()) << keyless.status();
    EXPECT_EQ((*keyless)->GetRollout(kRollout)->rollout.os_user, "alice");
    absl::Status st = (*keyless)->FinishRollout(kRollout, "ok", "");
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
    EXPECT_THAT(std::string(st.message()), HasSubstr("signing_key"));
  }
  AuditOptions keyed;
  keyed.signing_key_path = dir_ + "/audit.key";
  absl::StatusOr<std::unique_ptr<Audit>> b = Audit::Open("postgres://" + url_.substr(13), keyed);
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

// An event the agent already redacted is stored as sent: a secret key the run added has no
// old value, and the audit must not invent one ("<redacted>" where the agent sent "").
TEST_F(AuditTest, AnAddedSecretKeyKeepsItsEmptyOldValue) {
  auto audit = OpenAudit();
  v1::Event e;
  e.set_run_id("run-a");
  e.set_host("mi-1");
  e.set_seq(1);
  e.set_time_unix_micros(kT0);
  v1::StepFinished* f = e.mutable_step_finished();
  f->set_step("merge_config");
  f->set_status(v1::STEP_CHANGED);
  v1::ConfigChange* c = f->add_config_changes();
  c->set_key("datasource[0].password");
  c->set_new_value("<redacted>");
  c->set_redacted(true);
  ASSERT_TRUE(audit->AppendEvent(kRollout, e).ok());
  ASSERT_TRUE(audit->Flush().ok());
  absl::StatusOr<std::vector<v1::Event>> stored = audit->Events(kRollout);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(stored->at(0), e)) << stored->at(0).DebugString();
  absl::StatusOr<std::vector<ConfigChangeRecord>> configs = audit->ConfigChanges("run-a");
  ASSERT_TRUE(configs.ok());
  ASSERT_EQ(configs->size(), 1u);
  EXPECT_EQ(configs->at(0).old_value, "");
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

TEST_F(AuditTest, RegisterRunsIsAllOrNothing) {
  auto audit = OpenAudit();
  RolloutRecord r;
  r.id = kRollout;
  r.plan_path = "plan.toml";
  r.plan_sha256 = "ab";
  r.inventory_path = "inventory.toml";
  r.os_user = "alice";
  ASSERT_TRUE(audit->BeginRollout(r).ok());
  // The third has no run id: the whole batch is refused, none of it registered.
  EXPECT_EQ(audit
                ->RegisterRuns(kRollout, {{"run-1", "mi-1", "prod", 0, v1::MODE_APPLY},
                                          {"run-2", "mi-2", "prod", 0, v1::MODE_APPLY},
                                          {"", "mi-3", "prod", 0, v1::MODE_APPLY}})
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(audit->GetRun("run-1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(audit
                  ->RegisterRuns(kRollout, {{"run-1", "mi-1", "prod", 0, v1::MODE_APPLY},
                                            {"run-2", "mi-2", "prod", 1, v1::MODE_CHECK}})
                  .ok());
  absl::StatusOr<RolloutDetail> d = audit->GetRollout(kRollout);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->runs.size(), 2u);
  EXPECT_EQ(d->runs[0].host, "mi-1");
  EXPECT_EQ(d->runs[0].status, "pending");
  EXPECT_EQ(d->runs[1].batch_idx, 1);
  EXPECT_EQ(d->runs[1].mode, "check");
  absl::StatusOr<AuditVerifyResult> v = audit->VerifyAudit(kRollout);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->problem;
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
