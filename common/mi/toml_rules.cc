#include "common/mi/toml_rules.h"

#include <algorithm>
#include <map>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/mi/hl7_names.h"

namespace mimic::common::toml_internal {
namespace {

bool IsBareKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

void CanonTo(const toml::node& n, std::string& out) {
  if (const auto* t = n.as_table()) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : *t) {
      absl::StrAppend(&out, first ? "" : ", ", QuoteKey(k.str()), " = ");
      first = false;
      CanonTo(v, out);
    }
    out += '}';
  } else if (const auto* a = n.as_array()) {
    out += '[';
    for (size_t i = 0; i < a->size(); ++i) {
      if (i > 0) out += ", ";
      CanonTo((*a)[i], out);
    }
    out += ']';
  } else if (const auto* s = n.as_string()) {
    out += QuoteString(s->get());
  } else if (const auto* i = n.as_integer()) {
    out += std::to_string(i->get());
  } else if (const auto* b = n.as_boolean()) {
    out += b->get() ? "true" : "false";  // as toml++ prints it, without a stream
  } else {
    std::ostringstream os;
    n.visit([&os](const auto& v) { os << v; });
    out += os.str();
  }
}

// Parses one value's TOML text ("\"x\"", "true", a multi-line array...).
std::optional<toml::table> ParseValueText(std::string_view text) {
  auto t = ParseToml(absl::StrCat("v = ", std::string(text), "\n"), "value");
  if (!t.ok()) return std::nullopt;
  return std::move(*t);
}

// Parses a table header's key ("a.'b.c'.\"d\"]..."), up to its closing bracket.
std::optional<Path> ParseHeaderKey(std::string_view s) {
  Path p;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  while (true) {
    skip_ws();
    if (i >= s.size()) return std::nullopt;
    std::string part;
    if (s[i] == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
          char e = s[++i];
          part += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        } else {
          part += s[i];
        }
      }
      if (i++ >= s.size()) return std::nullopt;
    } else if (s[i] == '\'') {
      size_t e = s.find('\'', i + 1);
      if (e == std::string_view::npos) return std::nullopt;
      part = std::string(s.substr(i + 1, e - i - 1));
      i = e + 1;
    } else {
      size_t b = i;
      while (i < s.size() && IsBareKeyChar(s[i])) ++i;
      if (i == b) return std::nullopt;
      part = std::string(s.substr(b, i - b));
    }
    p.push_back(std::move(part));
    skip_ws();
    if (i < s.size() && s[i] == '.') {
      ++i;
    } else {
      return i < s.size() && s[i] == ']' ? std::optional<Path>(p) : std::nullopt;
    }
  }
}

}  // namespace

std::string QuoteString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04X", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string QuoteKey(std::string_view k) {
  if (!k.empty() && std::all_of(k.begin(), k.end(), IsBareKeyChar)) return std::string(k);
  if (k.find_first_of("'\n\r") == std::string_view::npos) {
    return absl::StrCat("'", std::string(k), "'");
  }
  return QuoteString(k);
}

std::string JoinPath(const Path& p, size_t from) {
  std::string out;
  for (size_t i = from; i < p.size(); ++i) {
    absl::StrAppend(&out, i > from ? "." : "", QuoteKey(p[i]));
  }
  return out;
}

bool StartsWith(const Path& p, const Path& prefix) {
  return p.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), p.begin());
}

Path Concat(Path a, const Path& b, size_t from) {
  a.insert(a.end(), b.begin() + std::min(from, b.size()), b.end());
  return a;
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    out.emplace_back(text.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

std::string Note(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return absl::StrCat(std::string(a), "; ", std::string(b));
}

std::string Canon(const toml::node* n) {
  if (n == nullptr) return kAbsent;
  std::string out;
  CanonTo(*n, out);
  return out;
}

// The one place where toml++'s exception becomes a Status.
absl::StatusOr<toml::table> ParseToml(std::string_view text, const std::string& name) {
  try {
    return toml::parse(text, std::string_view(name));
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(name, ":", e.source().begin.line, ":",
                                                   e.source().begin.column, ": ",
                                                   std::string(e.description())));
  }
}

bool IsTableArray(const toml::node& n) {
  const auto* a = n.as_array();
  if (a == nullptr || a->empty()) return false;
  return std::all_of(a->begin(), a->end(), [](const toml::node& e) {
    return e.is_table() && !e.as_table()->is_inline();
  });
}

// ---- Doc ----------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Doc>> Doc::Parse(std::string_view text, const std::string& name) {
  auto doc = std::unique_ptr<Doc>(new Doc());
  ASSIGN_OR_RETURN(doc->root, ParseToml(text, name));
  doc->final_newline = !text.empty() && text.back() == '\n';
  doc->lines = SplitLines(text);
  if (doc->final_newline) doc->lines.pop_back();
  doc->crlf = text.find("\r\n") != std::string_view::npos;
  for (std::string& l : doc->lines) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
  }
  doc->in_value.assign(doc->lines.size(), false);
  Path path;
  doc->Walk(doc->root, path, true);
  doc->Index();
  return doc;
}

