// mimic-agent: the daemon on every MI host (and `mimic-agent local` for one host, no controller).
#include "absl/synchronization/mutex.h"
#include "agent/daemon/agent_main.h"

int main(int argc, char** argv) {
  // Debian's Abseil checks the lock order on every lock of every absl::Mutex (gRPC's and
  // mimic's): a debugging aid, which the tests and mimic-agent-testing keep, not a daemon's work.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return mimic::agent::AgentMain(argc, argv, nullptr);
}
