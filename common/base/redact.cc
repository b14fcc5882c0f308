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

// The index after the spaces and tabs from `i` (a newline ends the search).
size_t SkipBlanks(const std::string& text, size_t i) {
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  return i;
}

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

// The words of one key component, lower case: split at `_`, `-`, `.`, spaces and camelCase
// ("ConnectionPassword" -> connection, password), quotes and an array index dropped.
std::vector<std::string> Words(std::string_view c) {
  if (size_t b = c.find('['); b != std::string_view::npos) c = c.substr(0, b);
  std::vector<std::string> words;
  std::string cur;
  char prev = 0;
  for (char ch : c) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (!std::isalnum(u)) {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      if (std::isupper(u) && prev != 0 && std::islower(static_cast<unsigned char>(prev)) &&
          !cur.empty()) {
        words.push_back(std::move(cur));
        cur.clear();
      }
      cur += static_cast<char>(std::tolower(u));
    }
    prev = ch;
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

// Replaces text[begin, end) with kRedacted; returns the index just after the inserted marker.
// The hidden value is appended to `found` when given.
size_t ReplaceRange(std::string& text, size_t begin, size_t end,
                    std::vector<std::string>* found = nullptr) {
  if (found != nullptr && end > begin) found->push_back(text.substr(begin, end - begin));
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
void RedactUrlUserinfo(std::string& text, std::vector<std::string>* found) {
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
      end = ReplaceRange(text, start + colon + 1, start + at, found);
    }
    pos = end;
  }
}

// Returns the end of a value starting at `v`: a quoted value's closing quote is excluded and the
// opening one skipped (so `begin` is adjusted); an unquoted one stops at a delimiter.
// With `to_line_end`, an unquoted value runs to the end of the line, or to `quote` (non-zero
// when the key itself sits inside a quoted string, e.g. -H 'Authorization: Bearer X').
size_t ValueEnd(const std::string& text, size_t& begin, bool to_line_end, char quote = 0) {
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
    while (i < text.size() && text[i] != '\n' && text[i] != '\r' && (quote == 0 || text[i] != quote))
      ++i;
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
void RedactKeyValues(std::string& text, std::vector<std::string>* found) {
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
    const std::string low = is_flag ? Lower(token) : std::string();  // only flags are compared
    // openssl's `-passin pass:X` / `-passout pass:X` (env:VAR and file:PATH name no secret).
    if (is_flag && boundary && (low == "-passin" || low == "-passout" || low == "--passin" ||
                                low == "--passout" || low == "-pass")) {
      size_t k = SkipBlanks(text, i);
      if (k > i && text.compare(k, 5, "pass:") == 0) {
        size_t begin = k + 5;
        size_t end = ValueEnd(text, begin, false);
        i = (end > begin && text.compare(begin, end - begin, kRedacted) != 0)
                ? ReplaceRange(text, begin, end, found)
                : std::max(i, end);
        continue;
      }
    }
    // MySQL's `-p<pass>` (any other -p... flag on a mysql line is taken as one too).
    if (is_flag && boundary && token.starts_with("-p") && !token.starts_with("--") &&
        token.size() > 2 && OnMysqlLine(text, start)) {
      size_t end = start + 2;
      while (end < text.size() && !IsSpace(text[end])) ++end;
      i = ReplaceRange(text, start + 2, end, found);
      continue;
    }
    // curl's `-u user:X`, `--user user:X`, `--user=user:X`, `--proxy-user user:X`.
    if (is_flag && boundary && (low == "-u" || low == "--user" || low == "--proxy-user")) {
      size_t k = (i < text.size() && text[i] == '=') ? i + 1 : SkipBlanks(text, i);
      if (k > i) {
        size_t begin = k;
        size_t end = ValueEnd(text, begin, false);
        size_t colon = text.find(':', begin);
        if (colon != std::string::npos && colon + 1 < end) {
          i = text.compare(colon + 1, end - colon - 1, kRedacted) != 0
                  ? ReplaceRange(text, colon + 1, end, found)
                  : end;
          continue;
        }
      }
    }
    // `Bearer X` (an HTTP Authorization header, or a token printed in output).
    if ((token == "Bearer" || token == "BEARER") && (start == 0 || !IsKeyChar(text[start - 1]))) {
      size_t k = SkipBlanks(text, i);
      if (k > i) {
        size_t end = k;
        while (end < text.size() && !IsSpace(text[end]) &&
               std::string_view(",;\"'").find(text[end]) == std::string_view::npos) {
          ++end;
        }
        if (end > k) {
          i = text.compare(k, end - k, kRedacted) != 0 ? ReplaceRange(text, k, end, found) : end;
          continue;
        }
      }
    }
    if (!IsSecretKey(token)) continue;
    size_t j = i;
    char inside_quote = 0;  // the key opens a quoted string that goes on past it
    if (j < text.size() && (text[j] == '"' || text[j] == '\'') && start > 0 &&
        text[start - 1] == text[j]) {
      ++j;
    } else if (start > 0 && (text[start - 1] == '"' || text[start - 1] == '\'')) {
      inside_quote = text[start - 1];
    }
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
    size_t end = ValueEnd(text, begin, to_line_end, inside_quote);
    if (end <= begin || std::string_view(text).substr(begin, end - begin) == kRedacted) {
      i = std::max(i, end);
      continue;
    }
    i = ReplaceRange(text, begin, end, found);
  }
}

