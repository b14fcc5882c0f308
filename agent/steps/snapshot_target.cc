// snapshot_target: lists every target path the later steps of this run will touch (existing
// directories left out), so the run saves them all into its snapshot before the first write
// (the run does the saving). Paths are checked by ctx.guard.
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <set>
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
    // Directories have no bytes to save; the ones a run creates are recorded as it creates them.
    // The guard's lstat of each path tells a folder; a symlink needs a stat of its own.
    std::set<std::string> folders;
    if (ctx.guard != nullptr) {
      for (std::string& p : paths) {
        struct stat lst;
        ASSIGN_OR_RETURN(p, ctx.guard->Resolve(p, &lst));
        if (S_ISDIR(lst.st_mode) || (S_ISLNK(lst.st_mode) && common::IsDirectory(p))) {
          folders.insert(p);
        }
      }
    } else {
      for (const std::string& p : paths) {
        if (common::IsDirectory(p)) folders.insert(p);
      }
    }
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
    std::erase_if(paths, [&folders](const std::string& p) { return folders.count(p) > 0; });
    plan.message = absl::StrCat(Count(paths.size(), "path"), " to snapshot");
    for (const std::string& p : paths) StepLog(ctx, LogLevel::kDebug, "will save " + p);
    plan.snapshot_paths = std::move(paths);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewSnapshotTargetStep() { return std::make_unique<SnapshotTargetStep>(); }

}  // namespace mimic::agent
