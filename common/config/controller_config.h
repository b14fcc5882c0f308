// The controller's own settings file, found the way Ansible finds ansible.cfg, so `mimic`
// commands work outside the inventory's folder:
//   1. $MIMIC_CONFIG (a file that must exist)
//   2. ./mimic.toml
//   3. ~/.mimic.toml
//   4. /etc/mimic/mimic.toml
// The first that exists is used; none is fine. Format (any other key is an error naming file,
// line and key; relative paths resolve against the folder holding the file):
//   inventory = "/etc/mimic/inventory.toml"   # default for --inventory
//   audit = "postgresql://mimic@db/mimic"     # default for --audit
//   output = "text"                           # default for --output: text | json
// Precedence, highest first: the command-line flag, the environment (MIMIC_INVENTORY,
// MIMIC_AUDIT), this file, the built-in default (inventory.toml in the current folder).
#ifndef MIMIC_COMMON_CONFIG_CONTROLLER_CONFIG_H_
#define MIMIC_COMMON_CONFIG_CONTROLLER_CONFIG_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace mimic::common {

struct ControllerConfig {
  std::string path;       // the file read; "" when none was found
  std::string inventory;  // absolute, or "" when not set
  std::string audit;      // as written (a relative sqlite path made absolute), or ""
  std::string output;     // "", "text" or "json"
};

// Reads the settings file found as above. `getenv` is the environment to consult (::getenv in
// the program). INVALID_ARGUMENT "FILE:LINE: key 'K': ..." for a bad file; NOT_FOUND when
// $MIMIC_CONFIG names a missing file.
absl::StatusOr<ControllerConfig> FindControllerConfig(
    const std::function<const char*(const char*)>& getenv);

// Loads one settings file.
absl::StatusOr<ControllerConfig> LoadControllerConfig(const std::string& path);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_CONFIG_CONTROLLER_CONFIG_H_
