// Inside the audit (not for other modules): the schema, the writes as replayable records, the
// value codec of ledger bodies, the signing key, and the per-rollout table dumps that
// VerifyAudit compares. audit.cc writes with them; audit_ledger.cc verifies with the same
// functions, replaying into an empty database, so there is one implementation of each write.
#ifndef MIMIC_CONTROLLER_AUDIT_AUDIT_INTERNAL_H_
#define MIMIC_CONTROLLER_AUDIT_AUDIT_INTERNAL_H_

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/logging.h"
#include "controller/audit/audit.h"
#include "controller/audit/sql_db.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::controller {

// Schema version 2 added the ledger; a version 1 database is upgraded on open and its
// rollouts sealed (one "legacy" ledger entry each) at the first keyed use.
inline constexpr int kAuditSchemaVersion = 2;

// Creates the tables (and the engine's append-only triggers) that are missing.
absl::Status CreateAuditSchema(SqlDb& db);

int64_t AuditNowMicros();

// Bytes <-> values: each value is a tag ('N' null, 'I' integer, 'T' text, 'B' bytes) and,
// but for null, be64(integer) or be64(length) and the bytes. DATA_LOSS when malformed.
std::string EncodeValues(const std::vector<SqlValue>& values);
absl::StatusOr<std::vector<SqlValue>> DecodeValues(absl::string_view bytes);

void AppendBigEndian64(std::string& out, uint64_t v);

// The audit's writes, each a ledger record kind with its values (see audit.cc for the layout
// of each): "rollout", "resume", "finish", "stage", "batch", "approval", "run". Applies the
// record's SQL; returns the rows it changed (0: the rollout is unknown, for resume/finish).
absl::StatusOr<int64_t> ApplyAuditRecord(SqlDb& db, const std::string& rollout_id,
                                         const std::string& kind,
                                         const std::vector<SqlValue>& values);
// The rows the events of one commit of one rollout add or update (runs, steps, file and
// config changes), in their order; `now` stands in for an event without a time. Each run's
// row is written once per commit (it exists, its last_seq is the highest seq, its host the
// first one named), not once per event: the result is the same as event by event. The
// writer and VerifyAudit's replay call it with the same events (one ledger "events" entry).
absl::Status ApplyEventRows(SqlDb& db, const std::string& rollout_id,
                            const std::vector<const mimic::v1::Event*>& events, int64_t now);
// Sets the rollout's recorded event chain length and head.
absl::Status StoreChainHead(SqlDb& db, const std::string& rollout_id, int64_t count,
                            const std::string& head);

// One table as VerifyAudit compares it for one rollout.
struct AuditTable {
  const char* name;
  const char* columns;  // as selected (plain column names but for "rollouts")
  const char* from;
  const char* where;  // one `?`: the rollout id
};
const std::vector<AuditTable>& AuditTables();
// Every table that holds a rollout id, with its column.
const std::vector<std::pair<const char*, const char*>>& RolloutIdColumns();

// The rows of `table` for the rollout, as stored.
absl::StatusOr<std::vector<SqlRow>> DumpTable(SqlDb& db, const AuditTable& table,
                                              const std::string& rollout_id);
// Inserts rows dumped by DumpTable (a legacy snapshot) into `db`.
absl::Status RestoreTable(SqlDb& db, const AuditTable& table, const std::vector<SqlRow>& rows);

// The controller's signing key: 32 random bytes kept as 64 hex characters in a 0600 file.
class SigningKey {
 public:
  // Loads the key at `path`, or creates it (0600; a key another process created at the same
  // moment wins). FAILED_PRECONDITION when there is no path, the file is readable by group or
  // others, or it does not hold a key; messages never hold the key.
  // With `create` false, a missing file is FAILED_PRECONDITION too.
  static absl::StatusOr<std::unique_ptr<SigningKey>> LoadOrCreate(const std::string& path,
                                                                   bool create = true);

  const std::string& id() const { return id_; }
  const std::string& path() const { return path_; }
  // Lower-case hex HMAC-SHA256 of `data`.
  std::string Mac(absl::string_view data) const;

 private:
  SigningKey(std::string key, std::string path);
  std::string key_;
  std::string id_;
  std::string path_;
};

// The controller's head key: an Ed25519 key pair that signs exported ledger heads, so an auditor
// checks a head with the public key alone (CheckHeadSignature). The private key is a PKCS#8 PEM
// file (0600, made on first use, never logged or stored in the audit); its public key is kept
// beside it as `<path>.pub` (PEM, 0644), to hand to auditors.
class HeadKey {
 public:
  // Loads the key at `path`, or makes it (a key another process made at the same moment wins).
  // FAILED_PRECONDITION when the file is readable by group or others or holds no Ed25519 key;
  // messages never hold the key.
  static absl::StatusOr<std::unique_ptr<HeadKey>> LoadOrCreate(const std::string& path);
  ~HeadKey();
  HeadKey(const HeadKey&) = delete;
  HeadKey& operator=(const HeadKey&) = delete;

  const std::string& id() const { return id_; }
  const std::string& public_key() const { return public_key_; }  // base64 of the raw 32 bytes
  const std::string& path() const { return path_; }
  // Base64 Ed25519 signature of `data`.
  absl::StatusOr<std::string> Sign(absl::string_view data) const;

 private:
  HeadKey(EVP_PKEY* pkey, std::string path);
  EVP_PKEY* pkey_;
  std::string public_key_;
  std::string id_;
  std::string path_;
};

// The bytes a ledger entry's mac covers (see audit.h).
std::string LedgerMacInput(const std::string& prev_mac, int64_t idx, const std::string& rollout_id,
                           const std::string& kind, const std::string& body, int64_t at,
                           const std::string& key_id);

template <typename Fn>
absl::Status Audit::InWriteTxn(Fn fn) {
  if (absl::Status st = db_->BeginWrite(); !st.ok()) return st;
  absl::Status st = fn();
  if (st.ok()) st = db_->Commit();
  if (!st.ok()) {
    if (absl::Status rb = db_->Rollback(); !rb.ok()) {
      LOG(WARNING) << "audit: rollback failed: " << rb.message();
    }
  }
  return st;
}

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_AUDIT_AUDIT_INTERNAL_H_
