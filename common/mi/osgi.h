// What mimic reads of the operator's jars (dropins/ bundles, lib/ jars): the JAR manifest, OSGi
// versions, version ranges and Import-Package headers (OSGi Core R6 §3.2.5, §3.2.6, §3.6.4), the
// packages each MI version exports to them, and a jar's artifact and version.
#ifndef MIMIC_COMMON_MI_OSGI_H_
#define MIMIC_COMMON_MI_OSGI_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mimic::common {

// The main section of a manifest: "Name: value" headers up to the first blank line, a line that
// starts with one space continuing the one before (lines are wrapped at 72 bytes). CRLF, LF or
// CR line ends. INVALID_ARGUMENT "LABEL:LINE: ..." for a line that is not a header.
using Manifest = std::map<std::string, std::string>;
absl::StatusOr<Manifest> ParseManifest(absl::string_view text, const std::string& label);

// META-INF/MANIFEST.MF of the jar at `path` (only that entry is inflated; the archive is checked
// as capp.h's ReadZip checks it). NOT_FOUND when the jar has no manifest.
absl::StatusOr<Manifest> ReadJarManifest(const std::string& path);

// major.minor.micro.qualifier; missing numbers are 0, a missing qualifier "". The qualifier
// compares as text, after the numbers.
struct OsgiVersion {
  int64_t major = 0, minor = 0, micro = 0;
  std::string qualifier;
  std::string ToString() const;
};
absl::StatusOr<OsgiVersion> ParseOsgiVersion(absl::string_view text);
int CompareOsgiVersions(const OsgiVersion& a, const OsgiVersion& b);  // <0, 0, >0

// "[1.0,2.0)", "(1,2]", or a bare version "1.0" meaning "at least 1.0".
struct OsgiVersionRange {
  OsgiVersion floor;
  bool floor_inclusive = true;
  std::optional<OsgiVersion> ceiling;  // none: no upper bound
  bool ceiling_inclusive = false;
  bool Contains(const OsgiVersion& v) const;
};
absl::StatusOr<OsgiVersionRange> ParseOsgiVersionRange(absl::string_view text);

// One package of an Import-Package header. `version` is the range as written ("" = any
// version, which every export satisfies); `optional` is resolution:=optional.
struct PackageImport {
  std::string package;
  std::string version;
  OsgiVersionRange range;
  bool optional = false;
};
// Parses an Import-Package value: clauses split at commas outside quotes, each
// "pkg[;pkg...][;version=...][;resolution:=optional][;other...]" with quoted or bare values.
// INVALID_ARGUMENT "LABEL: Import-Package: ..." for an unreadable clause or version range.
absl::StatusOr<std::vector<PackageImport>> ParseImportPackage(absl::string_view header,
                                                              const std::string& label);

// The version at which MI `mi_version` exports `package`, from mimic's table of package
// families (Synapse, Axis2, the MI's own packages, Carbon kernel utilities; sources in
// osgi.cc), or nullopt when the package is not in the table (mimic cannot judge it).
struct ExportedPackage {
  std::string family;  // "org.apache.synapse"
  std::string what;    // "Synapse 4.0.0-wso2v20"
  OsgiVersion version;
};
std::optional<ExportedPackage> MiExportedPackage(const std::string& mi_version,
                                                 const std::string& package);

// A jar's artifact and version as its file name gives them: the version starts at the first
// '-' or '_' followed by a digit ("commons-lang3-3.9.jar" -> commons-lang3 3.9,
// "h2_1.4.199.wso2v1.jar" -> h2 1.4.199.wso2v1, "ojdbc8.jar" -> ojdbc8 "").
struct JarName {
  std::string artifact;
  std::string version;
};
JarName ParseJarFileName(const std::string& file_name);

// True when two jar versions name the same release: equal as OSGi versions once a Maven '-'
// before the qualifier is read as '.' ("1.0" = "1.0.0", "2.1.7-wso2v1" = "2.1.7.wso2v1"),
// else equal as text.
bool SameJarVersion(const std::string& a, const std::string& b);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_MI_OSGI_H_
