// copy_keystores: every file of the source's repository/resources/security (JKS, PKCS12
// .p12/.pfx, .pem, .crt, ...) into the target. The operator's keystores win: a target file with
// different bytes is replaced (the new version's shipped one stays in the snapshot). Apply
// verifies each copy's sha256.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/steps/file_steps.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

constexpr char kSecurity[] = "repository/resources/security";

class CopyKeystoresStep final : public Step {
 public:
  std::string name() const override { return "copy_keystores"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    StepPlan plan;
    MirrorStats stats;
    RETURN_IF_ERROR(PlanMirror(ctx, homes, kSecurity, nullptr,
                               "replaces the new version's shipped keystore", &plan.changes,
                               &stats));
    FinishFileChangeSet(&plan.changes);
    for (const FileOp& op : plan.changes.ops) {
      if (op.kind == FileOp::Kind::kWrite && !op.expected_sha256.empty()) {
        StepLog(ctx, LogLevel::kInfo, absl::StrCat(op.path, ": replaced by the source's copy"));
      }
    }
    const int total = stats.changed() + stats.unchanged;
    if (total == 0) {
      plan.message = "no keystores in the source";
    } else if (stats.changed() == 0) {
      plan.message = absl::StrCat("up to date (", Count(total, "file"), ")");
    } else {
      plan.message =
          absl::StrCat(Count(stats.changed(), "keystore file"), " to copy (", stats.created,
                       " new, ", stats.updated, " replacing the target's)");
    }
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewCopyKeystoresStep() { return std::make_unique<CopyKeystoresStep>(); }

}  // namespace mimic::agent
