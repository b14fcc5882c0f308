// The audit's writes: schema, the event writer thread with its hash chain, the tables derived
// from events, and chain verification. The read queries are in audit_query.cc.
#include "controller/audit/audit.h"

#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/base/fs.h"
#include "common/base/logging.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "controller/audit/audit_internal.h"
#include "controller/audit/sql_db.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;

// The portable schema. Times are BIGINT unix microseconds (UTC); booleans are BIGINT 0/1.
// The events table is the record; runs, steps, file_changes and config_changes are derived
// from it as events are committed; event_chains holds each rollout's chain length and head so
// that deleting the last rows is detected too; the ledger keys every write (audit.h).
std::vector<std::string> SchemaStatements(const std::string& blob_type) {
  return {
      "CREATE TABLE IF NOT EXISTS schema_meta (key TEXT NOT NULL PRIMARY KEY, "
      "value TEXT NOT NULL)",
      "CREATE TABLE IF NOT EXISTS operators (id BIGINT NOT NULL PRIMARY KEY, "
      "os_user TEXT NOT NULL, cert_subject TEXT NOT NULL, UNIQUE (os_user, cert_subject))",
      "CREATE TABLE IF NOT EXISTS rollouts (id TEXT NOT NULL PRIMARY KEY, "
      "plan_path TEXT NOT NULL, plan_sha256 TEXT NOT NULL, inventory_path TEXT NOT NULL, "
      "operator_id BIGINT, check_mode BIGINT NOT NULL DEFAULT 0, started_at BIGINT, "
      "finished_at BIGINT, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '')",
      "CREATE INDEX IF NOT EXISTS rollouts_started ON rollouts (started_at)",
      "CREATE TABLE IF NOT EXISTS stages (rollout_id TEXT NOT NULL, name TEXT NOT NULL, "
      "idx BIGINT NOT NULL, status TEXT NOT NULL, started_at BIGINT, finished_at BIGINT, "
      "PRIMARY KEY (rollout_id, name))",
      "CREATE TABLE IF NOT EXISTS batches (rollout_id TEXT NOT NULL, stage TEXT NOT NULL, "
      "idx BIGINT NOT NULL, hosts TEXT NOT NULL, PRIMARY KEY (rollout_id, stage, idx))",
      "CREATE TABLE IF NOT EXISTS runs (run_id TEXT NOT NULL PRIMARY KEY, "
      "rollout_id TEXT NOT NULL, host TEXT NOT NULL, stage TEXT NOT NULL DEFAULT '', "
      "batch_idx BIGINT NOT NULL DEFAULT -1, mode TEXT NOT NULL DEFAULT '', "
      "status TEXT NOT NULL, created_at BIGINT, started_at BIGINT, finished_at BIGINT, "
      "last_seq BIGINT NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', "
      "agent_version TEXT NOT NULL DEFAULT '', source_version TEXT NOT NULL DEFAULT '', "
      "target_version TEXT NOT NULL DEFAULT '')",
      "CREATE INDEX IF NOT EXISTS runs_rollout ON runs (rollout_id)",
      "CREATE INDEX IF NOT EXISTS runs_host ON runs (host)",
      "CREATE TABLE IF NOT EXISTS events (rollout_id TEXT NOT NULL, idx BIGINT NOT NULL, "
      "run_id TEXT NOT NULL, seq BIGINT NOT NULL, time_us BIGINT NOT NULL, "
      "kind TEXT NOT NULL, step TEXT NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL, "
      "payload " +
          blob_type +
          " NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, "
          "PRIMARY KEY (rollout_id, idx), UNIQUE (run_id, seq))",
      "CREATE TABLE IF NOT EXISTS event_chains (rollout_id TEXT NOT NULL PRIMARY KEY, "
      "event_count BIGINT NOT NULL, head_hash TEXT NOT NULL)",
      "CREATE TABLE IF NOT EXISTS steps (run_id TEXT NOT NULL, idx BIGINT NOT NULL, "
      "name TEXT NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', "
      "duration_us BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (run_id, idx))",
      "CREATE TABLE IF NOT EXISTS file_changes (run_id TEXT NOT NULL, seq BIGINT NOT NULL, "
      "ord BIGINT NOT NULL, step_idx BIGINT NOT NULL, step TEXT NOT NULL, path TEXT NOT NULL, "
      "action TEXT NOT NULL, "
      "size BIGINT NOT NULL, sha256_before TEXT NOT NULL, sha256_after TEXT NOT NULL, "
      "note TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, seq, ord))",
      // --diff: a file change's unified diff (redacted), when the run asked for diffs. Its own
      // table so audits made before it need no migration (rows only for changes with a diff).
      "CREATE TABLE IF NOT EXISTS file_diffs (run_id TEXT NOT NULL, seq BIGINT NOT NULL, "
      "ord BIGINT NOT NULL, diff TEXT NOT NULL, PRIMARY KEY (run_id, seq, ord))",
      "CREATE TABLE IF NOT EXISTS config_changes (run_id TEXT NOT NULL, "
      "seq BIGINT NOT NULL, ord BIGINT NOT NULL, step_idx BIGINT NOT NULL, "
      "step TEXT NOT NULL, file TEXT NOT NULL, "
      "key TEXT NOT NULL, action TEXT NOT NULL, old_value TEXT NOT NULL, "
      "new_value TEXT NOT NULL, redacted BIGINT NOT NULL DEFAULT 0, "
      "note TEXT NOT NULL DEFAULT '', PRIMARY KEY (run_id, seq, ord))",
      "CREATE TABLE IF NOT EXISTS approvals (rollout_id TEXT NOT NULL, stage TEXT NOT NULL, "
      "who TEXT NOT NULL, at BIGINT NOT NULL, forced BIGINT NOT NULL DEFAULT 0)",
      "CREATE INDEX IF NOT EXISTS approvals_rollout ON approvals (rollout_id)",
      // A rollout's scope (RolloutScope), written once with the rollout. Added after schema
      // version 1 shipped: a rollout without a row here predates stored scopes.
      "CREATE TABLE IF NOT EXISTS rollout_scopes (rollout_id TEXT NOT NULL PRIMARY KEY, "
      "stage TEXT NOT NULL, host_limit TEXT NOT NULL, hosts TEXT NOT NULL)",
      "CREATE TABLE IF NOT EXISTS rollout_scope_batches (rollout_id TEXT NOT NULL, "
      "ord BIGINT NOT NULL, stage TEXT NOT NULL, idx BIGINT NOT NULL, hosts TEXT NOT NULL, "
      "PRIMARY KEY (rollout_id, ord))",
      // Schema version 2: the keyed ledger of every write (audit.h). Append-only.
      "CREATE TABLE IF NOT EXISTS ledger (idx BIGINT NOT NULL PRIMARY KEY, "
      "rollout_id TEXT NOT NULL, kind TEXT NOT NULL, body " +
          blob_type +
          " NOT NULL, at BIGINT NOT NULL, key_id TEXT NOT NULL, prev_mac TEXT NOT NULL, "
          "mac TEXT NOT NULL)",
      "CREATE INDEX IF NOT EXISTS ledger_rollout ON ledger (rollout_id)",
  };
}

