// Audit: the keyed ledger. Each test plays an attacker with write access to the database (not
// to the signing key): it edits, deletes or inserts rows of every table the reports and
// `mimic status` read, re-hashes chains, cuts rollouts off, and VerifyAudit must say so.
#include <sys/stat.h>

#include <fstream>
#include <iterator>

#include "common/base/fs.h"
#include "controller/audit/audit_internal.h"
#include "controller/audit/audit_test_fixture.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;

constexpr char kOther[] = "r-20261122-080000-00ff00";

class AuditLedgerTest : public AuditTest {
 protected:
  // A whole rollout as the rollout engine writes it: begun with its operator and scope, a
  // stage with a batch, an approval, two registered runs with every event, finished.
  void FullRollout(Audit& a, const std::string& id, const std::string& suffix) {
    RolloutRecord r;
    r.id = id;
    r.plan_path = "plan.toml";
    r.plan_sha256 = std::string(64, 'c');
    r.inventory_path = "inventory.toml";
    r.os_user = "alice";
    r.cert_subject = "CN=alice";
    r.started_at_us = kT0;
    r.has_scope = true;
    r.scope.stage = "dev";
    r.scope.hosts = {"mi-1", "mi-2"};
    r.scope.batches = {BatchRecord{id, "dev", 0, {"mi-1", "mi-2"}}};
    ASSERT_TRUE(a.BeginRollout(r).ok());
    ASSERT_TRUE(a.RecordStage({id, "dev", 0, "waiting_approval", kT0, 0}).ok());
    ASSERT_TRUE(a.RecordApproval({id, "dev", "bob (CN=bob)", kT0 + 5, false}).ok());
    ASSERT_TRUE(a.RecordStage({id, "dev", 0, "running", kT0, 0}).ok());
    ASSERT_TRUE(a.RecordBatch({id, "dev", 0, {"mi-1", "mi-2"}}).ok());
    // A batch's runs are registered together (one transaction, a ledger entry each).
    ASSERT_TRUE(a.RegisterRuns(id, {{"run-a" + suffix, "mi-1", "dev", 0, v1::MODE_APPLY},
                                    {"run-b" + suffix, "mi-2", "dev", 0, v1::MODE_APPLY}})
                    .ok());
    int host = 0;
    for (const std::string& run : {"run-a" + suffix, "run-b" + suffix}) {
      const std::string h = absl::StrCat("mi-", ++host);
      for (const v1::Event& e : SampleRun(run, h)) ASSERT_TRUE(a.AppendEvent(id, e).ok());
    }
    ASSERT_TRUE(a.Flush().ok());
    ASSERT_TRUE(a.RecordStage({id, "dev", 0, "ok", kT0, kT0 + 100}).ok());
    ASSERT_TRUE(a.FinishRollout(id, "changed", "2 hosts changed").ok());
  }

  // Two rollouts, verified intact; the audit is closed so the tests edit a quiet database.
  void TwoRollouts() {
    auto a = OpenAudit();
    ASSERT_NE(a, nullptr);
    FullRollout(*a, kRollout, "");
    FullRollout(*a, kOther, "-2");
    absl::StatusOr<AuditVerifyResult> v = a->VerifyAudit();
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_TRUE(v->ok) << v->problem;
    EXPECT_EQ(v->rollouts, 2);
    EXPECT_EQ(v->events, 36);
  }

  // Removes the append-only guards of the events table and of the ledger, as a tamperer with
  // DDL rights.
  void DropGuards() {
    for (const char* t : {"events", "ledger"}) {
      for (const char* what : {"update", "delete"}) {
        std::string name = absl::StrCat(t, "_no_", what);
        ASSERT_EQ(RawExec(pg_ ? absl::StrCat("DROP TRIGGER IF EXISTS ", name, " ON ", t)
                              : absl::StrCat("DROP TRIGGER IF EXISTS ", name)),
                  0);
      }
    }
  }

  // What an older mimic left: no ledger, schema version 1.
  void BackToAnOlderMimic() {
    ASSERT_EQ(RawExec("DROP TABLE ledger"), 0);
    ASSERT_EQ(RawExec("UPDATE schema_meta SET value = '1' WHERE key = 'schema_version'"), 0);
    ASSERT_EQ(RawExec("DELETE FROM schema_meta WHERE key <> 'schema_version'"), 0);
  }

