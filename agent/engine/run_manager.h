// Runs on the agent: each run owns a journal, a snapshot and an in-memory event log that
// stream reactors read from. Runs execute on the Executor, never inside gRPC reactions.
#ifndef MIMIC_AGENT_ENGINE_RUN_MANAGER_H_
#define MIMIC_AGENT_ENGINE_RUN_MANAGER_H_

#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/base/mutex.h"
#include "absl/time/time.h"
#include "agent/engine/executor.h"
#include "agent/engine/journal.h"
#include "agent/engine/run_state.h"
#include "agent/engine/step.h"
#include "common/base/path_guard.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

// The project version (CMake project(VERSION)), the one `mimic-agent --version` prints.
inline constexpr char kAgentVersion[] = MIMIC_AGENT_VERSION;

// Finished check runs (no journal) kept in memory for Attach; older ones are forgotten.
inline constexpr size_t kMaxMemoryOnlyRuns = 32;

struct RunManagerOptions {
  std::string state_dir;
  std::vector<std::string> allowed_roots;
  bool allow_exec = false;  // plans with an `exec` step are refused unless set
  // Makes each step of a plan by name (the agent passes agent/steps' MakeStep); required.
  StepFactory make_step;
  // Known step names, for the error that refuses an unknown one.
  std::vector<std::string> known_steps;
  // Called on the run's thread before step `index` of a non-rollback run starts, before the
  // cancel check (a cancel that arrives while it blocks stops the run before that step); may
  // block. Tests inject a gate here to hold a run at a named step; null in production.
  std::function<void(const std::string& run_id, int index)> before_step;
  // A run's log lines are streamed once durable: synced with the run's next other event (one
  // fdatasync per step event, not per line), or by a flusher after this delay when no event
  // comes sooner (a long step's lines still stream). Tests set an infinite delay.
  absl::Duration log_flush_delay = absl::Milliseconds(100);
};

class RunManager {
 public:
  RunManager(RunManagerOptions options, Executor* executor);
  RunManager(const RunManager&) = delete;  // owns runs and their locks
  RunManager& operator=(const RunManager&) = delete;
  ~RunManager();

  // Loads the runs in the state directory. A torn journal tail (a crash or a full disk in the
  // middle of a write) is truncated, the records before it kept; a damaged record before the
  // tail is logged and skipped, the run kept. A run whose journal has no run_finished event was
  // cut by an agent stop (or by its journal failing): it gets a RUN_INTERRUPTED run_finished
  // event, appended to the journal when the disk allows it (else held in memory and logged),
  // and the temporary files of writes it left are removed (PlanTempFileRemoval). A run another
  // process is running now (it holds its home's lock) is left alone.
  absl::Status Recover();

  // Starts the plan's run on the executor, or returns the existing run with that run_id
  // (`*existed` = true). Refuses synchronously, writing nothing, when the plan is malformed,
  // its homes leave the allowed roots (PERMISSION_DENIED) or another run holds the target MI
  // home (FAILED_PRECONDITION). A refusal's message holds no secret value of the plan
  // (scrubbed as its events are), so it may be logged and sent as it is.
  absl::StatusOr<std::shared_ptr<RunState>> StartOrGet(const mimic::v1::HostPlan& plan,
                                                       bool* existed);
  // NOT_FOUND when the agent knows no such run.
  absl::StatusOr<std::shared_ptr<RunState>> Find(const std::string& run_id);
  absl::Status Cancel(const std::string& run_id, std::string* state);
  std::vector<mimic::v1::RunSummary> List(const std::string& rollout_id);

  // Blocks until the run has finished (local mode, tests).
  void WaitFinished(const std::shared_ptr<RunState>& run);
  // Blocks until every run the agent knows has finished, or until `deadline`; true when they
  // all have.
  bool WaitAllFinished(absl::Time deadline);

  // Events held in memory over every run the agent knows (tests bound it).
  size_t EventsInMemory();
  // The agent is stopping: a run that has not started its steps yet (queued behind others)
  // is not run; it finishes RUN_INTERRUPTED ("not run: the agent shut down ..."), journaled,
  // so a controller that attaches after the restart is told. New runs are refused
  // (UNAVAILABLE). Runs already in their steps go on. Returns how many runs were queued.
  int BeginShutdown();
  // The agent is stopping and will not wait longer: every run still going is stopped inside
  // its current step (RunState::RequestCancel with interrupt) and ends RUN_INTERRUPTED,
  // journaled, resumable and reversible. Returns how many runs were told.
  int InterruptRunning();

  const common::PathGuard& guard() const { return guard_; }

 private:
  // StartOrGet before its refusal is scrubbed.
  absl::StatusOr<std::shared_ptr<RunState>> Start(const mimic::v1::HostPlan& plan,
                                                  bool* existed);
  std::string RunDir(const std::string& run_id) const;
  // The lock file of the home whose stat is `home`: per device and inode, so every name of the
  // home (a symlink alias, a bind mount) takes the same lock.
  std::string HomeLockPath(const struct stat& home) const;
  // Recovery at start (run_recovery.cc). Deletes, beneath the run's target home, the temporary
  // files its interrupted writes left.
  absl::Status RemoveTempFiles(const std::vector<mimic::v1::Event>& events,
                               const std::string& run_dir);
  // Whether another process runs `run_id` (whose journal is `events`) now: it holds the lock of
  // the run's target home.
  bool HeldElsewhere(const std::vector<mimic::v1::Event>& events, const std::string& run_id) const;

  void Execute(std::shared_ptr<RunState> run, mimic::v1::HostPlan plan, int lock_fd);

  // Forgets the oldest finished runs that have no journal (check runs) beyond the last
  // kMaxMemoryOnlyRuns.
  void PruneMemoryOnlyRuns() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RunManagerOptions options_;
  Executor* const executor_;
  const common::PathGuard guard_;
  common::Mutex mu_;
  std::map<std::string, std::shared_ptr<RunState>> runs_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  int queued_ ABSL_GUARDED_BY(mu_) = 0;  // scheduled, not yet begun
};

// Checks a run id is safe as a directory name: [A-Za-z0-9._-]{1,128}, not "." or "..".
bool ValidRunId(const std::string& run_id);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_RUN_MANAGER_H_
