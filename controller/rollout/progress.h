// What the operator sees while a rollout runs: one line per step result (and warnings), or
// one JSON object per event with --output json; then a recap table per host.
#ifndef MIMIC_CONTROLLER_ROLLOUT_PROGRESS_H_
#define MIMIC_CONTROLLER_ROLLOUT_PROGRESS_H_

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "common/base/mutex.h"
#include "controller/report/report.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::controller {

// The outcome of one host in a rollout: a row of the recap table (controller/report), whose
// status may also be "unreachable", "refused", "skipped", ...
using HostOutcome = HostRecap;

class Progress {
 public:
  // `json`: one JSON object per line instead of text. `live`: the output is a terminal, so a
  // status line at the bottom shows the current stage and batch (hosts done / failed /
  // running, the current step of each running host), rewritten in place; finished steps
  // scroll above it. Without `live`, plain lines only (logs, pipelines). Thread-safe.
  Progress(std::FILE* out, bool json, bool live = false)
      : out_(out), json_(json), live_(live && !json) {}

  void Event(const std::string& stage, const mimic::v1::Event& e);
  // Free text: stage headers, gates, budget decisions ({"note": ...} in JSON mode).
  void Note(const std::string& text);
  void HostDone(const HostOutcome& outcome);
  // A new batch starts: the live view counts its hosts.
  void BeginBatch(const std::string& stage, int batch, int batches,
                  const std::vector<std::string>& hosts);
  // The live status line as it is now ("" when not live).
  std::string StatusLine();
  // Dry runs (run --check, rollback --check): under each step, the files it would change, one
  // per line ("would create PATH", at most kMaxListedFiles per step), not only their count;
  // every line of a host's run says "(dry run: nothing written)" or "would ...".
  void SetDryRun(bool dry_run) { dry_run_ = dry_run; }
  // A rollback: files are "restored" (a file the run created is "deleted").
  void SetRollback(bool rollback) { rollback_ = rollback; }
  // 0: step results, warnings and errors. 1 (-v): also the steps' info log lines. 2 (-vv): also
  // debug lines, and every file each step changed (not only in dry runs), without the
  // kMaxListedFiles cut. At any level a file whose change carries a diff (--diff) is listed with
  // its diff indented under it.
  void SetVerbosity(int verbosity) { verbosity_ = verbosity; }
  static constexpr int kMaxListedFiles = 50;

 private:
  void PrintLocked(const std::string& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string StatusLineLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  common::Mutex mu_;
  std::FILE* out_;
  bool json_;
  bool live_;
  bool dry_run_ = false;
  bool rollback_ = false;
  int verbosity_ = 0;
  std::string stage_ ABSL_GUARDED_BY(mu_);
  int batch_ ABSL_GUARDED_BY(mu_) = 0;
  int batches_ ABSL_GUARDED_BY(mu_) = 0;
  // host -> "" (waiting), the running step, or "done"/"failed".
  std::map<std::string, std::string> hosts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_ROLLOUT_PROGRESS_H_
