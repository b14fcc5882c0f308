// The central audit: every rollout, its stages, batches, approvals, runs, and every event the
// agents streamed back, with the steps and the file and config changes derived from them.
//
// Storage is SQLite now (PostgreSQL later behind the same class; the SQL is portable and the
// engine specifics sit behind SqlDb in sql_db.h). Times are unix microseconds, UTC, everywhere:
// in the columns and in the records below; 0 in a record (NULL in a column) means "not yet" or
// "unknown".
//
// Events are append-only and each rollout's events form a hash chain, in insertion order:
//   hash = sha256_hex(prev_hash || be64(len(run_id)) || run_id || be64(seq) || payload)
// where prev_hash is the previous event's hash as 64 lower-case hex characters (64 zeros for
// the first), be64 is an 8-byte big-endian integer and payload the stored serialized
// mimic.v1.Event. VerifyChain() recomputes it, so an edited or deleted row is found.
//
// The ledger keys it all (VerifyAudit). Every write (a rollout begun with its operator and
// scope, resumed, finished; a stage, batch, approval or run registered; each commit of events
// with the rollout's new chain length and head) appends one ledger entry in the same
// transaction, in the order the writes were applied:
//   mac = hex(HMAC-SHA256(key, "mimic-ledger-v1" || prev_mac || be64(idx) || lp(rollout_id)
//                              || lp(kind) || lp(body) || be64(at) || lp(key_id)))
// with lp(x) = be64(len(x)) || x, prev_mac the previous entry's mac (64 zeros for the first),
// body the write's values (EncodeValues), key the controller's signing key (a 32-byte file,
// 0600, see AuditOptions::signing_key_path) and key_id its SigningKeyId. The ledger is the
// list of rollouts and of their chain heads: VerifyAudit checks its macs, then for each
// rollout its event chain against the sealed heads, then replays the rollout's ledger
// entries and events into an empty database and compares every table the reports and
// `mimic status` read (rollouts with their operator, scopes, stages, batches, approvals,
// runs, steps, file and config changes, chain heads) row by row with what is stored.
// One kind of entry belongs to no rollout (rollout_id ""): "head_key", recording the public
// key (id, base64) of the Ed25519 head key that signs exported heads (ExportHead).
#ifndef MIMIC_CONTROLLER_AUDIT_AUDIT_H_
#define MIMIC_CONTROLLER_AUDIT_AUDIT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/mutex.h"
#include "absl/time/time.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::controller {

class SqlDb;
class SqlValue;
class SigningKey;

inline constexpr char kGenesisHash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The chain hash of one event (see the file comment).
std::string EventChainHash(const std::string& prev_hash, const std::string& run_id, uint64_t seq,
                           const std::string& payload);

// A new rollout id: "r-YYYYMMDD-HHMMSS-xxxxxx" from the UTC time and 24 random bits.
std::string NewRolloutId();
// The same from given parts (for tests and reproducible ids). Uses the low 24 bits of `random`.
std::string FormatRolloutId(absl::Time t, uint32_t random);

// The audit's names for the wire enums (these are what the status columns hold):
// modes "apply" "check" "rollback" "rollback-check" (a rollback --check: a dry run that writes
// nothing); step statuses "ok" "changed" "skipped" "failed";
// run statuses "running" "ok" "changed" "failed" "cancelled" "interrupted" (plus "pending":
// registered, no event yet); actions "create" "update" "delete" "mkdir" "rmdir";
// log levels "debug" "info" "warning" "error". Unspecified values give "".
std::string ModeName(mimic::v1::Mode mode, bool rollback_check = false);
inline constexpr char kRollbackCheckMode[] = "rollback-check";
std::string StepStatusName(mimic::v1::StepStatus status);
std::string RunStatusName(mimic::v1::RunStatus status);
std::string ActionName(mimic::v1::Action action);
std::string LogLevelName(mimic::v1::LogLevel level);

