#include "common/mi/osgi.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/status_macros.h"
#include "common/mi/capp.h"

namespace mimic::common {
namespace {

constexpr char kManifestEntry[] = "META-INF/MANIFEST.MF";

// Splits `s` at `sep` outside double quotes.
std::vector<std::string> SplitOutsideQuotes(absl::string_view s, char sep) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (char c : s) {
    if (c == '"') quoted = !quoted;
    if (c == sep && !quoted) {
      out.emplace_back();
    } else {
      out.back().push_back(c);
    }
  }
  return out;
}

std::string Unquote(absl::string_view v) {
  v = absl::StripAsciiWhitespace(v);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return std::string(absl::StripAsciiWhitespace(v));
}

// The table of what each MI version exports, by package family (a package and its
// sub-packages); the longest matching family wins. Versions per MI 1.2.0 / 4.0.0 / 4.2.0, from
// wso2/micro-integrator pom.xml at the tags v1.2.0 (9a95a26), v4.0.0 (50ce866), v4.2.0
// (8d9ceac), as MI-FACTS.md §1 lists them:
//   synapse.version        2.1.7-wso2v182 / 2.1.7-wso2v227 / 4.0.0-wso2v20 (4.2.0's pom also
//                          sets imp.pkg.version.synapse = [4.0.0, 4.0.1));
//   axis2.wso2.version     1.6.1-wso2v54 / 1.6.1-wso2v63 / 1.6.1-wso2v85;
//   carbon.kernel.version  4.5.3 / 4.6.2 / 4.8.1 (org.wso2.carbon.utils and .server are the
//                          kernel bundles MI's pom manages at that version);
//   the MI's own bundles export org.wso2.micro.integrator.* at ${project.version}, the MI
//   version (e.g. components/business-adaptors/org.wso2.micro.integrator.business.messaging.hl7/
//   pom.xml@v4.2.0, Export-Package ...;version="${project.version}").
// maven-bundle-plugin exports a bundle's packages at its Maven version made an OSGi one
// ("2.1.7-wso2v182" -> 2.1.7.wso2v182) (inferred). Packages of other families are not judged.
struct Family {
  const char* prefix;
  const char* name;
  const char* versions[3];  // 1.2.0, 4.0.0, 4.2.0 (Maven form)
};
constexpr Family kFamilies[] = {
    {"org.apache.synapse", "Synapse", {"2.1.7-wso2v182", "2.1.7-wso2v227", "4.0.0-wso2v20"}},
    {"org.apache.axis2", "Axis2", {"1.6.1-wso2v54", "1.6.1-wso2v63", "1.6.1-wso2v85"}},
    {"org.wso2.micro.integrator", "MI", {"1.2.0", "4.0.0", "4.2.0"}},
    {"org.wso2.carbon.utils", "Carbon kernel", {"4.5.3", "4.6.2", "4.8.1"}},
    {"org.wso2.carbon.server", "Carbon kernel", {"4.5.3", "4.6.2", "4.8.1"}},
};

// "2.1.7-wso2v182" -> "2.1.7.wso2v182": a Maven qualifier after '-' becomes the OSGi one.
std::string MavenToOsgi(std::string v) {
  const size_t dash = v.find('-');
  if (dash != std::string::npos) v[dash] = '.';
  return v;
}

}  // namespace

absl::StatusOr<Manifest> ParseManifest(absl::string_view text, const std::string& label) {
  Manifest out;
  std::string* last = nullptr;
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find_first_of("\r\n", pos);
    if (end == absl::string_view::npos) end = text.size();
    absl::string_view line = text.substr(pos, end - pos);
    pos = end;
    if (pos < text.size()) pos += text.compare(pos, 2, "\r\n") == 0 ? 2 : 1;
    ++line_no;
    if (line.empty()) break;  // end of the main section
    if (line[0] == ' ') {
      if (last == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(label, ":", line_no, ": continuation line before any header"));
      }
      absl::StrAppend(last, line.substr(1));
      continue;
    }
    const size_t colon = line.find(": ");
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ":", line_no, ": not a \"Name: value\" header"));
    }
    std::string& value = out[std::string(line.substr(0, colon))];
    value = std::string(line.substr(colon + 2));
    last = &value;
  }
  return out;
}

absl::StatusOr<Manifest> ReadJarManifest(const std::string& path) {
  ZipLimits limits;
  limits.max_total_bytes = 4ull << 20;  // a manifest is a few KiB; nothing else is inflated
  limits.want_content = [](const ZipEntry& e) { return e.name == kManifestEntry; };
  ASSIGN_OR_RETURN(std::vector<ZipEntry> entries, ReadZip(path, limits));
  for (const ZipEntry& e : entries) {
    if (e.name == kManifestEntry) {
      return ParseManifest(e.data, absl::StrCat(path, "!", kManifestEntry));
    }
  }
  return absl::NotFoundError(absl::StrCat(path, " has no ", kManifestEntry));
}

std::string OsgiVersion::ToString() const {
  std::string s = absl::StrCat(major, ".", minor, ".", micro);
  if (!qualifier.empty()) absl::StrAppend(&s, ".", qualifier);
  return s;
}

absl::StatusOr<OsgiVersion> ParseOsgiVersion(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits('.', 3));
  OsgiVersion v;
  int64_t* nums[] = {&v.major, &v.minor, &v.micro};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i == 3) {
      v.qualifier = std::string(parts[3]);
      for (char c : v.qualifier) {
        if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
          return absl::InvalidArgumentError(
              absl::StrCat("\"", text, "\" is not an OSGi version (bad qualifier)"));
        }
      }
      continue;
    }
    if (parts[i].empty() ||
        !std::all_of(parts[i].begin(), parts[i].end(),
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
        !absl::SimpleAtoi(parts[i], nums[i])) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an OSGi version"));
    }
  }
  return v;
}

