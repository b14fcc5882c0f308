// Secrets stay secret: the one place that decides what is a secret and hides it, before
// anything reaches a log, a diff, the journal, the audit or a report.
#ifndef MIMIC_COMMON_BASE_REDACT_H_
#define MIMIC_COMMON_BASE_REDACT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/base/mutex.h"

namespace mimic::common {

inline constexpr char kRedacted[] = "<redacted>";

// True for keys whose values are secrets, decided by pattern on the key's last dotted component
// (quotes, an array index and leading dashes dropped), case-insensitive, split into words at
// `_`, `-`, `.` and camelCase boundaries: the last word is pass, password, passwd, pwd,
// passphrase, secret, token, credential(s), apikey, authorization (or ends in one of the long
// ones, as in "connectionpassword", "storepass", "clientsecret", "accesstoken"), or the last two
// words are "api key", "private key", "secret key". Or the key lies under the [secrets] table.
// So `keystore_pass`, `ssl_passphrase`, `client_secret`, `api_key`, `db_pwd`, `-storepass`,
// `parameter."java.naming.security.credentials"` are secret; settings ABOUT secrets are not:
// `password_expiry_days`, `password_java_regex`, `token_endpoint`, `passthrough`, `bypass`.
// `dotted_key` is the full dotted path, e.g. "keystore.primary.key_password".
bool IsSecretKey(std::string_view dotted_key);

// True when a value holds a secret reference: "$secret{...}" anywhere in it.
bool HoldsSecretReference(std::string_view value);

// The value to show for key=value: kRedacted when IsSecretKey(key) or
// HoldsSecretReference(value), else the value unchanged.
std::string RedactValue(std::string_view dotted_key, std::string_view value);

// Redacts free text (a log line, a command's output): values after secret-looking keys in
// `key = value`, `key: value`, `key=value`, `--password value`, `-storepass value` (any flag
// IsSecretKey takes), MySQL's `-p<pass>`, `-passin pass:X` / `-passout pass:X` (openssl),
// `-u user:X` / `--user user:X` (curl), `Bearer X`, URL userinfo passwords
// (scheme://user:pass@host), every "$secret{...}", and in XML the text of an element named
// like a secret (<Password>X</Password>) or naming one (<Property name="ConnectionPassword">X<),
// up to the next '<' or the line's end.
std::string RedactText(std::string_view text);

// The secret values RedactText(text) hides (not the "$secret{...}" aliases): e.g. "X" for
// "keytool -storepass X". Used to register the secrets a command line or a config text holds.
std::vector<std::string> SecretsInText(std::string_view text);

// The secret values of one run (or one rollout): every value registered is replaced by
// kRedacted wherever it appears, whatever key or text holds it. Values shorter than
// kMinLength are not registered (scrubbing "a" would garble everything), nor are published
// defaults and placeholders ("wso2carbon", "admin", "secret", "password", "changeit": they
// name files, users and tables, and hiding them hides nothing).
// Thread-safe.
class SecretScrubber {
 public:
  static constexpr size_t kMinLength = 4;

  // Registers `value`; also its content without one pair of surrounding quotes and without
  // the brackets of MI's plain-text secret form "[value]".
  void Add(std::string_view value);
  // Registers `value` when IsSecretKey(key), else the secrets SecretsInText finds in it.
  void AddKeyValue(std::string_view key, std::string_view value);
  // Registers every value SecretsInText(text) finds (a command line, a TOML or properties text).
  void AddFoundIn(std::string_view text);

  // `text` with every registered value replaced by kRedacted (longest first).
  std::string Scrub(std::string_view text) const;
  // True when `text` holds a registered value (Scrub would change it).
  bool Holds(std::string_view text) const;
  size_t size() const;

 private:
  void AddOne(std::string_view value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  mutable Mutex mu_;
  std::vector<std::string> values_ ABSL_GUARDED_BY(mu_);  // unique, longest first
};

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_REDACT_H_
