#include "common/mi/toml_merge.h"

#include <toml++/toml.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "common/mi/toml_rules.h"

namespace mimic::common {
namespace {

using ::mimic::v1::ConfigChange;
using toml_internal::ApplyRules;
using toml_internal::Canon;
using toml_internal::Doc;
using toml_internal::Flatten;
using toml_internal::Item;
using toml_internal::ItemsOf;
using toml_internal::JoinPath;
using toml_internal::kAbsent;
using toml_internal::Leaf;
using toml_internal::Note;
using toml_internal::Overlay;
using toml_internal::ParseToml;
using toml_internal::Path;
using toml_internal::Span;
using toml_internal::SplitLines;
using toml_internal::StartsWith;
using toml_internal::TrimLeft;
using toml_internal::Unit;

struct Edit {  // replaces lines [first, last] (last = first - 1: inserts before `first`)
  int first;
  int last;
  std::vector<std::string> lines;
  int seq;
};

// Carries items into the target as line edits and appended tables, reporting each key and
// remembering what Verify() must find in the result. Borrows the target, defaults and options.
class Merger {
 public:
  Merger(const Doc& target, const Doc* defaults, const MergeOptions& opts, std::string file)
      : target_(target), defaults_(defaults), opts_(opts), file_(std::move(file)) {}

  absl::Status Merge(const Item& it) {
    if (it.drop) return Drop(it, "");
    return it.is_unit ? MergeUnit(it) : MergeLeaf(it);
  }

  // The merged text: edits applied bottom-up, new tables appended.
  std::string Render() {
    std::vector<std::string> lines = target_.lines;
    std::sort(edits_.begin(), edits_.end(), [](const Edit& a, const Edit& b) {
      bool a_ins = a.last < a.first, b_ins = b.last < b.first;
      return std::tie(b.first, a_ins, b.seq) < std::tie(a.first, b_ins, a.seq);
    });
    for (const Edit& e : edits_) {
      lines.erase(lines.begin() + e.first, lines.begin() + e.last + 1);
      lines.insert(lines.begin() + e.first, e.lines.begin(), e.lines.end());
    }
    const std::string eol = target_.crlf ? "\r\n" : "\n";
    std::string out = absl::StrJoin(lines, eol);
    if (target_.final_newline || (!appendix_.empty() && !out.empty())) out += eol;
    for (const auto& [table, chunk] : appendix_) {
      if (!out.empty() && !out.ends_with(eol + eol)) out += eol;
      absl::StrAppend(&out, absl::StrJoin(chunk, eol), eol);
    }
    return out;
  }

  // Re-parses `merged` and checks every decided value and every untouched target value.
  absl::Status Verify(const std::string& merged) const {
    auto parsed = ParseToml(merged, "merged deployment.toml");
    if (!parsed.ok()) {
      return absl::InternalError(
          absl::StrCat("merge produced invalid TOML: ", parsed.status().message()));
    }
    auto find = [&](const Path& p) {
      const toml::node* n = &*parsed;
      for (const std::string& k : p) {
        if (n == nullptr || !n->is_table()) return static_cast<const toml::node*>(nullptr);
        n = n->as_table()->get(k);
      }
      return n;
    };
    auto check = [&](const Path& p, const std::string& canon) {
      return Canon(find(p)) == canon ? absl::OkStatus()
                                     : absl::InternalError(absl::StrCat(
                                           "merge self-check failed for key ", JoinPath(p)));
    };
    for (const auto& [p, canon] : expect_) RETURN_IF_ERROR(check(p, canon));
    for (const Leaf& l : target_.leaves) {
      if (!touched_.count(l.path)) RETURN_IF_ERROR(check(l.path, Canon(l.node)));
    }
    for (const Unit& u : target_.units) {
      if (!touched_.count(u.path)) RETURN_IF_ERROR(check(u.path, Canon(u.node)));
    }
    return absl::OkStatus();
  }

  std::vector<ConfigChange> changes;
  std::vector<std::string> warnings;

