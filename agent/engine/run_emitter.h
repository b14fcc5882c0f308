// The emitter of one run's events (the run manager's; steps log through StepContext).
#ifndef MIMIC_AGENT_ENGINE_RUN_EMITTER_H_
#define MIMIC_AGENT_ENGINE_RUN_EMITTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/engine/journal.h"
#include "agent/engine/run_state.h"
#include "agent/engine/step.h"
#include "common/base/mutex.h"
#include "common/base/redact.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

// Emits the events of one run: every secret value of the run hidden (common::ScrubEvent), bounded
// and valid UTF-8 (BoundEvent), journal first, then the in-memory log that streams read. An
// event is streamed only once it is durable: a log line (and an event emitted
// Durable::kWithNext) is written to the journal unsynced and held back until the next
// Durable::kNow event's fdatasync covers it (group commit: one sync per step boundary, not per
// line), or, when none comes within `flush_delay`, until a flusher thread syncs it; so a step
// result or state change is never acknowledged before it is on disk, and an event streamed is
// never lost to a crash. The first journal error stops the emitter: that event and
// every later one is neither journaled nor streamed (the held-back lines that the journal still
// made durable are), except the run's last word (EmitLastWord: the failed step, the run's
// end), which is streamed from memory so the controller learns why the run stopped.
// Thread-safe. `journal` null: events are streamed from memory only (check runs).
class Emitter {
 public:
  Emitter(RunState* run, std::string host, std::unique_ptr<Journal> journal,
          std::string state_dir, std::unique_ptr<common::SecretScrubber> secrets,
          absl::Duration flush_delay);
  // Syncs and streams the held-back lines, then stops the flusher.
  ~Emitter();
  Emitter(const Emitter&) = delete;  // owns the flusher thread
  Emitter& operator=(const Emitter&) = delete;

  // When an emitted event must be on disk (it is streamed then, not before).
  enum class Durable {
    kNow,       // synced before Emit returns (with every event held before it)
    kWithNext,  // written now, synced with the next kNow event or by the flusher
  };
  // False when the event was not emitted because the journal failed (now or before). With
  // kWithNext a failure of the later sync is not this call's: the event is then not streamed,
  // and the run's last word says the journal failed.
  bool Emit(mimic::v1::Event e, Durable durable = Durable::kNow);
  // Emits the run_finished event; after a journal error, from memory only (an agent restart
  // then finds the run without it and marks it interrupted).
  void EmitLastWord(mimic::v1::Event e);
  // A log line of `step` (redacted, then scrubbed as every event is).
  void Log(const std::string& step, LogLevel level, const std::string& text);

  bool ok() const;
  // The run's secret values (every event is scrubbed of them; --diff lines too).
  const common::SecretScrubber& secrets() const { return *secrets_; }
  // Why the run must stop, naming the state directory and the errno.
  std::string Failure() const;

 private:
  struct Held {
    mimic::v1::Event event;
    uint64_t offset = 0, end = 0;
  };

  bool EmitLocked(mimic::v1::Event e, Durable durable) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Syncs the held-back lines and streams them.
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Streams the held events the journal has made durable, in order.
  void PublishDurable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `numbered`: events stamped but neither journaled nor held (the one that failed).
  void Stop(const absl::Status& st, int numbered) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Syncs held-back lines no later event has covered within flush_delay_.
  void FlushLoop();
  bool StopOrHeld() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || !held_.empty(); }
  void Stamp(mimic::v1::Event* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RunState* run_;
  std::string host_;
  std::unique_ptr<Journal> journal_;
  std::string state_dir_;
  std::unique_ptr<common::SecretScrubber> secrets_;
  const absl::Duration flush_delay_;
  mutable common::Mutex mu_;
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);  // journaled, not yet known durable
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread flusher_;  // last: started once the rest is set up
};

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_RUN_EMITTER_H_
