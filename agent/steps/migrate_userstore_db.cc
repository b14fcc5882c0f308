// migrate_userstore_db: the JDBC user store DB change MI 4.0 needs (MI-FACTS §4): UM_USER gains
// UM_USER_ID VARCHAR(255) NOT NULL, filled with UUIDs, and UNIQUE(UM_USER_NAME, UM_TENANT_ID)
// becomes UNIQUE(UM_USER_ID, UM_TENANT_ID), as in 4.0.0's dbscripts/<db>/<db>_user.sql.
//
// Applies when the source is 1.2.0 (EI 7.1), the target 4.x and the source's [user_store] is
// JDBC (type = "database" or class ...JDBCUserStoreManager); otherwise STEP_SKIPPED. The
// database is the datasource [realm_manager] data_source names (default WSO2CarbonDB).
//   PostgreSQL       psql -v ON_ERROR_STOP=1, one transaction (DDL is transactional)
//   MySQL / MariaDB  mysql; DDL commits implicitly, so the ALTERs are not one transaction
//   others           the operator's param script run by param client_command (/bin/sh -c, the
//                    script on stdin, placeholders {{host}} {{port}} {{database}} {{user}}
//                    {{script}}, password in env MIMIC_DB_PASSWORD); else the step fails.
// The migration is recorded in MIMIC_MIGRATIONS(NAME, APPLIED_AT), created when absent, so it
// never runs twice (STEP_OK "already migrated"). After it: UM_USER_ID present, no NULL, no
// 'NONE', no duplicate (UM_USER_ID, UM_TENANT_ID). Each part of the change (the column, its
// UUIDs, NOT NULL without default, the old UNIQUE dropped, the new UNIQUE added) is read from
// the catalog separately, so a half-migrated schema (MySQL commits each ALTER on its own) gets
// only what it lacks, and is recorded only once every part is there (read back). Check mode logs
// the SQL of the missing parts and runs nothing.
// Params: password.<id> (env var holding the password), script, client_command,
// timeout_seconds (default 1800).
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "agent/steps/db_discovery.h"
#include "agent/steps/steps.h"
#include "agent/steps/file_steps.h"
#include "common/base/fs.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

constexpr char kMigration[] = "ei71_to_mi400_um_user_id";

constexpr char kCreateMarker[] =
    "CREATE TABLE IF NOT EXISTS MIMIC_MIGRATIONS (NAME VARCHAR(255) NOT NULL PRIMARY KEY, "
    "APPLIED_AT TIMESTAMP NOT NULL);\n";

// Rows of the verification: NULL ids, 'NONE' ids, duplicate (id, tenant) groups, users.
constexpr char kVerifySql[] =
    "SELECT (SELECT COUNT(*) FROM UM_USER WHERE UM_USER_ID IS NULL), "
    "(SELECT COUNT(*) FROM UM_USER WHERE UM_USER_ID = 'NONE'), "
    "(SELECT COUNT(*) FROM (SELECT UM_USER_ID FROM UM_USER GROUP BY UM_USER_ID, UM_TENANT_ID "
    "HAVING COUNT(*) > 1) D), (SELECT COUNT(*) FROM UM_USER);\n";

std::string SqlIdent(const std::string& s, char quote) {
  const std::string q(1, quote);
  return absl::StrCat(q, absl::StrReplaceAll(s, {{q, q + q}}), q);
}

// Runs SQL through psql or mysql with the password in the environment.
class Client {
 public:
  Client(const Datasource& ds, std::string password, int timeout,
         const std::atomic<bool>* cancel = nullptr)
      : ds_(ds), password_(std::move(password)), timeout_(timeout), cancel_(cancel) {}
  bool pg() const { return ds_.type == DbType::kPostgresql; }

