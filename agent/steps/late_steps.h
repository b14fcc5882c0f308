// Factories of the steps that run late in a migration: the user store configuration and the
// final health check. The catalogue in step.cc uses them.
#ifndef MIMIC_AGENT_STEPS_LATE_STEPS_H_
#define MIMIC_AGENT_STEPS_LATE_STEPS_H_

#include <memory>

#include "agent/steps/step.h"

namespace mimic::agent {

// migrate_userstore_config: carries [user_store], [realm_manager] and the user store's
// [[datasource]] (id = realm_manager.data_source, default "WSO2CarbonDB") from the source's
// conf/deployment.toml into the target's for an LDAP or JDBC user store (MI-FACTS §3), with the
// merge_config rules (common/toml_merge.h; param conflict, default "source"), and disables the
// file user store ([internal_apis.file_user_store] enable = false) as both guides require.
// STEP_OK "default user store; nothing to carry" when the source uses the shipped default.
std::unique_ptr<Step> NewMigrateUserstoreConfigStep();

// verify: starts the target (bin/micro-integrator.sh start), waits for GET /healthz on the
// internal HTTP API port (9201 + offset - 10, param probe_port) to answer 200 "ready" or for the
// start-up log line, then always stops it (MI-FACTS §7). Params: start_timeout_seconds (120),
// probe_port. Its effect is not a file change: the change set is always empty and the result is
// forced_status OK or FAILED. Check mode never starts anything: forced_status STEP_SKIPPED,
// "verify runs only in apply mode".
std::unique_ptr<Step> NewVerifyStep();

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_LATE_STEPS_H_