  absl::StatusOr<AuditVerifyResult> Verify(const std::string& rollout = "",
                                           const AuditHead* against = nullptr) {
    auto a = OpenAudit();
    if (a == nullptr) return absl::InternalError("cannot open");
    return a->VerifyAudit(rollout, against);
  }
};

struct Tamper {
  const char* what;
  const char* sql;
  const char* expect;  // in the problem
};

// Every table the reports and `mimic status` read; each edit, delete and insert is found.
const Tamper kTampers[] = {
    {"file sha256 forged",
     "UPDATE file_changes SET sha256_after = "
     "'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'",
     "file_changes"},
    {"file change deleted", "DELETE FROM file_changes WHERE run_id = 'run-a' AND ord = 1",
     "file_changes"},
    {"file change inserted",
     "INSERT INTO file_changes (run_id, seq, ord, step_idx, step, path, action, size, "
     "sha256_before, sha256_after, note) VALUES ('run-a', 6, 7, 1, 'copy_carbonapps', "
     "'/opt/x.car', 'create', 1, '', 'ab', '')",
     "file_changes"},
    {"config value edited", "UPDATE config_changes SET new_value = 'plain' WHERE ord = 0",
     "config_changes"},
    {"config change deleted", "DELETE FROM config_changes WHERE run_id = 'run-b'",
     "config_changes"},
    {"run status forged", "UPDATE runs SET status = 'ok' WHERE run_id = 'run-a'", "runs"},
    {"run message forged", "UPDATE runs SET message = 'fine', target_version = '4.4.0'", "runs"},
    {"run deleted", "DELETE FROM runs WHERE run_id = 'run-b'", "runs"},
    {"run inserted",
     "INSERT INTO runs (run_id, rollout_id, host, status, created_at) VALUES "
     "('run-x', 'r-20261121-224423-ab12cd', 'mi-9', 'ok', 1)",
     "runs"},
    {"step status forged", "UPDATE steps SET status = 'ok' WHERE name = 'merge_config'", "steps"},
    {"step deleted", "DELETE FROM steps WHERE idx = 2", "steps"},
    {"operator renamed", "UPDATE operators SET os_user = 'mallory'", "rollouts"},
    {"operator of a rollout swapped",
     "INSERT INTO operators (id, os_user, cert_subject) VALUES (99, 'root', ''); "
     "UPDATE rollouts SET operator_id = 99",
     "rollouts"},
    {"approver forged", "UPDATE approvals SET who = 'mallory'", "approvals"},
    {"approval deleted", "DELETE FROM approvals WHERE rollout_id = 'r-20261121-224423-ab12cd'",
     "approvals"},
    {"approval inserted",
     "INSERT INTO approvals (rollout_id, stage, who, at, forced) VALUES "
     "('r-20261121-224423-ab12cd', 'prod', 'mallory', 1, 1)",
     "approvals"},
    {"rollout status forged", "UPDATE rollouts SET status = 'ok', message = ''", "rollouts"},
    {"plan digest forged", "UPDATE rollouts SET plan_sha256 = 'dd'", "rollouts"},
    {"stage status forged", "UPDATE stages SET status = 'failed'", "stages"},
    {"batch hosts forged", "UPDATE batches SET hosts = 'mi-1'", "batches"},
    {"scope widened", "UPDATE rollout_scopes SET hosts = 'mi-1,mi-2,mi-3'", "rollout_scopes"},
    {"scope batch deleted", "DELETE FROM rollout_scope_batches", "rollout_scope_batches"},
    {"chain head row edited", "UPDATE event_chains SET event_count = 17", "events"},
    {"rollout inserted",
     "INSERT INTO rollouts (id, plan_path, plan_sha256, inventory_path, operator_id, "
     "check_mode, started_at, status) VALUES ('r-20261123-000000-000001', 'p', 's', 'i', 1, 0, "
     "1, 'ok')",
     "r-20261123-000000-000001"},
};

