// Absolute paths to the old MI home inside the files a migration carries to the new one
// (deployment.toml values, synapse configurations and other XML under repository/deployment,
// .properties files, registry resources). One place decides what is such a path and how it is
// rewritten; the copy steps, merge_config and copy_keystores all use it, so the planned bytes
// (check mode) are the rewritten bytes apply writes.
#ifndef MIMIC_COMMON_MI_HOME_PATHS_H_
#define MIMIC_COMMON_MI_HOME_PATHS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mimic::common {

// How a carried file is read: what a comment is and what names the value on a line.
enum class CarriedFormat { kToml, kProperties, kXml, kText };

// The format of a carried file by its name (.toml; .properties; .xml, .dbs, .xsl(t), .wsdl,
// .xsd, .dmc; .json, .yaml, .yml, .conf, .txt, .js), nullopt for a file mimic copies byte for
// byte without reading it (.car, .jar, keystores, anything else).
std::optional<CarriedFormat> CarriedFormatOf(std::string_view file_name);

struct HomePathFinding {
  int line = 0;      // 1-based
  std::string key;   // TOML dotted key, property name, XML attribute or element; "" when none
  std::string value; // the path as found (up to the next quote, space or markup character)
  bool rewritten = false;  // false: the old home's text without a path-component boundary
                           // after it (e.g. "/opt/mi-old" inside "/opt/mi-old2/x"): left
};

struct HomePathRewrite {
  std::string text;  // `text` with every path under `old_home` moved under `new_home`
  std::vector<HomePathFinding> findings;  // in text order
};

// Finds every occurrence of `old_home` (absolute, no trailing '/') in `text` that starts a
// path: at the start of a value (after a quote, '=', whitespace, markup or "file://"), not in
// the middle of a longer path. An occurrence followed by '/' or by the end of the value (a quote,
// whitespace, markup, ',', ';', end of line) is a path under, or equal to, the old home and is
// rewritten to `new_home`; one followed by another path character (a longer name such as
// "/opt/mi-old2") is reported and left. Comment lines (TOML/properties '#', '!'; XML <!-- -->)
// are neither rewritten nor reported. Pure: no I/O.
HomePathRewrite RewriteHomePaths(std::string_view text, CarriedFormat format,
                                 std::string_view old_home, std::string_view new_home);

// "FILE:LINE: KEY: path under the old MI home OLD rewritten to the target home NEW: VALUE" or
// "FILE:LINE: KEY: not a path under the old MI home OLD, left as it is (check it): VALUE".
std::string DescribeHomePathFinding(std::string_view file, const HomePathFinding& f,
                                    std::string_view old_home, std::string_view new_home);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_MI_HOME_PATHS_H_