const toml::node* Doc::Find(const Path& p) const {
  const toml::node* n = &root;
  for (const std::string& k : p) {
    const auto* t = n->as_table();
    if (t == nullptr || (n = t->get(k)) == nullptr) return nullptr;
  }
  return n;
}

const Leaf* Doc::FindLeaf(const Path& p) const {
  for (const Leaf& l : leaves) {
    if (l.path == p) return &l;
  }
  return nullptr;
}

const Unit* Doc::FindUnit(const Path& p) const {
  for (const Unit& u : units) {
    if (u.path == p) return &u;
  }
  return nullptr;
}

int Doc::HeaderIndex(const Path& p) const {
  for (size_t i = 0; i < headers.size(); ++i) {
    if (!headers[i].is_array && headers[i].path == p) return static_cast<int>(i);
  }
  return -1;
}

bool Doc::IsContent(int line) const {
  std::string_view l = TrimLeft(lines[line]);
  return in_value[line] || (!l.empty() && l[0] != '#');
}

int Doc::LastKeyLine(int h) const {
  int begin = h < 0 ? 0 : headers[h].line + 1;
  int end = h + 1 < static_cast<int>(headers.size()) ? headers[h + 1].line
                                                     : static_cast<int>(lines.size());
  for (int i = end - 1; i >= begin; --i) {
    if (IsContent(i)) return i;
  }
  return h < 0 ? -1 : headers[h].line;
}

std::vector<std::string> Doc::CommentsAbove(int line) const {
  int b = line;
  while (b > 0 && !in_value[b - 1] && TrimLeft(lines[b - 1]).starts_with("#")) --b;
  return std::vector<std::string>(lines.begin() + b, lines.begin() + line);
}

std::string Doc::Text(const Span& s) const {
  if (s.bl == s.el) return lines[s.bl].substr(s.bc, s.ec - s.bc);
  std::string out = lines[s.bl].substr(s.bc);
  for (int i = s.bl + 1; i < s.el; ++i) absl::StrAppend(&out, "\n", lines[i]);
  return absl::StrCat(out, "\n", lines[s.el].substr(0, s.ec));
}

std::string Doc::Lines(int first, int last) const {
  return absl::StrJoin(lines.begin() + first, lines.begin() + last + 1, "\n");
}

// toml++ columns count code points, from 1.
int Doc::ByteColumn(int line, int column) const {
  const std::string& l = lines[line];
  size_t i = 0;
  for (int cp = 1; i < l.size() && cp < column; ++cp) {
    unsigned char c = l[i];
    i += c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  }
  return static_cast<int>(std::min(i, l.size()));
}

Span Doc::ToSpan(const toml::source_region& r) const {
  Span s;
  s.bl = static_cast<int>(r.begin.line) - 1;
  s.el = static_cast<int>(r.end.line) - 1;
  s.bc = ByteColumn(s.bl, static_cast<int>(r.begin.column));
  s.ec = ByteColumn(s.el, static_cast<int>(r.end.column));
  return s;
}

void Doc::Walk(const toml::table& t, Path& path, bool collect) {
  for (const auto& [k, v] : t) {
    path.emplace_back(k.str());
    if (const auto* sub = v.as_table(); sub != nullptr && !sub->is_inline()) {
      Walk(*sub, path, collect);
    } else if (IsTableArray(v)) {
      if (collect) units.push_back({path, {}, &v});
      for (const auto& e : *v.as_array()) Walk(*e.as_table(), path, false);
    } else {
      Span s = ToSpan(v.source());
      for (int i = s.bl + 1; i <= s.el; ++i) in_value[i] = true;
      if (collect) leaves.push_back({path, s, -1, &v});
    }
    path.pop_back();
  }
}

