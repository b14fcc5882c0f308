#include "common/config/inventory.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/config/toml_load.h"

namespace mimic::common {
namespace {

namespace fs = std::filesystem;

bool IsValidName(const std::string& name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// `p` when absolute, else `dir`/`p`, lexically normalised.
std::string Resolve(const std::string& dir, const std::string& p) {
  fs::path path(p);
  if (path.is_relative()) path = fs::path(dir) / path;
  return path.lexically_normal().string();
}

absl::StatusOr<std::string> AbsoluteDir(const std::string& file) {
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(file), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat(file, ": ", ec.message()));
  return abs.lexically_normal().parent_path().string();
}

// A path-valued key, resolved against the inventory's folder; "" stays "" (absent).
absl::Status GetPath(const toml::table& table, std::string_view key, const Inventory& inv,
                     std::string* out) {
  std::string value;
  RETURN_IF_ERROR(GetString(table, key, inv.path, "controller", false, &value));
  if (table.contains(key) && value.empty()) {
    return ConfigError(inv.path, table.get(key), JoinKey("controller", key), "must not be empty");
  }
  if (!value.empty()) *out = Resolve(inv.dir, value);
  return absl::OkStatus();
}

absl::Status LoadGroups(const toml::table& root, Inventory& inv) {
  const toml::table* groups = nullptr;
  RETURN_IF_ERROR(GetTable(root, "groups", inv.path, "", false, &groups));
  if (groups == nullptr) return absl::OkStatus();
  for (const auto& [name, node] : EntriesInFileOrder(*groups)) {
    const std::string prefix = JoinKey("groups", name);
    const toml::table* t = node->as_table();
    if (t == nullptr) {
      return ConfigError(inv.path, node, prefix,
                         absl::StrCat("must be a table, not ", TomlTypeName(*node)));
    }
    if (!IsValidName(name)) {
      return ConfigError(inv.path, node, prefix, "group names may use only A-Z a-z 0-9 . _ -");
    }
    RETURN_IF_ERROR(CheckKnownKeys(*t, inv.path, prefix, {"vars", "children"}));
    Group g;
    g.name = name;
    g.line = NodeLine(node);
    RETURN_IF_ERROR(GetScalarMap(*t, "vars", inv.path, prefix, false, &g.vars));
    RETURN_IF_ERROR(GetStringArray(*t, "children", inv.path, prefix, false, &g.children));
    inv.groups.push_back(std::move(g));
  }
  // Children must exist and the child graph must have no cycle.
  for (const Group& g : inv.groups) {
    const toml::node* children = groups->get(g.name)->as_table()->get("children");
    for (const std::string& child : g.children) {
      if (inv.FindGroup(child) == nullptr) {
        return ConfigError(inv.path, children, JoinKey(JoinKey("groups", g.name), "children"),
                           absl::StrCat("unknown group '", child, "'"));
      }
    }
  }
  std::map<std::string, int> state;  // 0 unvisited, 1 on the DFS path, 2 done
  std::vector<std::string> path;
  std::function<absl::Status(const Group&)> visit = [&](const Group& g) -> absl::Status {
    state[g.name] = 1;
    path.push_back(g.name);
    for (const std::string& child : g.children) {
      if (state[child] == 1) {
        path.push_back(child);
        return ConfigError(inv.path, groups->get(g.name)->as_table()->get("children"),
                           JoinKey(JoinKey("groups", g.name), "children"),
                           absl::StrCat("groups form a cycle: ", absl::StrJoin(path, " -> ")));
      }
      if (state[child] == 0) RETURN_IF_ERROR(visit(*inv.FindGroup(child)));
    }
    path.pop_back();
    state[g.name] = 2;
    return absl::OkStatus();
  };
  for (const Group& g : inv.groups) {
    if (state[g.name] == 0) RETURN_IF_ERROR(visit(g));
  }
  return absl::OkStatus();
}

// `group` preceded by its ancestors (parents before children), appended to `out` once each.
void AppendWithAncestors(const Inventory& inv, const std::string& group,
                         std::vector<std::string>& out) {
  if (std::find(out.begin(), out.end(), group) != out.end()) return;
  for (const Group& parent : inv.groups) {
    if (std::find(parent.children.begin(), parent.children.end(), group) != parent.children.end()) {
      AppendWithAncestors(inv, parent.name, out);
    }
  }
  if (std::find(out.begin(), out.end(), group) == out.end()) out.push_back(group);
}

absl::Status LoadHost(const std::string& name, const toml::node* node, Inventory& inv) {
  const std::string prefix = JoinKey("hosts", name);
  const toml::table* t = node->as_table();
  if (t == nullptr) {
    return ConfigError(inv.path, node, prefix,
                       absl::StrCat("must be a table, not ", TomlTypeName(*node)));
  }
  if (!IsValidName(name)) {
    return ConfigError(inv.path, node, prefix, "host names may use only A-Z a-z 0-9 . _ -");
  }
  for (const Host& other : inv.hosts) {
    if (absl::EqualsIgnoreCase(other.name, name)) {
      return ConfigError(inv.path, node, prefix,
                         absl::StrCat("duplicate host name (differs only in case from '",
                                      other.name, "' on line ", other.line, ")"));
    }
  }
  RETURN_IF_ERROR(CheckKnownKeys(*t, inv.path, prefix,
                                 {"address", "environment", "groups", "vars", "tls_server_name"}));
  Host h;
  h.name = name;
  h.line = NodeLine(node);
  RETURN_IF_ERROR(GetString(*t, "address", inv.path, prefix, true, &h.address));
  if (absl::Status s = ParseAddress(h.address, &h.address_host, &h.port); !s.ok()) {
    return ConfigError(inv.path, t->get("address"), JoinKey(prefix, "address"),
                       std::string(s.message()));
  }
  RETURN_IF_ERROR(GetString(*t, "environment", inv.path, prefix, true, &h.environment));
  if (!IsValidName(h.environment)) {
    return ConfigError(inv.path, t->get("environment"), JoinKey(prefix, "environment"),
                       "must be a non-empty name of A-Z a-z 0-9 . _ -");
  }
  RETURN_IF_ERROR(GetStringArray(*t, "groups", inv.path, prefix, false, &h.groups));
  for (size_t i = 0; i < h.groups.size(); ++i) {
    if (inv.FindGroup(h.groups[i]) != nullptr) continue;
    std::vector<std::string> defined;
    for (const Group& g : inv.groups) defined.push_back(g.name);
    return ConfigError(inv.path, t->get("groups"),
                       absl::StrCat(JoinKey(prefix, "groups"), "[", i, "]"),
                       absl::StrCat("unknown group '", h.groups[i], "' (defined groups: ",
                                    defined.empty() ? "none" : absl::StrJoin(defined, ", "), ")"));
  }
  h.tls_server_name = name;
  RETURN_IF_ERROR(GetString(*t, "tls_server_name", inv.path, prefix, false, &h.tls_server_name));
  if (h.tls_server_name.empty()) {
    return ConfigError(inv.path, t->get("tls_server_name"), JoinKey(prefix, "tls_server_name"),
                       "must not be empty");
  }
  std::map<std::string, std::string> own_vars;
  RETURN_IF_ERROR(GetScalarMap(*t, "vars", inv.path, prefix, false, &own_vars));

  for (const std::string& g : h.groups) AppendWithAncestors(inv, g, h.all_groups);
  h.vars = inv.vars;
  for (const std::string& g : h.all_groups) {
    for (const auto& [k, v] : inv.FindGroup(g)->vars) h.vars[k] = v;
  }
  for (const auto& [k, v] : own_vars) h.vars[k] = v;
  inv.hosts.push_back(std::move(h));
  return absl::OkStatus();
}

absl::Status LoadController(const toml::table& root, Inventory& inv) {
  static const toml::table kEmpty;
  const toml::table* c = nullptr;
  RETURN_IF_ERROR(GetTable(root, "controller", inv.path, "", false, &c));
  if (c == nullptr) c = &kEmpty;
  RETURN_IF_ERROR(CheckKnownKeys(*c, inv.path, "controller",
                                 {"state_dir", "ca", "cert", "key", "plaintext", "concurrency"}));
  ControllerSettings& cs = inv.controller;
  cs.state_dir = Resolve(inv.dir, "state");
  RETURN_IF_ERROR(GetPath(*c, "state_dir", inv, &cs.state_dir));
  RETURN_IF_ERROR(GetPath(*c, "ca", inv, &cs.ca));
  RETURN_IF_ERROR(GetPath(*c, "cert", inv, &cs.cert));
  RETURN_IF_ERROR(GetPath(*c, "key", inv, &cs.key));
  RETURN_IF_ERROR(GetBool(*c, "plaintext", inv.path, "controller", false, &cs.plaintext));
  int64_t concurrency = cs.concurrency;
  RETURN_IF_ERROR(GetInt(*c, "concurrency", inv.path, "controller", false, &concurrency));
  if (concurrency < 1 || concurrency > 10000) {
    return ConfigError(inv.path, c->get("concurrency"), "controller.concurrency",
                       "must be between 1 and 10000");
  }
  cs.concurrency = static_cast<int>(concurrency);

  if (cs.plaintext) return absl::OkStatus();
  const toml::node* where = c == &kEmpty ? static_cast<const toml::node*>(&root) : c;
  for (std::string_view key : {"ca", "cert", "key"}) {
    const std::string& value = key == "ca" ? cs.ca : key == "cert" ? cs.cert : cs.key;
    if (value.empty()) {
      return ConfigError(inv.path, nullptr, JoinKey("controller", key),
                         "is required: agents are reached over mutual TLS (plaintext = true "
                         "is allowed only when every host is on loopback)",
                         where);
    }
  }
  return absl::OkStatus();
}

// plaintext = true only when every host is on loopback.
absl::Status CheckPlaintext(const toml::table& root, const Inventory& inv) {
  if (!inv.controller.plaintext) return absl::OkStatus();
  for (const Host& h : inv.hosts) {
    if (IsLoopbackHost(h.address_host)) continue;
    return ConfigError(
        inv.path, root.at_path("controller.plaintext").node(), "controller.plaintext",
        absl::StrCat("plaintext is only allowed when every host is on loopback, but host '", h.name,
                     "' (line ", h.line, ") has address ", h.address,
                     ": mutual TLS is required off loopback; set ca, cert and key"));
  }
  return absl::OkStatus();
}

absl::Status LoadAudit(const toml::table& root, Inventory& inv) {
  inv.audit_url = "sqlite:" + Resolve(inv.controller.state_dir, "audit.db");
  const toml::table* a = nullptr;
  RETURN_IF_ERROR(GetTable(root, "audit", inv.path, "", false, &a));
  if (a == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(CheckKnownKeys(*a, inv.path, "audit", {"url", "signing_key"}));
  std::string key;
  RETURN_IF_ERROR(GetString(*a, "signing_key", inv.path, "audit", false, &key));
  if (a->contains("signing_key")) {
    if (key.empty()) {
      return ConfigError(inv.path, a->get("signing_key"), "audit.signing_key", "names no file");
    }
    inv.audit_signing_key = Resolve(inv.dir, key);
  }
  std::string url;
  RETURN_IF_ERROR(GetString(*a, "url", inv.path, "audit", false, &url));
  if (!a->contains("url")) return absl::OkStatus();
  const toml::node* node = a->get("url");
  if (absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://")) {
    inv.audit_url = url;
    return absl::OkStatus();
  }
  std::string file = url;
  if (absl::StartsWith(url, "sqlite:")) {
    file = url.substr(7);
  } else if (absl::StrContains(url, "://")) {
    return ConfigError(inv.path, node, "audit.url",
                       "unsupported scheme; use sqlite:PATH, a file path, or postgresql://...");
  }
  if (file.empty()) return ConfigError(inv.path, node, "audit.url", "names no file");
  inv.audit_url = "sqlite:" + Resolve(inv.dir, file);
  return absl::OkStatus();
}

absl::StatusOr<Inventory> LoadFromTable(const toml::table& root, const std::string& path) {
  Inventory inv;
  inv.path = path;
  ASSIGN_OR_RETURN(inv.dir, AbsoluteDir(path));
  RETURN_IF_ERROR(
      CheckKnownKeys(root, path, "", {"controller", "audit", "vars", "groups", "hosts"}));
  RETURN_IF_ERROR(LoadController(root, inv));
  RETURN_IF_ERROR(LoadAudit(root, inv));
  RETURN_IF_ERROR(GetScalarMap(root, "vars", path, "", false, &inv.vars));
  RETURN_IF_ERROR(LoadGroups(root, inv));
  const toml::table* hosts = nullptr;
  RETURN_IF_ERROR(GetTable(root, "hosts", path, "", false, &hosts));
  if (hosts == nullptr || hosts->empty()) {
    return ConfigError(path, hosts, "hosts", "the inventory defines no hosts ([hosts.NAME])");
  }
  for (const auto& [name, node] : EntriesInFileOrder(*hosts)) {
    RETURN_IF_ERROR(LoadHost(name, node, inv));
  }
  RETURN_IF_ERROR(CheckPlaintext(root, inv));
  return inv;
}

}  // namespace

bool Host::InGroup(const std::string& group) const {
  return std::find(all_groups.begin(), all_groups.end(), group) != all_groups.end();
}

const Host* Inventory::FindHost(const std::string& name) const {
  for (const Host& h : hosts) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

const Group* Inventory::FindGroup(const std::string& name) const {
  for (const Group& g : groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

bool Inventory::HasEnvironment(const std::string& environment) const {
  for (const Host& h : hosts) {
    if (h.environment == environment) return true;
  }
  return false;
}

absl::Status ParseAddress(const std::string& address, std::string* host, int* port) {
  const std::string kUsage = "must be host:port, e.g. 10.0.0.5:7001 or [fd00::5]:7001";
  std::string h, p;
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::InvalidArgumentError(kUsage);
    }
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
    bool ok =
        !h.empty() && absl::StrContains(h, ":") && std::all_of(h.begin(), h.end(), [](char c) {
          return absl::ascii_isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        });
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("'", h, "' is not an IPv6 address"));
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return absl::InvalidArgumentError(kUsage);
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
    if (absl::StrContains(h, ":")) {
      return absl::InvalidArgumentError("an IPv6 address must be in brackets: [v6]:port");
    }
    bool ok = !h.empty() && std::all_of(h.begin(), h.end(), [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    });
    if (!ok) return absl::InvalidArgumentError(kUsage);
  }
  int value = 0;
  bool digits = !p.empty() && p.size() <= 5 &&
                std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || !absl::SimpleAtoi(p, &value) || value < 1 || value > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port '", p, "' is not a number between 1 and 65535"));
  }
  *host = h;
  *port = value;
  return absl::OkStatus();
}

bool IsLoopbackHost(const std::string& host) {
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "::1") return true;
  std::vector<std::string> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4 || parts[0] != "127") return false;
  for (const std::string& part : parts) {
    int v = 0;
    if (part.empty() || part.size() > 3 || !absl::SimpleAtoi(part, &v) || v < 0 || v > 255) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<Inventory> LoadInventory(const std::string& path) {
  ASSIGN_OR_RETURN(toml::table root, ParseTomlFile(path));
  return LoadFromTable(root, path);
}

absl::StatusOr<Inventory> LoadInventoryFromString(const std::string& text,
                                                  const std::string& path) {
  ASSIGN_OR_RETURN(toml::table root, ParseTomlString(text, path));
  return LoadFromTable(root, path);
}

}  // namespace mimic::common
