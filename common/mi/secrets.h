// Secrets by value: the secret values an MI home's configuration and a host plan hold, registered
// in a run's common::SecretScrubber, and the one function that scrubs an event with it. The
// agent registers its plan and both MI homes when a run starts and scrubs every event it
// journals and streams; the controller registers each host's plan (inventory vars included) and
// scrubs every event it receives before the audit, the reports and its output see it.
#ifndef MIMIC_COMMON_MI_SECRETS_H_
#define MIMIC_COMMON_MI_SECRETS_H_

#include <string>
#include <string_view>

#include "common/base/redact.h"
#include "google/protobuf/message.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::common {

// Registers the secrets of a deployment.toml text: every string under a secret key
// (IsSecretKey, the [secrets] table included) and those SecretsInText finds in any other string
// (e.g. a password in a JDBC url, or a secret key inside an inline table). Unparsable text is
// searched as plain text (SecretsInText).
void AddDeploymentTomlSecrets(std::string_view text, SecretScrubber* s);

// Registers the secrets of a .properties text: values of secret keys, or every value when
// `all_values` (cipher-text.properties, where every value is a secret).
void AddPropertiesSecrets(std::string_view text, bool all_values, SecretScrubber* s);

// Registers the secrets in `home`'s configuration: conf/deployment.toml,
// conf/security/cipher-text.properties (every value), conf/security/secret-conf.properties
// (secret keys). A file that is missing, not a regular file, or larger than 4 MiB is skipped:
// reading secrets never fails a run (the steps report what is wrong with the home).
void AddMiHomeSecrets(const std::string& home, SecretScrubber* s);

// Registers a host plan's secrets: every step parameter (AddKeyValue: a secret key's value, or
// what SecretsInText finds in it, e.g. an exec command's `-storepass X`), its params_toml (as
// deployment.toml text) and every var under a secret key (the inventory's vars).
void AddPlanSecrets(const mimic::v1::HostPlan& plan, SecretScrubber* s);

// Every text field of `m`, however deep (plan params and vars, messages, log lines, config
// values and notes), through s.Scrub. Identifiers are kept as they are: paths, sha256s, run,
// rollout, host and step names, keys, versions (a secret there would be a mistake of its own;
// changing them would break what reads them).
void ScrubEvent(google::protobuf::Message* m, const SecretScrubber& s);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_MI_SECRETS_H_
