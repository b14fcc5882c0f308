// mimic's own WSO2 Micro Integrator home generator for tests and demos: writes an MI_HOME of
// version 1.2.0, 4.0.0 or 4.2.0 from what mimic knows of each version (common/mi/shipped_defaults),
// without WSO2's files. It is NOT a runnable MI: no Java runtime; bin/micro-integrator.sh is the
// version's real script whose second line hands every run to bin/mimic-standin.sh, a stand-in that
// imitates only what mimic observes of a server (pid file, start-up log line).
//
// A target home is a fresh install: the version's bin/micro-integrator.sh (with that hook line),
// bin/yajsw/wrapper.conf and every conf/ file it ships that MI does not regenerate at start
// (log4j2.properties, file.properties, ..., deployment.toml), its conf/carbon.xml, the shipped
// synapse-configs, updates/product.txt ("wso2mi-<version>"), empty dropins/, lib/,
// registry/{config,governance,local}/, repository/deployment/server/carbonapps/, three of the
// shipped bundles in wso2/components/plugins (synapse-core, axis2, commons-lang3 at the version's
// versions), and the shipped keystores made with openssl and keytool (wso2carbon.jks,
// client-truststore.jks, publickey.pem). Not conf/security/, the other templated conf/ files, nor
// dbscripts/.
// A source home is the same, customised the way an operator customises an old server: CApps
// (a Data Mapper CApp in the pre-4.2 form and two small ones), a custom API and a changed main
// sequence, a custom PKCS12 keystore and a partner certificate, jars in lib/ and dropins/ (with
// manifests; a dropins/ bundle with Import-Package ranges, and lib/commons-lang3-3.9.jar, an
// artifact the plugins hold in another version), a file registry resource, a customised
// conf/deployment.toml (with change-ticket comments above a table and a key, and a value naming a
// path under the home by its absolute path), a VFS proxy naming folders under the home by
// absolute paths, an empty folder repository/deployment/server/file-drop/ and updates/config.json
// with an update level (1.2.0: 36, 4.0.0: 57, 4.2.0: 12); and edits outside deployment.toml: -Xmx
// raised and a -D property added in bin/micro-integrator.sh, a logger level in
// conf/log4j2.properties, an endpoint in conf/file.properties. Options adds features a plan must
// answer for.
//
// Output is byte-identical on every run for the same options (a source home names its own
// `dest`), except the key material (wso2carbon.jks, client-truststore.jks, publickey.pem,
// custom-keystore.p12).
#ifndef MIMIC_TESTS_MI_HOME_MI_HOME_H_
#define MIMIC_TESTS_MI_HOME_MI_HOME_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mimic::mi_home {

enum class Profile { kTarget, kSource };

struct Options {
  std::string version;  // "1.2.0", "4.0.0" or "4.2.0"
  std::string dest;     // must not exist or be an empty directory (unless `force`)
  Profile profile = Profile::kTarget;
  // Source profile: [server] hostname becomes "mi-<hostname>.example.com".
  std::string hostname = "localhost";
  // Replace `dest` when it is an MI home (has updates/product.txt) made earlier.
  bool force = false;
  // Make the keystores with openssl and keytool (slow: a JVM per keystore). Without, the home has
  // no repository/resources/security files (step unit tests write their own).
  bool keystores = true;
  // Source profile, opt-in features a migration must refuse or needs more for (the default
  // source profile migrates with the plans of deploy/ and the tests as they are):
  // a dropins/ bundle importing Synapse "[2.1,3)", which MI 4.2.0 cannot resolve (preflight
  // refuses it unless the plan names it in known_unsatisfied_imports) ...
  bool unresolvable_dropin = false;
  // ... and HL7 set up with EI 7.1's class names (org.wso2.carbon.business.messaging.hl7.*) in
  // deployment.toml and a message store (the plan then needs hl7_transport with the jars).
  bool old_hl7 = false;
  // Told what is being made, when set (the CLI's -v).
  std::function<void(const std::string&)> say;
};

// Writes the MI home `options` describe. INVALID_ARGUMENT for an unknown version, a bad host
// name or a `dest` that is not empty; FAILED_PRECONDITION when openssl/keytool are missing;
// INTERNAL when a tool or a write fails (the message holds the tool's output). After a failure
// `dest` is removed again (it was absent or empty when we started): no half-made homes.
absl::Status MakeMiHome(const Options& options);

// A small real jar: META-INF/MANIFEST.MF ("Manifest-Version: 1.0", `manifest_lines` (CRLF
// lines), "Created-By: ...") and each `extra` path with its content plus a newline.
// Deterministic bytes.
absl::StatusOr<std::string> MakeJar(const std::string& manifest_lines,
                                    const std::vector<std::pair<std::string, std::string>>& extra = {});

// The versions MakeMiHome knows, oldest first.
std::vector<std::string> Versions();

// The Data Mapper CApp of the source profile (file name kDataMapperCappName): a Developer
// Studio-style CApp (artifacts.xml, <name>_1.0.0/artifact.xml, registry resources with
// registry-info.xml) whose two *_xsltStyleSheet.xml stylesheets still carry the pre-Saxon-10
// attribute common::kOldXsltPrefixes. Deterministic bytes.
inline constexpr char kDataMapperCappName[] = "1_1_3_synapse-configCompositeApplication_1.0.0.car";
absl::StatusOr<std::string> DataMapperCapp();
// The entry names of the two stylesheets in DataMapperCapp(), and the text of stylesheet `i`
// (0 or 1) as the CApp holds it.
std::vector<std::string> DataMapperStylesheetEntries();
std::string DataMapperStylesheet(int i);

}  // namespace mimic::mi_home

#endif  // MIMIC_TESTS_MI_HOME_MI_HOME_H_