TEST_F(AuditLedgerTest, EveryTableIsCovered) {
  for (const Tamper& t : kTampers) {
    SCOPED_TRACE(t.what);
    TearDown();
    SetUp();
    TwoRollouts();
    DropGuards();
    std::string error;
    ASSERT_EQ(RawExec(t.sql, &error), 0) << error;
    absl::StatusOr<AuditVerifyResult> v = Verify();
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_FALSE(v->ok);
    EXPECT_THAT(v->problem, HasSubstr(t.expect));
  }
}

TEST_F(AuditLedgerTest, TruncatedEventsWithAFixedHeadAreFound) {
  TwoRollouts();
  DropGuards();
  // The last two events of the first rollout go, and its recorded head is set to the event
  // now last: a consistent chain, only shorter.
  ASSERT_EQ(
      RawExec(absl::StrCat("DELETE FROM events WHERE rollout_id = '", kRollout, "' AND idx >= 16")),
      0);
  ASSERT_EQ(RawExec(absl::StrCat("UPDATE event_chains SET event_count = 16, head_hash = "
                                 "(SELECT hash FROM events WHERE rollout_id = '",
                                 kRollout, "' AND idx = 15) WHERE rollout_id = '", kRollout, "'")),
            0);
  // The old, unkeyed check is satisfied...
  {
    auto a = OpenAudit();
    EXPECT_TRUE(a->VerifyChain(kRollout)->ok);
  }
  // ...the ledger is not.
  absl::StatusOr<AuditVerifyResult> v = Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->ok);
  EXPECT_THAT(v->problem, HasSubstr(kRollout));
  EXPECT_THAT(v->problem, HasSubstr("16 events"));
  v = Verify(kRollout);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->ok);
  v = Verify(kOther);  // the other rollout is intact on its own
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->problem;
}

TEST_F(AuditLedgerTest, RehashedChainAfterAnEditIsFound) {
  TwoRollouts();
  // The attacker forges a failed step into "ok" and recomputes the whole (documented, unkeyed)
  // event chain and its head, so every event link is consistent again.
  std::vector<v1::Event> run;
  {
    auto a = OpenAudit();
    run = *a->Events(kRollout);
  }
  ASSERT_EQ(run.size(), 18u);
  DropGuards();  // (opening the audit puts them back)
  run[7].mutable_step_finished()->set_status(v1::STEP_OK);
  std::string prev = kGenesisHash;
  for (size_t i = 0; i < run.size(); ++i) {
    std::string payload = run[i].SerializeAsString();
    std::string hash = EventChainHash(prev, run[i].run_id(), run[i].seq(), payload);
    ASSERT_EQ(RawExec(absl::StrCat("UPDATE events SET payload = ", BlobLiteral(payload),
                                   ", prev_hash = '", prev, "', hash = '", hash,
                                   "' WHERE rollout_id = '", kRollout, "' AND idx = ", i)),
              0);
    prev = hash;
  }
  ASSERT_EQ(RawExec(absl::StrCat("UPDATE events SET status = 'ok' WHERE rollout_id = '", kRollout,
                                 "' AND idx = 7")),
            0);
  ASSERT_EQ(RawExec(absl::StrCat("UPDATE event_chains SET head_hash = '", prev,
                                 "' WHERE rollout_id = '", kRollout, "'")),
            0);
  ASSERT_EQ(RawExec("UPDATE steps SET status = 'ok' WHERE run_id = 'run-a' AND idx = 1"), 0);
  {
    auto a = OpenAudit();
    absl::StatusOr<VerifyResult> old = a->VerifyChain(kRollout);
    ASSERT_TRUE(old.ok());
    EXPECT_TRUE(old->ok) << old->reason;  // the unkeyed chain alone is fooled
  }
  absl::StatusOr<AuditVerifyResult> v = Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->ok);
  EXPECT_THAT(v->problem, HasSubstr(kRollout));
  EXPECT_THAT(v->problem, HasSubstr("head"));
}