// Stage 4: XML. The text of an element named like a secret (<Password>, <ax:KeyPassword>) or
// of one whose name/key attribute names a secret (<Property name="ConnectionPassword">,
// <parameter name="keystore.password">), up to the next '<' or the end of the line.
void RedactXmlElements(std::string& text, std::vector<std::string>* found) {
  auto is_name_char = [](char c) { return IsKeyChar(c) || c == ':'; };
  size_t pos = 0;
  while ((pos = text.find('<', pos)) != std::string::npos) {
    size_t i = pos + 1;
    if (i >= text.size() || !std::isalpha(static_cast<unsigned char>(text[i]))) {
      pos = i;  // a closing tag, a comment, a declaration, or no tag at all
      continue;
    }
    size_t name_begin = i;
    while (i < text.size() && is_name_char(text[i])) ++i;
    std::string_view tag(text.data() + name_begin, i - name_begin);
    if (size_t colon = tag.rfind(':'); colon != std::string_view::npos) tag.remove_prefix(colon + 1);
    bool secret = IsSecretKey(tag);
    // Attributes up to '>' (on this line).
    while (i < text.size() && text[i] != '>' && text[i] != '\n' && text[i] != '<') {
      if (!is_name_char(text[i])) {
        ++i;
        continue;
      }
      size_t a = i;
      while (i < text.size() && is_name_char(text[i])) ++i;
      const std::string attr = Lower(std::string_view(text).substr(a, i - a));
      size_t k = SkipBlanks(text, i);
      if (k >= text.size() || text[k] != '=') continue;
      k = SkipBlanks(text, k + 1);
      if (k >= text.size() || (text[k] != '"' && text[k] != '\'')) continue;
      const char q = text[k];
      size_t close = text.find(q, k + 1);
      if (close == std::string::npos) break;
      if ((attr == "name" || attr == "key") &&
          IsSecretKey(std::string_view(text).substr(k + 1, close - k - 1))) {
        secret = true;
      }
      i = close + 1;
    }
    if (i >= text.size() || text[i] != '>' || text[i - 1] == '/' || !secret) {
      pos = i;
      continue;
    }
    size_t begin = i + 1, end = begin;
    while (end < text.size() && text[end] != '<' && text[end] != '\n' && text[end] != '\r') ++end;
    std::string_view value = std::string_view(text).substr(begin, end - begin);
    if (value.find_first_not_of(" \t") == std::string_view::npos) {
      pos = end;
      continue;
    }
    pos = ReplaceRange(text, begin, end, found);
  }
}

}  // namespace

namespace {

// Every key IsSecretKey accepts holds one of these, ASCII case aside (each accepted word and
// "secrets" does): most keys and words of a text hold none, and are answered without splitting.
bool HoldsSecretStem(std::string_view key) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  auto stem_at = [&](size_t i, std::string_view stem) {  // key[i] already matched stem[0]
    if (key.size() - i < stem.size()) return false;
    for (size_t k = 1; k < stem.size(); ++k) {
      if (lower(key[i + k]) != stem[k]) return false;
    }
    return true;
  };
  // One switch on each character's first letter: most characters start no stem.
  for (size_t i = 0; i < key.size(); ++i) {
    switch (lower(key[i])) {
      case 'p':
        if (stem_at(i, "pass") || stem_at(i, "pwd")) return true;
        break;
      case 's':
        if (stem_at(i, "secret")) return true;
        break;
      case 't':
        if (stem_at(i, "token")) return true;
        break;
      case 'c':
        if (stem_at(i, "credential")) return true;
        break;
      case 'k':
        if (stem_at(i, "key")) return true;
        break;
      case 'a':
        if (stem_at(i, "authorization")) return true;
        break;
      default:
        break;
    }
  }
  return false;
}

}  // namespace

