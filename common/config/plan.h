// The operator's migration plan (plan.toml): what to migrate, which steps to run on each host,
// and how to roll it out across the fleet in stages and batches.
//
// Format (any other key is an error naming its file, line and key):
//
//   [migration]                        # optional table
//   path = "4.0.0->4.2.0"              # default "auto" (preflight detects); one of: auto,
//                                      # 1.2.0->4.0.0, 4.0.0->4.2.0, 1.2.0->4.2.0
//   source_home = "{{source_home}}"    # default "{{source_home}}"; {{var}} = host variable
//   target_home = "{{target_home}}"    # default "{{target_home}}"
//   timeout = "2h"                     # per-host run deadline (default 2h): "30s", "10m",
//                                      # "1h30m", or an integer number of seconds
//
//   [[steps]]                          # at least one; run in this order; a name may repeat
//   name = "preflight"                 # must be a known step
//   [[steps]]
//   name = "merge_config"
//   params = { conflict = "source" }   # optional: string/int/bool values, kept as strings;
//                                      # names and values checked against the step's schema
//                                      # (common/config/step_params.h)
//   [steps.settings]                   # merge_config only: structured parameters, kept as
//   ...                                # TOML text (StepConfig::params_toml)
//
//   [[stages]]                         # optional; run in this order
//   name = "dev"                       # required, unique, A-Z a-z 0-9 . _ -
//   environments = ["dev"]             # optional: hosts in one of these environments
//   groups = ["emea"]                  # optional: hosts in one of these groups (or children)
//                                      # both given: a host must match both; neither: all hosts
//   batch = 1                          # default "100%": a count >= 1, "N%" (1..100, rounded
//                                      # up, at least 1), or a list [1, "10%", "50%"] whose
//                                      # last size repeats
//   concurrency = 10                   # default 0 = the inventory's controller.concurrency
//   max_fail_percentage = 0            # optional, 0..100: a batch whose failed share EXCEEDS
//                                      # it stops the rollout
//   max_failures = 0                   # failed hosts the stage tolerates; -1 = unlimited.
//                                      # Default 0, or -1 when max_fail_percentage is given
//   unreachable_is_failure = true      # default true
//   pause = "10m"                      # optional wait before this stage starts (default 0)
//   approval = false                   # optional: wait for `mimic approve` before this stage
//
//   [[skip]]                           # optional: a required step the plan does not run
//   step = "migrate_datamapper"        # (common/config/required_steps.h); reason is required
//   reason = "..."
//
//   [rollout]                          # optional
//   max_failures = -1                  # failed hosts tolerated over the whole rollout
//                                      # (default -1 = unlimited, the stages' limits apply)
//
// Without [[stages]] the plan has one stage "all": every host, one batch of 100%, and the
// defaults above. A host may be in at most one stage (ValidatePlanAgainstInventory).
//
// Templates: source_home, target_home and every string in a step's params are expanded per
// host with ExpandVars against the host's merged inventory vars ({{ name }}; spaces inside the
// braces are allowed).
#ifndef MIMIC_COMMON_CONFIG_PLAN_H_
#define MIMIC_COMMON_CONFIG_PLAN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config/inventory.h"
#include "common/config/required_steps.h"

namespace mimic::common {

struct StepConfig {
  std::string name;
  std::map<std::string, std::string> params;  // [[steps]] params, values as strings
  std::string params_toml;                    // [steps.settings] as TOML text; "" when absent
  int line = 0;                               // line of the step's [[steps]]
};

// One batch size: `value` hosts, or `value` percent of the stage's hosts when `percent`.
struct BatchSpec {
  bool percent = false;
  int value = 0;

  bool operator==(const BatchSpec&) const = default;
};

struct Stage {
  std::string name;
  std::vector<std::string> environments;
  std::vector<std::string> groups;
  std::vector<BatchSpec> batches = {{true, 100}};  // the last one repeats
  int concurrency = 0;                             // 0 = the inventory's controller.concurrency
  int max_fail_percentage = -1;  // -1 = not set; else 0..100, exceeded (not equalled) stops
  int max_failures = 0;          // -1 = unlimited
  bool unreachable_is_failure = true;
  int64_t pause_seconds = 0;
  bool approval = false;
  int line = 0;  // line of the stage's [[stages]]; 0 for the default stage "all"
};

struct Plan {
  std::string path;    // as given to LoadPlan
  std::string sha256;  // lower-case hex sha256 of the file's bytes
  std::string migration_path = "auto";
  std::string source_home = "{{source_home}}";  // template
  std::string target_home = "{{target_home}}";  // template
  int64_t timeout_seconds = 2 * 3600;
  std::vector<StepConfig> steps;
  std::vector<StepSkip> skips;  // [[skip]]: required steps the operator chose not to run
  std::vector<Stage> stages;
  int rollout_max_failures = -1;  // -1 = unlimited
  // Line of every key in the file ("migration.source_home", "stages[1].groups", ...), so later
  // checks can name file, line and key.
  std::map<std::string, int> key_lines;

  int LineOf(const std::string& dotted_key) const;  // 0 when the key is not in the file
};

// The migration paths a plan may name.
const std::vector<std::string>& AllowedMigrationPaths();

// Loads and validates the plan at `path`. `known_steps` is the step catalogue; a step name not
// in it is an INVALID_ARGUMENT naming file, line and key and listing the known steps (an empty
// list accepts any name). NOT_FOUND when the file cannot be read; INVALID_ARGUMENT for a
// syntax error ("FILE:LINE:COL: ...") or an invalid value ("FILE:LINE: key 'K': ...").
absl::StatusOr<Plan> LoadPlan(const std::string& path, const std::vector<std::string>& known_steps);
// Same from text; `path` names the file in errors; sha256 is that of `text`.
absl::StatusOr<Plan> LoadPlanFromString(const std::string& text, const std::string& path,
                                        const std::vector<std::string>& known_steps);

// The hosts of `hosts` that belong to `stage` (its environments and groups, see above), in
// the order given.
std::vector<const Host*> SelectStageHosts(const Stage& stage,
                                          const std::vector<const Host*>& hosts);

// Splits `hosts` (already the stage's hosts) into consecutive batches by `stage.batches`:
// a percentage is of hosts.size(), rounded up, at least 1; the last spec repeats until every
// host is placed; a batch never exceeds the hosts left. No hosts gives no batches.
// INVALID_ARGUMENT for an empty spec list or a spec out of range.
absl::StatusOr<std::vector<std::vector<const Host*>>> MakeBatches(
    const Stage& stage, const std::vector<const Host*>& hosts);

// Replaces each {{name}} (or {{ name }}) in `templ` with vars[name]. INVALID_ARGUMENT naming
// the variable when it is not in `vars`, or when a "{{" is not closed.
absl::StatusOr<std::string> ExpandVars(const std::string& templ,
                                       const std::map<std::string, std::string>& vars);

// Checks `plan` against `inventory`: every stage's environments and groups exist in the
// inventory; no host is in two stages; every host of every stage has the variables that
// source_home, target_home and the steps' params need; and for each such host source_home and
// target_home expand to absolute paths that differ (the source is never written). INVALID_ARGUMENT naming the plan's
// file, line and key (and the host) on the first problem.
absl::Status ValidatePlanAgainstInventory(const Plan& plan, const Inventory& inventory);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_CONFIG_PLAN_H_