TEST_F(AuditLedgerTest, DeletedRolloutIsFound) {
  TwoRollouts();
  DropGuards();
  for (const char* sql :
       {"DELETE FROM events WHERE rollout_id = '%s'",
        "DELETE FROM event_chains WHERE rollout_id = '%s'",
        "DELETE FROM file_changes WHERE run_id IN (SELECT run_id FROM runs WHERE rollout_id = "
        "'%s')",
        "DELETE FROM config_changes WHERE run_id IN (SELECT run_id FROM runs WHERE rollout_id = "
        "'%s')",
        "DELETE FROM steps WHERE run_id IN (SELECT run_id FROM runs WHERE rollout_id = '%s')",
        "DELETE FROM runs WHERE rollout_id = '%s'", "DELETE FROM stages WHERE rollout_id = '%s'",
        "DELETE FROM batches WHERE rollout_id = '%s'",
        "DELETE FROM approvals WHERE rollout_id = '%s'",
        "DELETE FROM rollout_scopes WHERE rollout_id = '%s'",
        "DELETE FROM rollout_scope_batches WHERE rollout_id = '%s'",
        "DELETE FROM rollouts WHERE id = '%s'"}) {
    ASSERT_EQ(RawExec(absl::StrFormat(sql, kRollout)), 0) << sql;
  }
  absl::StatusOr<AuditVerifyResult> v = Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->ok);
  EXPECT_THAT(v->problem, HasSubstr(kRollout));
  EXPECT_THAT(v->problem, HasSubstr("deleted"));
  // Deleting its ledger entries too (they lie before the other rollout's) breaks the
  // ledger's own links.
  DropGuards();
  ASSERT_EQ(RawExec(absl::StrCat("DELETE FROM ledger WHERE rollout_id = '", kRollout, "'")), 0);
  v = Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->ok);
  EXPECT_THAT(v->problem, HasSubstr("ledger"));
}

TEST_F(AuditLedgerTest, ReSignedLedgerIsFound) {
  TwoRollouts();
  DropGuards();
  // A mac that is not the controller key's (an entry edited and "re-signed" without the key).
  ASSERT_EQ(RawExec("UPDATE ledger SET mac = "
                    "'0000000000000000000000000000000000000000000000000000000000000001' "
                    "WHERE idx = 2"),
            0);
  absl::StatusOr<AuditVerifyResult> v = Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->ok);
  EXPECT_THAT(v->problem, HasSubstr("ledger entry #2"));
}

