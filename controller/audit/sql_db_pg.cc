// The PostgreSQL SqlDb: one libpq connection per Audit. `?` placeholders become $1..$n, BLOB
// columns are BYTEA (bound in binary), write transactions serialise on a transaction-scoped
// advisory lock (the PostgreSQL counterpart of SQLite's BEGIN IMMEDIATE), and lock waits give
// up after the busy timeout (lock_timeout) as UNAVAILABLE.
#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "controller/audit/sql_db.h"

namespace mimic::controller {
namespace {

// Type oids (pg_type.h is a server header; these never change).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kOidOid = 26;
constexpr Oid kNumericOid = 1700;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// libpq messages end in a newline; some span lines.
std::string Trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return common::RedactText(s);
}

// Rewrites `?` placeholders to $1..$n, leaving literals, quoted identifiers, dollar-quoted
// bodies and comments alone. Returns the count in `n`.
std::string TranslatePlaceholders(std::string_view sql, int* n) {
  std::string out;
  out.reserve(sql.size() + 16);
  *n = 0;
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"') {  // '...' with '' escapes; "..." with "" escapes
      size_t j = i + 1;
      while (j < sql.size()) {
        if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      size_t end = std::min(j + 1, sql.size());
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t j = sql.find('\n', i);
      if (j == std::string_view::npos) j = sql.size();
      out.append(sql.substr(i, j - i));
      i = j;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      size_t j = sql.find("*/", i + 2);
      j = j == std::string_view::npos ? sql.size() : j + 2;
      out.append(sql.substr(i, j - i));
      i = j;
    } else if (c == '$') {  // $tag$ ... $tag$ (a tag of letters, digits, _), or $1 as is
      size_t j = i + 1;
      while (j < sql.size() && (isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_')) {
        ++j;
      }
      bool digits_only = j > i + 1;
      for (size_t k = i + 1; k < j; ++k) {
        if (!isdigit(static_cast<unsigned char>(sql[k]))) digits_only = false;
      }
      if (j < sql.size() && sql[j] == '$' && !digits_only) {
        std::string_view tag = sql.substr(i, j - i + 1);
        size_t close = sql.find(tag, j + 1);
        size_t end = close == std::string_view::npos ? sql.size() : close + tag.size();
        out.append(sql.substr(i, end - i));
        i = end;
      } else {
        out.append(sql.substr(i, j - i));
        i = j;
      }
    } else if (c == '?') {
      absl::StrAppend(&out, "$", ++*n);
      ++i;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

// SQLSTATE classes that mean "try again later" rather than "this statement is wrong".
bool IsTransient(absl::string_view state) {
  return absl::StartsWith(state, "08") ||    // connection exception
         absl::StartsWith(state, "53") ||    // insufficient resources
         absl::StartsWith(state, "57") ||    // operator intervention (shutdown, cancel)
         state == "40001" || state == "40P01" ||  // serialization failure, deadlock
         state == "55P03" ||                      // lock_not_available (lock_timeout)
         state == "55006";                        // object in use
}

void IgnoreNotice(void*, const char*) {}

class PostgresDb final : public SqlDb {
 public:
  PostgresDb(PGconn* conn, std::string redacted_url)
      : conn_(conn), url_(std::move(redacted_url)) {}
  ~PostgresDb() override { PQfinish(conn_); }
  // Owns a connection.
  PostgresDb(const PostgresDb&) = delete;
  PostgresDb& operator=(const PostgresDb&) = delete;

  std::string BlobType() const override { return "BYTEA"; }

  std::vector<std::string> ExtraSchema() const override {
    // One function and six triggers (events and ledger) in the schema the tables live in
    // (the first of the search_path); created only when missing, so a controller whose role
    // does not own them can still open a database another role set up.
    return {
        "DO $mimic$ BEGIN "
        "IF to_regprocedure('mimic_events_append_only()') IS NULL THEN "
        "CREATE FUNCTION mimic_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$f$ BEGIN RAISE EXCEPTION 'audit events are append-only' "
        "USING ERRCODE = 'insufficient_privilege'; END $f$; "
        "END IF; "
        "IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'events'::regclass "
        "AND tgname = 'events_no_update') THEN "
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events FOR EACH ROW "
        "EXECUTE FUNCTION mimic_events_append_only(); END IF; "
        "IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'events'::regclass "
        "AND tgname = 'events_no_delete') THEN "
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events FOR EACH ROW "
        "EXECUTE FUNCTION mimic_events_append_only(); END IF; "
        "IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'events'::regclass "
        "AND tgname = 'events_no_truncate') THEN "
        "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT "
        "EXECUTE FUNCTION mimic_events_append_only(); END IF; "
        "IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'ledger'::regclass "
        "AND tgname = 'ledger_no_update') THEN "
        "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger FOR EACH ROW "
        "EXECUTE FUNCTION mimic_events_append_only(); END IF; "
        "IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'ledger'::regclass "
        "AND tgname = 'ledger_no_delete') THEN "
        "CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger FOR EACH ROW "
        "EXECUTE FUNCTION mimic_events_append_only(); END IF; "
        "IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'ledger'::regclass "
        "AND tgname = 'ledger_no_truncate') THEN "
        "CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger FOR EACH STATEMENT "
        "EXECUTE FUNCTION mimic_events_append_only(); END IF; "
        "END $mimic$",
    };
  }

  // Every writer of the same schema takes the same transaction-scoped advisory lock, so two
  // controllers appending to one rollout's chain read and extend its head one after the other
  // (the head is read inside the write transaction). The lock also covers InitSchema, where
  // no table exists yet to lock. Waits end after lock_timeout (the busy timeout).
  absl::Status BeginWrite() override {
    RETURN_IF_ERROR(EnsureConnected());
    RETURN_IF_ERROR(Plain("BEGIN"));
    in_txn_ = true;
    absl::StatusOr<int64_t> r =
        Exec("SELECT pg_advisory_xact_lock(hashtext('mimic.audit.write:' || "
             "COALESCE(current_schema(), '')))",
             {});
    if (!r.ok()) {
      (void)Rollback();
      return r.status();
    }
    return absl::OkStatus();
  }
  absl::Status Commit() override {
    absl::Status st = Plain("COMMIT");
    in_txn_ = false;  // a failed COMMIT ends the transaction too (it rolls back)
    return st;
  }
  absl::Status Rollback() override {
    in_txn_ = false;
    if (PQstatus(conn_) != CONNECTION_OK) return absl::OkStatus();  // nothing to roll back
    return Plain("ROLLBACK");
  }

  absl::StatusOr<int64_t> Exec(std::string_view sql, absl::Span<const SqlValue> params) override {
    absl::StatusOr<ResultPtr> res = Run(sql, params);
    if (!res.ok()) return res.status();
    const char* n = PQcmdTuples(res->get());
    int64_t count = 0;
    if (n != nullptr && *n != '\0' && !absl::SimpleAtoi(n, &count)) count = 0;
    return count;
  }

  absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                            absl::Span<const SqlValue> params) override {
    absl::StatusOr<ResultPtr> res = Run(sql, params);
    if (!res.ok()) return res.status();
    PGresult* r = res->get();
    const int rows = PQntuples(r);
    const int cols = PQnfields(r);
    std::vector<SqlRow> out;
    out.reserve(rows);
    for (int i = 0; i < rows; ++i) {
      SqlRow row;
      row.reserve(cols);
      for (int j = 0; j < cols; ++j) row.push_back(Column(r, i, j));
      out.push_back(std::move(row));
    }
    return out;
  }

  absl::Status Plain(std::string_view sql) {
    absl::StatusOr<int64_t> r = Exec(sql, {});
    return r.ok() ? absl::OkStatus() : r.status();
  }

  // Session settings, (re)applied after every (re)connect.
  absl::Status Configure(absl::Duration busy_timeout) {
    busy_timeout_ = busy_timeout;
    PQsetNoticeProcessor(conn_, IgnoreNotice, nullptr);
    int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(busy_timeout));
    for (const std::string& sql :
         {std::string("SET client_min_messages = warning"),
          absl::StrCat("SET lock_timeout = ", ms), std::string("SET TIME ZONE 'UTC'")}) {
      if (absl::Status st = Plain(sql); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

 private:
  // A dropped connection (server restart, network) is re-established at the start of the
  // next transaction; the writer's retry then succeeds.
  absl::Status EnsureConnected() {
    if (PQstatus(conn_) == CONNECTION_OK) return absl::OkStatus();
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      return absl::UnavailableError(absl::StrCat("postgresql: reconnecting to ", url_, ": ",
                                                 Trimmed(PQerrorMessage(conn_))));
    }
    return Configure(busy_timeout_);
  }

  absl::Status Error(PGresult* r, std::string_view sql) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      return absl::UnavailableError(absl::StrCat("postgresql: ", std::string(sql), ": connection lost: ",
                                                 Trimmed(PQerrorMessage(conn_))));
    }
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = absl::StrCat("postgresql: ", std::string(sql), ": ",
                                   Trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn_)),
                                   state ? absl::StrCat(" (SQLSTATE ", state, ")") : "");
    if (state == nullptr || IsTransient(state)) return absl::UnavailableError(msg);
    return absl::InternalError(msg);
  }

