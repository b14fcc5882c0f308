// Internals of toml_merge: a TOML file indexed by line (headers, keys, arrays of tables), the
// items a source file asks the merge to carry, and the MI version rules applied to them.
// Not a public API: only toml_merge.cc and toml_rules.cc include this.
#ifndef MIMIC_COMMON_MI_TOML_RULES_H_
#define MIMIC_COMMON_MI_TOML_RULES_H_

#include <toml++/toml.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/mi/toml_merge.h"

namespace mimic::common::toml_internal {

using Path = std::vector<std::string>;

inline constexpr char kAbsent[] = "<absent>";  // Canon() of a missing node

std::string QuoteString(std::string_view s);           // a TOML basic string
std::string QuoteKey(std::string_view k);              // bare when it can be, else quoted
std::string JoinPath(const Path& p, size_t from = 0);  // dotted key of p[from..]
bool StartsWith(const Path& p, const Path& prefix);
Path Concat(Path a, const Path& b, size_t from = 0);  // a + b[from..]
std::string_view TrimLeft(std::string_view s);
std::vector<std::string> SplitLines(std::string_view text);
std::string Note(std::string_view a, std::string_view b);  // "a; b" without empty parts

// Canonical text of a value (kAbsent for nullptr): independent of layout, inline-ness, quoting
// and number notation, so two values are equal exactly when their Canon() are.
std::string Canon(const toml::node* n);

// Parses TOML; a parse error becomes INVALID_ARGUMENT "NAME:LINE:COL: message".
absl::StatusOr<toml::table> ParseToml(std::string_view text, const std::string& name);

// True for a non-empty array whose elements are all [[header]] tables (not inline tables).
bool IsTableArray(const toml::node& n);

// (key, Canon) of every leaf under `n`; arrays of tables are indexed: "datasource[0].url".
void Flatten(const toml::node& n, const std::string& key,
             std::vector<std::pair<std::string, std::string>>& out);

struct Span {  // 0-based lines and byte columns; the end is exclusive
  int bl = 0, bc = 0, el = 0, ec = 0;
};
struct Header {
  int line;
  Path path;
  bool is_array;  // [[path]]
};
struct Leaf {  // a key whose value is not a [table]: scalars, arrays of values, inline tables
  Path path;
  Span span;   // of the value
  int header;  // index into Doc::headers of the header it sits under; -1: before any header
  const toml::node* node;
};
struct Unit {  // an array of tables
  Path path;
  // Per element, its segments: header line .. last content line. An element has more than one
  // when another table's header interrupts it and a header beneath this array's path continues
  // it (TOML gives what follows to the array's last element).
  std::vector<std::vector<std::pair<int, int>>> blocks;
  const toml::node* node;
};

// A parsed TOML file with the line positions of its headers, leaves and arrays of tables.
class Doc {
 public:
  static absl::StatusOr<std::unique_ptr<Doc>> Parse(std::string_view text, const std::string& name);
  Doc(const Doc&) = delete;  // leaves and units point into root
  Doc& operator=(const Doc&) = delete;

  const toml::node* Find(const Path& p) const;  // through tables only; nullptr when absent
  const Leaf* FindLeaf(const Path& p) const;
  const Unit* FindUnit(const Path& p) const;
  int HeaderIndex(const Path& p) const;  // the [p] header (not [[p]]), or -1
  Path HeaderPath(int h) const { return h < 0 ? Path{} : headers[h].path; }
  bool IsContent(int line) const;  // not blank, not only a comment
  // The last line holding a key of header h's region (h = -1: keys before the first header);
  // the header's own line when it has none (-1 for an empty root region).
  int LastKeyLine(int h) const;
  std::vector<std::string> CommentsAbove(int line) const;  // directly above, no blank between
  std::string Text(const Span& s) const;
  std::string Lines(int first, int last) const;  // joined with '\n'

  toml::table root;
  std::vector<std::string> lines;
  bool final_newline = false;
  bool crlf = false;           // lines ended with "\r\n" (stripped from `lines`)
  std::vector<bool> in_value;  // continuation lines of multi-line values
  std::vector<Header> headers;
  std::vector<Leaf> leaves;  // in file order
  std::vector<Unit> units;   // top-level arrays of tables (not those inside another's elements)

 private:
  Doc() = default;
  int ByteColumn(int line, int column) const;
  Span ToSpan(const toml::source_region& r) const;
  void Walk(const toml::table& t, Path& path, bool collect);
  void Index();
};

// What a source (or overrides) file asks the merge to carry: one leaf or one array of tables.
struct Item {
  Path path;
  bool is_unit = false;
  std::string text;                   // leaf: the value's TOML text; unit: all its blocks
  std::vector<std::string> elements;  // unit: each element's text
  std::string canon;                  // leaf: Canon of the value
  std::vector<std::string> verbatim;  // leaf: its source lines (comments above, trailing comment)
  std::vector<std::string> above;     // leaf: the comment lines directly above its key
  std::string trailing;               // leaf: what follows its value when that is a comment
                                      // ("  # CHG-1"), else ""
  Path table;                         // leaf: the header it sits under in its file
  std::vector<std::string> comments;  // comments directly above that header / the first block
  std::string origin;                 // the input's key when a rule renamed it
  std::string note;                   // the rules that touched it
  std::map<std::string, std::string> element_notes;  // unit: note per flattened key
  // unit: its array in the parsed file it came from, which the caller keeps alive; null once a
  // rule rewrites `text` (then `text` is parsed again where the node is needed).
  const toml::node* node = nullptr;
  bool drop = false;                                 // reported, not carried
  bool from_override = false;
};

// The items of `d`, in file order.
std::vector<Item> ItemsOf(const Doc& d);

// Applies the rules of every step from opts.from_version to opts.to_version (1.2.0 -> 4.0.0:
// [keystore.tls] -> [keystore.primary] or not carried, by the source's update level; bare
// keystore file names -> repository/resources/security/; [keystore.internal] kept on
// wso2carbon.jks beside a custom primary keystore; 4.0.0 -> 4.2.0: [opentracing] ->
// [opentelemetry], user.is_admin = true for internal API users; every path: EI 7.1's HL7 class
// names -> MI 4.x's, common/mi/hl7_names.h). `overrides`: the items are the
// plan's overrides (no keystore is added for them).
absl::Status ApplyRules(std::vector<Item>& items, const MergeOptions& opts, bool overrides,
                        std::vector<std::string>& warnings);

// Appends `overrides` to `items`; a source item at, above or below an override's key is dropped.
void Overlay(std::vector<Item>& items, std::vector<Item> overrides);

}  // namespace mimic::common::toml_internal

#endif  // MIMIC_COMMON_MI_TOML_RULES_H_
