// make-mi-home VERSION DEST [--profile source|target] [--hostname NAME] [--with FEATURE]...
//              [--force] [-v]
// Writes a test/demo WSO2 Micro Integrator home (see tests/mi_home/mi_home.h).
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/match.h"
#include "tests/mi_home/mi_home.h"

namespace {

constexpr char kUsage[] =
    "usage: make-mi-home VERSION DEST [--profile source|target] [--hostname NAME]\n"
    "                    [--with FEATURE]... [--force] [-v]\n"
    "  VERSION           1.2.0, 4.0.0 or 4.2.0\n"
    "  --profile target  (default) a fresh install; source: customised like an operator's server\n"
    "  --hostname NAME   source profile: [server] hostname becomes mi-NAME.example.com\n"
    "                    (default: $HOSTNAME, else localhost)\n"
    "  --with FEATURE    source profile extras: unresolvable-dropin (a dropins/ bundle importing\n"
    "                    Synapse [2.1,3), which MI 4.2.0 cannot resolve), old-hl7 (HL7 set up\n"
    "                    with EI 7.1's org.wso2.carbon.business.messaging.hl7 class names)\n"
    "  --force           replace DEST if it is an MI home made earlier\n"
    "  -v                say what is being made\n";

int Usage() {
  std::cerr << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  mimic::mi_home::Options o;
  std::string profile = "target", hostname;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const std::string& flag, std::string* out) {
      if (a == flag) {
        if (i + 1 >= argc) return false;
        *out = argv[++i];
        return true;
      }
      *out = a.substr(flag.size() + 1);
      return true;
    };
    if (a == "--profile" || absl::StartsWith(a, "--profile=")) {
      if (!value("--profile", &profile)) return Usage();
    } else if (a == "--hostname" || absl::StartsWith(a, "--hostname=")) {
      if (!value("--hostname", &hostname)) return Usage();
    } else if (a == "--with" || absl::StartsWith(a, "--with=")) {
      std::string feature;
      if (!value("--with", &feature)) return Usage();
      if (feature == "unresolvable-dropin") {
        o.unresolvable_dropin = true;
      } else if (feature == "old-hl7") {
        o.old_hl7 = true;
      } else {
        std::cerr << "make-mi-home: --with takes unresolvable-dropin or old-hl7, not '" << feature
                  << "'\n";
        return 1;
      }
    } else if (a == "--force") {
      o.force = true;
    } else if (a == "-v" || a == "--verbose") {
      verbose = true;
    } else if (a == "-h" || a == "--help") {
      return Usage();
    } else if (absl::StartsWith(a, "-")) {
      std::cerr << "make-mi-home: unknown option " << a << "\n";
      return Usage();
    } else if (o.version.empty()) {
      o.version = a;
    } else if (o.dest.empty()) {
      o.dest = a;
    } else {
      std::cerr << "make-mi-home: unexpected argument " << a << "\n";
      return Usage();
    }
  }
  if (o.version.empty() || o.dest.empty()) return Usage();
  if (profile == "source") {
    o.profile = mimic::mi_home::Profile::kSource;
  } else if (profile != "target") {
    std::cerr << "make-mi-home: --profile must be source or target, not '" << profile << "'\n";
    return 1;
  }
  if (hostname.empty()) {
    const char* h = std::getenv("HOSTNAME");
    hostname = h != nullptr && *h != '\0' ? h : "localhost";
  }
  o.hostname = hostname;
  if (verbose)
    o.say = [](const std::string& s) { std::cout << "make-mi-home: " << s << std::endl; };
  if (absl::Status st = mimic::mi_home::MakeMiHome(o); !st.ok()) {
    std::cerr << "make-mi-home: " << st.message() << "\n";
    return 1;
  }
  return 0;
}