// Run statuses that count as a host succeeding ("ok", "changed") or failing ("failed",
// "cancelled", "interrupted").
bool IsSuccessStatus(const std::string& run_status);
bool IsFailureStatus(const std::string& run_status);

struct BatchRecord {
  std::string rollout_id;
  std::string stage;
  int idx = 0;
  std::vector<std::string> hosts;  // stored comma-separated (host names hold no commas)
};

// What a rollout acts on, fixed when it starts: `mimic resume` and `mimic rollback` act inside
// it (never on a host, stage or batch outside it); widening needs a new rollout.
struct RolloutScope {
  std::string stage;               // --stage; "" means every stage of the plan
  std::string limit;               // --limit as given; "" means every host of the inventory
  std::vector<std::string> hosts;  // the hosts selected, in the order they run
  std::vector<BatchRecord> batches;  // every stage's batches as planned, in the order they run
};

// "stage prod, limit p1, hosts p1" ("(all)" for an empty stage or limit).
std::string DescribeScope(const RolloutScope& scope);

struct RolloutRecord {
  std::string id;
  std::string plan_path;
  std::string plan_sha256;
  std::string inventory_path;
  std::string os_user;       // the operator
  std::string cert_subject;  // the operator's client certificate subject; "" when none
  bool check_mode = false;
  int64_t started_at_us = 0;  // BeginRollout: 0 means now
  int64_t finished_at_us = 0;
  // Set by the rollout engine: "running", "waiting_approval", "ok", "changed", "failed",
  // "stopped", "cancelled". BeginRollout: "" means "running".
  std::string status;
  std::string message;
  // Stored by BeginRollout with the rollout. has_scope is false for a rollout begun by a
  // mimic that did not store scopes (its scope is then unknown).
  bool has_scope = false;
  RolloutScope scope;
};

struct StageRecord {
  std::string rollout_id;
  std::string name;
  int idx = 0;         // position in the plan
  std::string status;  // "pending", "running", "waiting_approval", "ok", "failed", ...
  int64_t started_at_us = 0;
  int64_t finished_at_us = 0;
};

struct ApprovalRecord {
  std::string rollout_id;
  std::string stage;
  std::string who;
  int64_t at_us = 0;  // 0 means now
  bool forced = false;
};

struct RunRecord {
  std::string run_id;
  std::string rollout_id;
  std::string host;
  std::string stage;
  int batch_idx = -1;
  std::string mode;            // ModeName(); "" when unknown
  std::string status;          // RunStatusName(), or "pending"
  int64_t created_at_us = 0;   // registered (or first event seen)
  int64_t started_at_us = 0;   // run_started
  int64_t finished_at_us = 0;  // run_finished
  uint64_t last_seq = 0;
  std::string message;
  std::string agent_version;
  std::string source_version;
  std::string target_version;
};

struct StepRecord {
  std::string run_id;
  int idx = 0;
  std::string name;
  std::string status;  // "running" (started, not finished) or StepStatusName()
  std::string message;
  int64_t duration_us = 0;
};

struct FileChangeRecord {
  std::string run_id;
  uint64_t seq = 0;  // of the step_finished event
  int step_idx = 0;
  std::string step;
  std::string path;
  std::string action;  // ActionName()
  uint64_t size = 0;
  std::string sha256_before;
  std::string sha256_after;
  std::string note;
  std::string diff;  // --diff: the change's unified diff, redacted ("" when none was asked for)
};

struct ConfigChangeRecord {
  std::string run_id;
  uint64_t seq = 0;
  int step_idx = 0;
  std::string step;
  std::string file;
  std::string key;
  std::string action;
  std::string old_value;  // redacted
  std::string new_value;  // redacted
  bool redacted = false;
  std::string note;
};

// A rollout with its hosts counted by the status of each host's latest run.
struct RolloutSummary {
  RolloutRecord rollout;
  int hosts = 0;
  int hosts_ok = 0;       // IsSuccessStatus
  int hosts_failed = 0;   // IsFailureStatus
  int hosts_pending = 0;  // the rest: pending or running
  // Hosts whose latest run that wrote (apply or rollback: dry runs are not counted) is a
  // rollback that succeeded: back as before the rollout. Not in hosts_ok.
  int hosts_rolled_back = 0;
};

