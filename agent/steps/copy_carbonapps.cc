// copy_carbonapps: every *.car in the source's repository/deployment/server/carbonapps into the
// same folder of the target (created when absent, replaced when the bytes differ).
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/steps/steps.h"
#include "agent/steps/file_steps.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

constexpr char kCarbonapps[] = "repository/deployment/server/carbonapps";

class CopyCarbonappsStep final : public Step {
 public:
  std::string name() const override { return "copy_carbonapps"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    StepPlan plan;
    MirrorStats stats;
    // Only top-level *.car files: that is what the CApp deployer reads.
    auto is_car = [](const std::string& rel) {
      return rel.find('/', sizeof(kCarbonapps)) == std::string::npos &&
             absl::EndsWithIgnoreCase(rel, ".car");
    };
    RETURN_IF_ERROR(PlanMirror(ctx, homes, kCarbonapps, is_car,
                               "replaces the target's different copy", &plan.changes, &stats,
                               DatamapperConvertedCheck(ctx)));
    FinishFileChangeSet(&plan.changes);
    const int total = stats.changed() + stats.unchanged;
    if (total == 0) {
      plan.message = "no CApps in the source";
    } else if (stats.changed() == 0) {
      plan.message = absl::StrCat("up to date (", Count(total, "CApp"), ")");
    } else {
      plan.message =
          absl::StrCat(Count(stats.changed(), "CApp"), " to copy (", stats.created, " new, ",
                       stats.updated, " replaced, ", stats.unchanged, " already there)");
    }
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewCopyCarbonappsStep() { return std::make_unique<CopyCarbonappsStep>(); }

}  // namespace mimic::agent