 private:
  void Report(const std::string& key, const std::string& action, std::string_view old_value,
              std::string_view new_value, const std::string& note) {
    ConfigChange c;
    c.set_file(file_);
    c.set_key(key);
    c.set_action(action);
    bool secret =
        IsSecretKey(key) || HoldsSecretReference(old_value) || HoldsSecretReference(new_value);
    auto shown = [&](std::string_view v) {
      if (v.empty() || v == kAbsent) return std::string();
      if (secret) return std::string(kRedacted);
      std::string r = RedactText(v);  // e.g. a password inside a JDBC url
      if (r != v) c.set_redacted(true);
      return r;
    };
    c.set_old_value(shown(old_value));
    c.set_new_value(shown(new_value));
    if (secret) c.set_redacted(true);
    c.set_note(note);
    changes.push_back(std::move(c));
  }

  static std::string Action(const Item& it, const char* action) {
    return it.origin.empty() ? action : "rename";
  }

  // Why `path` cannot go into the target: a prefix is a value there, or it has another shape.
  std::string Clash(const Path& path, bool is_unit) const {
    for (size_t n = 1; n < path.size(); ++n) {
      const toml::node* node = target_.Find(Path(path.begin(), path.begin() + n));
      if (node == nullptr) return "";
      if (!node->is_table() || node->as_table()->is_inline()) {
        return absl::StrCat("the target defines ", JoinPath(Path(path.begin(), path.begin() + n)),
                            " as a value");
      }
    }
    const toml::node* node = target_.Find(path);
    if (node == nullptr) return "";
    if (is_unit ? target_.FindUnit(path) == nullptr : target_.FindLeaf(path) == nullptr) {
      return is_unit ? "the target defines it as something other than an array of tables"
                     : "the target defines it as a table";
    }
    return "";
  }

  // Decides a difference: true = write the source's value. Errors for conflict = "fail".
  absl::StatusOr<bool> Decide(const Item& it, const std::string& key,
                              const std::string& target_canon, std::string* note) {
    if (it.from_override) {
      *note = Note(it.note, "set by the plan's overrides");
      return true;
    }
    if (defaults_ != nullptr && Canon(defaults_->Find(it.path)) == target_canon) {
      *note = it.note;
      return true;  // the target still holds its shipped default: no conflict
    }
    std::string known = defaults_ != nullptr ? " (the operator changed it on the target)" : "";
    if (opts_.conflict == "fail") {
      return absl::FailedPreconditionError(absl::StrCat("conflict at ", key, " in ", file_,
                                                        ": the target holds another value", known,
                                                        " and conflict = \"fail\""));
    }
    bool source = opts_.conflict == "source";
    *note = Note(it.note,
                 source ? "conflict: the source's value replaced the target's (conflict = source)"
                        : "conflict: the target's value was kept (conflict = target)");
    if (defaults_ != nullptr || !source) {
      warnings.push_back(
          absl::StrCat("conflict at ", key, known, ": ",
                       source ? "the source's value was written" : "the target's value was kept"));
    }
    return source;
  }

  // A unit's array of tables: the node it was read with, else its rewritten text parsed into
  // `parsed` (one small parse per unit a rule changed, not per unit).
  static absl::StatusOr<const toml::node*> UnitNode(const Item& it, std::unique_ptr<Doc>& parsed) {
    if (it.node != nullptr) return it.node;
    const std::string key = JoinPath(it.path);
    ASSIGN_OR_RETURN(parsed, Doc::Parse(it.text, "[[" + key + "]]"));
    const toml::node* unit = parsed->Find(it.path);
    if (unit == nullptr) return absl::InternalError("lost the array of tables " + key);
    return unit;
  }

  absl::Status Drop(const Item& it, const std::string& why) {
    if (!why.empty()) warnings.push_back(absl::StrCat(JoinPath(it.path), ": not carried: ", why));
    std::string note = Note(it.note, why.empty() ? "" : "not carried: " + why);
    if (!it.is_unit) {
      const Leaf* tl = target_.FindLeaf(it.path);
      Report(JoinPath(it.path), "drop", tl ? target_.Text(tl->span) : "", it.text, note);
      return absl::OkStatus();
    }
    std::unique_ptr<Doc> parsed;
    ASSIGN_OR_RETURN(const toml::node* unit, UnitNode(it, parsed));
    std::vector<std::pair<std::string, std::string>> flat;
    Flatten(*unit, JoinPath(it.path), flat);
    for (const auto& [k, v] : flat) Report(k, "drop", "", v, note);
    return absl::OkStatus();
  }

