// Shared by backup_databases and migrate_userstore_db: the databases a source MI uses, read from
// its conf/deployment.toml ([[datasource]] entries, [realm_manager] data_source, [user_store]),
// JDBC URL parsing, password resolution, and running a database client as a child process with
// the password in its environment only. Passwords are resolved for use and never logged: every
// text meant for a log goes through common::RedactText (RedactJdbcUrl for URLs).
#ifndef MIMIC_AGENT_STEPS_DB_DISCOVERY_H_
#define MIMIC_AGENT_STEPS_DB_DISCOVERY_H_

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/engine/step.h"

namespace mimic::agent {

enum class DbType { kPostgresql, kMysql, kMariadb, kH2, kMssql, kOracle, kDb2, kOther };

// "postgresql", "mysql", "mariadb", "h2", "mssql", "oracle", "db2", "other".
std::string DbTypeName(DbType type);

// What a JDBC URL says. Default ports: PostgreSQL 5432, MySQL/MariaDB 3306, MSSQL 1433,
// Oracle 1521, DB2 50000. For H2, `database` is the file path without ".mv.db"/".h2.db"
// (relative paths and ${carbon.home} are resolved against `home` when given).
struct JdbcUrl {
  DbType type = DbType::kOther;
  std::string host;
  int port = 0;
  std::string database;
};
JdbcUrl ParseJdbcUrl(const std::string& url, const std::string& home = "");

// The URL with any password-like query parameter and userinfo password hidden.
std::string RedactJdbcUrl(const std::string& url);

struct Datasource {
  std::string id;
  std::string url;
  DbType type = DbType::kOther;
  std::string host;
  int port = 0;
  std::string database;
  std::string username;
  std::string password;  // as written in the toml (may be "$secret{alias}"); never log it
};

struct DbDiscovery {
  std::vector<Datasource> datasources;           // in file order
  std::string realm_data_source = "WSO2CarbonDB";  // [realm_manager] data_source
  std::string user_store_type;                   // [user_store] type
  std::string user_store_class;                  // [user_store] class
  bool jdbc_user_store = false;  // type "database" or class ...JDBCUserStoreManager
  const Datasource* Find(const std::string& id) const;
};

// Parses deployment.toml text (`name` is used in errors); `home` resolves H2 paths.
absl::StatusOr<DbDiscovery> DiscoverDatabases(const std::string& toml_text,
                                              const std::string& name, const std::string& home);

// The password to use for `ds`: when param `password.<id>` names an environment variable, its
// value (error when unset); else the toml's password unless it is a $secret{} reference, which
// mimic cannot decrypt (error naming the datasource and the param to set).
absl::StatusOr<std::string> ResolvePassword(const StepContext& ctx, const Datasource& ds);

// A finished child process.
struct ProcResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string out;  // stdout when not sent to a file (capped at 1 MiB)
  std::string err;  // stderr (capped at 64 KiB), NOT redacted
};

// Runs argv[0] (looked up in PATH) with `env_add` ("K=V") added to the environment, stdin from
// `stdin_path` (or /dev/null when ""), stdout to `stdout_path` (or captured when ""). The child
// is killed (its process group) after `timeout_seconds`, or as soon as `cancel` (the step's
// cancel token, may be null) is set: CANCELLED then. Nothing goes through a shell.
absl::StatusOr<ProcResult> RunProcess(const std::vector<std::string>& argv,
                                      const std::vector<std::string>& env_add,
                                      const std::string& stdin_path,
                                      const std::string& stdout_path, int timeout_seconds,
                                      const std::atomic<bool>* cancel = nullptr);

// "exit code N: <last stderr lines, redacted>" for an error message.
std::string DescribeFailure(const ProcResult& r);

// Single-quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_DB_DISCOVERY_H_