void Doc::Index() {
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view l = TrimLeft(lines[i]);
    if (in_value[i] || !l.starts_with("[")) continue;
    bool is_array = l.starts_with("[[");
    if (auto p = ParseHeaderKey(l.substr(is_array ? 2 : 1))) {
      headers.push_back({static_cast<int>(i), *p, is_array});
    }
  }
  auto header_before = [&](int line) {
    auto it = std::lower_bound(headers.begin(), headers.end(), line,
                               [](const Header& h, int l) { return h.line < l; });
    return static_cast<int>(it - headers.begin()) - 1;
  };
  std::sort(leaves.begin(), leaves.end(), [](const Leaf& a, const Leaf& b) {
    return std::tie(a.span.bl, a.span.bc) < std::tie(b.span.bl, b.span.bc);
  });
  for (Leaf& l : leaves) l.header = header_before(l.span.bl);
  for (Unit& u : units) {
    for (const auto& e : *u.node->as_array()) {
      const int first = static_cast<int>(e.source().begin.line) - 1;
      const int h = header_before(first + 1);
      std::vector<std::pair<int, int>> segments;
      auto close = [&](int start, int end) {  // [start, end): trailing blanks and comments left
        int last = end - 1;
        while (last > start && !IsContent(last)) --last;
        segments.emplace_back(start, last);
      };
      int start = first;  // -1: between segments, after another table's header
      for (size_t n = h + 1; n < headers.size(); ++n) {
        const Header& hd = headers[n];
        const bool beneath = StartsWith(hd.path, u.path) && hd.path.size() > u.path.size();
        if (beneath && start < 0) start = hd.line;  // the element goes on here
        if (beneath) continue;
        if (start >= 0) close(start, hd.line);
        start = -1;
        if (hd.is_array && hd.path == u.path) break;  // the next element
      }
      if (start >= 0) close(start, static_cast<int>(lines.size()));
      u.blocks.push_back(std::move(segments));
    }
  }
  std::sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) {
    return a.blocks[0][0].first < b.blocks[0][0].first;
  });
}

void Flatten(const toml::node& n, const std::string& key,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (const auto* t = n.as_table(); t != nullptr && !t->is_inline()) {
    for (const auto& [k, v] : *t) Flatten(v, absl::StrCat(key, ".", QuoteKey(k.str())), out);
  } else if (IsTableArray(n)) {
    const auto& a = *n.as_array();
    for (size_t i = 0; i < a.size(); ++i) Flatten(a[i], absl::StrCat(key, "[", i, "]"), out);
  } else {
    out.emplace_back(key, Canon(&n));
  }
}

std::vector<Item> ItemsOf(const Doc& d) {
  std::vector<std::pair<int, Item>> ordered;
  for (const Leaf& l : d.leaves) {
    Item it;
    it.path = l.path;
    it.text = d.Text(l.span);
    it.canon = Canon(l.node);
    it.table = d.HeaderPath(l.header);
    it.verbatim = d.CommentsAbove(l.span.bl);
    it.above = it.verbatim;
    for (int i = l.span.bl; i <= l.span.el; ++i) it.verbatim.push_back(d.lines[i]);
    std::string rest = d.lines[l.span.el].substr(l.span.ec);
    if (TrimLeft(rest).starts_with("#")) it.trailing = std::move(rest);
    if (l.header >= 0) it.comments = d.CommentsAbove(d.headers[l.header].line);
    ordered.emplace_back(l.span.bl, std::move(it));
  }
  for (const Unit& u : d.units) {
    Item it;
    it.path = u.path;
    it.is_unit = true;
    it.comments = d.CommentsAbove(u.blocks[0][0].first);
    for (size_t i = 0; i < u.blocks.size(); ++i) {
      std::vector<std::string> parts;
      for (size_t j = 0; j < u.blocks[i].size(); ++j) {
        const auto [first, last] = u.blocks[i][j];
        if (i > 0 || j > 0) {
          for (std::string& c : d.CommentsAbove(first)) parts.push_back(std::move(c));
        }
        parts.push_back(d.Lines(first, last));
      }
      it.elements.push_back(absl::StrJoin(parts, "\n"));
    }
    it.text = absl::StrJoin(it.elements, "\n\n");
    it.node = u.node;
    ordered.emplace_back(u.blocks[0][0].first, std::move(it));
  }
  // Sorts positions, not Items: an Item is a dozen strings and vectors, costly to move around.
  std::vector<size_t> order(ordered.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ordered[a].first < ordered[b].first; });
  std::vector<Item> items;
  items.reserve(order.size());
  for (size_t i : order) items.push_back(std::move(ordered[i].second));
  return items;
}