  absl::Status MergeLeaf(const Item& it) {
    std::string key = JoinPath(it.path);
    if (std::string why = Clash(it.path, false); !why.empty()) return Drop(it, why);
    touched_.insert(it.path);
    const Leaf* tl = target_.FindLeaf(it.path);
    if (tl == nullptr) {
      Place(it);
      expect_.emplace_back(it.path, it.canon);
      Report(key, Action(it, "add"), "", it.text,
             Note(it.note, it.from_override ? "set by the plan's overrides" : ""));
      return absl::OkStatus();
    }
    std::string old_text = target_.Text(tl->span);
    std::string target_canon = Canon(tl->node);
    const Span& s = tl->span;
    if (target_canon == it.canon) {
      expect_.emplace_back(it.path, it.canon);
      Report(key, "keep", old_text, it.text, it.note);
      CarryTableComments(it);
      std::string suffix = CarryKeyComments(it, *tl);
      if (suffix != target_.lines[s.el].substr(s.ec)) {
        edits_.push_back(
            {s.el, s.el, {absl::StrCat(target_.lines[s.el].substr(0, s.ec), suffix)}, seq_++});
      }
      return absl::OkStatus();
    }
    std::string note;
    ASSIGN_OR_RETURN(bool apply, Decide(it, key, target_canon, &note));
    expect_.emplace_back(it.path, apply ? it.canon : target_canon);
    Report(key, apply ? Action(it, "change") : "drop", old_text, it.text, note);
    if (apply) {
      CarryTableComments(it);
      std::string suffix = CarryKeyComments(it, *tl);
      std::string text =
          absl::StrCat(target_.lines[s.bl].substr(0, s.bc), it.text, std::move(suffix));
      edits_.push_back({s.bl, s.el, SplitLines(text), seq_++});
    }
    return absl::OkStatus();
  }

  // Where a missing leaf goes: into the target's table if it has one, else a new table at the end.
  void Place(const Item& it) {
    const Path& path = it.path;
    Path table = StartsWith(path, it.table) && it.table.size() < path.size()
                     ? it.table
                     : Path(path.begin(), path.end() - 1);
    size_t q = 0;  // the longest prefix of path that is a table in the target
    while (q + 1 < path.size()) {
      const toml::node* n = target_.Find(Path(path.begin(), path.begin() + q + 1));
      if (n == nullptr || !n->is_table()) break;
      ++q;
    }
    Path existing(path.begin(), path.begin() + q);
    if (q < table.size()) return Append(it, table);
    if (int h = target_.HeaderIndex(existing); h >= 0 || q == 0) return Insert(it, h, q);
    for (const Leaf& l : target_.leaves) {  // `existing` made by dotted keys under some header
      Path header = target_.HeaderPath(l.header);
      if (StartsWith(l.path, existing) && header.size() <= existing.size()) {
        return Insert(it, l.header, header.size());
      }
    }
    Append(it, existing);  // an implicit super-table
  }

  // `key = value` relative to a table of depth `from`: the source's own lines when they fit.
  // Written anew (renamed, or moved to another table), the key keeps its comments.
  static std::vector<std::string> KeyLines(const Item& it, size_t from, const std::string& indent) {
    if (!it.verbatim.empty() && from == it.table.size()) return it.verbatim;
    std::vector<std::string> lines = it.above;
    for (std::string& l : SplitLines(absl::StrCat(indent, JoinPath(it.path, from), " = ", it.text,
                                                  it.trailing))) {
      lines.push_back(std::move(l));
    }
    return lines;
  }

  // The lines of `comments` the target does not already have directly above `line`.
  std::vector<std::string> MissingComments(const std::vector<std::string>& comments,
                                           int line) const {
    std::set<std::string_view> there;
    const std::vector<std::string> above = target_.CommentsAbove(line);
    for (const std::string& l : above) there.insert(TrimLeft(l));
    std::vector<std::string> missing;
    for (const std::string& l : comments) {
      if (!there.count(TrimLeft(l))) missing.push_back(l);
    }
    return missing;
  }

  // Operator comments directly above a source table go above the same table in the target (once
  // per table, just above its header).
  void CarryTableComments(const Item& it) {
    if (it.comments.empty() || it.from_override || !tables_done_.insert(it.table).second) return;
    const int h = target_.HeaderIndex(it.table);
    if (h < 0) return;
    const int line = target_.headers[h].line;
    std::vector<std::string> missing = MissingComments(it.comments, line);
    if (!missing.empty()) edits_.push_back({line, line - 1, std::move(missing), kLast + seq_++});
  }

