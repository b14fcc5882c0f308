#include "common/config/host_pattern.h"

#include <fnmatch.h>

#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::common {
namespace {

struct Term {
  char op = 0;        // 0 union, '&' intersection, '!' exclusion
  std::string text;   // without the operator
  std::string where;  // "" or "FILE:LINE: " when read from an @file
};

bool IsGlob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// Splits on ',' and ':' and expands @file terms (one level: a retry file names hosts).
absl::Status Split(const std::string& pattern, std::vector<Term>* terms, bool allow_files,
                   const std::string& where) {
  for (absl::string_view raw : absl::StrSplit(pattern, absl::ByAnyChar(",:"))) {
    std::string t(absl::StripAsciiWhitespace(raw));
    if (t.empty()) continue;
    char op = 0;
    if (t[0] == '&' || t[0] == '!') {
      op = t[0];
      t = std::string(absl::StripAsciiWhitespace(t.substr(1)));
      if (t.empty()) return absl::InvalidArgumentError(absl::StrCat(where, "limit: '", std::string(1, op), "' names nothing"));
    }
    if (t[0] == '@') {
      if (!allow_files) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "limit: '", t, "' inside a host file (files do not nest)"));
      }
      std::string file = t.substr(1);
      absl::StatusOr<std::string> text = ReadFile(file);
      if (!text.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("limit: cannot read host file ", file, ": ", text.status().message()));
      }
      int line_no = 0;
      for (absl::string_view line : absl::StrSplit(*text, '\n')) {
        ++line_no;
        std::string l(absl::StripAsciiWhitespace(line));
        if (l.empty() || l[0] == '#') continue;
        std::vector<Term> inner;
        RETURN_IF_ERROR(Split(l, &inner, false, absl::StrCat(file, ":", line_no, ": ")));
        for (Term& in : inner) {
          // "!x" in a file excludes; a file under "!" or "&" applies its operator to each line.
          if (op != 0 && in.op == 0) in.op = op;
          terms->push_back(std::move(in));
        }
      }
      continue;
    }
    terms->push_back({op, t, where});
  }
  return absl::OkStatus();
}

// Which hosts one term names; false when it names nothing.
absl::StatusOr<bool> Match(const Inventory& inv, const Term& term, std::vector<bool>* hit) {
  const std::string& t = term.text;
  bool any = false;
  auto mark = [&](size_t i) {
    (*hit)[i] = true;
    any = true;
  };
  if (t == "all" || t == "*") {
    for (size_t i = 0; i < inv.hosts.size(); ++i) mark(i);
    return true;
  }
  if (t[0] == '~') {
    std::regex re;
    try {
      re = std::regex(t.substr(1), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(term.where, "limit: bad regular expression '", t, "': ", e.what()));
    }
    auto m = [&](const std::string& name) { return std::regex_search(name, re); };
    for (size_t i = 0; i < inv.hosts.size(); ++i) {
      const Host& h = inv.hosts[i];
      bool in = m(h.name) || m(h.environment);
      for (const std::string& g : h.all_groups) in = in || m(g);
      if (in) mark(i);
    }
    return any;
  }
  if (IsGlob(t)) {
    auto m = [&](const std::string& name) { return fnmatch(t.c_str(), name.c_str(), 0) == 0; };
    for (size_t i = 0; i < inv.hosts.size(); ++i) {
      const Host& h = inv.hosts[i];
      bool in = m(h.name) || m(h.environment);
      for (const std::string& g : h.all_groups) in = in || m(g);
      if (in) mark(i);
    }
    return any;
  }
  bool known = inv.FindHost(t) != nullptr || inv.FindGroup(t) != nullptr || inv.HasEnvironment(t);
  for (size_t i = 0; i < inv.hosts.size(); ++i) {
    const Host& h = inv.hosts[i];
    if (h.name == t || h.environment == t || h.InGroup(t)) mark(i);
  }
  return known || any;
}

}  // namespace

absl::StatusOr<std::vector<const Host*>> SelectHosts(const Inventory& inventory,
                                                     const std::string& pattern) {
  std::vector<Term> terms;
  RETURN_IF_ERROR(Split(pattern, &terms, true, ""));
  const size_t n = inventory.hosts.size();
  bool has_union = false;
  for (const Term& t : terms) has_union = has_union || t.op == 0;
  std::vector<bool> selected(n, !has_union);
  std::vector<bool> narrowed(n, true);
  std::vector<bool> excluded(n, false);
  for (const Term& t : terms) {
    std::vector<bool> hit(n, false);
    ASSIGN_OR_RETURN(bool matched, Match(inventory, t, &hit));
    if (!matched) {
      return absl::InvalidArgumentError(absl::StrCat(
          t.where, "limit '", t.op ? std::string(1, t.op) : "", t.text,
          "' matches no host, group or environment in ", inventory.path));
    }
    for (size_t i = 0; i < n; ++i) {
      if (t.op == 0 && hit[i]) selected[i] = true;
      if (t.op == '&' && !hit[i]) narrowed[i] = false;
      if (t.op == '!' && hit[i]) excluded[i] = true;
    }
  }
  std::vector<const Host*> out;
  for (size_t i = 0; i < n; ++i) {
    if (selected[i] && narrowed[i] && !excluded[i]) out.push_back(&inventory.hosts[i]);
  }
  return out;
}

}  // namespace mimic::common
