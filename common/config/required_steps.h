// What a migration cannot do without: the steps the path always needs, the steps the homes'
// features need (Data Mapper CApps, HL7, a JDBC user store on 1.2.0, secure vault), the order
// they must run in, and the plan's [[skip]] entries, the only way past a required step:
//
//   [[skip]]
//   step = "migrate_datamapper"        # a catalogue step the plan does not run
//   reason = "CApps rebuilt with Integration Studio 8.2 by the team"   # required, non-empty
//
// The controller checks the path's steps and the order when it loads a plan
// (CheckPlanCoversPath); the agent's preflight checks the features it finds on the host
// (CheckFeatureSteps), so a plan that misses what a host needs fails before anything changes.
#ifndef MIMIC_COMMON_CONFIG_REQUIRED_STEPS_H_
#define MIMIC_COMMON_CONFIG_REQUIRED_STEPS_H_

#include <toml++/toml.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace mimic::common {

struct Plan;

struct StepSkip {
  std::string step;
  std::string reason;
  int line = 0;  // line of its [[skip]] in the plan; 0 when it came over the wire
};

struct RequiredStep {
  std::string step;
  std::string reason;  // why it is required ("the guides' 'migrating keystores' section", ...)
};

// What a host's homes hold that makes steps required. Each list is evidence for the message
// ("carbonapps/orders.car: 2 stylesheets"); empty = the feature is not used.
struct MigrationFeatures {
  std::string source_version;  // "1.2.0", "4.0.0", "4.2.0"
  std::string target_version;
  std::vector<std::string> datamapper;      // Data Mapper stylesheets to migrate
  std::vector<std::string> hl7;             // HL7 signals
  std::vector<std::string> jdbc_userstore;  // the JDBC user store
  std::vector<std::string> secure_vault;    // $secret{} uses, [secrets], secret-conf.properties
};

// Steps every migration path needs (the guides' sections plus preflight and snapshot_target),
// in catalogue order.
const std::vector<RequiredStep>& PathRequiredSteps();

// Steps `f` makes required: migrate_datamapper (Data Mapper stylesheets and the path crosses
// 4.0.0 -> 4.2.0), hl7_transport (HL7 used), migrate_userstore_db (a JDBC user store on a
// 1.2.0 source), copy_keystores and merge_config (secure vault).
std::vector<RequiredStep> FeatureRequiredSteps(const MigrationFeatures& f);

// Order rules: `before` must run before `after` when both are in the plan.
struct StepOrderRule {
  std::string before;
  std::string after;
  std::string why;
};
const std::vector<StepOrderRule>& StepOrderRules();

// The first required step of `required` that `steps` neither runs nor skips: FAILED_PRECONDITION
// "the plan does not run required step 'S' (REASON); add [[steps]] name = \"S\" [after X], or
// [[skip]] step = \"S\" with a reason". Then the first order rule `steps` breaks. `where` is
// prefixed to the message ("plan.toml" or the host's name).
absl::Status CheckRequiredSteps(const std::vector<std::string>& steps,
                                const std::vector<StepSkip>& skips,
                                const std::vector<RequiredStep>& required,
                                const std::string& where);

// The controller's check when a plan is loaded for a run: every path-required step is run or
// skipped, and the order rules hold. INVALID_ARGUMENT "FILE:LINE: key 'steps[i].name': ...".
absl::Status CheckPlanCoversPath(const Plan& plan);

// Reads the plan's [[skip]] array into plan.skips: each a known step (in `known_steps`, when
// not empty), not also run by the plan, with a non-empty reason, named once.
absl::Status LoadSkips(const toml::table& root, const std::vector<std::string>& known_steps,
                       Plan& plan);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_CONFIG_REQUIRED_STEPS_H_