bool IsSecretKey(std::string_view dotted_key) {
  if (!HoldsSecretStem(dotted_key)) return false;
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
  const std::vector<std::string> words = Words(parts.back());
  if (words.empty()) return false;
  const std::string& last = words.back();
  static constexpr std::string_view kWords[] = {
      "pass",       "password",    "passwd",        "pwd",    "passphrase", "passcode",
      "secret",     "token",       "credential",    "credentials", "apikey", "authorization",
      "privatekey", "secretkey"};
  for (std::string_view w : kWords) {
    if (last == w) return true;
  }
  // One word holding the name: "connectionpassword", "clientsecret", "accesstoken", "storepass".
  static constexpr std::string_view kEndings[] = {"password", "passwd", "passphrase", "secret",
                                                  "token", "credentials", "credential",
                                                  "apikey", "privatekey", "secretkey"};
  for (std::string_view w : kEndings) {
    if (last.ends_with(w)) return true;
  }
  static constexpr std::string_view kNotPass[] = {"bypass", "compass", "surpass", "overpass",
                                                  "underpass", "trespass", "encompass"};
  if (last.ends_with("pass") &&
      std::find(std::begin(kNotPass), std::end(kNotPass), last) == std::end(kNotPass)) {
    return true;
  }
  if (words.size() >= 2 && last == "key") {
    const std::string& before = words[words.size() - 2];
    return before == "api" || before == "private" || before == "secret";
  }
  return false;
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
  RedactUrlUserinfo(out, nullptr);
  RedactKeyValues(out, nullptr);
  RedactXmlElements(out, nullptr);
  return out;
}

std::vector<std::string> SecretsInText(std::string_view text) {
  std::string out(text);
  std::vector<std::string> found;
  RedactSecretRefs(out);
  RedactUrlUserinfo(out, &found);
  RedactKeyValues(out, &found);
  RedactXmlElements(out, &found);
  return found;
}

// ---------------------------------------------------------------------------------------------
// SecretScrubber

void SecretScrubber::Add(std::string_view value) {
  while (!value.empty() && IsSpace(value.front())) value.remove_prefix(1);
  while (!value.empty() && IsSpace(value.back())) value.remove_suffix(1);
  if (value.empty() || HoldsSecretReference(value)) return;  // an alias: RedactText hides it
  MutexLock l(&mu_);
  AddOne(value);
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front()) {
    value = value.substr(1, value.size() - 2);
    AddOne(value);
  }
  if (value.size() >= 2 && value.front() == '[' && value.back() == ']') {
    AddOne(value.substr(1, value.size() - 2));  // MI's plain-text secret: "[value]"
  }
}

void SecretScrubber::AddOne(std::string_view value) {
  // Published defaults and placeholders: hiding them hides nothing and garbles text.
  static constexpr std::string_view kPublished[] = {"wso2carbon", "admin", "secret", "password",
                                                    "changeit"};
  if (value.size() < kMinLength) return;
  if (std::find(std::begin(kPublished), std::end(kPublished), value) != std::end(kPublished)) {
    return;
  }
  // A piece of the marker itself would garble every marker.
  if (std::string_view(kRedacted).find(value) != std::string_view::npos) return;
  if (std::find(values_.begin(), values_.end(), value) != values_.end()) return;
  auto at = std::find_if(values_.begin(), values_.end(),
                         [&](const std::string& v) { return v.size() < value.size(); });
  values_.insert(at, std::string(value));
}

void SecretScrubber::AddKeyValue(std::string_view key, std::string_view value) {
  if (IsSecretKey(key)) {
    Add(value);
  } else {
    AddFoundIn(value);
  }
}

void SecretScrubber::AddFoundIn(std::string_view text) {
  for (const std::string& v : SecretsInText(text)) Add(v);
}

std::string SecretScrubber::Scrub(std::string_view text) const {
  std::string out(text);
  MutexLock l(&mu_);
  for (const std::string& v : values_) {
    for (size_t pos = 0; (pos = out.find(v, pos)) != std::string::npos;) {
      out.replace(pos, v.size(), kRedacted);
      pos += std::string_view(kRedacted).size();
    }
  }
  return out;
}

bool SecretScrubber::Holds(std::string_view text) const {
  MutexLock l(&mu_);
  for (const std::string& v : values_) {
    if (text.find(v) != std::string_view::npos) return true;
  }
  return false;
}

size_t SecretScrubber::size() const {
  MutexLock l(&mu_);
  return values_.size();
}

}  // namespace mimic::common