struct RolloutDetail {
  RolloutRecord rollout;
  std::vector<StageRecord> stages;        // by idx
  std::vector<BatchRecord> batches;       // by stage, idx
  std::vector<RunRecord> runs;            // by creation (oldest first)
  std::vector<ApprovalRecord> approvals;  // by time
};

struct VerifyResult {
  bool ok = true;
  int64_t events = 0;     // rows checked
  std::string head_hash;  // the last event's hash (kGenesisHash when none)
  // When !ok: the first bad position in the chain (0-based insertion index), the event
  // there when there is one, and what is wrong ("hash mismatch", "missing (deleted)", ...).
  int64_t bad_index = -1;
  std::string bad_run_id;
  uint64_t bad_seq = 0;
  std::string reason;
};

// What VerifyAudit found.
struct AuditVerifyResult {
  bool ok = true;
  std::string problem;       // when !ok: the first thing wrong, naming rollout, table and row
  int64_t ledger_entries = 0;
  std::string ledger_head;   // the last entry's mac (kGenesisHash when none)
  std::string key_id;        // of the key the ledger is signed with
  int rollouts = 0;          // rollouts checked
  int64_t events = 0;        // events checked
  // Rollouts begun by a mimic without the ledger: sealed as they were at the upgrade (their
  // rows then, their chain head then); nothing before the seal is vouched for.
  std::vector<std::string> legacy_rollouts;
  // The head keys the ledger records (`mimic audit export` records each once): id -> public
  // key (base64 of the raw Ed25519 key).
  std::map<std::string, std::string> head_keys;
};

// A signed ledger head (`mimic audit export`): what the audit held at `at_us`. An auditor
// keeps it away from the audit; VerifyAudit(..., &head) then finds a truncation after it.
// Format 2 is also signed with the controller's Ed25519 head key, so that whoever holds only
// its public key can tell the head is genuine; format 1 (HMAC only) heads are still read.
struct AuditHead {
  int format = 2;
  int64_t entries = 0;
  std::string head;  // mac of entry entries-1 (kGenesisHash when 0)
  int rollouts = 0;
  int64_t at_us = 0;
  std::string key_id;             // of the HMAC signing key
  std::string head_key_id;        // format 2: of the Ed25519 head key (HeadKeyId)
  std::string head_public_key;    // format 2: its public key, base64 of the raw 32 bytes
  std::string hmac;       // HMAC-SHA256 of the fields above (FormatAuditHead's signed lines)
  std::string signature;  // format 2: base64 Ed25519 signature of the same lines
};
// The head as a small text file, and back (INVALID_ARGUMENT naming `name` and the line).
std::string FormatAuditHead(const AuditHead& head);
absl::StatusOr<AuditHead> ParseAuditHead(const std::string& text, const std::string& name);

// An Ed25519 public key's id: the first 16 hex digits of the sha256 of its raw 32 bytes.
std::string HeadKeyId(const std::string& raw_public_key);
// Checks a head with nothing but a public key (`public_key_pem`: the text of the head key's
// .pub file, which an auditor keeps; `key_name` names it in errors): "" when the head is signed
// by that key and unchanged, else what is wrong (signed by another key, edited, or unsigned).
// INVALID_ARGUMENT when the text is not an Ed25519 public key in PEM (a private key is refused
// without quoting it); FAILED_PRECONDITION for a format 1 head (it has no signature).
absl::StatusOr<std::string> CheckHeadSignature(const AuditHead& head,
                                               const std::string& public_key_pem,
                                               const std::string& key_name);
// The head key's default place: audit-head.key beside the signing key ("" when there is none).
std::string DefaultHeadKeyPath(const std::string& signing_key_path);

// The key file's default place for an audit url: "audit.key" next to a SQLite database,
// `state_dir`/audit.key for PostgreSQL ("" when no state dir is known).
std::string DefaultSigningKeyPath(const std::string& url_or_path, const std::string& state_dir);