int64_t NowMicros() { return AuditNowMicros(); }

// The columns of an events row that repeat what its payload says (for queries by step,
// `mimic logs`); VerifyChain checks them against the payload.
struct EventColumns {
  std::string kind;
  std::string step;
  std::string status;
  std::string message;
  bool operator==(const EventColumns&) const = default;
};

EventColumns DerivedColumns(const v1::Event& e) {
  switch (e.kind_case()) {
    case v1::Event::kRunStarted:
      return {"run_started", "", "running", ""};
    case v1::Event::kStepStarted:
      return {"step_started", e.step_started().step(), "running", ""};
    case v1::Event::kLog:
      return {"log", e.log().step(), LogLevelName(e.log().level()), e.log().text()};
    case v1::Event::kStepFinished:
      return {"step_finished", e.step_finished().step(), StepStatusName(e.step_finished().status()),
              e.step_finished().message()};
    case v1::Event::kRunFinished:
      return {"run_finished", "", RunStatusName(e.run_finished().status()),
              e.run_finished().message()};
    case v1::Event::KIND_NOT_SET:
      break;
  }
  return {};
}

// Replaces each NUL in every string field of `m` (recursively) by the two characters "\0".
void EscapeNuls(google::protobuf::Message& m) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  auto escaped = [](const std::string& s) {
    return absl::StrReplaceAll(s, {{std::string(1, '\0'), "\\0"}});
  };
  std::string scratch;  // the references below read the field in place: no copy per string
  for (const FieldDescriptor* f : fields) {
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(m, f); ++i) {
          const std::string& v = r->GetRepeatedStringReference(m, f, i, &scratch);
          if (v.find('\0') != std::string::npos) r->SetRepeatedString(&m, f, i, escaped(v));
        }
      } else {
        const std::string& v = r->GetStringReference(m, f, &scratch);
        if (v.find('\0') != std::string::npos) r->SetString(&m, f, escaped(v));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_map()) continue;  // plan vars/params: kept in the payload as sent
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(m, f); ++i) {
          EscapeNuls(*r->MutableRepeatedMessage(&m, f, i));
        }
      } else {
        EscapeNuls(*r->MutableMessage(&m, f));
      }
    }
  }
}

// The agent redacts before sending; the audit redacts again, defensively, so a secret that
// slipped through never reaches the audit (or the reports built from it). Text is made
// NUL-safe here too, the one place every event passes before it is hashed and stored.
v1::Event Sanitized(v1::Event e) {
  EscapeNuls(e);
  switch (e.kind_case()) {
    case v1::Event::kLog:
      e.mutable_log()->set_text(common::RedactText(e.log().text()));
      break;
    case v1::Event::kStepFinished: {
      v1::StepFinished* f = e.mutable_step_finished();
      f->set_message(common::RedactText(f->message()));
      for (v1::FileChange& c : *f->mutable_changes()) {
        if (!c.diff().empty()) c.set_diff(common::RedactText(c.diff()));
      }
      for (v1::ConfigChange& c : *f->mutable_config_changes()) {
        // "" (a key added or dropped: no value) stays "", as the agent reports it.
        auto redact = [&](const std::string& v) {
          return v.empty() ? v : common::RedactValue(c.key(), v);
        };
        std::string old_value = redact(c.old_value());
        std::string new_value = redact(c.new_value());
        if (old_value != c.old_value() || new_value != c.new_value()) c.set_redacted(true);
        c.set_old_value(std::move(old_value));
        c.set_new_value(std::move(new_value));
      }
      break;
    }
    case v1::Event::kRunFinished:
      e.mutable_run_finished()->set_message(common::RedactText(e.run_finished().message()));
      break;
    default:
      break;
  }
  return e;
}

absl::StatusOr<int64_t> OperatorId(SqlDb& db, const std::string& os_user,
                                   const std::string& cert_subject) {
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db.Query("SELECT id FROM operators WHERE os_user = ? AND cert_subject = ?",
                            {os_user, cert_subject}));
  if (!rows.empty()) return rows[0][0].AsInt();
  // Ids are allocated under the write lock the caller holds.
  ASSIGN_OR_RETURN(rows, db.Query("SELECT COALESCE(MAX(id), 0) + 1 FROM operators"));
  int64_t id = rows[0][0].AsInt();
  RETURN_IF_ERROR(db.Exec("INSERT INTO operators (id, os_user, cert_subject) VALUES (?, ?, ?)",
                          {id, os_user, cert_subject})
                      .status());
  return id;
}

}  // namespace

int64_t AuditNowMicros() { return absl::ToUnixMicros(absl::Now()); }

void AppendBigEndian64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

absl::Status CreateAuditSchema(SqlDb& db) {
  for (const std::string& sql : SchemaStatements(db.BlobType())) {
    RETURN_IF_ERROR(db.Exec(sql).status());
  }
  for (const std::string& sql : db.ExtraSchema()) RETURN_IF_ERROR(db.Exec(sql).status());
  return absl::OkStatus();
}

