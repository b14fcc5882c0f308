#include "controller/cli/ansible_import.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "common/base/text.h"

namespace mimic::controller {
namespace {

constexpr char kNameRule[] = "mimic names may use only A-Z a-z 0-9 . _ -";

struct Var {
  std::string key;
  std::string value;
  int line = 0;
};

// Variables in the order first set; setting again replaces the value in place.
struct VarList {
  std::vector<Var> items;
  void Set(const std::string& key, const std::string& value, int line) {
    auto it = std::find_if(items.begin(), items.end(), [&](const Var& v) { return v.key == key; });
    *(it == items.end() ? &items.emplace_back() : &*it) = {key, value, line};
  }
};

// A group (`list`: its children) or a host (`list`: its own groups, never "all").
struct Entry {
  std::string name;
  int line = 0;
  VarList vars;  // the vars of group "all" are the inventory's [vars]
  std::vector<std::string> list;
};

void AddUnique(std::vector<std::string>& list, const std::string& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

// The Ansible inventory as read: groups and hosts in the order first named.
struct Model {
  std::string file;
  std::vector<Entry> groups, hosts;
  std::map<std::string, size_t> group_idx, host_idx;
  std::vector<std::pair<int, std::string>> notes;  // what was left out, with its line
  std::vector<std::string> left_out_hosts, left_out_groups;  // by ImportOptions::group
  std::map<std::string, int> ansible_vars_dropped;  // name -> how many times

  absl::Status Error(int line, const std::string& message) const {
    return absl::InvalidArgumentError(absl::StrCat(file, ":", std::max(line, 1), ": ", message));
  }
  void Note(int line, const std::string& message) {
    notes.emplace_back(line, absl::StrCat(file, ":", line, ": ", message));
  }
  static Entry& Get(std::vector<Entry>& v, std::map<std::string, size_t>& idx,
                    const std::string& name, int line) {
    auto [it, added] = idx.emplace(name, v.size());
    if (added) v.push_back({name, line, {}, {}});
    return v[it->second];
  }
  Entry& Group(const std::string& name, int line) { return Get(groups, group_idx, name, line); }
  Entry& Host(const std::string& name, int line) { return Get(hosts, host_idx, name, line); }
  const Entry* FindGroup(const std::string& name) const {
    auto it = group_idx.find(name);
    return it == group_idx.end() ? nullptr : &groups[it->second];
  }
  void AddHostToGroup(Entry& host, const std::string& group, int line) {
    Group(group, line);
    if (group != "all") AddUnique(host.list, group);
  }
  void AddChild(const std::string& parent, const std::string& child, int line) {
    Group(child, line);
    if (parent != "all" && child != parent) AddUnique(Group(parent, line).list, child);
  }
};

// Non-empty, of letters, digits and `extra` only.
bool IsWord(const std::string& s, absl::string_view extra) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || extra.find(c) != extra.npos;
  });
}
bool IsMimicName(const std::string& name) { return IsWord(name, "._-"); }

// "web[01:03].x" -> web01.x web02.x web03.x; "db-[a:c]"; "[1:9:2]" steps; several ranges.
absl::Status ExpandPattern(const std::string& pattern, std::vector<std::string>& out) {
  const size_t open = pattern.find('[');
  const size_t close = open == std::string::npos ? open : pattern.find(']', open);
  if (close == std::string::npos) return void(out.push_back(pattern)), absl::OkStatus();
  const auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("host range in '", pattern, "' ", why));
  };
  std::vector<std::string> p = absl::StrSplit(pattern.substr(open + 1, close - open - 1), ':');
  int step = 1;
  if (p.size() < 2 || p.size() > 3 || (p.size() == 3 && !absl::SimpleAtoi(p[2], &step)) ||
      step < 1) {
    return bad("must be [start:end] or [start:end:step]");
  }
  const bool alpha = p[0].size() == 1 && p[1].size() == 1 && absl::ascii_isalpha(p[0][0]) &&
                     absl::ascii_isalpha(p[1][0]);
  int begin = alpha ? p[0][0] : 0, end = alpha ? p[1][0] : 0;
  if (!alpha && (!IsWord(p[0], "") || !IsWord(p[1], "") || !absl::SimpleAtoi(p[0], &begin) ||
                 !absl::SimpleAtoi(p[1], &end))) {
    return bad("must be numbers or single letters");
  }
  const bool padded = !alpha && p[0].size() > 1 && p[0][0] == '0';
  if (padded && p[0].size() != p[1].size()) return bad("needs as many digits at both ends");
  if (begin > end) return bad("starts after its end");
  std::vector<std::string> rest;
  RETURN_IF_ERROR(ExpandPattern(pattern.substr(close + 1), rest));
  if (rest.size() * ((end - begin) / step + 1) > 100000) return bad("names too many hosts");
  for (int i = begin; i <= end; i += step) {
    const std::string item = alpha    ? std::string(1, static_cast<char>(i))
                             : padded ? absl::StrFormat("%0*d", p[0].size(), i)
                                      : absl::StrCat(i);
    for (const std::string& r : rest) out.push_back(pattern.substr(0, open) + item + r);
  }
  return absl::OkStatus();
}

