#include "controller/audit/sql_db.h"

#include <sqlite3.h>

#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mimic::controller {

int64_t SqlValue::AsInt() const {
  switch (type_) {
    case Type::kInt:
      return int_;
    case Type::kText:
    case Type::kBlob: {
      int64_t v = 0;
      return absl::SimpleAtoi(text_, &v) ? v : 0;
    }
    case Type::kNull:
      break;
  }
  return 0;
}

std::string SqlValue::AsText() const {
  switch (type_) {
    case Type::kInt:
      return absl::StrCat(int_);
    case Type::kText:
    case Type::kBlob:
      return text_;
    case Type::kNull:
      break;
  }
  return "";
}

namespace {

absl::Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string msg = absl::StrCat("sqlite: ", std::string(what), ": ", db ? sqlite3_errmsg(db) : "",
                                 " (", sqlite3_errstr(rc), ")");
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Finalizes a prepared statement on scope exit.
struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

// Resets a cached statement (and clears its bindings) on scope exit, so a statement never
// stays active (holding a read snapshot) between calls.
class StmtReset {
 public:
  explicit StmtReset(sqlite3_stmt* s) : s_(s) {}
  ~StmtReset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StmtReset(const StmtReset&) = delete;
  StmtReset& operator=(const StmtReset&) = delete;

 private:
  sqlite3_stmt* s_;
};

class SqliteDb final : public SqlDb {
 public:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  ~SqliteDb() override {
    cache_.clear();  // statements first, then the connection
    sqlite3_close_v2(db_);
  }
  // Owns a connection handle.
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  std::string BlobType() const override { return "BLOB"; }

  std::vector<std::string> ExtraSchema() const override {
    return {
        "CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger "
        "BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger "
        "BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END",
    };
  }

  absl::Status BeginWrite() override { return Plain("BEGIN IMMEDIATE"); }
  absl::Status Commit() override { return Plain("COMMIT"); }
  absl::Status Rollback() override { return Plain("ROLLBACK"); }

  absl::StatusOr<int64_t> Exec(std::string_view sql, absl::Span<const SqlValue> params) override {
    absl::StatusOr<sqlite3_stmt*> stmt = Prepare(sql, params);
    if (!stmt.ok()) return stmt.status();
    StmtReset reset(*stmt);
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, sql);
    return static_cast<int64_t>(sqlite3_changes(db_));
  }

  absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                            absl::Span<const SqlValue> params) override {
    absl::StatusOr<sqlite3_stmt*> stmt = Prepare(sql, params);
    if (!stmt.ok()) return stmt.status();
    StmtReset reset(*stmt);
    std::vector<SqlRow> rows;
    int rc;
    while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
      int n = sqlite3_column_count(*stmt);
      SqlRow row;
      row.reserve(n);
      for (int i = 0; i < n; ++i) row.push_back(Column(*stmt, i));
      rows.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, rc, sql);
    return rows;
  }

  absl::Status Plain(std::string_view sql) {
    absl::StatusOr<int64_t> r = Exec(sql, {});
    return r.ok() ? absl::OkStatus() : r.status();
  }

 private:
  // Prepared statements are cached by their SQL text: the writer runs the same handful of
  // statements for every event.
  absl::StatusOr<sqlite3_stmt*> Prepare(std::string_view sql, absl::Span<const SqlValue> params) {
    auto it = cache_.find(sql);  // no copy of the text on a hit
    if (it == cache_.end()) {
      std::string key(sql);
      sqlite3_stmt* raw = nullptr;
      int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()),
                                  SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(raw);
        return SqliteError(db_, rc, sql);
      }
      it = cache_.emplace(std::move(key), StmtPtr(raw)).first;
    }
    sqlite3_stmt* s = it->second.get();
    // Text and blobs are bound SQLITE_STATIC, without SQLite's copy: `params` outlives every
    // step of the statement, and StmtReset clears the bindings before Exec/Query return.
    if (static_cast<int>(params.size()) != sqlite3_bind_parameter_count(s)) {
      return absl::InternalError(absl::StrCat("sqlite: ", std::string(sql), ": ", params.size(),
                                              " parameters given, ",
                                              sqlite3_bind_parameter_count(s), " expected"));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& p = params[i];
      int idx = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      switch (p.type()) {
        case SqlValue::Type::kNull:
          rc = sqlite3_bind_null(s, idx);
          break;
        case SqlValue::Type::kInt:
          rc = sqlite3_bind_int64(s, idx, p.AsInt());
          break;
        case SqlValue::Type::kText: {
          const std::string& t = p.raw_text();
          rc = sqlite3_bind_text64(s, idx, t.data(), t.size(), SQLITE_STATIC, SQLITE_UTF8);
          break;
        }
        case SqlValue::Type::kBlob: {
          const std::string& b = p.raw_text();
          rc = sqlite3_bind_blob64(s, idx, b.data(), b.size(), SQLITE_STATIC);
          break;
        }
      }
      if (rc != SQLITE_OK) {
        sqlite3_clear_bindings(s);
        return SqliteError(db_, rc, sql);
      }
    }
    return s;
  }

  static SqlValue Column(sqlite3_stmt* s, int i) {
    switch (sqlite3_column_type(s, i)) {
      case SQLITE_INTEGER:
        return SqlValue(static_cast<int64_t>(sqlite3_column_int64(s, i)));
      case SQLITE_FLOAT:
        return SqlValue(static_cast<int64_t>(sqlite3_column_double(s, i)));
      case SQLITE_TEXT: {
        const char* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
        return SqlValue(std::string(p ? p : "", sqlite3_column_bytes(s, i)));
      }
      case SQLITE_BLOB: {
        const char* p = static_cast<const char*>(sqlite3_column_blob(s, i));
        return SqlValue::Blob(std::string(p ? p : "", sqlite3_column_bytes(s, i)));
      }
      default:
        return SqlValue();
    }
  }

  sqlite3* db_;
  std::map<std::string, StmtPtr, std::less<>> cache_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqlDb>> OpenSqliteDb(const std::string& path,
                                                    absl::Duration busy_timeout) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status st = SqliteError(raw, rc, absl::StrCat("open ", path));
    sqlite3_close_v2(raw);
    return absl::UnavailableError(st.message());
  }
  auto db = std::make_unique<SqliteDb>(raw);
  sqlite3_busy_timeout(raw, static_cast<int>(absl::ToInt64Milliseconds(busy_timeout)));
  // journal_mode answers with a row, so it goes through Query. ":memory:" answers "memory".
  absl::StatusOr<std::vector<SqlRow>> mode = db->Query("PRAGMA journal_mode=WAL", {});
  if (!mode.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot open audit database ", path, ": ", mode.status().message()));
  }
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=OFF"}) {
    if (absl::Status st = db->Plain(pragma); !st.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot open audit database ", path, ": ", st.message()));
    }
  }
  return std::unique_ptr<SqlDb>(std::move(db));
}

}  // namespace mimic::controller
