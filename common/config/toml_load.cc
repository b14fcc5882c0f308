#include "common/config/toml_load.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"
#include "common/base/text.h"

namespace mimic::common {
namespace {

bool IsBareKey(std::string_view key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// The line of `key` in `table`: the key's own position, else its value's, else the table's.
int KeyLine(const toml::table& table, std::string_view key) {
  auto it = table.find(key);
  if (it == table.end()) return NodeLine(&table);
  if (int line = static_cast<int>(it->first.source().begin.line); line > 0) return line;
  if (int line = NodeLine(&it->second); line > 0) return line;
  return NodeLine(&table);
}

// Looks `key` up; sets *node to null when absent (an error if required).
absl::Status Lookup(const toml::table& table, std::string_view key, const std::string& file,
                    const std::string& prefix, bool required, const toml::node** node) {
  *node = table.get(key);
  if (*node == nullptr && required) {
    return ConfigErrorAtLine(file, NodeLine(&table), JoinKey(prefix, key), "is required");
  }
  return absl::OkStatus();
}

absl::Status WrongType(const std::string& file, const toml::node& node, const std::string& key,
                       std::string_view want) {
  return ConfigError(file, &node, key,
                     absl::StrCat("must be ", std::string(want), ", not ", TomlTypeName(node)));
}

}  // namespace

absl::StatusOr<toml::table> ParseTomlString(std::string_view text, const std::string& name) {
  try {
    return toml::parse(text, std::string_view(name));
  } catch (const toml::parse_error& e) {
    const toml::source_position& pos = e.source().begin;
    return absl::InvalidArgumentError(
        EscapeControl(absl::StrCat(name, ":", pos.line, ":", pos.column, ": ",
                                   std::string(e.description()))));
  }
}

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    const std::string why = absl::StrCat(path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(why) : absl::InvalidArgumentError(why);
  }
  // A FIFO would block the read and a device (/dev/zero) never end it.
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a regular file (",
                     S_ISDIR(st.st_mode) ? "a directory" : "a FIFO, socket or device", ")"));
  }
  if (st.st_size > kMaxConfigFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", st.st_size, " bytes; a TOML file mimic reads may hold at most ",
                     kMaxConfigFileBytes, " bytes"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  if (text.size() > static_cast<size_t>(kMaxConfigFileBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": grew past ", kMaxConfigFileBytes, " bytes while read"));
  }
  return text;
}

absl::StatusOr<toml::table> ParseTomlFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path));
  return ParseTomlString(text, path);
}

absl::Status ConfigErrorAtLine(const std::string& file, int line, const std::string& dotted_key,
                               const std::string& message) {
  // Keys and values are the file's text: a newline or an escape sequence in them must not
  // start a line of its own ("mimic: rollout OK") or move the terminal's cursor.
  std::string where = line > 0 ? absl::StrCat(file, ":", line, ": ") : absl::StrCat(file, ": ");
  if (dotted_key.empty()) {
    return absl::InvalidArgumentError(EscapeControl(absl::StrCat(where, message)));
  }
  return absl::InvalidArgumentError(
      EscapeControl(absl::StrCat(where, "key '", dotted_key, "': ", message)));
}

namespace {
void CollectKeyLines(const toml::node& node, const std::string& prefix,
                     std::map<std::string, int>& out) {
  if (const toml::table* t = node.as_table()) {
    for (const auto& [key, child] : *t) {
      std::string dotted = JoinKey(prefix, key.str());
      int line = static_cast<int>(key.source().begin.line);
      out[dotted] = line > 0 ? line : NodeLine(&child);
      CollectKeyLines(child, dotted, out);
    }
  } else if (const toml::array* a = node.as_array()) {
    for (size_t i = 0; i < a->size(); ++i) {
      std::string dotted = absl::StrCat(prefix, "[", i, "]");
      out[dotted] = NodeLine(a->get(i));
      CollectKeyLines(*a->get(i), dotted, out);
    }
  }
}
}  // namespace

std::map<std::string, int> KeyLines(const toml::table& root) {
  std::map<std::string, int> out;
  CollectKeyLines(root, "", out);
  return out;
}

int NodeLine(const toml::node* node) {
  if (node == nullptr) return 0;
  return static_cast<int>(node->source().begin.line);
}

absl::Status ConfigError(const std::string& file, const toml::node* node,
                         const std::string& dotted_key, const std::string& message,
                         const toml::node* enclosing) {
  int line = NodeLine(node);
  if (line == 0) line = NodeLine(enclosing);
  return ConfigErrorAtLine(file, line, dotted_key, message);
}

std::string JoinKey(const std::string& prefix, std::string_view key) {
  std::string k;
  if (IsBareKey(key)) {
    k = std::string(key);
  } else {
    k = "\"";
    for (char c : key) {
      if (c == '"' || c == '\\') k += '\\';
      k += c;
    }
    k += "\"";
  }
  if (prefix.empty()) return k;
  return absl::StrCat(prefix, ".", k);
}

std::string TomlTypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

absl::Status GetString(const toml::table& table, std::string_view key, const std::string& file,
                       const std::string& prefix, bool required, std::string* out) {
  const toml::node* node;
  if (absl::Status s = Lookup(table, key, file, prefix, required, &node); !s.ok()) return s;
  if (node == nullptr) return absl::OkStatus();
  const auto* v = node->as_string();
  if (v == nullptr) return WrongType(file, *node, JoinKey(prefix, key), "a string");
  *out = v->get();
  return absl::OkStatus();
}