TEST_F(AuditLedgerTest, ExportedHeadFindsATruncation) {
  TwoRollouts();
  AuditHead head;
  {
    auto a = OpenAudit();
    absl::StatusOr<AuditHead> h = a->ExportHead();
    ASSERT_TRUE(h.ok()) << h.status();
    head = *h;
  }
  EXPECT_EQ(head.rollouts, 2);
  EXPECT_GT(head.entries, 10);
  // The text form round-trips, and an edited file is refused.
  std::string text = FormatAuditHead(head);
  absl::StatusOr<AuditHead> parsed = ParseAuditHead(text, "head.txt");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->head, head.head);
  absl::StatusOr<AuditVerifyResult> v = Verify("", &*parsed);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->problem;

  // Everything of the second rollout goes, its ledger entries included. Those are the tail
  // of the ledger (the second rollout was written last), so the ledger's links still hold.
  DropGuards();
  ASSERT_EQ(RawExec(absl::StrCat("DELETE FROM ledger WHERE idx >= (SELECT MIN(idx) FROM ledger "
                                 "WHERE rollout_id = '",
                                 kOther, "')")),
            0);
  for (const char* sql :
       {"DELETE FROM events WHERE rollout_id = '%s'",
        "DELETE FROM event_chains WHERE rollout_id = '%s'",
        "DELETE FROM file_changes WHERE run_id IN (SELECT run_id FROM runs WHERE rollout_id = "
        "'%s')",
        "DELETE FROM config_changes WHERE run_id IN (SELECT run_id FROM runs WHERE rollout_id = "
        "'%s')",
        "DELETE FROM steps WHERE run_id IN (SELECT run_id FROM runs WHERE rollout_id = '%s')",
        "DELETE FROM runs WHERE rollout_id = '%s'", "DELETE FROM stages WHERE rollout_id = '%s'",
        "DELETE FROM batches WHERE rollout_id = '%s'",
        "DELETE FROM approvals WHERE rollout_id = '%s'",
        "DELETE FROM rollout_scopes WHERE rollout_id = '%s'",
        "DELETE FROM rollout_scope_batches WHERE rollout_id = '%s'",
        "DELETE FROM rollouts WHERE id = '%s'"}) {
    ASSERT_EQ(RawExec(absl::StrFormat(sql, kOther)), 0) << sql;
  }
  // Without the exported head nothing inside the database can tell (documented)...
  v = Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->rollouts, 1);
  // ...with it, the cut is found.
  v = Verify("", &*parsed);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->ok);
  EXPECT_THAT(v->problem, HasSubstr("exported"));

  // A head file whose numbers were edited fails its own signature.
  AuditHead forged = *parsed;
  forged.entries = 3;
  absl::StatusOr<AuditHead> reparsed = ParseAuditHead(FormatAuditHead(forged), "head.txt");
  ASSERT_TRUE(reparsed.ok());
  v = Verify("", &*reparsed);
  EXPECT_FALSE(v.ok() && v->ok);
  EXPECT_EQ(ParseAuditHead("format nonsense\n", "head.txt").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The exported head is signed with the controller's Ed25519 head key: an auditor holding
// only its public key tells a genuine head from a forged or edited one, or one signed by
// another key; the private key is 0600 and appears nowhere else.
TEST_F(AuditLedgerTest, ExportedHeadIsCheckedWithThePublicKeyAlone) {
  TwoRollouts();
  AuditHead head;
  {
    auto a = OpenAudit();
    absl::StatusOr<AuditHead> h = a->ExportHead();
    ASSERT_TRUE(h.ok()) << h.status();
    head = *h;
    EXPECT_EQ(a->HeadKeyPath(), dir_ + "/audit-head.key");
  }
  const std::string key_path = dir_ + "/audit-head.key";
  struct stat st;
  ASSERT_EQ(stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  absl::StatusOr<std::string> private_pem = common::ReadFile(key_path);
  absl::StatusOr<std::string> public_pem = common::ReadFile(key_path + ".pub");
  ASSERT_TRUE(private_pem.ok() && public_pem.ok());
  EXPECT_THAT(*private_pem, HasSubstr("BEGIN PRIVATE KEY"));
  EXPECT_THAT(*public_pem, HasSubstr("BEGIN PUBLIC KEY"));
  EXPECT_EQ(head.format, 2);
  EXPECT_EQ(head.head_key_id.size(), 16u);
  EXPECT_EQ(head.rollouts, 2);

  // The file round-trips and holds no part of the private key.
  const std::string text = FormatAuditHead(head);
  EXPECT_THAT(text, HasSubstr("format mimic-audit-head-v2"));
  std::string private_body = *private_pem;
  for (const char* marker : {"-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "\n"}) {
    for (size_t at; (at = private_body.find(marker)) != std::string::npos;) {
      private_body.erase(at, strlen(marker));
    }
  }
  ASSERT_GT(private_body.size(), 40u);
  EXPECT_EQ(text.find(private_body.substr(20, 20)), std::string::npos);
  absl::StatusOr<AuditHead> parsed = ParseAuditHead(text, "head.txt");
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  // Genuine: with the public key alone, and against the audit (which recorded the key).
  absl::StatusOr<std::string> problem = CheckHeadSignature(*parsed, *public_pem, "head.pub");
  ASSERT_TRUE(problem.ok()) << problem.status();
  EXPECT_EQ(*problem, "");
  absl::StatusOr<AuditVerifyResult> v = Verify("", &*parsed);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->rollouts, 2);
  ASSERT_TRUE(v->head_keys.contains(head.head_key_id));
  EXPECT_EQ(v->head_keys[head.head_key_id], head.head_public_key);
  if (!pg_) {
    std::ifstream in(path_, std::ios::binary);
    std::string db(std::istreambuf_iterator<char>(in), {});
    EXPECT_EQ(db.find(private_body.substr(20, 20)), std::string::npos);
  }

  // Forged: the numbers edited (a cut-back audit passed off as the whole).
  AuditHead edited = *parsed;
  edited.entries = 3;
  edited.rollouts = 1;
  problem = CheckHeadSignature(edited, *public_pem, "head.pub");
  ASSERT_TRUE(problem.ok());
  EXPECT_THAT(*problem, HasSubstr("does not verify"));

  // Forged: signed by another key (the forger's own, named in the file): refused by the
  // public key the auditor keeps, and by the audit, which never recorded that key.
  absl::StatusOr<std::unique_ptr<HeadKey>> other = HeadKey::LoadOrCreate(dir_ + "/other.key");
  ASSERT_TRUE(other.ok()) << other.status();
  AuditHead resigned = edited;
  resigned.head_key_id = (*other)->id();
  resigned.head_public_key = (*other)->public_key();
  absl::StatusOr<AuditHead> with_other =
      ParseAuditHead(FormatAuditHead(resigned), "head.txt");  // signature of the old text
  ASSERT_TRUE(with_other.ok());
  // Re-signed by the other key over its own lines.
  {
    AuditHead h = *with_other;
    h.signature = "";
    std::string lines = FormatAuditHead(h);
    lines = lines.substr(lines.find("format "));
    lines = lines.substr(0, lines.find("hmac "));
    absl::StatusOr<std::string> sig = (*other)->Sign(lines);
    ASSERT_TRUE(sig.ok());
    resigned.signature = *sig;
  }
  absl::StatusOr<std::string> other_pub = common::ReadFile(dir_ + "/other.key.pub");
  ASSERT_TRUE(other_pub.ok());
  problem = CheckHeadSignature(resigned, *other_pub, "other.pub");
  ASSERT_TRUE(problem.ok());
  EXPECT_EQ(*problem, "") << "the forger's head is consistent in itself";
  problem = CheckHeadSignature(resigned, *public_pem, "head.pub");
  ASSERT_TRUE(problem.ok());
  EXPECT_THAT(*problem, HasSubstr("another key"));
  v = Verify("", &resigned);
  EXPECT_FALSE(v.ok() && v->ok);

  // Not a public key: a private key is refused without a word of it; nonsense is refused.
  problem = CheckHeadSignature(*parsed, *private_pem, "audit-head.key");
  EXPECT_EQ(problem.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(problem.status().message()), HasSubstr("holds a private key"));
  EXPECT_EQ(std::string(problem.status().message()).find(private_body.substr(20, 20)),
            std::string::npos);
  EXPECT_EQ(CheckHeadSignature(*parsed, "nonsense", "x.pub").status().code(),
            absl::StatusCode::kInvalidArgument);

  // A second export records no second key; a chain modified after the export is found
  // against the genuine head.
  {
    auto a = OpenAudit();
    ASSERT_TRUE(a->ExportHead().ok());
    absl::StatusOr<AuditVerifyResult> again = a->VerifyAudit();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->head_keys.size(), 1u);
  }
  DropGuards();
  ASSERT_EQ(
      RawExec(absl::StrCat("DELETE FROM events WHERE rollout_id = '", kRollout, "' AND idx >= 16")),
      0);
  v = Verify("", &*parsed);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->ok);
  EXPECT_THAT(v->problem, HasSubstr(kRollout));
}

