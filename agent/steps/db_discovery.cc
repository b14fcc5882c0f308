#include "agent/steps/db_discovery.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/base/fs.h"
#include "common/base/redact.h"
#include "common/base/subprocess.h"
#include "common/config/toml_load.h"

namespace mimic::agent {
namespace {

constexpr size_t kMaxOut = 1 << 20;
constexpr size_t kMaxErr = 64 << 10;

std::string Str(const toml::table& t, const char* key) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return "";
  if (auto s = n->value<std::string>()) return *s;
  if (auto i = n->value<int64_t>()) return std::to_string(*i);
  return "";
}

// host[:port] from "h:p" (IPv6 "[::1]:p" too); the first of a comma-separated list.
void SplitHostPort(std::string hp, int default_port, JdbcUrl* out) {
  hp = hp.substr(0, hp.find(','));
  out->port = default_port;
  size_t colon = hp.rfind(':');
  if (!hp.empty() && hp.front() == '[') {
    const size_t close = hp.find(']');
    out->host = hp.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    colon = (close != std::string::npos && close + 1 < hp.size() && hp[close + 1] == ':')
                ? close + 1
                : std::string::npos;
  } else {
    out->host = hp.substr(0, colon);
  }
  int p = 0;
  if (colon != std::string::npos && absl::SimpleAtoi(hp.substr(colon + 1), &p)) out->port = p;
  if (out->host.empty()) out->host = "localhost";
}

// "//host:port/db?x" -> host, port, db.
void ParseAuthority(const std::string& rest, int default_port, JdbcUrl* out) {
  std::string r = rest;
  if (absl::StartsWith(r, "//")) r = r.substr(2);
  const size_t slash = r.find('/');
  std::string hp = r.substr(0, slash);
  if (const size_t at = hp.rfind('@'); at != std::string::npos) hp = hp.substr(at + 1);
  SplitHostPort(hp, default_port, out);
  if (slash != std::string::npos) {
    std::string db = r.substr(slash + 1);
    db = db.substr(0, db.find_first_of("?;:"));
    out->database = db;
  }
}

}  // namespace

std::string DbTypeName(DbType type) {
  switch (type) {
    case DbType::kPostgresql: return "postgresql";
    case DbType::kMysql: return "mysql";
    case DbType::kMariadb: return "mariadb";
    case DbType::kH2: return "h2";
    case DbType::kMssql: return "mssql";
    case DbType::kOracle: return "oracle";
    case DbType::kDb2: return "db2";
    case DbType::kOther: return "other";
  }
  return "other";
}

JdbcUrl ParseJdbcUrl(const std::string& url, const std::string& home) {
  JdbcUrl out;
  const std::string lower = absl::AsciiStrToLower(url);
  if (!absl::StartsWith(lower, "jdbc:")) return out;
  const std::string rest = url.substr(5);
  const std::string lrest = lower.substr(5);
  auto after = [&](const std::string& prefix) { return rest.substr(prefix.size()); };
  if (absl::StartsWith(lrest, "postgresql:")) {
    out.type = DbType::kPostgresql;
    ParseAuthority(after("postgresql:"), 5432, &out);
  } else if (absl::StartsWith(lrest, "mysql:") || absl::StartsWith(lrest, "mariadb:")) {
    out.type = absl::StartsWith(lrest, "mysql:") ? DbType::kMysql : DbType::kMariadb;
    std::string r = after(out.type == DbType::kMysql ? "mysql:" : "mariadb:");
    // jdbc:mysql:loadbalance://..., jdbc:mysql:replication://...
    if (!absl::StartsWith(r, "//")) r = r.substr(r.find("//") == std::string::npos ? 0 : r.find("//"));
    ParseAuthority(r, 3306, &out);
  } else if (absl::StartsWith(lrest, "sqlserver:")) {
    out.type = DbType::kMssql;
    std::string r = after("sqlserver:");
    if (absl::StartsWith(r, "//")) r = r.substr(2);
    std::vector<std::string> parts = absl::StrSplit(r, ';');
    SplitHostPort(parts[0].substr(0, parts[0].find('\\')), 1433, &out);
    for (size_t i = 1; i < parts.size(); ++i) {
      std::vector<std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
      if (kv.size() == 2 && (absl::EqualsIgnoreCase(kv[0], "databaseName") ||
                             absl::EqualsIgnoreCase(kv[0], "database"))) {
        out.database = kv[1];
      }
    }
  } else if (absl::StartsWith(lrest, "oracle:")) {
    out.type = DbType::kOracle;
    std::string r = rest.substr(rest.find('@') == std::string::npos ? 7 : rest.find('@') + 1);
    if (absl::StartsWith(r, "//")) r = r.substr(2);
    if (r.find('(') == std::string::npos) {
      const size_t sep = r.find_first_of("/");
      std::string hp = r.substr(0, sep);
      // host:port:SID
      std::vector<std::string> f = absl::StrSplit(hp, ':');
      if (sep == std::string::npos && f.size() == 3) {
        out.database = f[2];
        hp = absl::StrCat(f[0], ":", f[1]);
      } else if (sep != std::string::npos) {
        out.database = r.substr(sep + 1);
      }
      SplitHostPort(hp, 1521, &out);
    }
  } else if (absl::StartsWith(lrest, "db2:")) {
    out.type = DbType::kDb2;
    ParseAuthority(after("db2:"), 50000, &out);
  } else if (absl::StartsWith(lrest, "h2:")) {
    out.type = DbType::kH2;
    std::string r = after("h2:");
    r = r.substr(0, r.find(';'));
    for (const char* p : {"file:", "split:", "nio:", "async:"}) {
      if (absl::StartsWith(r, p)) r = r.substr(std::strlen(p));
    }
    if (absl::StartsWith(r, "mem:") || absl::StartsWith(r, "tcp:") ||
        absl::StartsWith(r, "ssl:")) {
      out.database = r;  // not a local file
      return out;
    }
    r = absl::StrReplaceAll(r, {{"${carbon.home}", home}, {"${CARBON_HOME}", home}});
    if (absl::StartsWith(r, "./")) r = r.substr(2);
    if (!r.empty() && r.front() != '/' && !home.empty()) r = absl::StrCat(home, "/", r);
    out.database = r;
  }
  return out;
}

