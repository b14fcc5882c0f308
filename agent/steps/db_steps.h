// The database steps: backup_databases (dumps every database the source MI uses) and
// migrate_userstore_db (EI 7.1 / MI 1.2.0 JDBC user store -> MI 4.x: UM_USER.UM_USER_ID).
// Like exec, their effects are outside files: with ctx.check false, Plan() itself acts and
// returns an empty change set with forced_status STEP_CHANGED (or STEP_OK when nothing to do);
// check mode acts on nothing and reports what would be done.
#ifndef MIMIC_AGENT_STEPS_DB_STEPS_H_
#define MIMIC_AGENT_STEPS_DB_STEPS_H_

#include <memory>

#include "agent/steps/step.h"

namespace mimic::agent {

std::unique_ptr<Step> NewBackupDatabasesStep();
std::unique_ptr<Step> NewMigrateUserstoreDbStep();

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_DB_STEPS_H_