// The hosts a pattern names: ranges expanded, a ":port" suffix (the SSH port, of no use to
// mimic) dropped; IPv6 addresses keep their colons.
absl::Status HostNames(std::string pattern, std::vector<std::string>& out) {
  std::vector<size_t> colons;  // outside range brackets
  for (size_t i = 0, depth = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '[' || pattern[i] == ']') depth = pattern[i] == '[';
    if (pattern[i] == ':' && depth == 0) colons.push_back(i);
  }
  if (int port; colons.size() == 1) {
    if (!absl::SimpleAtoi(pattern.substr(colons[0] + 1), &port)) {
      return absl::InvalidArgumentError(absl::StrCat("bad port in '", pattern, "'"));
    }
    pattern.resize(colons[0]);
  }
  return ExpandPattern(pattern, out);
}

using common::TomlQuote;

std::string TomlKey(const std::string& key) { return IsWord(key, "_-") ? key : TomlQuote(key); }

std::string TomlArray(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const std::string& i : items) quoted.push_back(TomlQuote(i));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

// Splits a host line as Python's shlex (posix, comments) does: whitespace-separated words,
// quotes grouping and removed, backslash escapes, '#' starting a word ends the line.
absl::StatusOr<std::vector<std::string>> ShellWords(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    const char next = i + 1 < line.size() ? line[i + 1] : 0;
    const bool escapable = quote == 0 || (quote == '"' && (next == '"' || next == '\\'));
    if (c == '\\' && next != 0 && escapable) {
      word += line[++i];
      in_word = true;
    } else if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '#' && !in_word) {
      break;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote != 0) return absl::InvalidArgumentError("unterminated quote");
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string Unquote(absl::string_view v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return std::string(v);
}