absl::Status StoreChainHead(SqlDb& db, const std::string& rollout_id, int64_t count,
                            const std::string& head) {
  return db
      .Exec("INSERT INTO event_chains (rollout_id, event_count, head_hash) "
            "VALUES (?, ?, ?) ON CONFLICT (rollout_id) DO UPDATE SET "
            "event_count = excluded.event_count, head_hash = excluded.head_hash",
            {rollout_id, count, head})
      .status();
}

// The values of each record kind, in order:
//   rollout:  id, plan_path, plan_sha256, inventory_path, os_user, cert_subject, check_mode,
//             started_at, finished_at, status, message, has_scope, scope stage, scope limit,
//             scope hosts, batch count, then per batch: stage, idx, hosts
//   resume:   (none)
//   finish:   status, message, finished_at
//   stage:    name, idx, status, started_at, finished_at
//   batch:    stage, idx, hosts
//   approval: stage, who, at, forced
//   run:      run_id, host, stage, batch_idx, mode, created_at
absl::StatusOr<int64_t> ApplyAuditRecord(SqlDb& db, const std::string& rollout_id,
                                         const std::string& kind,
                                         const std::vector<SqlValue>& v) {
  auto need = [&](size_t n) -> absl::Status {
    if (v.size() >= n) return absl::OkStatus();
    return absl::DataLossError(absl::StrCat("audit record '", kind, "' of rollout ", rollout_id,
                                            " has ", v.size(), " values, not ", n));
  };
  if (kind == "rollout") {
    RETURN_IF_ERROR(need(16));
    ASSIGN_OR_RETURN(int64_t operator_id, OperatorId(db, v[4].AsText(), v[5].AsText()));
    if (v[11].AsInt() != 0) {
      RETURN_IF_ERROR(db.Exec("INSERT INTO rollout_scopes (rollout_id, stage, host_limit, "
                              "hosts) VALUES (?, ?, ?, ?)",
                              {rollout_id, v[12], v[13], v[14]})
                          .status());
      const int64_t batches = v[15].AsInt();
      RETURN_IF_ERROR(need(16 + 3 * static_cast<size_t>(std::max<int64_t>(batches, 0))));
      for (int64_t i = 0; i < batches; ++i) {
        const size_t at = 16 + 3 * static_cast<size_t>(i);
        RETURN_IF_ERROR(db.Exec("INSERT INTO rollout_scope_batches (rollout_id, ord, stage, "
                                "idx, hosts) VALUES (?, ?, ?, ?, ?)",
                                {rollout_id, i, v[at], v[at + 1], v[at + 2]})
                            .status());
      }
    }
    return db.Exec(
        "INSERT INTO rollouts (id, plan_path, plan_sha256, inventory_path, operator_id, "
        "check_mode, started_at, finished_at, status, message) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {rollout_id, v[1], v[2], v[3], operator_id, v[6], v[7], v[8], v[9], v[10]});
  }
  if (kind == "resume") {
    return db.Exec("UPDATE rollouts SET status = 'running', finished_at = NULL WHERE id = ?",
                   {rollout_id});
  }
  if (kind == "finish") {
    RETURN_IF_ERROR(need(3));
    return db.Exec("UPDATE rollouts SET status = ?, message = ?, finished_at = ? WHERE id = ?",
                   {v[0], v[1], v[2], rollout_id});
  }
  if (kind == "stage") {
    RETURN_IF_ERROR(need(5));
    return db.Exec(
        "INSERT INTO stages (rollout_id, name, idx, status, started_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rollout_id, name) DO UPDATE SET "
        "idx = excluded.idx, status = excluded.status, "
        "started_at = excluded.started_at, finished_at = excluded.finished_at",
        {rollout_id, v[0], v[1], v[2], v[3], v[4]});
  }
  if (kind == "batch") {
    RETURN_IF_ERROR(need(3));
    return db.Exec(
        "INSERT INTO batches (rollout_id, stage, idx, hosts) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (rollout_id, stage, idx) DO UPDATE SET hosts = excluded.hosts",
        {rollout_id, v[0], v[1], v[2]});
  }
  if (kind == "approval") {
    RETURN_IF_ERROR(need(4));
    return db.Exec(
        "INSERT INTO approvals (rollout_id, stage, who, at, forced) VALUES (?, ?, ?, ?, ?)",
        {rollout_id, v[0], v[1], v[2], v[3]});
  }
  if (kind == "run") {
    RETURN_IF_ERROR(need(6));
    return db.Exec(
        "INSERT INTO runs (run_id, rollout_id, host, stage, batch_idx, mode, status, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) "
        "ON CONFLICT (run_id) DO UPDATE SET stage = excluded.stage, "
        "batch_idx = excluded.batch_idx, mode = excluded.mode, host = excluded.host",
        {v[0], rollout_id, v[1], v[2], v[3], v[4], v[5]});
  }
  return absl::DataLossError(
      absl::StrCat("unknown audit record '", kind, "' for rollout ", rollout_id));
}

std::string EventChainHash(const std::string& prev_hash, const std::string& run_id, uint64_t seq,
                           const std::string& payload) {
  std::string in;
  in.reserve(prev_hash.size() + run_id.size() + payload.size() + 16);
  in += prev_hash;
  AppendBigEndian64(in, run_id.size());
  in += run_id;
  AppendBigEndian64(in, seq);
  in += payload;
  return common::Sha256Hex(in);
}

std::string DescribeScope(const RolloutScope& s) {
  return absl::StrCat("stage ", s.stage.empty() ? "(all)" : s.stage, ", limit ",
                      s.limit.empty() ? "(all)" : s.limit, ", hosts ",
                      s.hosts.empty() ? "(none)" : absl::StrJoin(s.hosts, ","));
}

std::string FormatRolloutId(absl::Time t, uint32_t random) {
  return absl::StrCat(absl::FormatTime("r-%Y%m%d-%H%M%S", t, absl::UTCTimeZone()),
                      absl::StrFormat("-%06x", random & 0xffffffu));
}

std::string NewRolloutId() {
  std::random_device rd;
  return FormatRolloutId(absl::Now(), rd());
}

// ---- Opening and closing -----------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Audit>> Audit::Open(const std::string& url_or_path,
                                                   const AuditOptions& options) {
  std::string path = url_or_path;
  const bool postgres = absl::StartsWith(url_or_path, "postgresql://") ||
                        absl::StartsWith(url_or_path, "postgres://");
  if (postgres) {
    // The url may hold a password: messages name it redacted only.
    path = common::RedactText(url_or_path);
  } else if (absl::StartsWith(url_or_path, "sqlite:")) {
    path = url_or_path.substr(7);
    if (absl::StartsWith(path, "//")) path = path.substr(2);
  } else if (size_t p = url_or_path.find("://"); p != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported audit database scheme '", url_or_path.substr(0, p),
                     "': use sqlite:PATH, a file path or postgresql://..."));
  }
  if (path.empty()) return absl::InvalidArgumentError("audit database path is empty");
  if (options.batch_size < 1) return absl::InvalidArgumentError("audit batch_size must be >= 1");

  ASSIGN_OR_RETURN(std::unique_ptr<SqlDb> db,
                   postgres ? OpenPostgresDb(url_or_path, options.busy_timeout)
                            : OpenSqliteDb(path, options.busy_timeout));
  AuditOptions opts = options;
  if (opts.signing_key_path.empty()) {
    opts.signing_key_path = DefaultSigningKeyPath(url_or_path, "");
  }
  std::unique_ptr<Audit> audit(new Audit(std::move(db), opts));
  {
    common::MutexLock l(&audit->db_mu_);
    if (absl::Status st = audit->InitSchema(); !st.ok()) {
      return common::Annotate(st, absl::StrCat("audit database ", path));
    }
  }
  audit->writer_ = std::thread([a = audit.get()] { a->WriterLoop(); });
  return audit;
}