  // The source's comments above a key the target has go above it; the source's trailing comment
  // replaces the target's. Returns the target's last value line with that comment.
  std::string CarryKeyComments(const Item& it, const Leaf& tl) {
    std::vector<std::string> missing = MissingComments(it.above, tl.span.bl);
    if (!missing.empty()) {
      edits_.push_back({tl.span.bl, tl.span.bl - 1, std::move(missing), seq_++});
    }
    std::string suffix = target_.lines[tl.span.el].substr(tl.span.ec);
    if (!it.trailing.empty() && TrimLeft(suffix) != TrimLeft(it.trailing)) suffix = it.trailing;
    return suffix;
  }

  void Insert(const Item& it, int header, size_t from) {
    CarryTableComments(it);
    int after = target_.LastKeyLine(header);
    std::string indent;
    if (after >= 0 && (header < 0 || after != target_.headers[header].line)) {
      const std::string& l = target_.lines[after];
      indent = l.substr(0, l.size() - TrimLeft(l).size());
    }
    edits_.push_back({after + 1, after, KeyLines(it, from, indent), seq_++});
  }

  void Append(const Item& it, const Path& table) {
    std::vector<std::string> lines = KeyLines(it, table.size(), "");
    for (auto& [t, chunk] : appendix_) {
      if (t && *t == table) {
        chunk.insert(chunk.end(), lines.begin(), lines.end());
        return;
      }
    }
    std::vector<std::string> chunk = it.comments;
    chunk.push_back("[" + JoinPath(table) + "]");
    chunk.insert(chunk.end(), lines.begin(), lines.end());
    appendix_.emplace_back(table, std::move(chunk));
  }

  absl::Status MergeUnit(const Item& it) {
    std::string key = JoinPath(it.path);
    if (std::string why = Clash(it.path, true); !why.empty()) return Drop(it, why);
    touched_.insert(it.path);
    std::unique_ptr<Doc> parsed;
    ASSIGN_OR_RETURN(const toml::node* source, UnitNode(it, parsed));
    std::vector<std::pair<std::string, std::string>> source_flat, target_flat;
    Flatten(*source, key, source_flat);
    auto note_for = [&](const std::string& k, const std::string& extra) {
      auto n = it.element_notes.find(k);
      return Note(Note(it.note, n == it.element_notes.end() ? "" : n->second), extra);
    };
    const Unit* tu = target_.FindUnit(it.path);
    if (tu == nullptr) {
      std::vector<std::string> chunk = it.comments;
      chunk.push_back(it.text);
      appendix_.emplace_back(std::nullopt, std::move(chunk));
      expect_.emplace_back(it.path, Canon(source));
      for (const auto& [k, v] : source_flat) {
        Report(k, "add", "", v, note_for(k, it.from_override ? "set by the plan's overrides" : ""));
      }
      return absl::OkStatus();
    }
    Flatten(*tu->node, key, target_flat);
    std::map<std::string, std::string> target_values(target_flat.begin(), target_flat.end());
    std::string target_canon = Canon(tu->node);
    bool apply = true;
    std::string note = it.note;
    if (target_canon != Canon(source)) {
      ASSIGN_OR_RETURN(apply, Decide(it, key, target_canon, &note));
    }
    expect_.emplace_back(it.path, apply ? Canon(source) : target_canon);
    std::set<std::string> seen;
    for (const auto& [k, v] : source_flat) {
      auto t = target_values.find(k);
      std::string old_value = t == target_values.end() ? "" : t->second;
      const char* action = old_value == v      ? "keep"
                           : !apply            ? "drop"
                           : old_value.empty() ? "add"
                                               : "change";
      Report(k, action, old_value, v, note_for(k, old_value == v ? "" : note));
      seen.insert(k);
    }
    if (!apply || target_canon == Canon(source)) return absl::OkStatus();
    for (const auto& [k, v] : target_flat) {
      if (!seen.count(k)) {
        Report(k, "remove", v, "", Note("the target's [[" + key + "]] blocks were replaced", note));
      }
    }
    bool first = true;  // the first segment takes the source's text; the others go
    for (const auto& element : tu->blocks) {
      for (const auto& [from, to] : element) {
        edits_.push_back({from, to, first ? SplitLines(it.text) : std::vector<std::string>{},
                          seq_++});
        first = false;
      }
    }
    return absl::OkStatus();
  }