  absl::StatusOr<ResultPtr> Run(std::string_view sql, absl::Span<const SqlValue> params) {
    // Outside a transaction a lost connection is re-established here (reads); inside one the
    // statement fails and the transaction is retried from the start by its owner.
    if (!in_txn_ && PQstatus(conn_) != CONNECTION_OK) RETURN_IF_ERROR(EnsureConnected());
    int expected = 0;
    std::string text = TranslatePlaceholders(sql, &expected);
    if (expected != static_cast<int>(params.size())) {
      return absl::InternalError(absl::StrCat("postgresql: ", std::string(sql), ": ", params.size(),
                                              " parameters given, ", expected, " expected"));
    }
    std::vector<Oid> types(params.size(), 0);
    std::vector<std::string> ints(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<int> lengths(params.size(), 0);
    std::vector<int> formats(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& p = params[i];
      switch (p.type()) {
        case SqlValue::Type::kNull:
          break;
        case SqlValue::Type::kInt:
          types[i] = kInt8Oid;
          ints[i] = absl::StrCat(p.AsInt());
          values[i] = ints[i].c_str();
          break;
        case SqlValue::Type::kText:
          // Untyped: the server infers it from the context (a TEXT column, a BIGINT compare).
          // Text must not hold NUL bytes; PostgreSQL text cannot either.
          values[i] = p.raw_text().c_str();
          break;
        case SqlValue::Type::kBlob:
          types[i] = kByteaOid;
          values[i] = p.raw_text().data();
          lengths[i] = static_cast<int>(p.raw_text().size());
          formats[i] = 1;
          break;
      }
    }
    ResultPtr r(PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()),
                             params.empty() ? nullptr : types.data(),
                             params.empty() ? nullptr : values.data(),
                             params.empty() ? nullptr : lengths.data(),
                             params.empty() ? nullptr : formats.data(), /*resultFormat=*/0));
    ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Error(r.get(), sql);
    return r;
  }

  static SqlValue Column(PGresult* r, int i, int j) {
    if (PQgetisnull(r, i, j)) return SqlValue();
    const char* v = PQgetvalue(r, i, j);
    const int len = PQgetlength(r, i, j);
    switch (PQftype(r, j)) {
      case kInt8Oid:
      case kInt4Oid:
      case kInt2Oid:
      case kOidOid:
      case kNumericOid: {
        int64_t n = 0;
        absl::string_view s(v, len);
        if (absl::SimpleAtoi(s, &n)) return SqlValue(n);
        double d = 0;
        if (absl::SimpleAtod(s, &d)) return SqlValue(static_cast<int64_t>(d));
        return SqlValue(std::string(s));
      }
      case kBoolOid:
        return SqlValue(static_cast<int64_t>(v[0] == 't' ? 1 : 0));
      case kByteaOid: {
        size_t n = 0;
        unsigned char* bytes = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &n);
        if (bytes == nullptr) return SqlValue::Blob("");
        std::string out(reinterpret_cast<const char*>(bytes), n);
        PQfreemem(bytes);
        return SqlValue::Blob(std::move(out));
      }
      default:
        return SqlValue(std::string(v, len));
    }
  }


  PGconn* conn_;
  std::string url_;  // redacted
  absl::Duration busy_timeout_ = absl::Seconds(5);
  bool in_txn_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqlDb>> OpenPostgresDb(const std::string& url,
                                                      absl::Duration busy_timeout) {
  const std::string redacted = common::RedactText(url);
  // connect_timeout first: a value in the url itself (expanded from dbname) wins.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "mimic-audit", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to audit database ", redacted, ": out of memory"));
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    // libpq does not print passwords, but the message can quote the connection string.
    if (!url.empty()) {
      // Belt and braces: never repeat the raw url (it may hold ?password=...).
      for (size_t p = msg.find(url); p != std::string::npos; p = msg.find(url)) {
        msg.replace(p, url.size(), redacted);
      }
    }
    return absl::UnavailableError(
        absl::StrCat("cannot connect to audit database ", redacted, ": ", msg));
  }
  auto db = std::make_unique<PostgresDb>(conn, redacted);
  if (absl::Status st = db->Configure(busy_timeout); !st.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot configure audit database ", redacted, ": ", st.message()));
  }
  return std::unique_ptr<SqlDb>(std::move(db));
}

}  // namespace mimic::controller
