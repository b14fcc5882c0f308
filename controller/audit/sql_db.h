// The audit's database connection: a small interface that the audit's portable SQL goes through,
// so that SQLite and PostgreSQL sit behind the same calls. Everything engine-specific
// (pragmas, how a write transaction starts, the blob type, placeholders) lives in the
// implementation.
#ifndef MIMIC_CONTROLLER_AUDIT_SQL_DB_H_
#define MIMIC_CONTROLLER_AUDIT_SQL_DB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace mimic::controller {

// One bound parameter or one result column: NULL, a 64-bit integer, text, or bytes.
class SqlValue {
 public:
  enum class Type { kNull, kInt, kText, kBlob };

  SqlValue() = default;                                // NULL
  SqlValue(int64_t v) : type_(Type::kInt), int_(v) {}  // NOLINT: implicit by design
  SqlValue(int v) : type_(Type::kInt), int_(v) {}      // NOLINT
  SqlValue(uint64_t v) : type_(Type::kInt), int_(static_cast<int64_t>(v)) {}  // NOLINT
  SqlValue(std::string v) : type_(Type::kText), text_(std::move(v)) {}        // NOLINT
  SqlValue(const char* v) : type_(Type::kText), text_(v) {}                   // NOLINT
  static SqlValue Blob(std::string bytes) {
    SqlValue v(std::move(bytes));
    v.type_ = Type::kBlob;
    return v;
  }
  // NULL when `v` is 0: the audit stores "unknown" times as NULL.
  static SqlValue IntOrNull(int64_t v) { return v == 0 ? SqlValue() : SqlValue(v); }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  // The integer (0 for NULL; text is parsed, 0 when not a number).
  int64_t AsInt() const;
  // The text or bytes ("" for NULL; integers in decimal).
  std::string AsText() const;
  // The stored text or bytes without a copy ("" for NULL and integers).
  const std::string& raw_text() const { return text_; }

 private:
  Type type_ = Type::kNull;
  int64_t int_ = 0;
  std::string text_;
};

using SqlRow = std::vector<SqlValue>;

// A connection. Not thread-safe: the owner serialises calls. Statements use `?` placeholders
// and the SQL subset that SQLite (>= 3.24) and PostgreSQL share: CREATE ... IF NOT EXISTS,
// INSERT ... ON CONFLICT (...) DO NOTHING / DO UPDATE SET x = excluded.x, CASE, COALESCE,
// LIMIT, BIGINT and TEXT columns. Errors are INTERNAL (bad SQL, constraint violations) or
// UNAVAILABLE (busy/locked beyond the busy timeout, I/O errors) and carry the engine's message.
class SqlDb {
 public:
  virtual ~SqlDb() = default;

  // Column type for opaque bytes ("BLOB", "BYTEA").
  virtual std::string BlobType() const = 0;
  // Engine-specific schema statements run after the portable ones (e.g. triggers that refuse
  // UPDATE/DELETE on append-only tables). May be empty.
  virtual std::vector<std::string> ExtraSchema() const = 0;

  // Transactions. BeginWrite() takes the database's write lock up front (SQLite: BEGIN
  // IMMEDIATE), so a transaction that reads then writes never fails half-way on a lock.
  virtual absl::Status BeginWrite() = 0;
  virtual absl::Status Commit() = 0;
  virtual absl::Status Rollback() = 0;

  // Runs one statement; returns the number of rows it inserted, updated or deleted.
  virtual absl::StatusOr<int64_t> Exec(std::string_view sql,
                                       absl::Span<const SqlValue> params = {}) = 0;
  // Runs one query; returns all its rows.
  virtual absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                                    absl::Span<const SqlValue> params = {}) = 0;
};

// Opens (creating when missing) the SQLite database file at `path`, in WAL mode with
// synchronous=FULL and the given busy timeout. The parent folder must exist. Errors:
// UNAVAILABLE when the file cannot be opened or is not a database.
absl::StatusOr<std::unique_ptr<SqlDb>> OpenSqliteDb(const std::string& path,
                                                    absl::Duration busy_timeout);

// Connects to the PostgreSQL database named by `url` (postgresql://user:pass@host:port/db?...,
// any libpq connection URI; ?options=-csearch_path%3Dschema picks the schema), with the given
// busy timeout as the session's lock_timeout. Errors: UNAVAILABLE when the server cannot be
// reached or refuses the login; messages never hold the url's password.
absl::StatusOr<std::unique_ptr<SqlDb>> OpenPostgresDb(const std::string& url,
                                                      absl::Duration busy_timeout);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_AUDIT_SQL_DB_H_