  const Doc& target_;
  const Doc* defaults_;
  const MergeOptions& opts_;
  std::string file_;
  std::vector<Edit> edits_;
  int seq_ = 0;
  // Text appended at the end: new tables (keyed by their path, so later keys join them) and units.
  std::vector<std::pair<std::optional<Path>, std::vector<std::string>>> appendix_;
  std::vector<std::pair<Path, std::string>> expect_;
  std::set<Path> touched_;
  std::set<Path> tables_done_;  // tables whose source comments were carried
  // Edits with this seq or more are applied first at their line, so they end up lowest: a
  // table's comments stay directly above its header, below keys inserted at the same line.
  static constexpr int kLast = 1 << 24;
};

}  // namespace

absl::StatusOr<MergeResult> MergeDeploymentToml(const std::string& source_text,
                                                const std::string& source_name,
                                                const std::string& target_text,
                                                const std::string& target_name,
                                                const MergeOptions& opts) {
  static const std::set<std::pair<std::string, std::string>> kPaths = {
      {"1.2.0", "4.0.0"}, {"4.0.0", "4.2.0"}, {"1.2.0", "4.2.0"}};
  if (!kPaths.count({opts.from_version, opts.to_version})) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported deployment.toml merge ",
                                                   opts.from_version, " -> ", opts.to_version));
  }
  if (opts.conflict != "source" && opts.conflict != "target" && opts.conflict != "fail") {
    return absl::InvalidArgumentError(absl::StrCat(
        "conflict must be \"source\", \"target\" or \"fail\", not \"", opts.conflict, "\""));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Doc> source, Doc::Parse(source_text, source_name));
  ASSIGN_OR_RETURN(std::unique_ptr<Doc> target, Doc::Parse(target_text, target_name));
  // A fresh target is its version's shipped file: then the defaults are the target, parsed once.
  std::unique_ptr<Doc> defaults;
  if (!opts.target_default_text.empty() && opts.target_default_text != target_text) {
    ASSIGN_OR_RETURN(defaults, Doc::Parse(opts.target_default_text, "default deployment.toml"));
  }
  const Doc* default_doc = opts.target_default_text.empty() ? nullptr
                           : defaults != nullptr           ? defaults.get()
                                                           : target.get();
  std::vector<std::string> warnings;
  std::vector<Item> items = ItemsOf(*source);
  RETURN_IF_ERROR(ApplyRules(items, opts, /*overrides=*/false, warnings));
  std::unique_ptr<Doc> overrides;  // outlives the merge: its items point into it
  if (!opts.overrides_toml.empty()) {
    ASSIGN_OR_RETURN(overrides, Doc::Parse(opts.overrides_toml, "plan overrides"));
    std::vector<Item> override_items = ItemsOf(*overrides);
    RETURN_IF_ERROR(ApplyRules(override_items, opts, /*overrides=*/true, warnings));
    Overlay(items, std::move(override_items));
  }
  Merger merger(*target, default_doc, opts, target_name);
  for (const Item& it : items) RETURN_IF_ERROR(merger.Merge(it));
  MergeResult result;
  result.merged_text = merger.Render();
  RETURN_IF_ERROR(merger.Verify(result.merged_text));
  result.changes = std::move(merger.changes);
  warnings.insert(warnings.end(), merger.warnings.begin(), merger.warnings.end());
  for (const std::string& w : warnings) result.warnings.push_back(RedactText(w));
  return result;
}

mimic::v1::ConfigChange RedactConfigChange(mimic::v1::ConfigChange c) {
  // A secret key's value whole; in any other value what RedactText finds (a URL's password).
  auto redact = [&](const std::string& v) {
    return v.empty() ? v : RedactText(RedactValue(c.key(), v));
  };
  const std::string old_value = redact(c.old_value());
  const std::string new_value = redact(c.new_value());
  if (old_value != c.old_value() || new_value != c.new_value()) c.set_redacted(true);
  c.set_old_value(old_value);
  c.set_new_value(new_value);
  c.set_note(RedactText(c.note()));
  return c;
}

}  // namespace mimic::common