  // Rows of the output, fields split.
  absl::StatusOr<std::vector<std::vector<std::string>>> Run(const std::string& sql) {
    char tmpl[] = "/tmp/mimic_sql_XXXXXX";
    const int fd = ::mkostemp(tmpl, O_CLOEXEC);
    if (fd < 0) return absl::InternalError("cannot create a temporary SQL file");
    const bool written = ::write(fd, sql.data(), sql.size()) == static_cast<ssize_t>(sql.size());
    ::close(fd);
    const std::string port = std::to_string(ds_.port);
    std::vector<std::string> argv, env;
    std::string stdin_path;
    if (pg()) {
      argv = {"psql", "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "--no-password",
              "-h", ds_.host, "-p", port, "-U", ds_.username, "-d", ds_.database, "-f", tmpl};
      env = {absl::StrCat("PGPASSWORD=", password_)};
    } else {
      argv = {"mysql", "--protocol=TCP", "--batch", "--skip-column-names", "-h", ds_.host,
              "-P", port, "-u", ds_.username, ds_.database};
      env = {absl::StrCat("MYSQL_PWD=", password_)};
      stdin_path = tmpl;
    }
    absl::StatusOr<ProcResult> r =
        written ? RunProcess(argv, env, stdin_path, "", timeout_, cancel_)
                : absl::InternalError("cannot write a temporary SQL file");
    ::unlink(tmpl);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      return absl::AbortedError(absl::StrCat(argv[0], " on datasource ", ds_.id, " failed: ",
                                             DescribeFailure(*r)));
    }
    std::vector<std::vector<std::string>> rows;
    for (absl::string_view line : absl::StrSplit(r->out, '\n', absl::SkipEmpty())) {
      rows.push_back(absl::StrSplit(line, pg() ? '|' : '\t'));
    }
    return rows;
  }

 private:
  const Datasource& ds_;
  std::string password_;
  int timeout_;
  const std::atomic<bool>* cancel_;
};

int Int(const std::vector<std::vector<std::string>>& rows, size_t field) {
  int v = -1;
  if (!rows.empty() && field < rows[0].size()) (void)absl::SimpleAtoi(rows[0][field], &v);
  return v;
}

// What UM_USER has of the migration, each part on its own.
struct Schema {
  bool has_column = false;        // UM_USER_ID exists
  bool nullable = true;           // ... and may be NULL
  bool has_default = false;       // ... and has a default (mimic adds it with 'NONE')
  int unfilled = 0;               // rows whose UM_USER_ID is NULL or 'NONE'
  std::vector<std::string> old_unique;  // UNIQUE(UM_USER_NAME, UM_TENANT_ID) names
  bool has_new_unique = false;    // UNIQUE(UM_USER_ID, UM_TENANT_ID)
};

// Reads the parts of the migration UM_USER has. `has_column`: UM_USER_ID exists.
absl::StatusOr<Schema> ReadSchema(Client& client, bool has_column) {
  const bool pg = client.pg();
  Schema s;
  s.has_column = has_column;
  // Unique constraints: name and columns (upper case, sorted, comma-joined).
  const std::string uniques_sql =
      pg ? "SELECT c.conname, (SELECT string_agg(upper(a.attname::text), ',' ORDER BY "
           "upper(a.attname::text)) FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum = "
           "ANY(c.conkey)) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN "
           "pg_namespace n ON n.oid = t.relnamespace WHERE t.relname = 'um_user' AND n.nspname "
           "= current_schema() AND c.contype = 'u';\n"
         : "SELECT INDEX_NAME, GROUP_CONCAT(UPPER(COLUMN_NAME) ORDER BY UPPER(COLUMN_NAME)) "
           "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
           "'UM_USER' AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY' GROUP BY INDEX_NAME;\n";
  ASSIGN_OR_RETURN(auto uniques, client.Run(uniques_sql));
  for (const auto& row : uniques) {
    if (row.size() < 2) continue;
    if (row[1] == "UM_TENANT_ID,UM_USER_NAME") s.old_unique.push_back(row[0]);
    if (row[1] == "UM_TENANT_ID,UM_USER_ID") s.has_new_unique = true;
  }
  if (!has_column) return s;
  const std::string column_sql =
      pg ? "SELECT (is_nullable = 'YES')::int, (column_default IS NOT NULL)::int, (SELECT "
           "COUNT(*) FROM UM_USER WHERE UM_USER_ID IS NULL OR UM_USER_ID = 'NONE') FROM "
           "information_schema.columns WHERE table_schema = current_schema() AND table_name = "
           "'um_user' AND column_name = 'um_user_id';\n"
         : "SELECT IS_NULLABLE = 'YES', COLUMN_DEFAULT IS NOT NULL AND COLUMN_DEFAULT <> 'NULL', (SELECT COUNT(*) FROM "
           "UM_USER WHERE UM_USER_ID IS NULL OR UM_USER_ID = 'NONE') FROM "
           "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
           "'UM_USER' AND COLUMN_NAME = 'UM_USER_ID';\n";
  ASSIGN_OR_RETURN(auto column, client.Run(column_sql));
  s.nullable = Int(column, 0) != 0;
  s.has_default = Int(column, 1) != 0;
  s.unfilled = Int(column, 2);
  return s;
}