Audit::Audit(std::unique_ptr<SqlDb> db, const AuditOptions& options)
    : options_(options), db_(std::move(db)) {}

Audit::~Audit() {
  {
    common::MutexLock l(&mu_);
    stop_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

absl::Status Audit::InitSchema() {
  return InWriteTxn([&]() -> absl::Status {
    RETURN_IF_ERROR(CreateAuditSchema(*db_));
    ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                     db_->Query("SELECT value FROM schema_meta WHERE key = 'schema_version'"));
    if (rows.empty()) {
      return db_
          ->Exec("INSERT INTO schema_meta (key, value) VALUES ('schema_version', ?)",
                 {absl::StrCat(kAuditSchemaVersion)})
          .status();
    }
    const int64_t version = rows[0][0].AsInt();
    if (version > kAuditSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat("schema version ", version,
                                                        " is newer than this mimic understands (",
                                                        kAuditSchemaVersion, "); upgrade mimic"));
    }
    if (version < kAuditSchemaVersion) {
      // Written by a mimic without the ledger: its rollouts are sealed as they are at the
      // first keyed use (SealLegacy); the older mimic refuses the upgraded database.
      RETURN_IF_ERROR(db_->Exec("UPDATE schema_meta SET value = ? WHERE key = 'schema_version'",
                                {absl::StrCat(kAuditSchemaVersion)})
                          .status());
      RETURN_IF_ERROR(db_->Exec("INSERT INTO schema_meta (key, value) VALUES ('ledger_legacy', "
                                "'pending') ON CONFLICT (key) DO NOTHING")
                          .status());
    }
    return absl::OkStatus();
  });
}

// ---- The ledger ----------------------------------------------------------------------------

absl::Status Audit::EnsureKey() {
  if (key_ != nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(key_, SigningKey::LoadOrCreate(options_.signing_key_path));
  return absl::OkStatus();
}

absl::Status Audit::EnsureKeyToCheck() {
  if (key_ != nullptr) return absl::OkStatus();
  // A key made now could never check what another key signed: it is made only for an audit
  // whose ledger is still empty.
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows, db_->Query("SELECT COUNT(*) FROM ledger"));
  const bool empty = rows.empty() || rows[0][0].AsInt() == 0;
  ASSIGN_OR_RETURN(key_, SigningKey::LoadOrCreate(options_.signing_key_path, empty));
  return absl::OkStatus();
}

absl::Status Audit::AppendLedgerEntry(const std::string& rollout_id, const std::string& kind,
                                      const std::string& body, int64_t at) {
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db_->Query("SELECT idx, mac, key_id FROM ledger ORDER BY idx DESC LIMIT 1"));
  int64_t idx = 0;
  std::string prev = kGenesisHash;
  if (!rows.empty()) {
    if (rows[0][2].AsText() != key_->id()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the audit's ledger is signed with key ", rows[0][2].AsText(),
          "; this controller's signing key ", key_->path(), " is key ", key_->id(),
          ": use the key file that signed the audit"));
    }
    idx = rows[0][0].AsInt() + 1;
    prev = rows[0][1].AsText();
  }
  std::string mac = key_->Mac(LedgerMacInput(prev, idx, rollout_id, kind, body, at, key_->id()));
  return db_
      ->Exec("INSERT INTO ledger (idx, rollout_id, kind, body, at, key_id, prev_mac, mac) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             {idx, rollout_id, kind, SqlValue::Blob(body), at, key_->id(), prev, mac})
      .status();
}

