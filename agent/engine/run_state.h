// The event log of one run (RunState) and the bounds every event the agent sends keeps.
#ifndef MIMIC_AGENT_ENGINE_RUN_STATE_H_
#define MIMIC_AGENT_ENGINE_RUN_STATE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/base/mutex.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

// Every event the agent builds is bounded (BoundEvent): each text field at most
// kMaxEventFieldBytes (longer ones are cut, with "... [truncated: N bytes]"), the whole event at
// most kMaxEventBytes (--diff texts are left out first, then changes past it are dropped, each
// counted in the step's message), far below
// gRPC's 4 MiB message limit. Text fields are made valid UTF-8 (invalid bytes -> U+FFFD), as
// proto3 `string` requires. The journal holds the bounded event, the same one that is streamed.
inline constexpr size_t kMaxEventFieldBytes = 64 << 10;
inline constexpr size_t kMaxEventBytes = 1 << 20;

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

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_RUN_STATE_H_
