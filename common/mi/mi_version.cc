#include "common/mi/mi_version.h"

#include <signal.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/fs.h"
#include "common/base/subprocess.h"

namespace mimic::common {
namespace {

// The versions mimic knows and the single hops between them, oldest first.
constexpr const char* kKnownVersions[] = {"1.2.0", "4.0.0", "4.2.0"};
constexpr const char* kSupportedPaths =
    "1.2.0->4.0.0 (EI 7.1.0 -> API-M 4.0.0), 4.0.0->4.2.0 (API-M 4.0.0 -> API-M 4.2.0) and "
    "1.2.0->4.2.0 (both, chained)";

// Reads a small text file; "" when it cannot be read.
std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool IsDottedVersion(const std::string& s) {
  static const std::regex kRe(R"(\d+\.\d+\.\d+)");
  return std::regex_match(s, kRe);
}

// "wso2mi-4.2.0" -> "4.2.0"; "" when `s` is not of that form.
std::string VersionFromProductName(std::string s) {
  static const std::regex kRe(R"(^\s*wso2mi-(\d+\.\d+\.\d+)\s*$)");
  std::smatch m;
  if (std::regex_match(s, m, kRe)) return m[1];
  return "";
}

std::string FromCarbonXml(const std::string& text) {
  // carbon.xml holds several elements; the product's <Version> is a direct child of <Server>.
  // The template placeholder "@product.version@" means the file was never filtered: no signal.
  static const std::regex kRe(R"(<Version>\s*([^<]*?)\s*</Version>)");
  for (std::sregex_iterator it(text.begin(), text.end(), kRe), end; it != end; ++it) {
    std::string v = (*it)[1];
    if (IsDottedVersion(v)) return v;
  }
  return "";
}

// Rough hints from deployment.toml (MI-FACTS §1.2 item 4). Table headers count even when
// commented out, because the shipped file carries each version's catalogue as comments.
std::string FromDeploymentTomlHints(const std::string& text) {
  bool v42 = false, v40 = false, v12 = false;
  static const std::regex kBareKeystore(R"re(^\s*file_name\s*=\s*"[^"/]+\.(jks|p12|pfx)"\s*$)re");
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    std::string line(absl::StripAsciiWhitespace(raw));
    bool commented = false;
    while (!line.empty() && line[0] == '#') {
      commented = true;
      line = std::string(absl::StripLeadingAsciiWhitespace(line.substr(1)));
    }
    if (line.rfind("[opentelemetry]", 0) == 0 || line.rfind("[dashboard_config]", 0) == 0 ||
        line.rfind("[[transport.phase_order]]", 0) == 0) {
      v42 = true;
    } else if (line.rfind("[[service_catalog]]", 0) == 0) {
      v40 = true;
    } else if (!commented && line.rfind("[keystore.tls]", 0) == 0) {
      v12 = true;
    } else if (!commented && std::regex_match(line, kBareKeystore)) {
      v12 = true;
    }
  }
  if (v42) return "4.2.0";
  if (v40) return "4.0.0";
  if (v12) return "1.2.0";
  return "";
}

// {major, minor, patch}; {-1,...} when not a dotted version.
std::vector<int> VersionParts(const std::string& v) {
  if (!IsDottedVersion(v)) return {-1, -1, -1};
  std::vector<int> out;
  for (absl::string_view p : absl::StrSplit(v, '.'))
    out.push_back(std::atoi(std::string(p).c_str()));
  return out;
}

int KnownIndex(const std::string& v) {
  for (size_t i = 0; i < std::size(kKnownVersions); ++i) {
    if (v == kKnownVersions[i]) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

absl::StatusOr<MiVersion> DetectMiVersion(const std::string& home) {
  if (!IsDirectory(home)) {
    return absl::NotFoundError(absl::StrCat(home, ": no such directory"));
  }
  const std::string conf = JoinPath(home, "conf");
  const std::string updates = JoinPath(home, "updates");
  if (!IsDirectory(conf) && !IsDirectory(updates)) {
    return absl::NotFoundError(
        absl::StrCat(home, " is not a Micro Integrator home (it has neither conf/ nor updates/)"));
  }
  if (std::string v = VersionFromProductName(Slurp(JoinPath(updates, "product.txt"))); !v.empty()) {
    return MiVersion{v, "updates/product.txt"};
  }
  if (std::string v = FromCarbonXml(Slurp(JoinPath(conf, "carbon.xml"))); !v.empty()) {
    return MiVersion{v, "conf/carbon.xml"};
  }
  std::string trimmed = home;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const std::string base = Basename(trimmed);
  if (std::string v = VersionFromProductName(base); !v.empty()) {
    return MiVersion{v, "directory name"};
  }
  // netty.properties exists only in 4.2.0: exact, unlike the deployment.toml hints.
  if (IsRegularFile(JoinPath(conf, "netty.properties"))) {
    return MiVersion{"4.2.0", "conf/netty.properties"};
  }
  if (std::string v = FromDeploymentTomlHints(Slurp(JoinPath(conf, "deployment.toml")));
      !v.empty()) {
    return MiVersion{v, "conf/deployment.toml hints"};
  }
  return absl::FailedPreconditionError(
      absl::StrCat(home,
                   " looks like a Micro Integrator home but its version could not be detected "
                   "(no updates/product.txt, no <Version> in conf/carbon.xml, directory not named "
                   "wso2mi-<version>, no version hints in conf/deployment.toml)"));
}

absl::StatusOr<std::vector<std::string>> MigrationChain(const std::string& from,
                                                        const std::string& to) {
  const int a = KnownIndex(from), b = KnownIndex(to);
  if (a < 0 || b < 0) {
    const std::string& unknown = a < 0 ? from : to;
    return absl::InvalidArgumentError(absl::StrCat("Micro Integrator version \"", unknown,
                                                   "\" is not supported (", from, "->", to,
                                                   "); supported paths: ", kSupportedPaths));
  }
  if (a == b) {
    return absl::InvalidArgumentError(
        absl::StrCat("source and target are both Micro Integrator ", from,
                     "; nothing to migrate (supported paths: ", kSupportedPaths, ")"));
  }
  if (a > b || VersionParts(from) > VersionParts(to)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "downgrade from ", from, " to ", to, " is refused; supported paths: ", kSupportedPaths));
  }
  std::vector<std::string> chain;
  for (int i = a; i < b; ++i) {
    chain.push_back(absl::StrCat(kKnownVersions[i], "->", kKnownVersions[i + 1]));
  }
  return chain;
}

bool PidFileAlive(const std::string& pid_file) {
  std::string text(absl::StripAsciiWhitespace(Slurp(pid_file)));
  if (text.empty()) return false;
  char* end = nullptr;
  long pid = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || *end != '\0' || pid <= 0 || pid > INT32_MAX) return false;
  return ProcessAlive(static_cast<pid_t>(pid));
}

std::string DetectUpdateLevel(const std::string& home) {
  absl::StatusOr<std::string> json = ReadFile(JoinPath(home, "updates/config.json"));
  if (!json.ok() || json->size() > (1 << 20)) return "";
  static const std::regex kRe(R"re("update-level"\s*:\s*"?([0-9A-Za-z._-]+))re");
  std::smatch m;
  if (!std::regex_search(*json, m, kRe)) return "";
  return m[1].str();
}

}  // namespace mimic::common