absl::Status Audit::SealLegacy() {
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db_->Query("SELECT value FROM schema_meta WHERE key = 'ledger_legacy'"));
  if (rows.empty() || rows[0][0].AsText() != "pending") return absl::OkStatus();
  std::set<std::string> ids;
  for (const auto& [table, column] : RolloutIdColumns()) {
    ASSIGN_OR_RETURN(rows, db_->Query(absl::StrCat("SELECT DISTINCT ", column, " FROM ", table)));
    for (const SqlRow& row : rows) ids.insert(row[0].AsText());
  }
  const int64_t now = NowMicros();
  for (const std::string& id : ids) {
    // The chain head as stored, then every table's rows of the rollout (a snapshot).
    ASSIGN_OR_RETURN(
        rows, db_->Query("SELECT event_count, head_hash FROM event_chains WHERE rollout_id = ?",
                         {id}));
    std::vector<SqlValue> v = {rows.empty() ? 0 : rows[0][0].AsInt(),
                               rows.empty() ? kGenesisHash : rows[0][1].AsText()};
    for (const AuditTable& t : AuditTables()) {
      ASSIGN_OR_RETURN(std::vector<SqlRow> dumped, DumpTable(*db_, t, id));
      v.push_back(t.name);
      v.push_back(static_cast<int64_t>(dumped.size()));
      for (SqlRow& row : dumped) {
        v.push_back(static_cast<int64_t>(row.size()));
        for (SqlValue& c : row) v.push_back(std::move(c));
      }
    }
    RETURN_IF_ERROR(AppendLedgerEntry(id, "legacy", EncodeValues(v), now));
  }
  LOG(INFO) << "audit: sealed " << ids.size()
            << " rollouts written before the keyed ledger (vouched for from now on)";
  return db_->Exec("UPDATE schema_meta SET value = 'sealed' WHERE key = 'ledger_legacy'")
      .status();
}

absl::Status Audit::SealLegacyIfPending() {
  // Looked at first, so that checking a read-only copy of an audit writes nothing.
  ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                   db_->Query("SELECT value FROM schema_meta WHERE key = 'ledger_legacy'"));
  if (rows.empty() || rows[0][0].AsText() != "pending") return absl::OkStatus();
  return InWriteTxn([&] { return SealLegacy(); });
}

absl::Status Audit::PrepareLedger() {
  RETURN_IF_ERROR(EnsureKey());
  return SealLegacy();
}

absl::StatusOr<int64_t> Audit::Record(const std::string& rollout_id, const std::string& kind,
                                      const std::vector<SqlValue>& values) {
  RETURN_IF_ERROR(PrepareLedger());  // before the write: a legacy seal must not hold it
  ASSIGN_OR_RETURN(int64_t n, ApplyAuditRecord(*db_, rollout_id, kind, values));
  if (n > 0) {
    RETURN_IF_ERROR(AppendLedgerEntry(rollout_id, kind, EncodeValues(values), NowMicros()));
  }
  return n;
}

// ---- The event writer ----------------------------------------------------------------------

absl::Status Audit::AppendEvent(const std::string& rollout_id, const v1::Event& event) {
  return AppendEvent(rollout_id, v1::Event(event));
}

absl::Status Audit::AppendEvent(const std::string& rollout_id, v1::Event&& event) {
  if (rollout_id.empty()) return absl::InvalidArgumentError("audit event without rollout id");
  if (event.run_id().empty()) return absl::InvalidArgumentError("audit event without run id");
  if (event.seq() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit event of run ", event.run_id(), " has seq 0"));
  }
  Pending pending{rollout_id, Sanitized(std::move(event)), {}};
  if (!pending.event.SerializeToString(&pending.payload)) {
    return absl::InternalError(
        absl::StrCat("cannot serialize event ", event.run_id(), "#", event.seq()));
  }
  common::MutexLock l(&mu_);
  auto room = [this]() {
    return appended_ - done_ < static_cast<uint64_t>(options_.max_queued) || stop_ || failed_;
  };
  if (!room()) {
    ++blocked_producers_;
    mu_.Await(absl::Condition(&room));
    --blocked_producers_;
  }
  if (stop_) return absl::FailedPreconditionError("the audit is closing");
  if (failed_) return write_error_;
  queue_.push_back(std::move(pending));
  ++appended_;
  return absl::OkStatus();
}

absl::Status Audit::Flush() {
  common::MutexLock l(&mu_);
  const uint64_t target = appended_;
  ++flush_waiters_;
  auto settled = [&]() { return done_ >= target || failed_; };
  mu_.Await(absl::Condition(&settled));
  --flush_waiters_;
  if (done_ >= target) return absl::OkStatus();
  return write_error_;
}

AuditStats Audit::Stats() const {
  common::MutexLock l(&mu_);
  return StatsLocked();
}

AuditStats Audit::StatsLocked() const {
  return AuditStats{appended_ - done_, blocked_producers_, failed_, failed_commits_};
}

bool Audit::AwaitStats(const std::function<bool(const AuditStats&)>& done,
                       absl::Duration timeout) const {
  common::MutexLock l(&mu_);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done(StatsLocked());
  };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

// A failed writer waits for the close, which tries once more.
bool Audit::HasWork() const { return (!queue_.empty() && !failed_) || stop_; }

bool Audit::BatchReady() const {
  return queue_.size() >= static_cast<size_t>(options_.batch_size) || stop_ || flush_waiters_ > 0;
}

void Audit::WriterLoop() {
  int failures = 0;  // consecutive failed commits
  while (true) {
    {
      common::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &Audit::HasWork));
      if (queue_.empty()) return;  // stopping, and everything is written
      if (!BatchReady()) {
        mu_.AwaitWithTimeout(absl::Condition(this, &Audit::BatchReady), options_.flush_interval);
      }
    }
    absl::Duration backoff;
    {
      // db_mu_ is taken before the batch leaves the queue, so LastSeq() (which holds db_mu_
      // while it looks at the database and then the queue) never misses an event in flight.
      common::MutexLock db_lock(&db_mu_);
      std::vector<Pending> batch;
      {
        common::MutexLock l(&mu_);
        size_t n = std::min(queue_.size(), static_cast<size_t>(options_.batch_size));
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      absl::Status st = options_.before_commit ? options_.before_commit() : absl::OkStatus();
      if (st.ok()) st = CommitBatch(batch);
      common::MutexLock l(&mu_);
      if (st.ok()) {
        done_ += batch.size();
        failures = 0;
        continue;
      }
      ++failures;
      ++failed_commits_;
      LOG(ERROR) << "audit: committing " << batch.size() << " events failed (attempt " << failures
                 << " of " << options_.commit_attempts << "): " << st.message();
      // Never dropped while the audit is open: back to the front of the queue, in order.
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(std::move(*it));
      if (failures >= options_.commit_attempts) {
        const uint64_t held = queue_.size();
        if (stop_) {
          LOG(ERROR) << "audit: closing with " << held << " events NOT WRITTEN after "
                     << failures << " attempts: " << st.message();
          done_ += held;
          queue_.clear();
          return;
        }
        failed_ = true;
        write_error_ = absl::UnavailableError(absl::StrCat(
            "audit: committing events failed ", failures, " attempts in a row (last: ",
            st.message(), "); ", held, " events are held and tried again on close"));
        LOG(ERROR) << write_error_.message();
        failures = 0;  // the close gets its own attempts
        continue;
      }
      backoff = std::min(options_.initial_backoff * (1 << std::min(failures - 1, 20)),
                         options_.max_backoff);
    }
    absl::SleepFor(backoff);  // a retry's pause, not synchronisation: nothing waits on it
  }
}