namespace {

absl::Status SetText(Item& it, std::string text) {
  auto t = ParseValueText(text);
  if (!t) {
    return absl::InternalError("a version rule produced an invalid value for " + JoinPath(it.path));
  }
  it.text = std::move(text);
  it.node = nullptr;
  it.canon = Canon(t->get("v"));
  it.verbatim.clear();
  return absl::OkStatus();
}

std::optional<std::string> StringValue(const Item& it) {
  auto t = ParseValueText(it.text);
  if (!t || !t->get("v")->is_string()) return std::nullopt;
  return t->get("v")->as_string()->get();
}

bool IsTrue(const Item* it) {
  if (it == nullptr) return false;
  auto t = ParseValueText(it->text);
  return t && t->get("v")->is_boolean() && t->get("v")->as_boolean()->get();
}

// ---- Version rules -----------------------------------------------------------------------------

// Which keystore table a 1.2.0 source server read, and why (see MergeOptions).
struct KeystoreTableChoice {
  bool read_tls;
  std::string why;
};

KeystoreTableChoice ChooseKeystoreTable(const MergeOptions& o) {
  const int64_t t = o.keystore_primary_update_level;
  const std::string assumed = absl::StrCat(
      "assumed a 1.2.0 without WSO2's update of 2020-09-17 (update level ", t,
      "), which reads [keystore.tls]; set merge_config param keystore_primary_update_level if "
      "this server had it");
  if (o.source_update_level.empty()) {
    return {true, absl::StrCat("no update level found in the source (updates/config.json): ",
                               assumed)};
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(o.source_update_level, &n)) {
    return {true, absl::StrCat("source update level '", o.source_update_level,
                               "' is not a number: ", assumed)};
  }
  if (n >= t) {
    return {false, absl::StrCat("source update level ", n, " >= ", t,
                                " (WSO2's update of 2020-09-17): the server read "
                                "[keystore.primary] and ignored [keystore.tls]")};
  }
  return {true, absl::StrCat("source update level ", n, " < ", t,
                             " (before WSO2's update of 2020-09-17): the server read "
                             "[keystore.tls] and ignored [keystore.primary]")};
}

bool HasItemUnder(const std::vector<Item>& items, const Path& prefix) {
  return std::any_of(items.begin(), items.end(),
                     [&](const Item& it) { return !it.drop && StartsWith(it.path, prefix); });
}

// [keystore.tls] -> [keystore.primary], or not carried, by what the source server read.
void RenameKeystoreTable(std::vector<Item>& items, const MergeOptions& opts,
                         std::vector<std::string>& warnings) {
  const Path tls = {"keystore", "tls"}, primary = {"keystore", "primary"};
  if (!HasItemUnder(items, tls)) return;
  const KeystoreTableChoice choice = ChooseKeystoreTable(opts);
  const bool had_primary = HasItemUnder(items, primary);
  for (Item& it : items) {
    if (it.drop) continue;
    if (StartsWith(it.path, tls) && !choice.read_tls) {
      it.drop = true;
      it.note = absl::StrCat("[keystore.tls] not carried: ", choice.why);
    } else if (StartsWith(it.path, primary) && choice.read_tls) {
      it.drop = true;
      it.note = absl::StrCat("[keystore.primary] not carried: ", choice.why);
    } else if (StartsWith(it.path, tls)) {
      std::string old_key = JoinPath(it.path);
      it.origin = old_key;
      it.path = Concat(primary, it.path, tls.size());
      if (StartsWith(it.table, tls)) {
        it.table = Concat(primary, it.table, tls.size());
      } else {
        it.verbatim.clear();
      }
      it.note = absl::StrCat("renamed from ", old_key, ": MI 4.0 reads [keystore.primary] only; ",
                             choice.why);
    }
  }
  warnings.push_back(choice.read_tls
                         ? absl::StrCat("[keystore.tls] carried as [keystore.primary]",
                                        had_primary ? " (the source's [keystore.primary] not)" : "",
                                        ": ", choice.why)
                         : absl::StrCat("[keystore.tls] not carried: ", choice.why));
}

// MI 1.2.0 fixed its internal keystore (carbon.xml InternalKeyStore) and the management API's
// TLS keystore (internal_api_ssl_config.key_store) to wso2carbon.jks; 4.x makes both follow
// [keystore.primary]. With a custom primary keystore that silently changes which key encrypts
// and signs: keep [keystore.internal] on wso2carbon.jks, or say what to do.
absl::Status KeepInternalKeystore(std::vector<Item>& items, const MergeOptions& opts,
                                  std::vector<std::string>& warnings) {
  const Path primary = {"keystore", "primary"}, internal = {"keystore", "internal"};
  if (HasItemUnder(items, internal)) return absl::OkStatus();
  size_t last_primary = items.size();
  std::optional<std::string> file;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].drop || !StartsWith(items[i].path, primary)) continue;
    last_primary = i;
    if (items[i].path == Concat(primary, {"file_name"})) file = StringValue(items[i]);
  }
  if (!file || file->empty()) return absl::OkStatus();
  const size_t slash = file->find_last_of('/');
  if ((slash == std::string::npos ? *file : file->substr(slash + 1)) == "wso2carbon.jks") {
    return absl::OkStatus();
  }
  warnings.push_back(absl::StrCat(
      "the management API's HTTPS listener (internal APIs, port 9164 + offset) presented "
      "wso2carbon.jks in MI 1.2.0 and presents the primary keystore ",
      *file,
      " in MI 4.x: make its clients (the MI dashboard, the mi CLI, monitoring) trust that "
      "certificate"));
  if (!opts.target_has_wso2carbon_jks) {
    warnings.push_back(absl::StrCat(
        "[keystore.internal] not added: MI 1.2.0 encrypted internal data with wso2carbon.jks "
        "(fixed) and MI 4.x uses [keystore.internal], which defaults to the primary keystore ",
        *file,
        ", but the target has no repository/resources/security/wso2carbon.jks: copy the "
        "source's wso2carbon.jks there and add [keystore.internal] (file_name, type = \"JKS\", "
        "alias, password, key_password of that keystore), or re-encrypt that data with the new "
        "key"));
    return absl::OkStatus();
  }
  const std::string note = absl::StrCat(
      "added: MI 1.2.0's internal keystore was wso2carbon.jks (fixed in carbon.xml); MI 4.x "
      "defaults [keystore.internal] to the custom primary keystore ",
      *file, ", which would change the key of internal encryption");
  std::vector<Item> added;
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{
           {"file_name", "repository/resources/security/wso2carbon.jks"},
           {"type", "JKS"},
           {"password", "wso2carbon"},
           {"alias", "wso2carbon"},
           {"key_password", "wso2carbon"}}) {
    Item it;
    it.path = Concat(internal, {key});
    it.table = internal;
    it.note = note;
    RETURN_IF_ERROR(SetText(it, QuoteString(value)));
    added.push_back(std::move(it));
  }
  added[0].comments = {
      "# Added by mimic: MI 1.2.0 always used wso2carbon.jks as its internal keystore."};
  items.insert(items.begin() + last_primary + 1, added.begin(), added.end());
  return absl::OkStatus();
}

