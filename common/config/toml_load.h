// Loading operator TOML files (inventory.toml, plan.toml, agent.toml) into toml::table, and
// small typed getters whose errors name the file, the line and the dotted key:
//
//   inventory.toml:12: key 'hosts.web1.address': must be host:port
//
// toml++ is built with exceptions; toml_load.cc is the one place that catches toml::parse_error.
// Everything here returns absl::Status and throws nothing.
#ifndef MIMIC_COMMON_CONFIG_TOML_LOAD_H_
#define MIMIC_COMMON_CONFIG_TOML_LOAD_H_

#include <toml++/toml.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mimic::common {

// The most a TOML file mimic reads (plan, inventory, agent.toml, deployment.toml) may hold:
// room for a deployment.toml with a 50 MiB value (e2e_journal_test), a bound on a runaway file.
inline constexpr int64_t kMaxConfigFileBytes = 64 << 20;

// The bytes of the operator file at `path`: NOT_FOUND when it does not exist; INVALID_ARGUMENT
// naming the path when it is not a regular file (a FIFO would block the read, /dev/zero never
// end it) or holds more than kMaxConfigFileBytes.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path);

// Reads (ReadConfigFile) and parses the TOML file at `path`. When the file cannot be read, ReadFile's error
// (NOT_FOUND for a missing file; the message names the path and the OS error);
// INVALID_ARGUMENT "PATH:LINE:COL: message" on a syntax error.
absl::StatusOr<toml::table> ParseTomlFile(const std::string& path);

// Parses `text`; `name` (usually the file path) is used in errors and node source positions.
// INVALID_ARGUMENT "NAME:LINE:COL: message" on a syntax error.
absl::StatusOr<toml::table> ParseTomlString(std::string_view text, const std::string& name);

// INVALID_ARGUMENT "FILE:LINE: key 'DOTTED_KEY': MESSAGE". The line is `node`'s (when non-null
// and known), else `enclosing`'s, else it is left out: "FILE: key 'K': MESSAGE". An empty
// `dotted_key` leaves out the "key '...': " part.
absl::Status ConfigError(const std::string& file, const toml::node* node,
                         const std::string& dotted_key, const std::string& message,
                         const toml::node* enclosing = nullptr);

// INVALID_ARGUMENT "FILE:LINE: key 'DOTTED_KEY': MESSAGE" for a line known by other means
// (line 0 leaves it out, an empty key leaves out the key part).
absl::Status ConfigErrorAtLine(const std::string& file, int line, const std::string& dotted_key,
                               const std::string& message);

// Every key of `root` (recursively, arrays of tables as "steps[1].name") with the line it is on.
std::map<std::string, int> KeyLines(const toml::table& root);

// The 1-based line where `node` starts, 0 when unknown or `node` is null.
int NodeLine(const toml::node* node);

// `prefix` + "." + `key`, quoting `key` when it is not a bare TOML key ("hosts.\"a b\"").
// An empty prefix gives just the (possibly quoted) key.
std::string JoinKey(const std::string& prefix, std::string_view key);

// "string", "integer", "table", ... for messages.
std::string TomlTypeName(const toml::node& node);

// Typed getters. Each reads `table[key]`, where `table` is the value of dotted key `prefix` in
// `file`. When the key is absent: error if `required` (pointing at the table's line), otherwise
// `*out` is left untouched (preset it to the default) and OK is returned. A value of the wrong
// type is an INVALID_ARGUMENT naming file, line and key.
absl::Status GetString(const toml::table& table, std::string_view key, const std::string& file,
                       const std::string& prefix, bool required, std::string* out);
absl::Status GetInt(const toml::table& table, std::string_view key, const std::string& file,
                    const std::string& prefix, bool required, int64_t* out);
absl::Status GetBool(const toml::table& table, std::string_view key, const std::string& file,
                     const std::string& prefix, bool required, bool* out);
// An array whose every element is a string.
absl::Status GetStringArray(const toml::table& table, std::string_view key, const std::string& file,
                            const std::string& prefix, bool required,
                            std::vector<std::string>* out);
// A (standard or inline) table; `*out` points into `table` and is left untouched when absent.
absl::Status GetTable(const toml::table& table, std::string_view key, const std::string& file,
                      const std::string& prefix, bool required, const toml::table** out);
// A table of scalars (string, integer, boolean) turned into strings ("42", "true"). Arrays,
// tables, floats and dates are refused, naming the offending key.
absl::Status GetScalarMap(const toml::table& table, std::string_view key, const std::string& file,
                          const std::string& prefix, bool required,
                          std::map<std::string, std::string>* out);
// A duration: a string such as "30s", "10m", "2h", "1h30m" (absl::ParseDuration syntax) or an
// integer number of seconds. Negative and infinite durations are refused.
absl::Status GetDurationSeconds(const toml::table& table, std::string_view key,
                                const std::string& file, const std::string& prefix, bool required,
                                int64_t* out);

// Every key of `table` must be one of `allowed`; the first other one (in file order) is an
// INVALID_ARGUMENT naming file, line and key and listing the allowed keys, so typos never pass
// silently.
absl::Status CheckKnownKeys(const toml::table& table, const std::string& file,
                            const std::string& prefix, const std::vector<std::string>& allowed);

// The entries of `table` sorted by where they appear in the file (toml::table iterates in key
// order). Pointers are into `table`.
std::vector<std::pair<std::string, const toml::node*>> EntriesInFileOrder(const toml::table& table);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_CONFIG_TOML_LOAD_H_
