#include "common/base/redact.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace mimic::common {
namespace {

constexpr std::string_view kSecretRef = "$secret{";

bool IsKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One component of a dotted key, without quotes or an array index ("datasource[0]").
std::string CleanComponent(std::string_view c) {
  while (!c.empty() && IsSpace(c.front())) c.remove_prefix(1);
  while (!c.empty() && IsSpace(c.back())) c.remove_suffix(1);
  if (size_t b = c.find('['); b != std::string_view::npos) c = c.substr(0, b);
  while (!c.empty() && (c.front() == '\'' || c.front() == '"' || c.front() == '-')) {
    c.remove_prefix(1);
  }
  while (!c.empty() && (c.back() == '\'' || c.back() == '"')) c.remove_suffix(1);
  return Lower(c);
}

// Replaces text[begin, end) with kRedacted; returns the index just after the inserted marker.
size_t ReplaceRange(std::string& text, size_t begin, size_t end) {
  text.replace(begin, end - begin, kRedacted);
  return begin + std::string_view(kRedacted).size();
}

// Stage 1: every "$secret{...}" becomes kRedacted (the alias too: it names the secret).
void RedactSecretRefs(std::string& text) {
  size_t pos = 0;
  while ((pos = text.find(kSecretRef, pos)) != std::string::npos) {
    size_t end = text.find('}', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    pos = ReplaceRange(text, pos, end);
  }
}

// Stage 2: scheme://user:pass@host -> scheme://user:<redacted>@host.
void RedactUrlUserinfo(std::string& text) {
  size_t pos = 0;
  while ((pos = text.find("://", pos)) != std::string::npos) {
    size_t start = pos + 3;
    size_t end = start;
    while (end < text.size() &&
           std::string_view(" \t\r\n/\"'<>?#").find(text[end]) == std::string_view::npos) {
      ++end;
    }
    std::string_view authority(text.data() + start, end - start);
    size_t at = authority.rfind('@');
    size_t colon = authority.find(':');
    if (at != std::string_view::npos && colon != std::string_view::npos && colon + 1 < at &&
        authority.substr(colon + 1, at - colon - 1) != kRedacted) {
      end = ReplaceRange(text, start + colon + 1, start + at);
    }
    pos = end;
  }
}

// Returns the end of a value starting at `v`: a quoted value's closing quote is excluded and the
// opening one skipped (so `begin` is adjusted); an unquoted one stops at a delimiter.
size_t ValueEnd(const std::string& text, size_t& begin, bool to_line_end) {
  if (begin >= text.size()) return begin;
  char q = text[begin];
  if (q == '"' || q == '\'') {
    size_t i = ++begin;
    while (i < text.size() && text[i] != q && text[i] != '\n') {
      i += (q == '"' && text[i] == '\\') ? 2 : 1;
    }
    return std::min(i, text.size());
  }
  size_t i = begin;
  if (to_line_end) {
    while (i < text.size() && text[i] != '\n' && text[i] != '\r') ++i;
    while (i > begin && (text[i - 1] == ' ' || text[i - 1] == '\t')) --i;
    return i;
  }
  while (i < text.size() &&
         std::string_view(" \t\r\n,;&)\"'").find(text[i]) == std::string_view::npos)
    ++i;
  return i;
}

// True when the line holding `pos` runs the MySQL/MariaDB client (the only tools here whose
// `-p<pass>` takes an attached password), so "-pthread" or "-print" elsewhere stay intact.
bool OnMysqlLine(const std::string& text, size_t pos) {
  size_t b = text.rfind('\n', pos);
  b = b == std::string::npos ? 0 : b + 1;
  size_t e = text.find('\n', pos);
  std::string line = Lower(std::string_view(text).substr(b, e == std::string::npos ? e : e - b));
  return line.find("mysql") != std::string::npos || line.find("mariadb") != std::string::npos;
}

// Stage 3: secret keys followed by `=`, `:` or (for `--flag`) whitespace; and mysql `-p<pass>`.
void RedactKeyValues(std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    if (!IsKeyChar(text[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < text.size() && IsKeyChar(text[i])) ++i;
    std::string_view token(text.data() + start, i - start);
    bool is_flag = token.starts_with("-");
    bool boundary =
        start == 0 || text[start - 1] == ' ' || text[start - 1] == '\t' || text[start - 1] == '\n';
    if (is_flag && boundary && token.starts_with("-p") && !token.starts_with("--") &&
        token.size() > 2 && OnMysqlLine(text, start)) {
      size_t end = start + 2;
      while (end < text.size() && !IsSpace(text[end])) ++end;
      i = ReplaceRange(text, start + 2, end);
      continue;
    }
    if (!IsSecretKey(token)) continue;
    size_t j = i;
    if (j < text.size() && (text[j] == '"' || text[j] == '\'') && start > 0 &&
        text[start - 1] == text[j])
      ++j;
    size_t k = j;
    while (k < text.size() && (text[k] == ' ' || text[k] == '\t')) ++k;
    bool to_line_end = false;
    if (k < text.size() && (text[k] == '=' || text[k] == ':')) {
      to_line_end = text[k] == ':';
      if (text.compare(k, 3, "://") == 0) continue;  // "password://" is not an assignment
      ++k;
      while (k < text.size() && (text[k] == ' ' || text[k] == '\t')) ++k;
    } else if (!(is_flag && k > j && k < text.size() && text[k] != '\n')) {
      continue;  // a bare word such as "password" in prose
    }
    size_t begin = k;
    size_t end = ValueEnd(text, begin, to_line_end);
    if (end <= begin || std::string_view(text).substr(begin, end - begin) == kRedacted) {
      i = std::max(i, end);
      continue;
    }
    i = ReplaceRange(text, begin, end);
  }
}

}  // namespace

bool IsSecretKey(std::string_view dotted_key) {
  std::vector<std::string_view> parts;
  for (size_t b = 0;;) {
    size_t e = dotted_key.find('.', b);
    parts.push_back(dotted_key.substr(b, e == std::string_view::npos ? e : e - b));
    if (e == std::string_view::npos) break;
    b = e + 1;
  }
  while (!parts.empty() && CleanComponent(parts.back()).empty()) parts.pop_back();
  if (parts.empty()) return false;
  if (parts.size() >= 2 && CleanComponent(parts.front()) == "secrets") return true;
  std::string last = CleanComponent(parts.back());
  return last.ends_with("password") || last == "secret" || last == "secret_key" ||
         last == "token" || last == "private_key";
}

bool HoldsSecretReference(std::string_view value) {
  return value.find(kSecretRef) != std::string_view::npos;
}

std::string RedactValue(std::string_view dotted_key, std::string_view value) {
  if (IsSecretKey(dotted_key) || HoldsSecretReference(value)) return kRedacted;
  return std::string(value);
}

std::string RedactText(std::string_view text) {
  std::string out(text);
  RedactSecretRefs(out);
  RedactUrlUserinfo(out);
  RedactKeyValues(out);
  return out;
}

}  // namespace mimic::common
