// The mimic-agent command line: `--config agent.toml` serves mimic.v1.Agent; `local ...` runs
// one host's plan without a controller. main.cc calls it with no hooks; tests build their own
// binary that injects `before_step` (a gate holding a run before a named step).
#ifndef MIMIC_AGENT_DAEMON_AGENT_MAIN_H_
#define MIMIC_AGENT_DAEMON_AGENT_MAIN_H_

#include <functional>
#include <string>

namespace mimic::agent {

using BeforeStepHook = std::function<void(const std::string& run_id, int index)>;

// Returns the process exit code: 0 ok, 1 bad input or cannot start, 2 (local) a step failed.
int AgentMain(int argc, char** argv, const BeforeStepHook& before_step);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_DAEMON_AGENT_MAIN_H_