// 1.2.0 -> 4.0.0: the keystore table the server read; bare keystore file names become paths;
// the internal keystore kept.
absl::Status ApplyRules40(std::vector<Item>& items, const MergeOptions& opts, bool overrides,
                          std::vector<std::string>& warnings) {
  const Path primary = {"keystore", "primary"};
  RenameKeystoreTable(items, opts, warnings);
  const std::set<Path> keystores = {primary, {"keystore", "internal"}, {"truststore"}};
  for (Item& it : items) {
    if (it.drop || it.is_unit || it.path.size() < 2 || it.path.back() != "file_name" ||
        !keystores.count(Path(it.path.begin(), it.path.end() - 1))) {
      continue;
    }
    std::optional<std::string> name = StringValue(it);
    if (!name || name->empty() || name->find_first_of("/\\") != std::string::npos) continue;
    RETURN_IF_ERROR(SetText(it, QuoteString("repository/resources/security/" + *name)));
    it.note =
        Note(it.note, "bare file name made relative to MI_HOME (MI 4.0 reads file_name as a path)");
  }
  if (!overrides) RETURN_IF_ERROR(KeepInternalKeystore(items, opts, warnings));
  return absl::OkStatus();
}

// 4.0.0 -> 4.2.0: [opentracing] -> [opentelemetry]; [[internal_apis.users]] keep admin rights.
absl::Status ApplyRules42(std::vector<Item>& items, std::vector<std::string>& warnings) {
  std::vector<size_t> tracing;
  bool has_otel = false;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].drop) continue;
    if (items[i].path[0] == "opentracing") tracing.push_back(i);
    if (items[i].path[0] == "opentelemetry") has_otel = true;
  }
  auto find = [&](const Path& sub) -> Item* {
    for (size_t i : tracing) {
      if (items[i].path == Concat({"opentracing"}, sub)) return &items[i];
    }
    return nullptr;
  };
  std::set<const Item*> used;
  auto rename = [&](Item* it, const std::string& key, std::string_view why) {
    if (it == nullptr || has_otel) return;
    it->origin = JoinPath(it->path);
    it->path = {"opentelemetry", key};
    it->table = {"opentelemetry"};
    it->verbatim.clear();
    it->note =
        absl::StrCat("renamed from ", it->origin,
                     ": MI 4.2 replaced [opentracing] with [opentelemetry]", std::string(why));
    used.insert(it);
  };
  std::optional<Item> type_item;
  if (!tracing.empty()) {
    Item* zipkin_enable = find({"zipkin", "enable"});
    bool zipkin = IsTrue(zipkin_enable);
    bool any_jaeger = std::any_of(tracing.begin(), tracing.end(), [&](size_t i) {
      return items[i].path.size() > 1 && items[i].path[1] == "jaeger";
    });
    bool jaeger = !zipkin && (any_jaeger || IsTrue(find({"enable"})));
    rename(find({"enable"}), "enable", "");
    if (zipkin) {
      rename(zipkin_enable, "type", " (zipkin.enable = true -> type = \"zipkin\")");
      if (!has_otel) RETURN_IF_ERROR(SetText(*zipkin_enable, "\"zipkin\""));
      rename(find({"zipkin", "backend", "url"}), "url", "");
    } else if (jaeger && !has_otel) {
      Item* host = find({"jaeger", "sender", "agent_host"});
      rename(host != nullptr ? host : find({"jaeger", "sampler", "manager_host"}), "host", "");
      Item* port = find({"jaeger", "sender", "agent_port"});
      rename(
          port, "port",
          "; check it: the OpenTelemetry Jaeger exporter talks to the collector (default 14250)");
      if (port != nullptr) {
        warnings.push_back(
            "opentelemetry.port was taken from opentracing.jaeger.sender.agent_port; MI 4.2's "
            "Jaeger exporter expects the collector's port (default 14250)");
      }
      type_item.emplace();
      type_item->path = {"opentelemetry", "type"};
      type_item->table = {"opentelemetry"};
      type_item->comments = items[tracing[0]].comments;
      type_item->origin = "opentracing.jaeger";
      type_item->note = "MI 4.2 selects the tracer with opentelemetry.type; the source used Jaeger";
      RETURN_IF_ERROR(SetText(*type_item, "\"jaeger\""));
    }
    for (size_t i : tracing) {
      if (used.count(&items[i])) continue;
      items[i].drop = true;
      items[i].note =
          has_otel ? "not carried: the source already has [opentelemetry]"
                   : "no equivalent in 4.2.0 ([opentracing] was replaced by [opentelemetry])";
      warnings.push_back(absl::StrCat(JoinPath(items[i].path), ": ", items[i].note, "; dropped"));
    }
    if (type_item) items.insert(items.begin() + tracing[0] + 1, std::move(*type_item));
  }

  const Path users = {"internal_apis", "users"};
  for (Item& it : items) {
    if (it.drop || !it.is_unit || it.path != users) continue;
    for (size_t i = 0; i < it.elements.size(); ++i) {
      ASSIGN_OR_RETURN(auto doc, Doc::Parse(it.elements[i], "[[internal_apis.users]]"));
      const toml::node* array = doc->Find(users);
      if (array == nullptr || !IsTableArray(*array) || doc->headers.empty()) continue;
      const toml::node* user = array->as_array()->get(0)->as_table()->get("user");
      std::string key = absl::StrCat("internal_apis.users[", i, "].user.is_admin");
      if (user != nullptr && user->is_table() && user->as_table()->contains("is_admin")) continue;
      if (user != nullptr && (!user->is_table() || user->as_table()->is_inline())) {
        warnings.push_back(
            absl::StrCat(key,
                         ": not added (user is not a plain table); MI 4.2 treats the user "
                         "as non-admin unless user.is_admin = true"));
        continue;
      }
      int h = doc->HeaderIndex(Concat(users, {"user"}));
      int first_header = 0;
      while (first_header + 1 < static_cast<int>(doc->headers.size()) &&
             !doc->headers[first_header].is_array) {
        ++first_header;
      }
      int at = doc->LastKeyLine(h >= 0 ? h : first_header);
      doc->lines.insert(doc->lines.begin() + at + 1,
                        h >= 0 ? "is_admin = true" : "user.is_admin = true");
      it.elements[i] = absl::StrJoin(doc->lines, "\n");
      it.element_notes[key] =
          "added: MI 4.2 makes a [[internal_apis.users]] entry without user.is_admin = true a "
          "non-admin user";
    }
    it.text = absl::StrJoin(it.elements, "\n\n");
    it.node = nullptr;
  }
  return absl::OkStatus();
}