// The SQL that does what `s` lacks (without the record and, for PostgreSQL, without BEGIN /
// COMMIT); `missing` names each part it does. Empty when nothing is missing.
std::string MissingSql(bool pg, int pg_version, const Schema& s,
                       std::vector<std::string>* missing) {
  std::string sql;
  const std::string uuid =
      !pg ? "UUID()"
      : pg_version >= 130000
          ? "gen_random_uuid()::text"
          : "(SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) "
            "|| '-' || substr(h, 17, 4) || '-' || substr(h, 21, 12) FROM (SELECT "
            "md5(random()::text || clock_timestamp()::text || UM_ID::text || "
            "UM_TENANT_ID::text) AS h) s)";
  if (!s.has_column) {
    missing->push_back("the UM_USER_ID column");
    if (pg) {
      absl::StrAppend(&sql, "ALTER TABLE UM_USER ADD COLUMN UM_USER_ID VARCHAR(255);\n",
                      "UPDATE UM_USER SET UM_USER_ID = ", uuid, ";\n",
                      "ALTER TABLE UM_USER ALTER COLUMN UM_USER_ID SET NOT NULL;\n");
    } else {
      absl::StrAppend(&sql,
                      "ALTER TABLE UM_USER ADD COLUMN UM_USER_ID VARCHAR(255) NOT NULL DEFAULT "
                      "'NONE' AFTER UM_ID;\n",
                      "UPDATE UM_USER SET UM_USER_ID = ", uuid, ";\n",
                      "ALTER TABLE UM_USER ALTER COLUMN UM_USER_ID DROP DEFAULT;\n");
    }
  } else {
    if (s.unfilled > 0) {
      missing->push_back(absl::StrCat("UUIDs for ", s.unfilled, " user(s) without one"));
      absl::StrAppend(&sql, "UPDATE UM_USER SET UM_USER_ID = ", uuid,
                      " WHERE UM_USER_ID IS NULL OR UM_USER_ID = 'NONE';\n");
    }
    if (s.nullable) {
      missing->push_back("NOT NULL on UM_USER_ID");
      absl::StrAppend(&sql, pg ? "ALTER TABLE UM_USER ALTER COLUMN UM_USER_ID SET NOT NULL;\n"
                               : "ALTER TABLE UM_USER MODIFY UM_USER_ID VARCHAR(255) NOT NULL;\n");
    }
  }
  for (const std::string& name : s.old_unique) {
    missing->push_back(absl::StrCat("UNIQUE(UM_USER_NAME, UM_TENANT_ID) ", name, " dropped"));
    absl::StrAppend(&sql,
                    pg ? absl::StrCat("ALTER TABLE UM_USER DROP CONSTRAINT ", SqlIdent(name, '"'))
                       : absl::StrCat("ALTER TABLE UM_USER DROP INDEX ", SqlIdent(name, '`')),
                    ";\n");
  }
  if (!s.has_new_unique) {
    missing->push_back("UNIQUE(UM_USER_ID, UM_TENANT_ID)");
    absl::StrAppend(&sql, "ALTER TABLE UM_USER ADD UNIQUE (UM_USER_ID, UM_TENANT_ID);\n");
  }
  // The 'NONE' default mimic adds with the column goes with the rest (WSO2's own script keeps
  // it, so a schema otherwise complete is left as the operator's script made it).
  if (s.has_column && s.has_default && !missing->empty()) {
    missing->push_back("UM_USER_ID's default dropped");
    absl::StrAppend(&sql, "ALTER TABLE UM_USER ALTER COLUMN UM_USER_ID DROP DEFAULT;\n");
  }
  if (pg && !sql.empty()) {
    absl::StrAppend(&sql,
                    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM UM_USER WHERE UM_USER_ID IS NULL OR "
                    "UM_USER_ID = 'NONE') THEN RAISE EXCEPTION 'mimic: UM_USER_ID not filled'; "
                    "END IF; END $$;\n");
  }
  return sql;
}

