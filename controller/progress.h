// What the operator sees while a rollout runs: one line per step result (and warnings), or
// one JSON object per event with --output json; then a recap table per host.
#ifndef MIMIC_CONTROLLER_PROGRESS_H_
#define MIMIC_CONTROLLER_PROGRESS_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::controller {

// The outcome of one host in a rollout, as the recap shows it.
struct HostOutcome {
  std::string host;
  std::string stage;
  std::string run_id;
  std::string status;  // "ok", "changed", "failed", "unreachable", "refused", "skipped", ...
  std::string message;
  int ok = 0, changed = 0, skipped = 0, failed = 0;
  int files = 0;  // file changes reported
  int64_t duration_us = 0;
};

class Progress {
 public:
  // `json`: one JSON object per line instead of text. Thread-safe.
  Progress(std::FILE* out, bool json) : out_(out), json_(json) {}

  void Event(const std::string& stage, const mimic::v1::Event& e);
  // Free text: stage headers, gates, budget decisions ({"note": ...} in JSON mode).
  void Note(const std::string& text);
  void HostDone(const HostOutcome& outcome);

 private:
  absl::Mutex mu_;
  std::FILE* out_;
  bool json_;
};

// The recap table: HOST STAGE STATUS OK CHANGED SKIPPED FAILED FILES DURATION, then the
// messages of failed hosts.
std::string RecapTable(const std::vector<HostOutcome>& outcomes);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_PROGRESS_H_
