// `mimic plan new --inventory I [--limit P] [-o plan.toml]`: asks each agent for its facts (MI
// homes, their versions and what they use) and writes a complete, commented plan that runs
// every step the fleet's migration requires (common/config/required_steps.h), in order.
#ifndef MIMIC_CONTROLLER_CLI_COMMANDS_PLAN_H_
#define MIMIC_CONTROLLER_CLI_COMMANDS_PLAN_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/required_steps.h"
#include "controller/cli/commands.h"

namespace mimic::controller {

// What the agent of one host said about its MI homes.
struct HostFinding {
  std::string host;
  std::string problem;  // not empty: unreachable, or no source and target home found
  std::string source_home, target_home;
  std::string source_update_level, target_update_level;
  common::MigrationFeatures features;  // of the source home, with both versions
};

// The plan.toml text for `hosts` (hosts with a problem are listed in comments only). It loads
// with LoadPlanFromString, passes CheckPlanCoversPath, and runs every step each host's features
// require. INVALID_ARGUMENT when no host has a source and a target home.
absl::StatusOr<std::string> PlanTextFor(const std::vector<HostFinding>& hosts);

// `mimic plan new`: exit 0, or 2 when a host could not be asked (the plan covers the others).
absl::StatusOr<int> CmdPlan(const CommandOptions& o, std::FILE* out);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_CLI_COMMANDS_PLAN_H_
