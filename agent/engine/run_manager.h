// Runs on the agent: each run owns a journal, a snapshot and an in-memory event log that
// stream reactors read from. Runs execute on the Executor, never inside gRPC reactions.
#ifndef MIMIC_AGENT_ENGINE_RUN_MANAGER_H_
#define MIMIC_AGENT_ENGINE_RUN_MANAGER_H_

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
#include "agent/engine/step.h"
#include "common/base/path_guard.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

// The project version (CMake project(VERSION)), the one `mimic-agent --version` prints.
inline constexpr char kAgentVersion[] = MIMIC_AGENT_VERSION;

// Every event the agent builds is bounded (BoundEvent): each text field at most
// kMaxEventFieldBytes (longer ones are cut, with "... [truncated: N bytes]"), the whole event at
// most kMaxEventBytes (--diff texts are left out first, then changes past it are dropped, each
// counted in the step's message), far below
// gRPC's 4 MiB message limit. Text fields are made valid UTF-8 (invalid bytes -> U+FFFD), as
// proto3 `string` requires. The journal holds the bounded event, the same one that is streamed.
inline constexpr size_t kMaxEventFieldBytes = 64 << 10;
inline constexpr size_t kMaxEventBytes = 1 << 20;
// Finished check runs (no journal) kept in memory for Attach; older ones are forgotten.
inline constexpr size_t kMaxMemoryOnlyRuns = 32;

// Makes `e` valid to send and to journal: see kMaxEventBytes.
void BoundEvent(mimic::v1::Event* e);

// The event log of one run. Thread-safe. While the run is going its events are kept in memory;
// once it has finished, only the events that are not in its journal stay there (a check run's,
// the last word of a run whose journal failed): the rest are read back from the journal, by
// offset, when a stream asks for them. So a finished run costs a summary and an index of 16
// bytes per event.
class RunState {
 public:
  // `journal_path`: where the run's journaled events can be read back ("" for none).
  RunState(std::string run_id, std::string run_dir, std::string journal_path = "")
      : run_id_(std::move(run_id)), run_dir_(std::move(run_dir)),
        journal_path_(std::move(journal_path)) {}
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  const std::string& run_id() const { return run_id_; }
  const std::string& run_dir() const { return run_dir_; }
  // "" for a run that keeps no journal (check runs).
  const std::string& journal_path() const { return journal_path_; }

  // Copies events with seq >= from_seq (at most `max`) into `out`, in seq order; `finished`
  // tells whether the run has emitted its last event (so nothing will follow the ones
  // returned). Sequence numbers skipped by recovery (a damaged journal record) are absent.
  void Events(uint64_t from_seq, size_t max, std::vector<mimic::v1::Event>* out,
              bool* finished) const;
  // Registers `cb`, called after each new event (on the thread that appended it). After
  // Unsubscribe(id) returns, `cb` is not running and will not run again.
  int Subscribe(std::function<void()> cb);
  void Unsubscribe(int id);

  // Appends to the event log and wakes subscribers. `journal_offset`: where the event's record
  // starts in the run's journal, or -1 when it is not journaled (kept in memory). The run calls
  // it after the journal append; loaders call it for replayed events.
  void Publish(const mimic::v1::Event& e, int64_t journal_offset = -1);
  mimic::v1::RunSummary Summary() const;
  // Stops the run at once, inside its current step too: the step's cancel token is set (its
  // subprocess's process group gets SIGTERM, then SIGKILL; its file loops stop), the step ends
  // FAILED ("cancelled ..."), journaled, and the run RUN_CANCELLED, or RUN_INTERRUPTED with
  // `interrupt` (the agent is stopping). What was done stays in the snapshot: the run can be
  // rolled back, or its plan run again.
  void RequestCancel(bool interrupt = false) {
    if (interrupt) interrupt_ = true;
    cancel_ = true;
  }
  bool cancel_requested() const { return cancel_; }
  bool interrupt_requested() const { return interrupt_; }
  // The token steps and their subprocesses watch (StepContext::cancel).
  const std::atomic<bool>* cancel_token() const { return &cancel_; }
  bool finished() const;
  // How many events this run holds in memory (tests bound it).
  size_t events_in_memory() const;

 private:
  struct Entry {
    uint64_t seq;
    int64_t offset;  // in the journal; -1: in memory_
  };
  const std::string run_id_;
  const std::string run_dir_;
  const std::string journal_path_;
  mutable common::Mutex mu_;
  std::vector<Entry> index_ ABSL_GUARDED_BY(mu_);  // ascending seq
  std::map<uint64_t, mimic::v1::Event> memory_ ABSL_GUARDED_BY(mu_);  // by seq
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  mimic::v1::RunSummary summary_ ABSL_GUARDED_BY(mu_);
  common::Mutex subs_mu_;
  std::map<int, std::function<void()>> subs_ ABSL_GUARDED_BY(subs_mu_);
  int next_sub_ ABSL_GUARDED_BY(subs_mu_) = 1;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> interrupt_{false};
};

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
  // Whether another process runs `run_id` (whose journal is `events`) now: it holds the lock of
  // the run's target home.
  // Deletes, beneath the run's target home, the temporary files its interrupted writes left.
  absl::Status RemoveTempFiles(const std::vector<mimic::v1::Event>& events,
                               const std::string& run_dir);
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
