// Java KeyStore (JKS, version 2) files as MI ships them (client-truststore.jks, wso2carbon.jks):
// read, merged and written natively so the result is byte-for-byte the same on every run (a
// check run and its apply write the same sha256; keytool would stamp each import with the time).
// The format is sun.security.provider.JavaKeyStore's: magic 0xFEEDFEED, version, count, entries
// (1 = private key, 2 = trusted certificate; alias, creation time in ms, DER certificates), then
// SHA-1(password as UTF-16BE + "Mighty Aphrodite" + everything before). Private key entries are
// carried as opaque bytes (they are encrypted with their own key password).
// Passwords are only used for the integrity digest; they never appear in a message.
#ifndef MIMIC_COMMON_MI_JKS_H_
#define MIMIC_COMMON_MI_JKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mimic::common {

struct JksEntry {
  int tag = 0;             // 1 private key, 2 trusted certificate
  std::string alias;       // as stored (keytool lower-cases aliases)
  int64_t date_ms = 0;
  std::string cert_der;    // tag 2: the certificate; tag 1: the first certificate of the chain
  std::string body;        // the entry's bytes after its tag, as read (written back unchanged)
};

struct Jks {
  std::vector<JksEntry> entries;
};

// True when `bytes` start with the JKS magic.
bool IsJks(const std::string& bytes);

// Parses `bytes` (`label` names the file in errors) and checks the integrity digest against
// `password`. INVALID_ARGUMENT for a file that is not a JKS v2 or is truncated; PERMISSION_DENIED
// "LABEL: keystore password is wrong or the file was changed" when the digest does not match.
absl::StatusOr<Jks> ParseJks(const std::string& bytes, const std::string& label,
                             const std::string& password);

// The JKS bytes of `jks` sealed with `password`.
std::string WriteJks(const Jks& jks, const std::string& password);

// A trusted certificate entry for `cert_der` (the body is built).
JksEntry TrustedCertEntry(const std::string& alias, int64_t date_ms, const std::string& cert_der);

// "SHA256:AB:CD:..." of a DER certificate, as keytool prints it.
std::string CertFingerprint(const std::string& cert_der);

// The target's entries plus every trusted certificate of `source` the target does not hold
// (compared by certificate bytes, not alias): under its own alias when free, else
// "<alias>-source" ("-source-2", ...). Private key entries of the source are not carried (a
// truststore holds certificates); they are listed in `ignored`.
struct TruststoreMerge {
  Jks merged;
  std::vector<std::string> kept;     // target aliases
  std::vector<std::string> added;    // "alias (SHA256:...)" or "alias (was 'x' in the source)"
  std::vector<std::string> ignored;  // source private key aliases
};
TruststoreMerge MergeTruststores(const Jks& source, const Jks& target);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_MI_JKS_H_
