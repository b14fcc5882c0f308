// The step catalogue's names in catalogue order (DESIGN.md, "The step catalogue"). The
// controller validates plans against it; the agent's step library implements exactly these
// (agent/steps/step.cc, checked by agent_steps_test).
#ifndef MIMIC_COMMON_CATALOGUE_H_
#define MIMIC_COMMON_CATALOGUE_H_

#include <string>
#include <vector>

namespace mimic::common {

inline const std::vector<std::string>& StepCatalogue() {
  static const std::vector<std::string> kSteps = {
      "preflight",          "backup_databases",       "snapshot_target",
      "migrate_userstore_db", "migrate_userstore_config",
      "copy_secondary_userstores", "copy_carbonapps", "copy_registry",
      "copy_deployment",    "migrate_datamapper",     "copy_custom_components",
      "copy_keystores",     "merge_config",           "hl7_transport",
      "verify",             "exec"};
  return kSteps;
}

}  // namespace mimic::common

#endif  // MIMIC_COMMON_CATALOGUE_H_
