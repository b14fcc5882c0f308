// Step factories added to the catalogue (step.cc) beside those in file_steps.h.
#ifndef MIMIC_AGENT_STEPS_CATALOG_EXTRA_H_
#define MIMIC_AGENT_STEPS_CATALOG_EXTRA_H_

#include <memory>

#include "agent/steps/step.h"

namespace mimic::agent {

// migrate_datamapper (migrate_datamapper.cc): the MI 4.0 -> 4.2 Data Mapper stylesheet rewrite
// in the target's CApps and file-registry stylesheets.
std::unique_ptr<Step> NewMigrateDatamapperStep();

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_CATALOG_EXTRA_H_