TEST_F(AuditLedgerTest, KeyFileIsPrivateAndNeverStored) {
  TwoRollouts();
  const std::string key_path = dir_ + "/audit.key";
  struct stat st;
  ASSERT_EQ(stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::string key;
  {
    FILE* f = fopen(key_path.c_str(), "r");
    ASSERT_NE(f, nullptr);
    char buf[256] = {};
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    key.assign(buf, n);
    while (!key.empty() && (key.back() == '\n')) key.pop_back();
  }
  ASSERT_EQ(key.size(), 64u);
  // The key id is recorded, the key is not.
  auto a = OpenAudit();
  absl::StatusOr<std::string> id = a->SigningKeyId();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->size(), 16u);
  EXPECT_EQ(key.find(*id), std::string::npos);
  if (!pg_) {
    std::string db;
    for (const std::string& f : {path_, path_ + "-wal"}) {
      std::ifstream in(f, std::ios::binary);
      db += std::string(std::istreambuf_iterator<char>(in), {});
    }
    EXPECT_GT(db.size(), 0u);
    EXPECT_EQ(db.find(key), std::string::npos);
  }

  // Another key cannot verify (or extend) this audit.
  AuditOptions other;
  other.signing_key_path = dir_ + "/other.key";
  auto b = OpenAudit(other);
  absl::Status begun = b->BeginRollout({.id = "r-x", .os_user = "eve"});
  EXPECT_EQ(begun.code(), absl::StatusCode::kFailedPrecondition) << begun;
  EXPECT_THAT(std::string(begun.message()), HasSubstr(*id));
  absl::StatusOr<AuditVerifyResult> v = b->VerifyAudit();
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
  EXPECT_THAT(std::string(v.status().message()), HasSubstr(*id));
  EXPECT_FALSE(b->GetRollout("r-x").ok());  // nothing was written
  // A key readable by others is refused.
  ASSERT_EQ(chmod(key_path.c_str(), 0644), 0);
  auto c = OpenAudit();
  EXPECT_EQ(c->VerifyAudit().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(AuditLedgerTest, MissingKeyIsNotReplacedByANewOne) {
  TwoRollouts();
  const std::string key_path = dir_ + "/audit.key";
  ASSERT_EQ(unlink(key_path.c_str()), 0);
  auto a = OpenAudit();
  EXPECT_TRUE(a->GetRollout(kRollout).ok());  // reading needs no key
  absl::StatusOr<AuditVerifyResult> v = a->VerifyAudit();
  EXPECT_EQ(v.status().code(), absl::StatusCode::kFailedPrecondition) << v.status();
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("missing"));
  EXPECT_EQ(a->ExportHead().status().code(), absl::StatusCode::kFailedPrecondition);
  struct stat st;
  EXPECT_NE(stat(key_path.c_str(), &st), 0) << "verify made a key of its own";
}

// An audit written by a mimic before the ledger (schema version 1) still opens; its rollouts
// are sealed as they are at the first keyed use, and from then on they are covered.
TEST_F(AuditLedgerTest, OlderAuditIsSealedAtTheUpgrade) {
  TwoRollouts();
  DropGuards();
  ASSERT_NO_FATAL_FAILURE(BackToAnOlderMimic());
  {
    auto a = OpenAudit();
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->GetRollout(kRollout)->rollout.os_user, "alice");  // reads need no key
    // The first keyed use is a write (the seal comes before it), then a resumed run.
    ASSERT_TRUE(a->ResumeRollout(kRollout).ok());
    ASSERT_TRUE(a->RecordApproval({kRollout, "prod", "carol", kT0 + 9, true}).ok());
    ASSERT_TRUE(a->AppendEvent(kRollout, Base("run-c", "mi-3", 1)).ok());
    ASSERT_TRUE(a->Flush().ok());
    ASSERT_TRUE(a->FinishRollout(kRollout, "ok", "").ok());
    absl::StatusOr<AuditVerifyResult> v = a->VerifyAudit();
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_TRUE(v->ok) << v->problem;
    EXPECT_EQ(v->legacy_rollouts.size(), 2u);
    EXPECT_EQ(v->events, 37);
  }
  DropGuards();
  ASSERT_EQ(RawExec("UPDATE file_changes SET sha256_after = 'ee' WHERE run_id = 'run-a-2'"), 0);
  absl::StatusOr<AuditVerifyResult> v = Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->ok);
  EXPECT_THAT(v->problem, HasSubstr("file_changes"));
}

// The first keyed use of an upgraded audit is a commit of events: the seal is taken before
// them (taken after, it would hold them and the ledger would replay them twice).
TEST_F(AuditLedgerTest, OlderAuditSealedBeforeItsFirstEvents) {
  TwoRollouts();
  DropGuards();
  ASSERT_NO_FATAL_FAILURE(BackToAnOlderMimic());
  auto a = OpenAudit();
  ASSERT_NE(a, nullptr);
  v1::Event e = Base("run-c", "mi-3", 1);
  e.mutable_step_started()->set_step("preflight");
  ASSERT_TRUE(a->AppendEvent(kRollout, e).ok());
  ASSERT_TRUE(a->Flush().ok());
  absl::StatusOr<AuditVerifyResult> v = a->VerifyAudit();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->legacy_rollouts.size(), 2u);
  EXPECT_EQ(v->events, 37);
}

}  // namespace
}  // namespace mimic::controller
