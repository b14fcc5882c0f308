// The step framework. A step only *plans*: it reads the source and target MI homes and returns
// the exact change set it wants (each file with the sha256 it expects to find now and the bytes
// or source it will write). Check mode reports that change set; apply mode hands it to
// ApplyChangeSet(), which re-checks every expected sha256 just before writing, saves the
// original into the run's snapshot, writes to a temporary name, fsyncs and renames. So a dry
// run is exact by construction and a second apply finds an empty change set.
#ifndef MIMIC_AGENT_ENGINE_STEP_H_
#define MIMIC_AGENT_ENGINE_STEP_H_

#include <any>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/path_guard.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

class Snapshot;

// One file-system operation of a change set.
struct FileOp {
  // kRmdir removes an empty directory (rollback of a directory a run created).
  enum class Kind { kWrite, kDelete, kMkdir, kRmdir };
  Kind kind = Kind::kWrite;
  std::string path;             // absolute, already confined by the PathGuard
  std::string expected_sha256;  // what must be there now; "" = must not exist
  // kWrite: exactly one of these is the new content.
  std::string source_path;      // copy from this file (absolute, confined)
  std::string content;          // or write these bytes
  bool has_content = false;
  std::string new_sha256;       // sha256 of the bytes that will be written
  uint64_t new_size = 0;
  uint32_t mode = 0644;         // permission bits of the written file
  // Owner and group of the written file; -1 = those of the file it replaces, or of its folder
  // when new (rollback sets them from the snapshot).
  int64_t uid = -1;
  int64_t gid = -1;
  // kDelete of a temporary file an interrupted write left behind: removed without a snapshot
  // (it was never part of the tree), after the usual sha256 re-check.
  bool temp_debris = false;
  std::string note;             // shown beside the change ("operator changed shipped file", ...)
};

struct ChangeSet {
  std::vector<FileOp> ops;
  std::vector<mimic::v1::ConfigChange> config_changes;  // already redacted
  bool empty() const { return ops.empty(); }
};

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// What a step learnt from files no step of the run writes (the source home), kept for the later
// steps of the same run, so that a home is scanned once a run: preflight's HL7 detection serves
// hl7_transport. Owned by the run, which empties it after a step that may act beyond its
// change set (Step::ChangesOnlyItsChangeSet). A run's steps plan one at a time: no lock.
class RunMemo {
 public:
  // The value Put under `key`, or null (none, or one of another type).
  template <typename T>
  const T* Find(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() ? nullptr : std::any_cast<T>(&it->second);
  }
  template <typename T>
  void Put(const std::string& key, T value) {
    values_[key] = std::move(value);
  }
  void Clear() { values_.clear(); }
  size_t size() const { return values_.size(); }

 private:
  std::map<std::string, std::any> values_;
};

// What a step sees. Owned by the run; valid for the duration of one Plan() call.
struct StepContext {
  const mimic::v1::HostPlan* plan = nullptr;
  const mimic::v1::StepSpec* spec = nullptr;
  std::string source_home;     // absolute, confined
  std::string target_home;     // absolute, confined
  std::string source_version;  // detected by preflight ("" before it ran)
  std::string target_version;
  const common::PathGuard* guard = nullptr;
  bool check = false;
  // Log sink: one line per call; the text must already be free of secrets.
  std::function<void(LogLevel, const std::string&)> log;
  // Paths that later steps of this run will touch (filled by snapshot_target's planning pass).
  std::string state_dir;       // the agent's state directory
  std::string run_dir;         // this run's directory under state_dir
  // Plans every later step of this run (read-only) and returns the union of the target paths
  // their change sets touch. Set by the run for snapshot_target; may be empty in unit tests.
  std::function<absl::StatusOr<std::vector<std::string>>()> paths_of_later_steps;
  // Check mode (and snapshot planning): the writes earlier steps of this run planned but did
  // not make, by absolute path. A step that reads what an earlier step writes (a CApp
  // copy_carbonapps brings, then migrate_datamapper rewrites) reads through
  // ReadPlanned()/ListPlanned() so its plan is the one apply will compute. Null in apply mode.
  const std::map<std::string, FileOp>* overlay = nullptr;
  // The run's cancel token: set when the operator cancels the run or the agent stops. A step
  // hands it to every subprocess it runs (SubprocessOptions::cancel: the child's process group
  // gets SIGTERM, then SIGKILL) and checks it in long loops (CheckCancelled), ending with the
  // CANCELLED status. Null in unit tests that do not cancel.
  const std::atomic<bool>* cancel = nullptr;
  // The run's memo (see RunMemo). Null where a step plans alone (unit tests, GetFacts): each
  // step then reads for itself.
  RunMemo* memo = nullptr;
  std::string Param(const std::string& key, const std::string& def = "") const;
  bool cancelled() const { return cancel != nullptr && cancel->load(); }
  // CANCELLED ("`what`: cancelled ...") once the token is set, else OK.
  absl::Status CheckCancelled(const std::string& what) const;
  // The param checked against its step's schema (common/config/step_params.h, the one the
  // controller checks plans with), or the schema's default when absent. INVALID_ARGUMENT
  // naming the step, the param and the valid values.
  bool HasParam(const std::string& key) const;
  absl::StatusOr<std::string> StringParam(const std::string& key) const;
  absl::StatusOr<int64_t> IntParam(const std::string& key) const;
  absl::StatusOr<bool> BoolParam(const std::string& key) const;
};

// Result of planning a step.
struct StepPlan {
  // kSkipped: the step does not apply here (message says why). kFailed: with message.
  mimic::v1::StepStatus forced_status = mimic::v1::STEP_STATUS_UNSPECIFIED;
  std::string message;
  ChangeSet changes;
  // Facts the step learnt, for later steps and the run's report ("source_version",
  // "target_version", "migration_chain"); the run copies them into StepContext.
  std::map<std::string, std::string> facts;
  // Target paths to save into the run's snapshot before anything is written (snapshot_target).
  std::vector<std::string> snapshot_paths;
};

class Step {
 public:
  virtual ~Step() = default;
  virtual std::string name() const = 0;
  // Reads only. Returns the change set to apply (empty when the target is already right).
  // A non-OK status fails the step with that message.
  virtual absl::StatusOr<StepPlan> Plan(StepContext& ctx) = 0;
  // True when Plan() only reads (besides scratch space of its own) and returns the same plan
  // whatever ctx.check says, given the same files (through ctx.overlay in check mode). A run
  // then applies the plan snapshot_target made of this step ahead (check mode, over the planned
  // writes of the steps before it) instead of planning it again: the dry run's plan is the
  // applied plan, and each op's expected sha256 still guards against a change since. False (the
  // default) for steps that act in apply mode (exec, verify, databases).
  virtual bool PlansFilesOnly() const { return false; }
  // True when, in apply mode, the step changes nothing but through its change set (and the
  // run's snapshot), so what the run's memo holds stays true after it. After any other step
  // (exec, verify, databases) the run empties its memo.
  virtual bool ChangesOnlyItsChangeSet() const { return PlansFilesOnly(); }
};

// Makes the Step for a catalogue name, or nullptr when the name is unknown. The engine takes
// one from whoever builds it (the agent passes agent/steps' MakeStep).
using StepFactory = std::function<std::unique_ptr<Step>(const std::string& name)>;

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_STEP_H_