// Each host's latest run (by creation), in the order the hosts first appear in `runs`. A dry
// rollback (mode kRollbackCheckMode) wrote nothing, so it never stands for its host while the
// host has another run.
std::vector<RunRecord> LatestRunPerHost(const std::vector<RunRecord>& runs);
// A rollback run (not a dry one) that succeeded: its host is back as before the rollout.
bool IsRolledBack(const RunRecord& run);

struct AuditOptions {
  // The controller's signing key (32 random bytes, hex, created 0600 on first use; never
  // logged). "" means "audit.key" next to a SQLite database; a PostgreSQL audit needs it set
  // (the inventory's [audit] signing_key, default <state_dir>/audit.key). Only writes, verify
  // and export need the key: an audit opens for reading without it.
  std::string signing_key_path;
  // The Ed25519 key `ExportHead` signs with (PKCS#8 PEM, made 0600 on first export, its public
  // key beside it as <path>.pub). "" means DefaultHeadKeyPath(signing_key_path).
  std::string head_key_path;
  int batch_size = 1024;                                    // commit when this many are queued...
  absl::Duration flush_interval = absl::Milliseconds(50);  // ...or this long after the first
  absl::Duration busy_timeout = absl::Seconds(10);         // waiting for another writer's lock
  // Events accepted and not yet committed, at most: AppendEvent blocks beyond it (never drops).
  int max_queued = 32768;
  // A failing commit is tried this many times in all, waiting initial_backoff, doubling up to
  // max_backoff, between tries; then the audit has failed (see AppendEvent, Flush).
  int commit_attempts = 8;
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(2);
  // Test hook, injected by tests only: called before each commit; a non-OK status fails that
  // commit as the database would.
  std::function<absl::Status()> before_commit;
};

// The writer's state, for progress and tests.
struct AuditStats {
  uint64_t unwritten = 0;     // events accepted and not yet committed
  int blocked_producers = 0;  // AppendEvent calls waiting for room
  bool failed = false;        // a commit failed commit_attempts times
  uint64_t failed_commits = 0;  // commits that failed (and were retried), ever
};

// Thread-safe. Writes other than AppendEvent are synchronous (committed on return). Queries
// see committed data: call Flush() first to include events still queued.
class Audit {
 public:
  // Opens the audit at "sqlite:PATH", "sqlite://PATH" or a plain PATH (the file is created
  // with its schema when missing; its folder must exist). "postgresql://..." is UNIMPLEMENTED
  // for now; other "scheme://" urls are INVALID_ARGUMENT. UNAVAILABLE when the database cannot
  // be opened; FAILED_PRECONDITION when its schema is newer than this build.
  static absl::StatusOr<std::unique_ptr<Audit>> Open(const std::string& url_or_path,
                                                     const AuditOptions& options = {});

  // Writes everything still queued (a failing commit retried as AuditOptions says, even
  // after the audit failed; only when that fails too are the events lost, logged as an error
  // with their count), stops the writer thread and closes the database.
  ~Audit();

  // Owns a database connection and a writer thread.
  Audit(const Audit&) = delete;
  Audit& operator=(const Audit&) = delete;