class MigrateUserstoreDbStep final : public Step {
 public:
  std::string name() const override { return "migrate_userstore_db"; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    ASSIGN_OR_RETURN(Versions v, ResolveVersions(ctx, homes));
    StepPlan plan;
    auto skip = [&](const std::string& why) {
      plan.forced_status = mimic::v1::STEP_SKIPPED;
      plan.message = why;
      StepLog(ctx, LogLevel::kInfo, why);
      return plan;
    };
    if (v.source != "1.2.0" || !absl::StartsWith(v.target, "4.")) {
      return skip(absl::StrCat("only for a 1.2.0 (EI 7.1) source and a 4.x target, not ",
                               v.source, " -> ", v.target));
    }
    ASSIGN_OR_RETURN(std::string toml_path,
                     ctx.guard->ResolveUnder(homes.source, "conf/deployment.toml"));
    ASSIGN_OR_RETURN(std::string text, common::ReadFile(toml_path));
    ASSIGN_OR_RETURN(DbDiscovery disc, DiscoverDatabases(text, toml_path, homes.source));
    if (!disc.jdbc_user_store) {
      return skip(absl::StrCat("the source's user store is not JDBC (type \"",
                               disc.user_store_type, "\")"));
    }
    const Datasource* ds = disc.Find(disc.realm_data_source);
    if (ds == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migrate_userstore_db: the JDBC user store uses datasource ", disc.realm_data_source,
          " ([realm_manager] data_source), which has no [[datasource]] in ", toml_path));
    }
    ASSIGN_OR_RETURN(const int64_t timeout, ctx.IntParam("timeout_seconds"));
    const std::string label =
        absl::StrCat(ds->id, " (", DbTypeName(ds->type), ", ", RedactJdbcUrl(ds->url), ")");
    ASSIGN_OR_RETURN(std::string pw, ResolvePassword(ctx, *ds));
    if (ds->type != DbType::kPostgresql && ds->type != DbType::kMysql &&
        ds->type != DbType::kMariadb) {
      return RunOperatorScript(ctx, *ds, label, pw, timeout, std::move(plan));
    }

    Client client(*ds, pw, timeout, ctx.cancel);
    const bool pg = client.pg();
    // State: marker table?, UM_USER?, UM_USER_ID column?, server version.
    const std::string state_sql =
        pg ? "SELECT (to_regclass('mimic_migrations') IS NOT NULL)::int, "
             "(to_regclass('um_user') IS NOT NULL)::int, (SELECT COUNT(*) FROM "
             "information_schema.columns WHERE table_schema = current_schema() AND table_name = "
             "'um_user' AND column_name = 'um_user_id'), current_setting('server_version_num');\n"
           : "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
             "DATABASE() AND UPPER(TABLE_NAME) = 'MIMIC_MIGRATIONS'), (SELECT COUNT(*) FROM "
             "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = "
             "'UM_USER'), (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
             "DATABASE() AND TABLE_NAME = 'UM_USER' AND COLUMN_NAME = 'UM_USER_ID'), 0;\n";
    ASSIGN_OR_RETURN(auto state, client.Run(state_sql));
    if (Int(state, 1) != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migrate_userstore_db: datasource ", label, " has no UM_USER table"));
    }
    if (Int(state, 0) == 1) {
      ASSIGN_OR_RETURN(auto done, client.Run(absl::StrCat(
                                      "SELECT COUNT(*) FROM MIMIC_MIGRATIONS WHERE NAME = '",
                                      kMigration, "';\n")));
      if (Int(done, 0) > 0) {
        plan.forced_status = mimic::v1::STEP_OK;
        plan.message = absl::StrCat("already migrated: ", label, " (MIMIC_MIGRATIONS ",
                                    kMigration, ")");
        StepLog(ctx, LogLevel::kInfo, plan.message);
        return plan;
      }
    }
    const std::string record =
        absl::StrCat(kCreateMarker, "INSERT INTO MIMIC_MIGRATIONS (NAME, APPLIED_AT) VALUES ('",
                     kMigration, "', CURRENT_TIMESTAMP);\n");
    // Each part of the migration is read separately, so a half-migrated schema (MySQL commits
    // every ALTER on its own; an operator may have run part of WSO2's script) gets only what it
    // lacks: the column, its values, NOT NULL without default, the old UNIQUE gone, the new
    // UNIQUE there.
    ASSIGN_OR_RETURN(Schema schema, ReadSchema(client, Int(state, 2) > 0));
    std::vector<std::string> missing;
    int version = 0;
    if (pg) (void)absl::SimpleAtoi(state[0].size() > 3 ? state[0][3] : "", &version);
    const std::string missing_sql = MissingSql(pg, version, schema, &missing);
    // PostgreSQL: one transaction, the record in it; MySQL: the record once verified.
    const std::string sql =
        pg ? absl::StrCat("BEGIN;\n", missing_sql, record, "COMMIT;\n") : missing_sql;
    if (missing.empty()) {
      // Every part is there but mimic did not record it (the operator ran WSO2's script).
      RETURN_IF_ERROR(Verify(client, label));
      if (ctx.check) return Done(ctx, std::move(plan), "would record", label, true);
      ASSIGN_OR_RETURN(auto ignored, client.Run(record));
      return Done(ctx, std::move(plan), "UM_USER_ID already present and verified; recorded",
                  label, true);
    }
    const std::string what = absl::StrJoin(missing, ", ");
    if (schema.has_column) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat("UM_USER is half-migrated (UM_USER_ID is there); missing: ", what));
    }
    if (schema.old_unique.empty() && !schema.has_new_unique) {
      StepLog(ctx, LogLevel::kWarning,
              "UM_USER has no UNIQUE(UM_USER_NAME, UM_TENANT_ID) constraint to drop");
    }
    if (!pg) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(DbTypeName(ds->type), " has no transactional DDL: the ALTER TABLE "
                           "statements commit one by one; a failure part-way leaves UM_USER "
                           "half-migrated (run the step again: it does only what is missing)"));
    }
    const std::string verb = ctx.check ? "would run on " : "running on ";
    StepLog(ctx, LogLevel::kInfo, absl::StrCat(verb, label, ":"));
    for (absl::string_view line : absl::StrSplit(sql + (pg ? "" : record), '\n',
                                                 absl::SkipEmpty())) {
      StepLog(ctx, LogLevel::kInfo, std::string(line));
    }
    const std::string done_what =
        schema.has_column ? absl::StrCat("completed the migration (", what, ") of")
                          : "added UM_USER_ID (UUIDs) to";
    if (ctx.check) {
      return Done(ctx, std::move(plan),
                  schema.has_column ? absl::StrCat("would complete the migration (", what, ") of")
                                    : "would add UM_USER_ID to",
                  label, true);
    }

    StepLog(ctx, LogLevel::kWarning,
            "the database change is outside the run's snapshot: a rollback cannot undo it "
            "(restore the backup_databases dump)");
    ASSIGN_OR_RETURN(auto ignored, client.Run(sql));
    RETURN_IF_ERROR(Verify(client, label));
    // Read back: every part must be there now, or nothing is recorded.
    ASSIGN_OR_RETURN(Schema after, ReadSchema(client, true));
    std::vector<std::string> still;
    (void)MissingSql(pg, version, after, &still);
    if (!still.empty()) {
      return absl::DataLossError(absl::StrCat("migrate_userstore_db: after the migration ", label,
                                              " still lacks: ", absl::StrJoin(still, ", ")));
    }
    if (!pg) {
      ASSIGN_OR_RETURN(auto recorded, client.Run(record));
    }
    return Done(ctx, std::move(plan), done_what, label, true);
  }

 private:
  static StepPlan Done(const StepContext& ctx, StepPlan plan, const std::string& what,
                       const std::string& label, bool changed) {
    plan.forced_status = changed ? mimic::v1::STEP_CHANGED : mimic::v1::STEP_OK;
    plan.message = absl::StrCat(what, " ", label);
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }

  static absl::Status Verify(Client& client, const std::string& label) {
    ASSIGN_OR_RETURN(auto rows, client.Run(kVerifySql));
    const int nulls = Int(rows, 0), none = Int(rows, 1), dups = Int(rows, 2);
    if (nulls != 0 || none != 0 || dups != 0) {
      return absl::DataLossError(absl::StrCat(
          "migrate_userstore_db: UM_USER.UM_USER_ID on ", label, " is not right: ", nulls,
          " NULL, ", none, " 'NONE', ", dups, " duplicate (UM_USER_ID, UM_TENANT_ID)"));
    }
    return absl::OkStatus();
  }

  static absl::StatusOr<StepPlan> RunOperatorScript(const StepContext& ctx, const Datasource& ds,
                                                    const std::string& label,
                                                    const std::string& pw, int timeout,
                                                    StepPlan plan) {
    const std::string script = ctx.Param("script"), client = ctx.Param("client_command");
    if (script.empty() || client.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migrate_userstore_db: datasource ", label, " is ", DbTypeName(ds.type),
          ": mimic migrates only PostgreSQL and MySQL/MariaDB itself; set param script (the "
          "migration SQL for ", DbTypeName(ds.type),
          ", e.g. from WSO2's migration-scripts-ei7.1.x-to-apim4.0.0.zip) and param "
          "client_command (the database client to run it; placeholders {{host}} {{port}} "
          "{{database}} {{user}} {{script}}, the script also on stdin, password in env "
          "MIMIC_DB_PASSWORD)",
          script.empty() ? "; script is missing" : "",
          client.empty() ? "; client_command is missing" : ""));
    }
    if (script.front() != '/') {
      return absl::InvalidArgumentError("migrate_userstore_db: param script must be absolute");
    }
    ASSIGN_OR_RETURN(std::string script_path, ctx.guard->Resolve(script));
    if (!common::PathExists(script_path)) {
      return absl::NotFoundError(absl::StrCat("migrate_userstore_db: script ", script_path,
                                              " does not exist"));
    }
    const std::string cmd = absl::StrReplaceAll(
        client, {{"{{host}}", ShellQuote(ds.host)}, {"{{port}}", std::to_string(ds.port)},
                 {"{{database}}", ShellQuote(ds.database)}, {"{{user}}", ShellQuote(ds.username)},
                 {"{{script}}", ShellQuote(script_path)}});
    const std::string shown = common::RedactText(cmd);
    if (ctx.check) {
      return Done(ctx, std::move(plan), absl::StrCat("would run ", shown, " < ", script_path,
                                                     " on"),
                  label, true);
    }
    ASSIGN_OR_RETURN(ProcResult r,
                     RunProcess({"/bin/sh", "-c", cmd}, {absl::StrCat("MIMIC_DB_PASSWORD=", pw)},
                                script_path, "", timeout, ctx.cancel));
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
      StepLog(ctx, LogLevel::kInfo, common::RedactText(std::string(line)));
    }
    if (r.exit_code != 0) {
      return absl::AbortedError(absl::StrCat("migrate_userstore_db: ", shown, " on ", label,
                                             " failed: ", DescribeFailure(r)));
    }
    StepLog(ctx, LogLevel::kWarning,
            "mimic cannot verify UM_USER_ID on this database type: check it has no NULL, "
            "'NONE' or duplicate values");
    return Done(ctx, std::move(plan), absl::StrCat("ran ", shown, " < ", script_path, " on"),
                label, true);
  }
};

}  // namespace

std::unique_ptr<Step> NewMigrateUserstoreDbStep() {
  return std::make_unique<MigrateUserstoreDbStep>();
}

}  // namespace mimic::agent
