#include "common/mi/home_paths.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"

namespace mimic::common {
namespace {

// (This Abseil's absl::string_view is not std::string_view: these helpers take the std one.)
std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Characters that continue a path component or a path ("/opt/mi-1.2.0_b/x~").
bool IsPathChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
         c == '~' || c == '/' || c == '+' || c == '@' || c == '$' || c == '{' || c == '}' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// The end of the value starting at `p`: the first quote, whitespace or markup character.
size_t ValueEnd(std::string_view text, size_t p) {
  size_t e = p;
  while (e < text.size() && std::string_view("\"'<>\t\r\n ,;)]").find(text[e]) ==
                                std::string_view::npos) {
    ++e;
  }
  return e;
}

// Marks the bytes of `text` that are comments in `format`.
std::vector<bool> CommentMask(std::string_view text, CarriedFormat format) {
  std::vector<bool> mask(text.size(), false);
  if (format == CarriedFormat::kXml) {
    size_t p = 0;
    while ((p = text.find("<!--", p)) != std::string_view::npos) {
      size_t e = text.find("-->", p + 4);
      e = e == std::string_view::npos ? text.size() : e + 3;
      std::fill(mask.begin() + p, mask.begin() + e, true);
      p = e;
    }
    return mask;
  }
  if (format != CarriedFormat::kToml && format != CarriedFormat::kProperties) return mask;
  size_t b = 0;
  while (b < text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    std::string_view line = Trim(text.substr(b, e - b));
    if (!line.empty() &&
        (line[0] == '#' || (format == CarriedFormat::kProperties && line[0] == '!'))) {
      std::fill(mask.begin() + b, mask.begin() + e, true);
    }
    b = e + 1;
  }
  return mask;
}

// The XML attribute (name="...<p>") or else the innermost element before `p`.
std::string XmlKey(std::string_view text, size_t line_start, size_t p) {
  size_t q = text.find_last_of("\"'", p == 0 ? 0 : p - 1);
  if (q != std::string_view::npos && q >= line_start && q < p) {
    size_t e = q;
    while (e > line_start && text[e - 1] == ' ') --e;
    if (e > line_start && text[e - 1] == '=') {
      size_t n_end = e - 1;
      while (n_end > line_start && text[n_end - 1] == ' ') --n_end;
      size_t n = n_end;
      while (n > line_start && !std::isspace(static_cast<unsigned char>(text[n - 1])) &&
             text[n - 1] != '<') {
        --n;
      }
      if (n < n_end) return std::string(text.substr(n, n_end - n));
    }
  }
  size_t lt = text.rfind('<', p);
  while (lt != std::string_view::npos) {
    size_t n = lt + 1;
    if (n < text.size() && std::isalpha(static_cast<unsigned char>(text[n]))) {
      size_t e = n;
      while (e < text.size() && !std::isspace(static_cast<unsigned char>(text[e])) &&
             text[e] != '>' && text[e] != '/') {
        ++e;
      }
      return std::string(text.substr(n, e - n));
    }
    if (lt == 0) break;
    lt = text.rfind('<', lt - 1);
  }
  return "";
}

}  // namespace

std::optional<CarriedFormat> CarriedFormatOf(std::string_view file_name) {
  const size_t dot = file_name.rfind('.');
  if (dot == std::string_view::npos || file_name.find('/', dot) != std::string_view::npos) {
    return std::nullopt;
  }
  std::string ext(file_name.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "toml") return CarriedFormat::kToml;
  if (ext == "properties") return CarriedFormat::kProperties;
  for (const char* x : {"xml", "dbs", "xsl", "xslt", "wsdl", "xsd", "dmc"}) {
    if (ext == x) return CarriedFormat::kXml;
  }
  for (const char* x : {"json", "yaml", "yml", "conf", "txt", "js"}) {
    if (ext == x) return CarriedFormat::kText;
  }
  return std::nullopt;
}

HomePathRewrite RewriteHomePaths(std::string_view text, CarriedFormat format,
                                 std::string_view old_home, std::string_view new_home) {
  HomePathRewrite out;
  if (old_home.empty() || old_home.front() != '/' ||
      text.find(old_home) == std::string_view::npos) {
    out.text = std::string(text);
    return out;
  }
  const std::vector<bool> comment = CommentMask(text, format);
  std::string table, last_key;  // TOML's current [table]; the key of the line a value began on
  size_t copied = 0;
  int line_no = 1;
  size_t b = 0;
  while (b <= text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    const std::string_view line = text.substr(b, e - b);
    const std::string_view trimmed = Trim(line);
    if (format == CarriedFormat::kToml && !trimmed.empty() && trimmed[0] == '[') {
      std::string_view inner = trimmed.substr(0, trimmed.find(']'));
      const size_t brackets = inner.size() > 1 && inner[1] == '[' ? 2 : 1;
      inner.remove_prefix(std::min(inner.size(), brackets));
      table = std::string(Trim(inner));
      last_key.clear();
    } else if (format == CarriedFormat::kToml || format == CarriedFormat::kProperties) {
      const size_t sep = format == CarriedFormat::kToml ? line.find('=')
                                                        : line.find_first_of("=:");
      if (sep != std::string_view::npos && !trimmed.empty() && trimmed[0] != '#' &&
          trimmed[0] != '"' && trimmed[0] != ']') {
        last_key = std::string(Trim(line.substr(0, sep)));
      }
    }
    for (size_t p = text.find(old_home, b); p != std::string_view::npos && p < e;
         p = text.find(old_home, p + 1)) {
      if (comment[p]) continue;
      const bool after_file_scheme =
          p >= 3 && text[p - 1] == '/' && text[p - 2] == '/' && text[p - 3] == ':';
      if (p > 0 && IsPathChar(text[p - 1]) && !after_file_scheme) continue;  // inside a path
      const size_t q = p + old_home.size();
      HomePathFinding f;
      f.line = line_no;
      f.value = std::string(text.substr(p, ValueEnd(text, p) - p));
      f.rewritten = q >= text.size() || text[q] == '/' || !IsPathChar(text[q]);
      switch (format) {
        case CarriedFormat::kToml:
          f.key = table.empty() || last_key.empty() ? last_key : table + "." + last_key;
          break;
        case CarriedFormat::kProperties:
          f.key = last_key;
          break;
        case CarriedFormat::kXml:
          f.key = XmlKey(text, b, p);
          break;
        case CarriedFormat::kText:
          break;
      }
      if (f.rewritten) {
        out.text.append(text.substr(copied, p - copied));
        out.text.append(new_home);
        copied = q;
      }
      out.findings.push_back(std::move(f));
    }
    b = e + 1;
    ++line_no;
  }
  out.text.append(text.substr(copied));
  return out;
}

std::string DescribeHomePathFinding(std::string_view file, const HomePathFinding& f,
                                    std::string_view old_home, std::string_view new_home) {
  const std::string old_s(old_home), new_s(new_home);
  std::string where = absl::StrCat(std::string(file), ":", f.line, ": ", f.key,
                                   f.key.empty() ? "" : ": ");
  if (f.rewritten) {
    return absl::StrCat(where, "path under the old MI home ", old_s,
                        " rewritten to the target home ", new_s, ": ", f.value);
  }
  return absl::StrCat(where, "not a path under the old MI home ", old_s,
                      ", left as it is (check it): ", f.value);
}

}  // namespace mimic::common