std::string RedactJdbcUrl(const std::string& url) {
  std::string out;
  // password=... in query (?a=b&password=c) or property (;password=c) form.
  std::vector<std::string> parts = absl::StrSplit(url, absl::ByAnyChar("?&;"));
  size_t pos = 0;
  for (const std::string& p : parts) {
    if (pos > 0) out.push_back(url[pos - 1]);
    const std::string key = absl::AsciiStrToLower(p.substr(0, p.find('=')));
    if (p.find('=') != std::string::npos && absl::StrContains(key, "password")) {
      absl::StrAppend(&out, p.substr(0, p.find('=') + 1), common::kRedacted);
    } else {
      out += p;
    }
    pos += p.size() + 1;
  }
  return common::RedactText(out);
}

const Datasource* DbDiscovery::Find(const std::string& id) const {
  for (const Datasource& d : datasources) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

absl::StatusOr<DbDiscovery> DiscoverDatabases(const std::string& toml_text,
                                              const std::string& name, const std::string& home) {
  absl::StatusOr<toml::table> root = common::ParseTomlString(toml_text, name);
  if (!root.ok()) return root.status();
  DbDiscovery d;
  if (const toml::array* arr = (*root)["datasource"].as_array()) {
    for (const toml::node& n : *arr) {
      const toml::table* t = n.as_table();
      if (t == nullptr) continue;
      Datasource ds;
      ds.id = Str(*t, "id");
      ds.url = Str(*t, "url");
      ds.username = Str(*t, "username");
      ds.password = Str(*t, "password");
      const JdbcUrl u = ParseJdbcUrl(ds.url, home);
      ds.type = u.type;
      ds.host = u.host;
      ds.port = u.port;
      ds.database = u.database;
      if (ds.id.empty()) {
        return common::ConfigError(name, t, "datasource", "a [[datasource]] has no id");
      }
      d.datasources.push_back(std::move(ds));
    }
  }
  if (const toml::table* rm = (*root)["realm_manager"].as_table()) {
    if (std::string s = Str(*rm, "data_source"); !s.empty()) d.realm_data_source = s;
  }
  if (const toml::table* us = (*root)["user_store"].as_table()) {
    d.user_store_type = Str(*us, "type");
    d.user_store_class = Str(*us, "class");
  }
  d.jdbc_user_store = absl::EqualsIgnoreCase(d.user_store_type, "database") ||
                      absl::EndsWith(d.user_store_class, "JDBCUserStoreManager");
  return d;
}

absl::StatusOr<std::string> ResolvePassword(const StepContext& ctx, const Datasource& ds) {
  const std::string param = absl::StrCat("password.", ds.id);
  if (const std::string var = ctx.Param(param); !var.empty()) {
    const char* v = std::getenv(var.c_str());
    if (v == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("datasource ", ds.id, ": param ", param, " names environment variable ",
                       var, ", which is not set in the agent's environment"));
    }
    return std::string(v);
  }
  if (common::HoldsSecretReference(ds.password)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "datasource ", ds.id,
        ": its password is a $secret{} reference, which mimic cannot decrypt; set param ", param,
        " to the name of an environment variable of the agent holding the password (e.g. ",
        param, " = \"DB_PW\")"));
  }
  return ds.password;
}

absl::StatusOr<ProcResult> RunProcess(const std::vector<std::string>& argv,
                                      const std::vector<std::string>& env_add,
                                      const std::string& stdin_path,
                                      const std::string& stdout_path, int timeout_seconds,
                                      const std::atomic<bool>* cancel) {
  common::SubprocessOptions o;
  o.cancel = cancel;
  o.argv = argv;
  o.env = env_add;
  o.stdin_path = stdin_path;
  o.stdout_path = stdout_path;
  o.stdout_limit = {kMaxOut, false};
  o.stderr_limit = {kMaxErr, true};
  o.timeout = absl::Seconds(timeout_seconds);
  o.kill_grace = absl::Seconds(2);
  absl::StatusOr<common::SubprocessResult> sub = common::RunSubprocess(o);
  if (!sub.ok()) return sub.status();
  if (sub->cancelled) {
    return absl::CancelledError(absl::StrCat(argv[0], ": cancelled; its process group was ended"));
  }
  ProcResult r;
  r.timed_out = sub->timed_out;
  r.exit_code = sub->timed_out ? -1 : sub->exit_code;
  r.out = std::move(sub->stdout_text);
  r.err = std::move(sub->stderr_text);
  return r;
}

std::string DescribeFailure(const ProcResult& r) {
  std::vector<std::string> lines = absl::StrSplit(r.err, '\n', absl::SkipWhitespace());
  if (lines.size() > 5) lines.erase(lines.begin(), lines.end() - 5);
  const std::string head =
      r.timed_out ? std::string("timed out") : absl::StrCat("exit code ", r.exit_code);
  if (lines.empty()) return head;
  return common::RedactText(absl::StrCat(head, ": ", absl::StrJoin(lines, " | ")));
}

std::string ShellQuote(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

}  // namespace mimic::agent
