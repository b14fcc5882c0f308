// mimic-agent-testing: the real mimic-agent (same AgentMain) with a test hook injected before
// each step, for the e2e tests that need a run in flight at a known moment. Production code
// reads no test variable; only this binary does.
//   MIMIC_TEST_STEP_DELAY_MS=N   waits N ms before each step (widens the window of a run)
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "agent/daemon/agent_main.h"

int main(int argc, char** argv) {
  mimic::agent::BeforeStepHook hook;
  if (const char* delay = std::getenv("MIMIC_TEST_STEP_DELAY_MS"); delay != nullptr) {
    const int ms = std::atoi(delay);
    if (ms > 0) {
      hook = [ms](const std::string&, int) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      };
    }
  }
  return mimic::agent::AgentMain(argc, argv, hook);
}
