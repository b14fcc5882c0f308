// snapshot_target: lists every target path the later steps of this run will touch (existing
// directories left out), so the run saves them all into its snapshot before the first write
// (the run does the saving). Paths are checked by ctx.guard.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/steps/file_steps.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

class SnapshotTargetStep final : public Step {
 public:
  std::string name() const override { return "snapshot_target"; }
  bool ChangesOnlyItsChangeSet() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    StepPlan plan;
    if (!ctx.paths_of_later_steps) {
      plan.message = "0 paths to snapshot (no later steps to plan)";
      return plan;
    }
    ASSIGN_OR_RETURN(std::vector<std::string> paths, ctx.paths_of_later_steps());
    if (ctx.guard != nullptr) {
      for (std::string& p : paths) {
        ASSIGN_OR_RETURN(p, ctx.guard->Resolve(p));
      }
    }
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
    // Directories have no bytes to save; the ones a run creates are recorded as it creates them.
    std::erase_if(paths, [](const std::string& p) { return common::IsDirectory(p); });
    plan.message = absl::StrCat(Count(paths.size(), "path"), " to snapshot");
    for (const std::string& p : paths) StepLog(ctx, LogLevel::kDebug, "will save " + p);
    plan.snapshot_paths = std::move(paths);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewSnapshotTargetStep() { return std::make_unique<SnapshotTargetStep>(); }

}  // namespace mimic::agent