  // Records a new rollout (and its operator), with its scope when has_scope is set, in one
  // transaction. ALREADY_EXISTS when the id is taken; INVALID_ARGUMENT when the id is empty.
  absl::Status BeginRollout(const RolloutRecord& rollout);
  // Marks a rollout running again (`mimic resume`): status "running", finished_at cleared.
  // NOT_FOUND when unknown.
  absl::Status ResumeRollout(const std::string& rollout_id);
  // Flushes queued events, then sets the rollout's final status, message and finished_at
  // (now). NOT_FOUND when unknown.
  absl::Status FinishRollout(const std::string& rollout_id, const std::string& status,
                             const std::string& message);
  // Inserts or replaces the stage (rollout_id, name) / the batch (rollout_id, stage, idx).
  absl::Status RecordStage(const StageRecord& stage);
  absl::Status RecordBatch(const BatchRecord& batch);
  // Appends an approval of a stage's gate.
  absl::Status RecordApproval(const ApprovalRecord& approval);
  // Registers a run before its first event (status "pending"). Registering again, or after
  // its events arrived, fills in stage, batch and mode and keeps the rest.
  absl::Status RegisterRun(const std::string& run_id, const std::string& rollout_id,
                           const std::string& host, const std::string& stage, int batch_idx,
                           mimic::v1::Mode mode, bool rollback_check = false);
  struct RunRegistration {
    std::string run_id;
    std::string host;
    std::string stage;
    int batch_idx = -1;
    mimic::v1::Mode mode = mimic::v1::MODE_UNSPECIFIED;
    bool rollback_check = false;  // a rollback --check (mode "rollback-check")
  };
  // RegisterRun for each of `runs` of one rollout, in one transaction (one commit for a whole
  // batch of hosts; each run still gets its own ledger entry, in order). Nothing is registered
  // when one fails.
  absl::Status RegisterRuns(const std::string& rollout_id,
                            const std::vector<RunRegistration>& runs);

  // Queues an event of a rollout and returns; blocks while max_queued events are unwritten
  // (back-pressure: an event is never dropped). The writer thread commits queued events
  // in order, in transactions of up to batch_size events or every flush_interval. An event
  // whose (run_id, seq) is already stored is dropped (resumed streams may repeat events) and
  // not chained. Committing also maintains runs (status, last_seq, times, versions), steps
  // and file/config changes. Config values and free text pass through common/redact.h again
  // before anything is stored; a NUL in any text becomes the two characters "\0" (one place,
  // before hashing: PostgreSQL text stops at a NUL). INVALID_ARGUMENT for an empty rollout id
  // or run id, or seq 0; FAILED_PRECONDITION once the audit is closing; the writer's error
  // (UNAVAILABLE, naming the attempts and the database's message) once it has failed: the
  // caller must stop what it is auditing.
  absl::Status AppendEvent(const std::string& rollout_id, const mimic::v1::Event& event);
  // The same, taking the event over instead of copying it (sanitized in place).
  absl::Status AppendEvent(const std::string& rollout_id, mimic::v1::Event&& event);
  // Waits until every event queued before the call is committed (riding out failures the
  // retries overcome). Returns the writer's error once it has failed; the events stay held
  // and the close tries them again.
  absl::Status Flush();
  AuditStats Stats() const;
  // Blocks until `done` holds for the writer's state (judged again at each change of it) or
  // `timeout` passes; returns whether it held. For tests and progress displays that wait on
  // the writer (a producer blocked, a commit failed) without polling.
  bool AwaitStats(const std::function<bool(const AuditStats&)>& done,
                  absl::Duration timeout) const;

  // Rollouts, newest first (by start time), at most `limit` (all when <= 0).
  absl::StatusOr<std::vector<RolloutSummary>> ListRollouts(int limit);
  // One rollout with its stages, batches, runs and approvals. NOT_FOUND when unknown.
  absl::StatusOr<RolloutDetail> GetRollout(const std::string& rollout_id);
  // NOT_FOUND when unknown.
  absl::StatusOr<RunRecord> GetRun(const std::string& run_id);
  // The highest seq held for the run, counting events still queued; 0 when none (so a
  // re-attach asks for LastSeq + 1).
  absl::StatusOr<uint64_t> LastSeq(const std::string& run_id);
  // The rollout's events decoded, in insertion order; only those of `host`'s runs and of
  // `step` (step events and log lines of that step) when given.
  absl::StatusOr<std::vector<mimic::v1::Event>> Events(const std::string& rollout_id,
                                                       const std::string& host = "",
                                                       const std::string& step = "");
  absl::StatusOr<int64_t> EventCount(const std::string& rollout_id);
  // A run's steps by index, and its changes in event order.
  absl::StatusOr<std::vector<StepRecord>> Steps(const std::string& run_id);
  absl::StatusOr<std::vector<FileChangeRecord>> FileChanges(const std::string& run_id);
  absl::StatusOr<std::vector<ConfigChangeRecord>> ConfigChanges(const std::string& run_id);