absl::Status ParseIni(const std::string& text, Model& m) {
  enum class Kind { kHosts, kVars, kChildren, kBad };
  Kind kind = Kind::kHosts;
  std::string group = "ungrouped";
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    const std::string line(absl::StripAsciiWhitespace(raw));
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      const size_t close = line.find(']');
      const absl::string_view after =
          absl::StripLeadingAsciiWhitespace(absl::string_view(line).substr(close + 1));
      if (close == std::string::npos || !(after.empty() || after[0] == '#' || after[0] == ';')) {
        return m.Error(line_no, absl::StrCat("bad section header '", line, "'"));
      }
      std::vector<std::string> parts = absl::StrSplit(line.substr(1, close - 1), ':');
      kind = parts.size() == 1        ? Kind::kHosts
             : parts[1] == "vars"     ? Kind::kVars
             : parts[1] == "children" ? Kind::kChildren
                                      : Kind::kBad;
      if (kind == Kind::kBad || parts.size() > 2) {
        return m.Error(line_no, absl::StrCat("unknown section '", line, "' (expected [group], ",
                                             "[group:vars] or [group:children])"));
      }
      if (parts[0].empty()) return m.Error(line_no, "empty group name");
      m.Group(group = parts[0], line_no);
      continue;
    }
    if (kind == Kind::kVars) {
      const size_t eq = line.find('=');
      const std::string key(absl::StripAsciiWhitespace(line.substr(0, eq)));
      if (eq == std::string::npos || key.empty()) {
        return m.Error(line_no, absl::StrCat("expected key=value in [", group, ":vars]"));
      }
      const absl::string_view value = absl::string_view(line).substr(eq + 1);
      m.Group(group, line_no).vars.Set(key, Unquote(absl::StripAsciiWhitespace(value)), line_no);
      continue;
    }
    absl::StatusOr<std::vector<std::string>> words = ShellWords(line);
    if (!words.ok()) return m.Error(line_no, std::string(words.status().message()));
    if (words->empty()) continue;
    if (kind == Kind::kChildren) {
      if (words->size() > 1) return m.Error(line_no, "expected one group name per line");
      m.AddChild(group, (*words)[0], line_no);
      continue;
    }
    std::vector<std::string> names;
    if (absl::Status s = HostNames((*words)[0], names); !s.ok()) {
      return m.Error(line_no, std::string(s.message()));
    }
    for (const std::string& name : names) {
      Entry& host = m.Host(name, line_no);
      m.AddHostToGroup(host, group, line_no);
      for (size_t i = 1; i < words->size(); ++i) {
        const std::string& kv = (*words)[i];
        const size_t eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) {
          return m.Error(line_no,
                         absl::StrCat("expected key=value after the host name, not '", kv, "'"));
        }
        host.vars.Set(kv.substr(0, eq), kv.substr(eq + 1), line_no);
      }
    }
  }
  return absl::OkStatus();
}

int LineOf(const YAML::Node& node, int fallback) {
  return node.Mark().line < 0 ? fallback : node.Mark().line + 1;
}

absl::Status YamlVars(const YAML::Node& node, int line, VarList& vars, const std::string& owner,
                      Model& m) {
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) return m.Error(line, absl::StrCat("vars of ", owner, " must be a mapping"));
  for (const auto& kv : node) {
    const int at = LineOf(kv.first, line);
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (v.IsScalar() && v.Tag() == "!vault") {
      m.Note(at, absl::StrCat("'", key, "' of ", owner, " (vault-encrypted)"));
    } else if (v.IsSequence() || v.IsMap()) {
      m.Note(at, absl::StrCat("'", key, "' of ", owner, " (a ", v.IsMap() ? "mapping" : "list",
                              ": mimic variables are scalars)"));
    } else {
      vars.Set(key, v.IsNull() ? "" : v.Scalar(), at);
    }
  }
  return absl::OkStatus();
}

absl::Status YamlGroup(const std::string& name, const YAML::Node& node, int line, Model& m,
                       int depth = 0) {
  if (depth > 100) return m.Error(line, "groups nested too deep (an alias loop?)");
  m.Group(name, line);
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) {
    return m.Error(line, absl::StrCat("group '", name, "' must be a mapping (hosts, vars, ...)"));
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const int at = LineOf(kv.first, line);
    const YAML::Node& v = kv.second;
    if (key == "vars") {
      RETURN_IF_ERROR(YamlVars(v, at, m.Group(name, at).vars, "group '" + name + "'", m));
      continue;
    }
    if (key != "hosts" && key != "children") {
      return m.Error(at, absl::StrCat("group '", name, "': unexpected key '", key,
                                      "' (a group holds hosts, vars and children)"));
    }
    if (!v || v.IsNull()) continue;
    if (!v.IsMap()) {
      return m.Error(at, absl::StrCat("'", key, "' of group '", name, "' must be a mapping"));
    }
    for (const auto& entry : v) {
      const std::string item = entry.first.as<std::string>();
      const int item_line = LineOf(entry.first, at);
      if (key == "children") {
        m.AddChild(name, item, item_line);
        RETURN_IF_ERROR(YamlGroup(item, entry.second, item_line, m, depth + 1));
        continue;
      }
      std::vector<std::string> hosts;
      if (absl::Status s = HostNames(item, hosts); !s.ok()) {
        return m.Error(item_line, std::string(s.message()));
      }
      for (const std::string& h : hosts) {
        Entry& host = m.Host(h, item_line);
        m.AddHostToGroup(host, name, item_line);
        RETURN_IF_ERROR(YamlVars(entry.second, item_line, host.vars, "host '" + h + "'", m));
      }
    }
  }
  return absl::OkStatus();
}

