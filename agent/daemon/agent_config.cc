#include "agent/daemon/agent_config.h"

#include <toml++/toml.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/path_guard.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"
#include "common/rpc/tls.h"
#include "common/config/toml_load.h"

namespace mimic::agent {
namespace {

std::string Abs(const std::string& dir, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return common::JoinPath(dir, p);
}

class Reader {
 public:
  Reader(const std::string& file, const toml::table& t) : file_(file), t_(t) {}

  absl::Status Error(const toml::node* n, const std::string& key, const std::string& msg) {
    std::string where = file_;
    if (n != nullptr) absl::StrAppend(&where, ":", n->source().begin.line);
    return absl::InvalidArgumentError(absl::StrCat(where, ": key '", key, "': ", msg));
  }

  absl::Status String(const toml::table& t, const std::string& prefix, const char* key,
                      std::string* out, bool required) {
    const toml::node* n = t.get(key);
    std::string full = prefix.empty() ? key : prefix + "." + key;
    if (n == nullptr) {
      if (required) return Error(&t, full, "is required");
      return absl::OkStatus();
    }
    if (!n->is_string()) return Error(n, full, "must be a string");
    *out = **n->as_string();
    return absl::OkStatus();
  }

  absl::Status Unknown(const toml::table& t, const std::string& prefix,
                       const std::set<std::string>& known) {
    for (const auto& [k, v] : t) {
      if (!known.count(std::string(k.str()))) {
        std::string full = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
        return Error(&v, full, "unknown key");
      }
    }
    return absl::OkStatus();
  }