absl::Status Audit::CommitBatch(const std::vector<Pending>& batch) {
  return InWriteTxn([&]() -> absl::Status {
    struct Head {
      int64_t from = 0;  // the length before this batch
      int64_t count = 0;
      std::string hash;
      bool dirty = false;
    };
    const int64_t now = NowMicros();
    RETURN_IF_ERROR(PrepareLedger());  // before the events: a legacy seal must not hold them
    std::map<std::string, Head> heads;  // read inside the transaction: another process may
                                        // have appended to the same database
    // per rollout, the events inserted (in `batch`, which outlives this)
    std::map<std::string, std::vector<const v1::Event*>> stored;
    for (const Pending& p : batch) {
      auto it = heads.find(p.rollout_id);
      if (it == heads.end()) {
        ASSIGN_OR_RETURN(
            std::vector<SqlRow> rows,
            db_->Query("SELECT event_count, head_hash FROM event_chains WHERE rollout_id = ?",
                       {p.rollout_id}));
        Head h{0, 0, kGenesisHash, false};
        if (!rows.empty()) {
          h = Head{rows[0][0].AsInt(), rows[0][0].AsInt(), rows[0][1].AsText(), false};
        }
        it = heads.emplace(p.rollout_id, std::move(h)).first;
      }
      Head& head = it->second;
      const v1::Event& e = p.event;
      const std::string& payload = p.payload;
      std::string hash = EventChainHash(head.hash, e.run_id(), e.seq(), payload);
      EventColumns c = DerivedColumns(e);
      ASSIGN_OR_RETURN(
          int64_t inserted,
          db_->Exec("INSERT INTO events (rollout_id, idx, run_id, seq, time_us, kind, step, "
                    "status, message, payload, prev_hash, hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, seq) DO NOTHING",
                    {p.rollout_id, head.count, e.run_id(), e.seq(), e.time_unix_micros(), c.kind,
                     c.step, c.status, c.message, SqlValue::Blob(payload), head.hash, hash}));
      if (inserted == 0) continue;  // a repeat of a stored event: not chained again
      head = Head{head.from, head.count + 1, std::move(hash), true};
      stored[p.rollout_id].push_back(&e);
    }
    for (const auto& [rollout_id, head] : heads) {
      if (!head.dirty) continue;
      RETURN_IF_ERROR(ApplyEventRows(*db_, rollout_id, stored[rollout_id], now));
      RETURN_IF_ERROR(StoreChainHead(*db_, rollout_id, head.count, head.hash));
      // events: from, count, head, now (the time of events that carry none)
      RETURN_IF_ERROR(AppendLedgerEntry(
          rollout_id, "events", EncodeValues({head.from, head.count, head.hash, now}), now));
    }
    return absl::OkStatus();
  });
}

namespace {

// The rows of one event but its run's (ApplyEventRows writes that first).
absl::Status ApplyEventKindRows(SqlDb& db, const v1::Event& e, int64_t now) {
  const int64_t time = e.time_unix_micros() != 0 ? e.time_unix_micros() : now;
  switch (e.kind_case()) {
    case v1::Event::kRunStarted: {
      const v1::RunStarted& s = e.run_started();
      return db
          .Exec(
              "UPDATE runs SET status = 'running', started_at = ?, "
              "mode = CASE WHEN mode = '' THEN ? ELSE mode END, "
              "stage = CASE WHEN stage = '' THEN ? ELSE stage END, "
              "agent_version = ?, source_version = ?, target_version = ? WHERE run_id = ?",
              {time, ModeName(s.plan().mode(), s.plan().rollback_check()), s.plan().stage(),
               s.agent_version(),
               s.source_version(), s.target_version(), e.run_id()})
          .status();
    }
    case v1::Event::kStepStarted:
      return db
          .Exec(
              "INSERT INTO steps (run_id, idx, name, status, message, duration_us) "
              "VALUES (?, ?, ?, 'running', '', 0) ON CONFLICT (run_id, idx) DO NOTHING",
              {e.run_id(), e.step_started().index(), e.step_started().step()})
          .status();
    case v1::Event::kStepFinished: {
      const v1::StepFinished& f = e.step_finished();
      RETURN_IF_ERROR(db.Exec("INSERT INTO steps (run_id, idx, name, status, message, duration_us) "
                              "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, idx) DO UPDATE SET "
                              "name = excluded.name, status = excluded.status, "
                              "message = excluded.message, duration_us = excluded.duration_us",
                              {e.run_id(), f.index(), f.step(), StepStatusName(f.status()),
                               f.message(), f.duration_micros()})
                          .status());
      for (int i = 0; i < f.changes_size(); ++i) {
        const v1::FileChange& c = f.changes(i);
        RETURN_IF_ERROR(
            db.Exec("INSERT INTO file_changes (run_id, seq, ord, step_idx, step, path, action, "
                    "size, sha256_before, sha256_after, note) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, seq, ord) DO NOTHING",
                    {e.run_id(), e.seq(), i, f.index(), f.step(), c.path(), ActionName(c.action()),
                     c.size(), c.sha256_before(), c.sha256_after(), c.note()})
                .status());
        if (!c.diff().empty()) {
          RETURN_IF_ERROR(db.Exec("INSERT INTO file_diffs (run_id, seq, ord, diff) "
                                  "VALUES (?, ?, ?, ?) ON CONFLICT (run_id, seq, ord) DO NOTHING",
                                  {e.run_id(), e.seq(), i, c.diff()})
                              .status());
        }
      }
      for (int i = 0; i < f.config_changes_size(); ++i) {
        const v1::ConfigChange& c = f.config_changes(i);  // already sanitized
        RETURN_IF_ERROR(
            db.Exec("INSERT INTO config_changes (run_id, seq, ord, step_idx, step, file, key, "
                    "action, old_value, new_value, redacted, note) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, seq, ord) DO NOTHING",
                    {e.run_id(), e.seq(), i, f.index(), f.step(), c.file(), c.key(), c.action(),
                     c.old_value(), c.new_value(), c.redacted() ? 1 : 0, c.note()})
                .status());
      }
      return absl::OkStatus();
    }
    case v1::Event::kRunFinished: {
      // The versions preflight found come with the run's end (RunStarted precedes preflight);
      // an empty one keeps what RunStarted said.
      const v1::RunFinished& f = e.run_finished();
      std::string sql = "UPDATE runs SET status = ?, finished_at = ?, message = ?";
      std::vector<SqlValue> params = {RunStatusName(f.status()), time, f.message()};
      if (!f.source_version().empty()) {
        sql += ", source_version = ?";
        params.push_back(f.source_version());
      }
      if (!f.target_version().empty()) {
        sql += ", target_version = ?";
        params.push_back(f.target_version());
      }
      sql += " WHERE run_id = ?";
      params.push_back(e.run_id());
      return db.Exec(sql, params).status();
    }
    default:
      return absl::OkStatus();
  }
}

}  // namespace