absl::Status GetInt(const toml::table& table, std::string_view key, const std::string& file,
                    const std::string& prefix, bool required, int64_t* out) {
  const toml::node* node;
  if (absl::Status s = Lookup(table, key, file, prefix, required, &node); !s.ok()) return s;
  if (node == nullptr) return absl::OkStatus();
  const auto* v = node->as_integer();
  if (v == nullptr) return WrongType(file, *node, JoinKey(prefix, key), "an integer");
  *out = v->get();
  return absl::OkStatus();
}

absl::Status GetBool(const toml::table& table, std::string_view key, const std::string& file,
                     const std::string& prefix, bool required, bool* out) {
  const toml::node* node;
  if (absl::Status s = Lookup(table, key, file, prefix, required, &node); !s.ok()) return s;
  if (node == nullptr) return absl::OkStatus();
  const auto* v = node->as_boolean();
  if (v == nullptr) {
    return WrongType(file, *node, JoinKey(prefix, key), "a boolean (true or false)");
  }
  *out = v->get();
  return absl::OkStatus();
}

absl::Status GetStringArray(const toml::table& table, std::string_view key, const std::string& file,
                            const std::string& prefix, bool required,
                            std::vector<std::string>* out) {
  const toml::node* node;
  if (absl::Status s = Lookup(table, key, file, prefix, required, &node); !s.ok()) return s;
  if (node == nullptr) return absl::OkStatus();
  const std::string dotted = JoinKey(prefix, key);
  const auto* arr = node->as_array();
  if (arr == nullptr) return WrongType(file, *node, dotted, "an array of strings");
  std::vector<std::string> values;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    const auto* v = el.as_string();
    if (v == nullptr) {
      return ConfigError(file, &el, absl::StrCat(dotted, "[", i, "]"),
                         absl::StrCat("must be a string, not ", TomlTypeName(el)), node);
    }
    values.push_back(v->get());
  }
  *out = std::move(values);
  return absl::OkStatus();
}

absl::Status GetTable(const toml::table& table, std::string_view key, const std::string& file,
                      const std::string& prefix, bool required, const toml::table** out) {
  const toml::node* node;
  if (absl::Status s = Lookup(table, key, file, prefix, required, &node); !s.ok()) return s;
  if (node == nullptr) return absl::OkStatus();
  const auto* t = node->as_table();
  if (t == nullptr) return WrongType(file, *node, JoinKey(prefix, key), "a table");
  *out = t;
  return absl::OkStatus();
}

absl::Status GetScalarMap(const toml::table& table, std::string_view key, const std::string& file,
                          const std::string& prefix, bool required,
                          std::map<std::string, std::string>* out) {
  const toml::table* t = nullptr;
  if (absl::Status s = GetTable(table, key, file, prefix, required, &t); !s.ok()) return s;
  if (t == nullptr) return absl::OkStatus();
  const std::string dotted = JoinKey(prefix, key);
  std::map<std::string, std::string> values;
  for (const auto& [name, node] : EntriesInFileOrder(*t)) {
    if (const auto* s = node->as_string()) {
      values[name] = s->get();
    } else if (const auto* i = node->as_integer()) {
      values[name] = std::to_string(i->get());
    } else if (const auto* b = node->as_boolean()) {
      values[name] = b->get() ? "true" : "false";
    } else {
      return ConfigError(
          file, node, JoinKey(dotted, name),
          absl::StrCat("must be a string, integer or boolean, not ", TomlTypeName(*node)), t);
    }
  }
  *out = std::move(values);
  return absl::OkStatus();
}

absl::Status GetDurationSeconds(const toml::table& table, std::string_view key,
                                const std::string& file, const std::string& prefix, bool required,
                                int64_t* out) {
  const toml::node* node;
  if (absl::Status s = Lookup(table, key, file, prefix, required, &node); !s.ok()) return s;
  if (node == nullptr) return absl::OkStatus();
  const std::string dotted = JoinKey(prefix, key);
  if (const auto* i = node->as_integer()) {
    if (i->get() < 0) return ConfigError(file, node, dotted, "must not be negative");
    *out = i->get();
    return absl::OkStatus();
  }
  const auto* s = node->as_string();
  if (s == nullptr) {
    return WrongType(file, *node, dotted, "a duration such as \"30s\", \"10m\" or \"2h\"");
  }
  absl::Duration d;
  if (!absl::ParseDuration(s->get(), &d) || d == absl::InfiniteDuration() ||
      d < absl::ZeroDuration()) {
    return ConfigError(
        file, node, dotted,
        absl::StrCat("'", s->get(), "' is not a duration such as \"30s\", \"10m\" or \"2h\""));
  }
  *out = absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)));
  return absl::OkStatus();
}

absl::Status CheckKnownKeys(const toml::table& table, const std::string& file,
                            const std::string& prefix, const std::vector<std::string>& allowed) {
  for (const auto& [name, node] : EntriesInFileOrder(table)) {
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    return ConfigErrorAtLine(
        file, KeyLine(table, name), JoinKey(prefix, name),
        absl::StrCat("unknown key (allowed here: ", absl::StrJoin(allowed, ", "), ")"));
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, const toml::node*>> EntriesInFileOrder(
    const toml::table& table) {
  struct Entry {
    uint32_t line, column;
    std::string name;
    const toml::node* node;
  };
  std::vector<Entry> entries;
  for (const auto& [key, node] : table) {
    toml::source_position pos = key.source().begin;
    if (pos.line == 0) pos = node.source().begin;
    entries.push_back({pos.line, pos.column, std::string(key.str()), &node});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  std::vector<std::pair<std::string, const toml::node*>> out;
  out.reserve(entries.size());
  for (Entry& e : entries) out.emplace_back(std::move(e.name), e.node);
  return out;
}

}  // namespace mimic::common
