// The rollout engine: compiles the operator's plan into one host plan per host, runs stages
// in order and each stage in batches with a sliding window of hosts in flight (callback API,
// no thread per host), streams every event into the audit and the progress view, and rides
// out lost connections by re-sending Run with the same run_id from the last event it holds.
#ifndef MIMIC_CONTROLLER_ROLLOUT_ROLLOUT_H_
#define MIMIC_CONTROLLER_ROLLOUT_ROLLOUT_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/inventory.h"
#include "common/config/plan.h"
#include "controller/rollout/progress.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::controller {

// The step names the agent's catalogue knows (the controller validates plans against it).
const std::vector<std::string>& StepCatalogue();

// How hosts connect. At most `max_connecting` hosts' calls are started and not connected yet
// (no event received, channel not READY), whatever the concurrency: thousands of TLS
// handshakes at once starve each other past gRPC's connect timeout. A call not connected
// after `connect_timeout_ms` is cancelled and counts as a failed attempt (max_attempts); the
// next attempt dials on a new channel.
struct ConnectLimits {
  int max_connecting = 64;
  int connect_timeout_ms = 30000;
};

struct RolloutOptions {
  std::string inventory_path;
  std::string plan_path;
  bool check = false;
  std::string limit;  // comma-separated hosts, groups or environments
  std::string stage;  // only this stage
  std::string audit_url;  // overrides the inventory's
  std::string resume_rollout_id;  // `mimic resume`: continue this rollout
  bool force = false;             // resume with a changed plan
  bool json = false;              // --output json
  bool diff = false;              // --diff: agents send each text file's diff (HostPlan.diffs)
  int verbosity = 0;              // -v 1: info log lines; -vv 2: debug lines, every file
  int max_attempts = 4;           // connection attempts per host before "unreachable"
  ConnectLimits connect;
};

// Runs (or resumes) a rollout. Returns the exit code: 0 when every host succeeded, 2 when a
// host failed or a failure budget stopped the rollout. A non-OK status is bad input (exit 1):
// the message names file, line and key.
absl::StatusOr<int> RunRollout(const RolloutOptions& options, std::FILE* out);

struct RollbackOptions {
  std::string rollout_id;
  std::string inventory_path;  // default: the one the rollout used
  std::string audit_url;
  std::string state_dir;
  std::string limit;
  bool check = false;
  bool force = false;  // restore even files changed since the run wrote them
  bool json = false;
  bool diff = false;   // as RolloutOptions
  int verbosity = 0;
};

// Rolls back every host of a rollout (or those in `limit`) through its agent's snapshot of
// the rollout's apply run. Exit codes as RunRollout.
absl::StatusOr<int> RollbackRollout(const RollbackOptions& options, std::FILE* out);

// Compiles one host's plan from the operator's plan (templates expanded with the host vars).
absl::StatusOr<mimic::v1::HostPlan> CompileHostPlan(const common::Plan& plan,
                                                    const common::Host& host,
                                                    const std::string& rollout_id,
                                                    mimic::v1::Mode mode);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_ROLLOUT_ROLLOUT_H_