  const std::string& file_;
  const toml::table& t_;
};

}  // namespace

absl::StatusOr<AgentConfig> LoadAgentConfig(const std::string& path) {
  ASSIGN_OR_RETURN(toml::table t, common::ParseTomlFile(path));
  AgentConfig c;
  c.path = path;
  std::string dir = common::Dirname(path);
  if (dir.empty()) dir = ".";
  Reader r(path, t);
  RETURN_IF_ERROR(r.Unknown(t, "", {"listen", "state_dir", "allowed_roots", "executor_threads",
                                    "allowed_client_subjects", "allow_any_client_subject",
                                    "port_file", "allow_exec", "stop_grace_seconds", "tls"}));
  RETURN_IF_ERROR(r.String(t, "", "listen", &c.listen, true));
  RETURN_IF_ERROR(r.String(t, "", "state_dir", &c.state_dir, true));
  RETURN_IF_ERROR(r.String(t, "", "port_file", &c.port_file, false));
  c.state_dir = Abs(dir, c.state_dir);
  c.port_file = Abs(dir, c.port_file);
  if (c.listen.find(':') == std::string::npos) {
    return r.Error(t.get("listen"), "listen", "must be host:port");
  }
  const toml::node* roots = t.get("allowed_roots");
  if (roots == nullptr) return r.Error(&t, "allowed_roots", "is required");
  if (!roots->is_array() || roots->as_array()->empty()) {
    return r.Error(roots, "allowed_roots", "must be a non-empty array of absolute paths");
  }
  for (const toml::node& n : *roots->as_array()) {
    if (!n.is_string() || (**n.as_string()).empty() || (**n.as_string())[0] != '/') {
      return r.Error(&n, "allowed_roots", "each root must be an absolute path string");
    }
    const std::string& root = **n.as_string();
    for (absl::string_view part : absl::StrSplit(root, '/')) {
      if (part == "..") {
        return r.Error(&n, "allowed_roots", "root '" + root + "' must not contain '..'");
      }
    }
    // The agent confines itself to its roots as PathGuard canonicalises them (symlinks
    // resolved), so "/" is judged on that form too.
    common::PathGuard canonical({root});
    if (canonical.roots().empty() || canonical.roots()[0] == "/") {
      return r.Error(&n, "allowed_roots",
                     "root '" + root + "' is the whole filesystem; name the trees that hold the "
                     "MI homes (e.g. \"/opt/wso2\")");
    }
    c.allowed_roots.push_back(root);
  }
  if (const toml::node* n = t.get("executor_threads")) {
    if (!n->is_integer() || **n->as_integer() < 1 || **n->as_integer() > 64) {
      return r.Error(n, "executor_threads", "must be an integer from 1 to 64");
    }
    c.executor_threads = static_cast<int>(**n->as_integer());
  }
  if (const toml::node* n = t.get("stop_grace_seconds")) {
    if (!n->is_integer() || **n->as_integer() < 0 || **n->as_integer() > 3600) {
      return r.Error(n, "stop_grace_seconds", "must be an integer from 0 to 3600");
    }
    c.stop_grace_seconds = static_cast<int>(**n->as_integer());
  }
  if (const toml::node* n = t.get("allow_exec")) {
    if (!n->is_boolean()) return r.Error(n, "allow_exec", "must be true or false");
    c.allow_exec = **n->as_boolean();
  }
  const toml::node* subjects = t.get("allowed_client_subjects");
  if (subjects != nullptr) {
    if (!subjects->is_array()) {
      return r.Error(subjects, "allowed_client_subjects", "must be an array of strings");
    }
    for (const toml::node& e : *subjects->as_array()) {
      if (!e.is_string() || (**e.as_string()).empty()) {
        return r.Error(&e, "allowed_client_subjects",
                       "must be non-empty strings (certificate CNs, e.g. \"mimic-controller\")");
      }
      c.allowed_client_subjects.push_back(**e.as_string());
    }
  }
  const toml::node* any_subject = t.get("allow_any_client_subject");
  if (any_subject != nullptr) {
    if (!any_subject->is_boolean()) {
      return r.Error(any_subject, "allow_any_client_subject", "must be true or false");
    }
    c.allow_any_client_subject = **any_subject->as_boolean();
    if (c.allow_any_client_subject && !c.allowed_client_subjects.empty()) {
      return r.Error(any_subject, "allow_any_client_subject",
                     "contradicts the non-empty allowed_client_subjects; keep one of the two");
    }
  }
  const toml::node* tls_node = t.get("tls");
  if (tls_node == nullptr) return r.Error(&t, "tls", "table is required");
  if (!tls_node->is_table()) return r.Error(tls_node, "tls", "must be a table");
  const toml::table& tls = *tls_node->as_table();
  RETURN_IF_ERROR(r.Unknown(tls, "tls", {"cert", "key", "client_ca", "plaintext"}));
  if (const toml::node* n = tls.get("plaintext")) {
    if (!n->is_boolean()) return r.Error(n, "tls.plaintext", "must be true or false");
    c.plaintext = **n->as_boolean();
  }
  if (c.plaintext) {
    if (!common::IsLoopbackAddress(c.listen)) {
      return r.Error(tls.get("plaintext"), "tls.plaintext",
                     "plaintext is allowed only on a loopback listen address; mutual TLS is "
                     "required for " + c.listen);
    }
    if (!c.allowed_client_subjects.empty()) {
      return r.Error(subjects, "allowed_client_subjects",
                     "cannot be checked with tls.plaintext = true (no client certificates); "
                     "remove it or turn mutual TLS on");
    }
  } else {
    // Every certificate of the fleet CA would get in: one stolen agent or controller key
    // would drive every agent. Say so explicitly, or name the controllers.
    if (c.allowed_client_subjects.empty() && !c.allow_any_client_subject) {
      return r.Error(subjects != nullptr ? subjects : &t, "allowed_client_subjects",
                     "name the controller certificate subjects (CNs) allowed to connect, e.g. "
                     "allowed_client_subjects = [\"mimic-controller\"]; to accept any client "
                     "certificate signed by tls.client_ca, set allow_any_client_subject = true");
    }
    RETURN_IF_ERROR(r.String(tls, "tls", "cert", &c.cert_file, true));
    RETURN_IF_ERROR(r.String(tls, "tls", "key", &c.key_file, true));
    RETURN_IF_ERROR(r.String(tls, "tls", "client_ca", &c.client_ca_file, true));
    c.cert_file = Abs(dir, c.cert_file);
    c.key_file = Abs(dir, c.key_file);
    c.client_ca_file = Abs(dir, c.client_ca_file);
  }
  return c;
}

}  // namespace mimic::agent