absl::Status ApplyEventRows(SqlDb& db, const std::string& rollout_id,
                            const std::vector<const v1::Event*>& events, int64_t now) {
  // Every run named: it exists (even when never registered; created at its first event's
  // time, as 'pending'), last_seq moves forward to its highest seq, an empty host takes the
  // first one named. One statement per run, before the events' own rows (which update it).
  struct Run {
    const v1::Event* first = nullptr;
    std::string host;
    uint64_t max_seq = 0;
  };
  std::vector<std::string> order;
  std::map<std::string, Run> runs;
  for (const v1::Event* event : events) {
    const v1::Event& e = *event;
    auto [it, added] = runs.try_emplace(e.run_id());
    Run& r = it->second;
    if (added) {
      order.push_back(e.run_id());
      r.first = &e;
    }
    if (r.host.empty()) r.host = e.host();
    r.max_seq = std::max<uint64_t>(r.max_seq, e.seq());
  }
  for (const std::string& id : order) {
    const Run& r = runs[id];
    const int64_t time = r.first->time_unix_micros() != 0 ? r.first->time_unix_micros() : now;
    RETURN_IF_ERROR(
        db.Exec("INSERT INTO runs (run_id, rollout_id, host, status, created_at, last_seq) "
                "VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                "last_seq = CASE WHEN excluded.last_seq > runs.last_seq "
                "THEN excluded.last_seq ELSE runs.last_seq END, "
                "host = CASE WHEN runs.host = '' THEN excluded.host ELSE runs.host END",
                {id, rollout_id, r.host, time, r.max_seq})
            .status());
  }
  for (const v1::Event* e : events) RETURN_IF_ERROR(ApplyEventKindRows(db, *e, now));
  return absl::OkStatus();
}

// ---- Synchronous writes --------------------------------------------------------------------

absl::Status Audit::BeginRollout(const RolloutRecord& r) {
  if (r.id.empty()) return absl::InvalidArgumentError("rollout id is empty");
  common::MutexLock l(&db_mu_);
  return InWriteTxn([&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                     db_->Query("SELECT id FROM rollouts WHERE id = ?", {r.id}));
    if (!rows.empty()) {
      return absl::AlreadyExistsError(absl::StrCat("rollout ", r.id, " already exists"));
    }
    std::vector<SqlValue> v = {r.id,
                               r.plan_path,
                               r.plan_sha256,
                               r.inventory_path,
                               r.os_user,
                               r.cert_subject,
                               r.check_mode ? 1 : 0,
                               r.started_at_us != 0 ? r.started_at_us : NowMicros(),
                               SqlValue::IntOrNull(r.finished_at_us),
                               r.status.empty() ? "running" : r.status,
                               r.message,
                               r.has_scope ? 1 : 0,
                               r.scope.stage,
                               r.scope.limit,
                               absl::StrJoin(r.scope.hosts, ","),
                               static_cast<int64_t>(r.has_scope ? r.scope.batches.size() : 0)};
    if (r.has_scope) {
      for (const BatchRecord& b : r.scope.batches) {
        v.push_back(b.stage);
        v.push_back(b.idx);
        v.push_back(absl::StrJoin(b.hosts, ","));
      }
    }
    return Record(r.id, "rollout", v).status();
  });
}

absl::Status Audit::ResumeRollout(const std::string& rollout_id) {
  common::MutexLock l(&db_mu_);
  return InWriteTxn([&]() -> absl::Status {
    ASSIGN_OR_RETURN(int64_t n, Record(rollout_id, "resume", {}));
    if (n == 0) return absl::NotFoundError(absl::StrCat("no rollout ", rollout_id));
    return absl::OkStatus();
  });
}

absl::Status Audit::FinishRollout(const std::string& rollout_id, const std::string& status,
                                  const std::string& message) {
  RETURN_IF_ERROR(Flush());
  common::MutexLock l(&db_mu_);
  return InWriteTxn([&]() -> absl::Status {
    ASSIGN_OR_RETURN(int64_t n, Record(rollout_id, "finish",
                                       {status, common::RedactText(message), NowMicros()}));
    if (n == 0) return absl::NotFoundError(absl::StrCat("no rollout ", rollout_id));
    return absl::OkStatus();
  });
}