// Every version: EI 7.1's HL7 class names (org.wso2.carbon.business.messaging.hl7.*) load
// nothing in MI 4.x, which ships the same classes under org.wso2.micro.integrator (hl7_names.h).
absl::Status ApplyHl7ClassNames(std::vector<Item>& items, std::vector<std::string>& warnings) {
  const std::string why = absl::StrCat("HL7 class renamed for MI 4.x (", kOldHl7Package, "* -> ",
                                       kHl7Package, "*)");
  for (Item& it : items) {
    if (it.drop || it.text.find(kOldHl7Package) == std::string::npos) continue;
    const std::string key = JoinPath(it.path);
    if (!it.is_unit) {
      RETURN_IF_ERROR(SetText(it, RewriteOldHl7ClassNames(it.text, nullptr)));
      it.note = Note(it.note, why);
      warnings.push_back(absl::StrCat(key, ": ", why));
      continue;
    }
    ASSIGN_OR_RETURN(auto before, Doc::Parse(it.text, "[[" + key + "]]"));
    std::vector<std::string> elements = it.elements;
    for (std::string& e : elements) e = RewriteOldHl7ClassNames(e, nullptr);
    const std::string text = absl::StrJoin(elements, "\n\n");
    ASSIGN_OR_RETURN(auto after, Doc::Parse(text, "[[" + key + "]]"));
    const toml::node* old_unit = before->Find(it.path);
    const toml::node* new_unit = after->Find(it.path);
    if (old_unit == nullptr || new_unit == nullptr) {
      // The old package is in the table's own name: renaming it would move the table.
      return absl::InvalidArgumentError(absl::StrCat(
          "[[", key, "]]: the table's name holds EI 7.1's HL7 package ", kOldHl7Package,
          "; mimic renames HL7 class names in values only: rename the table in the source's "
          "deployment.toml"));
    }
    it.elements = std::move(elements);
    it.text = text;
    it.node = nullptr;
    std::vector<std::pair<std::string, std::string>> old_flat, new_flat;
    Flatten(*old_unit, key, old_flat);
    Flatten(*new_unit, key, new_flat);
    const std::map<std::string, std::string> old_values(old_flat.begin(), old_flat.end());
    for (const auto& [k, v] : new_flat) {
      auto o = old_values.find(k);
      if (o == old_values.end() || o->second == v) continue;
      it.element_notes[k] = Note(it.element_notes[k], why);
      warnings.push_back(absl::StrCat(k, ": ", o->second, " -> ", v, ": ", why));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyRules(std::vector<Item>& items, const MergeOptions& opts, bool overrides,
                        std::vector<std::string>& warnings) {
  RETURN_IF_ERROR(ApplyHl7ClassNames(items, warnings));
  if (opts.from_version == "1.2.0") RETURN_IF_ERROR(ApplyRules40(items, opts, overrides, warnings));
  if (opts.to_version == "4.2.0") RETURN_IF_ERROR(ApplyRules42(items, warnings));
  return absl::OkStatus();
}

void Overlay(std::vector<Item>& items, std::vector<Item> overrides) {
  for (Item& o : overrides) {
    o.from_override = true;
    for (Item& it : items) {
      if (o.drop || it.drop || it.from_override) continue;
      if (StartsWith(it.path, o.path) || StartsWith(o.path, it.path)) {
        it.drop = true;
        it.note = Note(it.note, "superseded by the plan's overrides");
      }
    }
    items.push_back(std::move(o));
  }
}

}  // namespace mimic::common::toml_internal