  // Recomputes the rollout's hash chain and checks each row's columns against its payload
  // and the chain's recorded length and head. The result says where the first bad row is;
  // an error status only when the database cannot be read.
  absl::StatusOr<VerifyResult> VerifyChain(const std::string& rollout_id);

  // Verifies the keyed ledger and, for every rollout in it (or only `rollout_id` when given),
  // its event chain and every table row derived from it (see the file comment). With
  // `against`, also that the ledger still extends that exported head (it was not cut back).
  // The result says what is wrong; an error status when the database cannot be read, the key
  // is missing or is not the key the ledger was signed with (FAILED_PRECONDITION), or the
  // rollout is unknown (NOT_FOUND).
  absl::StatusOr<AuditVerifyResult> VerifyAudit(const std::string& rollout_id = "",
                                                const AuditHead* against = nullptr);
  // The ledger's head now, signed with the key (HMAC) and the head key (Ed25519). The head
  // key's public key is recorded in the ledger the first time it signs (one entry, so the head
  // returned covers it); the key is made when missing.
  absl::StatusOr<AuditHead> ExportHead();
  // Where ExportHead's head key is (its public key: this + ".pub").
  std::string HeadKeyPath() const;
  // The signing key's id (loading or creating the key).
  absl::StatusOr<std::string> SigningKeyId();

 private:
  // An event as it is stored: sanitized and serialized by AppendEvent, on the caller's thread
  // (in parallel, off the one writer thread).
  struct Pending {
    std::string rollout_id;
    mimic::v1::Event event;  // Sanitized()
    std::string payload;     // event serialized
  };

  Audit(std::unique_ptr<SqlDb> db, const AuditOptions& options);
  absl::Status InitSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  void WriterLoop();
  AuditStats StatsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool HasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool BatchReady() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status CommitBatch(const std::vector<Pending>& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // The ledger (audit.h). Inside a write transaction: PrepareLedger loads the key and seals
  // an upgraded database's rollouts (before anything else is written); Record prepares,
  // applies a write and appends its entry.
  absl::Status PrepareLedger() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::StatusOr<int64_t> Record(const std::string& rollout_id, const std::string& kind,
                                 const std::vector<SqlValue>& values)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::Status AppendLedgerEntry(const std::string& rollout_id, const std::string& kind,
                                 const std::string& body, int64_t at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::Status SealLegacy() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // Outside a transaction: seals (in a write transaction) only when a seal is pending.
  absl::Status SealLegacyIfPending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::Status EnsureKey() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // The same for verify and export: never creates a key once the ledger has entries.
  absl::Status EnsureKeyToCheck() ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // VerifyChain's walk; collects each event's hash when `hashes` is given.
  absl::StatusOr<VerifyResult> VerifyChainLocked(const std::string& rollout_id,
                                                 std::vector<std::string>* hashes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  // Runs `fn` in a write transaction (rolled back when it fails).
  template <typename Fn>
  absl::Status InWriteTxn(Fn fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);
  absl::StatusOr<std::vector<RunRecord>> RunsOf(const std::string& rollout_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_mu_);

  const AuditOptions options_;

  // Lock order: db_mu_ before mu_.
  common::Mutex db_mu_;
  std::unique_ptr<SqlDb> db_ ABSL_GUARDED_BY(db_mu_);
  std::unique_ptr<SigningKey> key_ ABSL_GUARDED_BY(db_mu_);  // loaded on first keyed use

  mutable common::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t appended_ ABSL_GUARDED_BY(mu_) = 0;  // events ever queued
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;      // of those, committed (or dropped at close)
  int flush_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  int blocked_producers_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_commits_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);  // set when failed_
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  std::thread writer_;
};

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_AUDIT_AUDIT_H_
