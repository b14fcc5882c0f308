// Secrets stay secret: the one place that decides what is a secret and hides it, before
// anything reaches a log, a diff, the journal, the audit or a report.
#ifndef MIMIC_COMMON_BASE_REDACT_H_
#define MIMIC_COMMON_BASE_REDACT_H_

#include <string>
#include <string_view>

namespace mimic::common {

inline constexpr char kRedacted[] = "<redacted>";

// True for keys whose values are secrets: the last dotted component is "password" or ends in
// "_password"/"password" (key_password, connection_password, user.password, ...), or is
// "secret", "secret_key", "token", "private_key"; or the key lies under the [secrets] table.
// `dotted_key` is the full dotted path, e.g. "keystore.primary.key_password".
bool IsSecretKey(std::string_view dotted_key);

// True when a value holds a secret reference: "$secret{...}" anywhere in it.
bool HoldsSecretReference(std::string_view value);

// The value to show for key=value: kRedacted when IsSecretKey(key) or
// HoldsSecretReference(value), else the value unchanged.
std::string RedactValue(std::string_view dotted_key, std::string_view value);

// Redacts free text (a log line, a command's output): values after secret-looking keys in
// `key = value`, `key: value`, `key=value`, `--password value`, `-p<pass>` URL userinfo
// passwords (scheme://user:pass@host), and every "$secret{...}".
std::string RedactText(std::string_view text);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_REDACT_H_