absl::Status Audit::RecordStage(const StageRecord& s) {
  common::MutexLock l(&db_mu_);
  return InWriteTxn([&]() -> absl::Status {
    return Record(s.rollout_id, "stage",
                  {s.name, s.idx, s.status, SqlValue::IntOrNull(s.started_at_us),
                   SqlValue::IntOrNull(s.finished_at_us)})
        .status();
  });
}

absl::Status Audit::RecordBatch(const BatchRecord& b) {
  common::MutexLock l(&db_mu_);
  return InWriteTxn([&]() -> absl::Status {
    return Record(b.rollout_id, "batch", {b.stage, b.idx, absl::StrJoin(b.hosts, ",")}).status();
  });
}

absl::Status Audit::RecordApproval(const ApprovalRecord& a) {
  common::MutexLock l(&db_mu_);
  return InWriteTxn([&]() -> absl::Status {
    return Record(a.rollout_id, "approval",
                  {a.stage, a.who, a.at_us != 0 ? a.at_us : NowMicros(), a.forced ? 1 : 0})
        .status();
  });
}

absl::Status Audit::RegisterRun(const std::string& run_id, const std::string& rollout_id,
                                const std::string& host, const std::string& stage, int batch_idx,
                                v1::Mode mode, bool rollback_check) {
  return RegisterRuns(rollout_id,
                      {RunRegistration{run_id, host, stage, batch_idx, mode, rollback_check}});
}

absl::Status Audit::RegisterRuns(const std::string& rollout_id,
                                 const std::vector<RunRegistration>& runs) {
  for (const RunRegistration& r : runs) {
    if (r.run_id.empty() || rollout_id.empty()) {
      return absl::InvalidArgumentError("RegisterRun needs a run id and a rollout id");
    }
  }
  common::MutexLock l(&db_mu_);
  return InWriteTxn([&]() -> absl::Status {
    for (const RunRegistration& r : runs) {
      RETURN_IF_ERROR(Record(rollout_id, "run",
                             {r.run_id, r.host, r.stage, r.batch_idx,
                              ModeName(r.mode, r.rollback_check),
                              NowMicros()})
                          .status());
    }
    return absl::OkStatus();
  });
}

// ---- Verification --------------------------------------------------------------------------

absl::StatusOr<VerifyResult> Audit::VerifyChain(const std::string& rollout_id) {
  common::MutexLock l(&db_mu_);  // the whole walk sees one state of the chain
  return VerifyChainLocked(rollout_id, nullptr);
}

absl::StatusOr<VerifyResult> Audit::VerifyChainLocked(const std::string& rollout_id,
                                                      std::vector<std::string>* hashes) {
  constexpr int kPage = 1000;  // rows held in memory at a time
  ASSIGN_OR_RETURN(
      std::vector<SqlRow> chain,
      db_->Query("SELECT event_count, head_hash FROM event_chains WHERE rollout_id = ?",
                 {rollout_id}));
  VerifyResult r;
  r.head_hash = kGenesisHash;
  auto fail = [&r](int64_t idx, std::string run_id, uint64_t seq, std::string reason) {
    r.ok = false;
    r.bad_index = idx;
    r.bad_run_id = std::move(run_id);
    r.bad_seq = seq;
    r.reason = std::move(reason);
    return r;
  };
  int64_t next_idx = 0;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<SqlRow> rows,
                     db_->Query("SELECT idx, run_id, seq, time_us, kind, step, status, "
                                "message, payload, prev_hash, hash FROM events "
                                "WHERE rollout_id = ? AND idx >= ? ORDER BY idx LIMIT ?",
                                {rollout_id, next_idx, kPage}));
    for (const SqlRow& row : rows) {
      const int64_t idx = row[0].AsInt();
      const std::string run_id = row[1].AsText();
      const uint64_t seq = static_cast<uint64_t>(row[2].AsInt());
      if (idx != r.events) {
        return fail(
            r.events, run_id, seq,
            absl::StrCat("events #", r.events, "..#", idx - 1,
                         " are missing (deleted); the next present is ", run_id, " seq ", seq));
      }
      if (row[9].AsText() != r.head_hash) {
        return fail(idx, run_id, seq, "prev_hash does not match the previous event's hash");
      }
      const std::string& payload = row[8].raw_text();
      std::string hash = EventChainHash(r.head_hash, run_id, seq, payload);
      if (hash != row[10].AsText()) {
        return fail(idx, run_id, seq, "hash mismatch: the row was edited");
      }
      v1::Event e;
      if (!e.ParseFromString(payload)) return fail(idx, run_id, seq, "payload does not decode");
      EventColumns stored{row[4].AsText(), row[5].AsText(), row[6].AsText(), row[7].AsText()};
      if (e.run_id() != run_id || e.seq() != seq || e.time_unix_micros() != row[3].AsInt() ||
          !(DerivedColumns(e) == stored)) {
        return fail(idx, run_id, seq, "columns differ from the payload: the row was edited");
      }
      if (hashes != nullptr) hashes->push_back(hash);
      r.head_hash = std::move(hash);
      ++r.events;
      next_idx = idx + 1;
    }
    if (rows.size() < static_cast<size_t>(kPage)) break;
  }
  const int64_t recorded = chain.empty() ? 0 : chain[0][0].AsInt();
  const std::string recorded_head = chain.empty() ? kGenesisHash : chain[0][1].AsText();
  if (recorded != r.events) {
    return fail(
        r.events, "", 0,
        absl::StrCat("the chain records ", recorded, " events but ", r.events,
                     recorded > r.events ? " are present: the last rows were deleted"
                                         : " are present: rows were added outside the audit"));
  }
  if (recorded_head != r.head_hash) {
    return fail(r.events - 1, "", 0, "the recorded chain head differs from the last event");
  }
  return r;
}

}  // namespace mimic::controller
