// Step factories added to the catalogue (step.cc) beside those in file_steps.h.
#ifndef MIMIC_AGENT_STEPS_CATALOG_EXTRA_H_
#define MIMIC_AGENT_STEPS_CATALOG_EXTRA_H_

#include <memory>

#include "agent/steps/file_steps.h"
#include "agent/steps/step.h"

namespace mimic::agent {

// migrate_datamapper (migrate_datamapper.cc): the MI 4.0 -> 4.2 Data Mapper stylesheet rewrite
// in the target's CApps and file-registry stylesheets.
std::unique_ptr<Step> NewMigrateDatamapperStep();

// For the copy steps that bring what migrate_datamapper rewrites (copy_carbonapps,
// copy_registry): when this run's chain crosses 4.0.0 -> 4.2.0, a check that the target file is
// exactly the migrated form of the source file; null otherwise.
ConvertedCheck DatamapperConvertedCheck(const StepContext& ctx);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_CATALOG_EXTRA_H_
