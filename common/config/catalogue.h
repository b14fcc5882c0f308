// The step catalogue, written once (DESIGN.md, "The step catalogue"), in catalogue order.
// MIMIC_STEP_CATALOGUE(X) calls X(name, Factory) for each step: the controller expands it into
// the names it validates plans against, the agent's step library (agent/steps/steps.cc) into
// its factories `New<Factory>Step`, so a step's name cannot differ between the two.
#ifndef MIMIC_COMMON_CONFIG_CATALOGUE_H_
#define MIMIC_COMMON_CONFIG_CATALOGUE_H_

#include <string>
#include <vector>

#define MIMIC_STEP_CATALOGUE(X)                         \
  X(preflight, Preflight)                               \
  X(backup_databases, BackupDatabases)                  \
  X(snapshot_target, SnapshotTarget)                    \
  X(migrate_userstore_db, MigrateUserstoreDb)           \
  X(migrate_userstore_config, MigrateUserstoreConfig)   \
  X(copy_secondary_userstores, CopySecondaryUserstores) \
  X(copy_carbonapps, CopyCarbonapps)                    \
  X(copy_registry, CopyRegistry)                        \
  X(copy_deployment, CopyDeployment)                    \
  X(migrate_datamapper, MigrateDatamapper)              \
  X(copy_custom_components, CopyCustomComponents)       \
  X(copy_keystores, CopyKeystores)                      \
  X(merge_config, MergeConfig)                          \
  X(hl7_transport, Hl7Transport)                        \
  X(verify, Verify)                                     \
  X(exec, Exec)

namespace mimic::common {

// Every step name, in catalogue order.
inline const std::vector<std::string>& StepCatalogue() {
#define MIMIC_STEP_NAME(name, factory) #name,
  static const std::vector<std::string> kSteps = {MIMIC_STEP_CATALOGUE(MIMIC_STEP_NAME)};
#undef MIMIC_STEP_NAME
  return kSteps;
}

}  // namespace mimic::common

#endif  // MIMIC_COMMON_CONFIG_CATALOGUE_H_