int CompareOsgiVersions(const OsgiVersion& a, const OsgiVersion& b) {
  const auto ka = std::tie(a.major, a.minor, a.micro);
  const auto kb = std::tie(b.major, b.minor, b.micro);
  if (ka != kb) return ka < kb ? -1 : 1;
  return a.qualifier.compare(b.qualifier) < 0 ? -1 : a.qualifier == b.qualifier ? 0 : 1;
}

bool OsgiVersionRange::Contains(const OsgiVersion& v) const {
  const int lo = CompareOsgiVersions(v, floor);
  if (lo < 0 || (lo == 0 && !floor_inclusive)) return false;
  if (!ceiling) return true;
  const int hi = CompareOsgiVersions(v, *ceiling);
  return hi < 0 || (hi == 0 && ceiling_inclusive);
}

absl::StatusOr<OsgiVersionRange> ParseOsgiVersionRange(absl::string_view text) {
  const std::string t = Unquote(text);
  OsgiVersionRange r;
  if (t.empty()) return r;  // any version
  if (t.front() != '[' && t.front() != '(') {
    ASSIGN_OR_RETURN(r.floor, ParseOsgiVersion(t));
    return r;
  }
  const char close = t.back();
  const size_t comma = t.find(',');
  if ((close != ']' && close != ')') || comma == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("\"", t, "\" is not an OSGi version range"));
  }
  r.floor_inclusive = t.front() == '[';
  r.ceiling_inclusive = close == ']';
  ASSIGN_OR_RETURN(r.floor, ParseOsgiVersion(absl::string_view(t).substr(1, comma - 1)));
  ASSIGN_OR_RETURN(r.ceiling,
                   ParseOsgiVersion(absl::string_view(t).substr(comma + 1, t.size() - comma - 2)));
  return r;
}

absl::StatusOr<std::vector<PackageImport>> ParseImportPackage(absl::string_view header,
                                                              const std::string& label) {
  std::vector<PackageImport> out;
  for (const std::string& clause : SplitOutsideQuotes(header, ',')) {
    if (absl::StripAsciiWhitespace(clause).empty()) continue;
    std::vector<std::string> packages;
    std::string version;
    bool optional = false;
    for (const std::string& part : SplitOutsideQuotes(clause, ';')) {
      const std::string p(absl::StripAsciiWhitespace(part));
      const size_t directive = p.find(":=");
      const size_t eq = p.find('=');
      if (directive != std::string::npos && directive < eq) {
        const std::string name(absl::StripAsciiWhitespace(p.substr(0, directive)));
        if (name == "resolution") optional = Unquote(p.substr(directive + 2)) == "optional";
      } else if (eq != std::string::npos) {
        const std::string name(absl::StripAsciiWhitespace(p.substr(0, eq)));
        if (name == "version") version = Unquote(p.substr(eq + 1));
      } else if (!p.empty()) {
        packages.push_back(p);
      }
    }
    if (packages.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": Import-Package: clause \"",
                       absl::StripAsciiWhitespace(clause), "\" names no package"));
    }
    absl::StatusOr<OsgiVersionRange> range = ParseOsgiVersionRange(version);
    if (!range.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": Import-Package: ", packages[0],
                                                     ": ", range.status().message()));
    }
    for (std::string& pkg : packages) {
      out.push_back({std::move(pkg), version, *range, optional});
    }
  }
  return out;
}

std::optional<ExportedPackage> MiExportedPackage(const std::string& mi_version,
                                                 const std::string& package) {
  int index = mi_version == "1.2.0" ? 0 : mi_version == "4.0.0" ? 1 : mi_version == "4.2.0" ? 2 : -1;
  if (index < 0) return std::nullopt;
  const Family* best = nullptr;
  for (const Family& f : kFamilies) {
    const absl::string_view prefix = f.prefix;
    const bool covers = package == prefix || (absl::StartsWith(package, prefix) &&
                                              package.size() > prefix.size() &&
                                              package[prefix.size()] == '.');
    if (covers && (best == nullptr || prefix.size() > absl::string_view(best->prefix).size())) {
      best = &f;
    }
  }
  if (best == nullptr) return std::nullopt;
  absl::StatusOr<OsgiVersion> v = ParseOsgiVersion(MavenToOsgi(best->versions[index]));
  if (!v.ok()) return std::nullopt;
  return ExportedPackage{best->prefix, absl::StrCat(best->name, " ", best->versions[index]), *v};
}

JarName ParseJarFileName(const std::string& file_name) {
  std::string stem = file_name;
  if (absl::EndsWithIgnoreCase(stem, ".jar")) stem.resize(stem.size() - 4);
  for (size_t i = 0; i + 1 < stem.size(); ++i) {
    if ((stem[i] == '-' || stem[i] == '_') && absl::ascii_isdigit(stem[i + 1])) {
      return {stem.substr(0, i), stem.substr(i + 1)};
    }
  }
  return {stem, ""};
}

bool SameJarVersion(const std::string& a, const std::string& b) {
  absl::StatusOr<OsgiVersion> va = ParseOsgiVersion(MavenToOsgi(a));
  absl::StatusOr<OsgiVersion> vb = ParseOsgiVersion(MavenToOsgi(b));
  if (va.ok() && vb.ok()) return CompareOsgiVersions(*va, *vb) == 0;
  return a == b;
}

}  // namespace mimic::common