// `ansible-inventory --list`: {"_meta": {"hostvars": {HOST: {VARS}}}, GROUP: {"hosts": [...],
// "children": [...], "vars": {...}}, ...}.
absl::Status ParseInventoryList(const YAML::Node& root, Model& m) {
  const YAML::Node hostvars = root["_meta"]["hostvars"];
  for (const auto& kv : root) {
    const std::string name = kv.first.as<std::string>();
    if (name == "_meta") continue;
    const int line = LineOf(kv.first, 1);
    const YAML::Node& g = kv.second;
    m.Group(name, line);
    if (!g.IsMap()) return m.Error(line, absl::StrCat("group '", name, "' must be an object"));
    for (const auto& field : g) {
      const std::string key = field.first.as<std::string>();
      const int at = LineOf(field.first, line);
      if (key == "vars") {
        RETURN_IF_ERROR(YamlVars(field.second, at, m.Group(name, at).vars, "group '" + name + "'", m));
        continue;
      }
      if (key != "hosts" && key != "children") {
        return m.Error(at, absl::StrCat("group '", name, "': unexpected key '", key, "'"));
      }
      if (!field.second.IsSequence()) {
        return m.Error(at, absl::StrCat("'", key, "' of group '", name, "' must be a list"));
      }
      for (const auto& item : field.second) {
        const std::string v = item.as<std::string>();
        if (key == "children") {
          m.AddChild(name, v, LineOf(item, at));
          continue;
        }
        Entry& host = m.Host(v, LineOf(item, at));
        m.AddHostToGroup(host, name, LineOf(item, at));
      }
    }
  }
  if (hostvars && hostvars.IsMap()) {
    for (const auto& kv : hostvars) {
      const std::string h = kv.first.as<std::string>();
      const int line = LineOf(kv.first, 1);
      RETURN_IF_ERROR(YamlVars(kv.second, line, m.Host(h, line).vars, "host '" + h + "'", m));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseYaml(const std::string& text, Model& m) {
  try {
    const YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return absl::OkStatus();
    if (!root.IsMap()) return m.Error(LineOf(root, 1), "expected a mapping of groups (all: ...)");
    if (root["_meta"]) return ParseInventoryList(root, m);
    for (const auto& kv : root) {
      RETURN_IF_ERROR(YamlGroup(kv.first.as<std::string>(), kv.second, LineOf(kv.first, 1), m));
    }
  } catch (const YAML::Exception& e) {  // bad syntax, or a key that is not a scalar
    return m.Error(e.mark.is_null() ? 1 : e.mark.line + 1, absl::StrCat("YAML: ", e.msg));
  }
  return absl::OkStatus();
}

absl::Status CheckNames(const Model& m) {
  std::map<std::string, const Entry*> lower;
  for (const Entry& h : m.hosts) {
    auto [it, added] = lower.emplace(absl::AsciiStrToLower(h.name), &h);
    if (!IsMimicName(h.name)) {
      return m.Error(h.line, absl::StrCat("host name '", h.name, "': ", kNameRule));
    }
    if (!added) {
      return m.Error(h.line, absl::StrCat("host '", h.name, "' differs only in case from '",
                                          it->second->name, "' (line ", it->second->line, ")"));
    }
  }
  for (const Entry& g : m.groups) {
    if (!IsMimicName(g.name)) {
      return m.Error(g.line, absl::StrCat("group name '", g.name, "': ", kNameRule));
    }
  }
  return absl::OkStatus();
}

// Depth-first from `g` along children; `path` holds the groups being visited.
absl::Status CheckCycles(const Model& m, const Entry& g, std::vector<std::string>& path,
                         std::set<std::string>& done) {
  if (done.count(g.name) > 0) return absl::OkStatus();
  path.push_back(g.name);
  for (const std::string& c : g.list) {
    if (std::find(path.begin(), path.end(), c) != path.end()) {
      path.push_back(c);
      return m.Error(m.FindGroup(c)->line, "groups form a cycle: " + absl::StrJoin(path, " -> "));
    }
    RETURN_IF_ERROR(CheckCycles(m, *m.FindGroup(c), path, done));
  }
  path.pop_back();
  done.insert(g.name);
  return absl::OkStatus();
}

// `group` preceded by its ancestors, each once (parents before children, as in mimic).
void Ancestors(const Model& m, const std::string& group, std::vector<std::string>& out) {
  if (std::find(out.begin(), out.end(), group) != out.end()) return;
  for (const Entry& parent : m.groups) {
    if (std::find(parent.list.begin(), parent.list.end(), group) != parent.list.end()) {
      Ancestors(m, parent.name, out);
    }
  }
  AddUnique(out, group);
}

bool IsEnvironmentGroup(const std::string& name) {
  static const std::set<std::string> kNames = {"dev",  "development", "test",    "qa",
                                               "uat",  "stage",       "staging", "preprod",
                                               "prod", "production"};
  return kNames.count(absl::AsciiStrToLower(name)) > 0;
}

// A [TABLE] of the variables mimic takes (the header says what is left out).
void WriteVars(Model& m, std::string& out, const std::string& table, const VarList& vars,
               const std::string& owner) {
  std::string body;
  for (const Var& v : vars.items) {
    if (absl::StartsWith(v.key, "ansible_")) {
      ++m.ansible_vars_dropped[v.key];
    } else if (v.key == "mimic_environment" || v.key == "mimic_agent_port" ||
               v.key == "mimic_tls_server_name") {
      continue;  // consumed
    } else if (common::IsSecretKey(v.key)) {
      m.Note(v.line, absl::StrCat("'", v.key, "' of ", owner, " (a secret: provide it otherwise)"));
    } else {
      absl::StrAppend(&body, TomlKey(v.key), " = ", TomlQuote(v.value), "\n");
    }
  }
  if (!body.empty()) absl::StrAppend(&out, "\n[", table, "]\n", body);
}

absl::Status WriteHost(Model& m, const Entry& h, const ImportOptions& options, std::string& out) {
  // The host's variables merged as Ansible does: all < groups (ancestors first) < host.
  std::vector<std::string> all_groups;
  for (const std::string& g : h.list) Ancestors(m, g, all_groups);
  std::map<std::string, Var> vars;
  const auto merge = [&](const Entry* e) {
    if (e == nullptr) return;
    for (const Var& v : e->vars.items) vars[v.key] = v;
  };
  merge(m.FindGroup("all"));
  for (const std::string& g : all_groups) merge(m.FindGroup(g));
  merge(&h);
  const auto var = [&](const std::string& key) -> const Var* {
    auto it = vars.find(key);
    return it == vars.end() || it->second.value.empty() ? nullptr : &it->second;
  };

  std::string address = h.name;
  if (const Var* v = var("ansible_host")) {
    address = std::string(absl::StripSuffix(absl::StripPrefix(v->value, "["), "]"));
  }
  int port = options.agent_port;
  if (const Var* v = var("mimic_agent_port");
      v != nullptr && (!absl::SimpleAtoi(v->value, &port) || port < 1 || port > 65535)) {
    return m.Error(v->line, absl::StrCat("mimic_agent_port '", v->value, "' for host '", h.name,
                                         "' must be a port number 1..65535"));
  }
  std::string env = options.default_environment;
  const Var* env_var = var("mimic_environment");
  if (env_var == nullptr) env_var = var("environment");
  if (env_var == nullptr) env_var = var("env");
  if (env_var != nullptr) {
    env = env_var->value;
    if (!IsMimicName(env)) {
      return m.Error(env_var->line,
                     absl::StrCat("environment '", env, "' for host '", h.name, "': ", kNameRule));
    }
  } else if (auto it = std::find_if(all_groups.begin(), all_groups.end(), IsEnvironmentGroup);
             it != all_groups.end()) {
    env = *it;
  } else if (!IsMimicName(env)) {
    return absl::InvalidArgumentError(absl::StrCat("default environment '", env, "': ", kNameRule));
  }

  const std::string table = "hosts." + TomlKey(h.name);
  absl::StrAppend(&out, "\n[", table, "]\naddress = ",
                  TomlQuote(absl::StrContains(address, ':') ? absl::StrCat("[", address, "]:", port)
                                                            : absl::StrCat(address, ":", port)),
                  "\nenvironment = ", TomlQuote(env), "\n");
  if (!h.list.empty()) absl::StrAppend(&out, "groups = ", TomlArray(h.list), "\n");
  if (const Var* v = var("mimic_tls_server_name")) {
    absl::StrAppend(&out, "tls_server_name = ", TomlQuote(v->value), "\n");
  }
  WriteVars(m, out, table + ".vars", h.vars, "host '" + h.name + "'");
  return absl::OkStatus();
}

// `group` and its descendants.
void Descendants(const Model& m, const std::string& group, std::set<std::string>& out) {
  if (!out.insert(group).second) return;
  if (const Entry* g = m.FindGroup(group)) {
    for (const std::string& c : g->list) Descendants(m, c, out);
  }
}

// Keeps the hosts of `group` (or its child groups) and the groups they are in with those
// groups' ancestors; records the rest in left_out_*.
absl::Status KeepGroup(Model& m, const std::string& group) {
  if (m.FindGroup(group) == nullptr || group == "all") {
    std::vector<std::string> names;
    for (const Entry& g : m.groups) {
      if (g.name != "all") names.push_back(g.name);
    }
    return absl::InvalidArgumentError(absl::StrCat(m.file, ": --group '", group,
                                                   "' is not a group (groups: ",
                                                   absl::StrJoin(names, ", "), ")"));
  }
  std::set<std::string> inside;
  Descendants(m, group, inside);
  std::vector<Entry> hosts;
  std::set<std::string> keep_groups;
  for (Entry& h : m.hosts) {
    bool in = std::any_of(h.list.begin(), h.list.end(),
                          [&](const std::string& g) { return inside.count(g) > 0; });
    if (!in) {
      m.left_out_hosts.push_back(h.name);
      continue;
    }
    for (const std::string& g : h.list) {
      std::vector<std::string> chain;
      Ancestors(m, g, chain);
      keep_groups.insert(chain.begin(), chain.end());
    }
    hosts.push_back(std::move(h));
  }
  m.hosts = std::move(hosts);
  m.host_idx.clear();
  for (size_t i = 0; i < m.hosts.size(); ++i) m.host_idx[m.hosts[i].name] = i;
  std::vector<Entry> groups;
  for (Entry& g : m.groups) {
    if (g.name == "all" || keep_groups.count(g.name) > 0) {
      g.list.erase(std::remove_if(g.list.begin(), g.list.end(),
                                  [&](const std::string& c) { return keep_groups.count(c) == 0; }),
                   g.list.end());
      groups.push_back(std::move(g));
    } else if (g.name != "ungrouped") {
      m.left_out_groups.push_back(g.name);
    }
  }
  m.groups = std::move(groups);
  m.group_idx.clear();
  for (size_t i = 0; i < m.groups.size(); ++i) m.group_idx[m.groups[i].name] = i;
  if (m.hosts.empty()) return m.Error(1, absl::StrCat("group '", group, "' has no hosts"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Emit(Model& m, const ImportOptions& options) {
  if (m.hosts.empty()) return m.Error(1, "the inventory defines no hosts");
  // `all` is the inventory itself; `ungrouped` is a group only when it holds variables.
  const Entry* ungrouped = m.FindGroup("ungrouped");
  const bool keep_ungrouped = ungrouped != nullptr && !ungrouped->vars.items.empty();
  const auto dropped = [&](const std::string& g) {
    return g == "all" || (g == "ungrouped" && !keep_ungrouped);
  };
  for (Entry& h : m.hosts) {
    h.list.erase(std::remove_if(h.list.begin(), h.list.end(), dropped), h.list.end());
  }
  RETURN_IF_ERROR(CheckNames(m));
  std::vector<std::string> path;
  std::set<std::string> done;
  for (const Entry& g : m.groups) RETURN_IF_ERROR(CheckCycles(m, g, path, done));
  if (!options.group.empty()) RETURN_IF_ERROR(KeepGroup(m, options.group));

  std::string body =
      absl::StrCat("\n[controller]\nca = ", TomlQuote(options.ca),
                   "\ncert = ", TomlQuote(options.cert), "\nkey = ", TomlQuote(options.key), "\n");
  if (const Entry* all = m.FindGroup("all")) WriteVars(m, body, "vars", all->vars, "all");
  for (const Entry& g : m.groups) {
    if (dropped(g.name)) continue;
    const std::string table = "groups." + TomlKey(g.name);
    absl::StrAppend(&body, "\n[", table, "]\n");
    std::vector<std::string> children = g.list;
    children.erase(std::remove_if(children.begin(), children.end(), dropped), children.end());
    if (!children.empty()) absl::StrAppend(&body, "children = ", TomlArray(children), "\n");
    WriteVars(m, body, table + ".vars", g.vars, "group '" + g.name + "'");
  }
  for (const Entry& h : m.hosts) RETURN_IF_ERROR(WriteHost(m, h, options, body));

  std::string out = absl::StrCat("# mimic inventory imported from the Ansible inventory ", m.file,
                                 " (mimic inventory import).\n# Check [controller]: the agents' "
                                 "CA and the controller's client certificate and key.\n");
  if (!m.ansible_vars_dropped.empty()) {
    std::vector<std::string> names;
    for (const auto& [name, n] : m.ansible_vars_dropped) {
      names.push_back(n > 1 ? absl::StrCat(name, " (", n, "x)") : name);
    }
    absl::StrAppend(&out, "# Not imported: Ansible connection variables ",
                    absl::StrJoin(names, ", "), "; ansible_host gave the address.\n");
  }
  if (!m.left_out_hosts.empty()) {
    absl::StrAppend(&out, "# Left out by --group ", options.group, ": hosts ",
                    absl::StrJoin(m.left_out_hosts, ", "), "\n");
  }
  if (!m.left_out_groups.empty()) {
    absl::StrAppend(&out, "# Left out by --group ", options.group, ": groups ",
                    absl::StrJoin(m.left_out_groups, ", "), "\n");
  }
  std::stable_sort(m.notes.begin(), m.notes.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& note : m.notes) absl::StrAppend(&out, "# Not imported: ", note.second, "\n");
  return out + body;
}

bool LooksLikeYaml(const std::string& text) {
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') return false;
    return line == "---" || line[0] == '{' || absl::EndsWith(line, ":") ||
           absl::StrContains(line, ": ");
  }
  return false;
}

}  // namespace

absl::StatusOr<std::string> ImportAnsibleInventoryFromString(const std::string& text,
                                                             const std::string& path,
                                                             const ImportOptions& options) {
  ImportOptions::Format format = options.format;
  if (format == ImportOptions::Format::kAuto) {
    const std::string ext = absl::AsciiStrToLower(std::filesystem::path(path).extension().string());
    const bool yaml = ext == ".yml" || ext == ".yaml" || ext == ".json" ||
                      (ext != ".ini" && ext != ".cfg" && LooksLikeYaml(text));
    format = yaml ? ImportOptions::Format::kYaml : ImportOptions::Format::kIni;
  }
  if (options.agent_port < 1 || options.agent_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad agent port ", options.agent_port));
  }
  Model model{path};
  RETURN_IF_ERROR(format == ImportOptions::Format::kYaml ? ParseYaml(text, model)
                                                         : ParseIni(text, model));
  return Emit(model, options);
}

absl::StatusOr<std::string> ImportAnsibleInventory(const std::string& path,
                                                   const ImportOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the Ansible inventory"));
  const std::string text(std::istreambuf_iterator<char>(in), {});
  return ImportAnsibleInventoryFromString(text, path, options);
}

}  // namespace mimic::controller
