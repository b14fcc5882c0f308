// Shared harness of the step unit tests: temporary roots, writable copies of the fixture MI
// homes, tree listings, StepContexts confined by a PathGuard, and the "exact, idempotent,
// reversible" contract every file step keeps.
#ifndef MIMIC_AGENT_ENGINE_STEP_TEST_UTIL_H_
#define MIMIC_AGENT_ENGINE_STEP_TEST_UTIL_H_

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/engine/change_set.h"
#include "agent/engine/step.h"
#include "common/base/path_guard.h"

namespace mimic::agent::testing {

// rel path -> "d <mode>" or "f <mode> <sha256>", for everything under `root`.
std::map<std::string, std::string> Tree(const std::filesystem::path& root);

void Write(const std::filesystem::path& p, const std::string& text);
std::string Read(const std::filesystem::path& p);

// Creates a fresh directory <TempDir>/<prefix>XXXXXX and stores its canonical path in `*out`
// (fatal failure when it cannot). Wrap in ASSERT_NO_FATAL_FAILURE.
void MakeTempRoot(const std::string& prefix, std::filesystem::path* out);

// Makes (once per test binary, without keystores) a target MI home of every version with
// mimic's own generator (tests/mi_home). Call it from SetUpTestSuite(); CopyMiHome calls it too.
void PrepareMiHomes();

// Copies the subfolders `dirs` of the generated target MI home of `version` into `home`.
// `writable`: directories 0755, files 0644; otherwise a plain recursive copy.
void CopyMiHome(const std::string& version, const std::filesystem::path& home,
                const std::vector<std::string>& dirs = {"conf", "repository", "updates"},
                bool writable = true);

// The paths of `plan`'s ops relative to `home`.
std::vector<std::string> OpPaths(const StepPlan& plan, const std::filesystem::path& home);
// The first op of `plan` whose path ends with `suffix`, or null.
const FileOp* FindOp(const StepPlan& plan, const std::string& suffix);

// Applies `cs` with the snapshot of run directory `run_dir`, every path beneath "/" (no
// symlink followed on the way).
absl::Status ApplyInRun(const std::string& run_dir, const ChangeSet& cs,
                        std::vector<mimic::v1::FileChange>* applied = nullptr);

// Fixture state shared by the step tests: a root with homes/ (the guard's only root) and
// state/, a source and a target home, the plan and spec a StepContext points at, and the logs.
class StepHarness {
 protected:
  // root_ = a fresh temporary directory; guard_ confines to root_/homes.
  void MakeRoot(const std::string& prefix);
  void GuardHomes();

  // root_/state/runs/<id>.
  std::string Run(const std::string& id) const;

  // Resets spec_ to `name` with `params` and returns a context on src_/dst_ with state in
  // root_/state, run directory `run_dir`, logging into logs_ ("W "/"I " prefixed when
  // `level_prefix`).
  StepContext Context(const std::string& name, const std::map<std::string, std::string>& params,
                      bool check, const std::string& run_dir, bool level_prefix = true);

  // Applies `cs` as run `id` (its own snapshot).
  absl::Status ApplyAs(const std::string& id, const ChangeSet& cs,
                       std::vector<mimic::v1::FileChange>* applied = nullptr) const;

  std::string Logs() const;

  // The contract of every file step; returns the first plan. `plan_step` plans step `name`
  // (called twice); the second plan is empty and its message says `again_says`. With
  // `expect_unforced` the first plan must not force a status.
  StepPlan ExpectExactIdempotentReversible(
      const std::string& name, const std::function<absl::StatusOr<StepPlan>()>& plan_step,
      const std::string& again_says, bool expect_unforced);

  std::filesystem::path root_, src_, dst_;
  std::unique_ptr<common::PathGuard> guard_;
  mimic::v1::HostPlan plan_;
  mimic::v1::StepSpec spec_;
  std::vector<std::string> logs_;
};

}  // namespace mimic::agent::testing

#endif  // MIMIC_AGENT_ENGINE_STEP_TEST_UTIL_H_
