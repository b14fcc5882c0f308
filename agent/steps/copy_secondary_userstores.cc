// copy_secondary_userstores: every secondary user store definition,
// repository/deployment/server/userstores/*.xml (one file per domain, dots replaced by '_'),
// from the source to the same folder of the target (the 4.0 -> 4.2 guide, "Migrating secondary
// user stores"). Secondary user stores exist from MI 4.1 on (MI-FACTS §1.1, Summary 8), so an
// EI 7.1 or MI 4.0 source normally has none: the step is then skipped. Encrypted passwords in
// these files stay readable because copy_keystores carries the source's keystores over.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/steps.h"
#include "common/mi/mi_version.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

constexpr char kUserstores[] = "repository/deployment/server/userstores";

// True for versions before 4.1.0 ("1.2.0", "4.0.0"), which do not read userstores/.
bool BeforeSecondaryUserstores(const std::string& version) {
  return absl::StartsWith(version, "1.") || absl::StartsWith(version, "4.0.") || version == "4.0";
}

class CopySecondaryUserstoresStep final : public Step {
 public:
  std::string name() const override { return "copy_secondary_userstores"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    StepPlan plan;
    MirrorStats stats;
    int ignored = 0;
    // Only top-level *.xml files: that is what the UserStoreDeploymentManager reads.
    auto is_userstore = [&ignored](const std::string& rel) {
      const bool xml = rel.find('/', sizeof(kUserstores)) == std::string::npos &&
                       absl::EndsWithIgnoreCase(rel, ".xml");
      if (!xml) ++ignored;
      return xml;
    };
    RETURN_IF_ERROR(PlanMirror(ctx, homes, kUserstores, is_userstore,
                               "replaces the target's different user store definition",
                               &plan.changes, &stats));
    if (ignored > 0) {
      StepLog(ctx, LogLevel::kInfo,
              absl::StrCat(Count(ignored, "file"), " in ", kUserstores,
                           " not copied: only top-level *.xml files define user stores"));
    }
    const int total = stats.changed() + stats.unchanged;
    if (total == 0) {
      plan.forced_status = mimic::v1::STEP_SKIPPED;
      plan.message = absl::StrCat("no secondary user stores in the source (", kUserstores,
                                  "/*.xml; they exist from MI 4.1 on)");
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }
    FinishFileChangeSet(&plan.changes);

    std::string target_version = ctx.target_version;
    if (target_version.empty()) {
      absl::StatusOr<common::MiVersion> v = common::DetectMiVersion(homes.target);
      if (v.ok()) target_version = v->version;
    }
    if (BeforeSecondaryUserstores(target_version)) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat("the target is MI ", target_version,
                           ", which does not read secondary user stores (MI 4.1+); the files "
                           "are copied but stay unused"));
    }

    if (stats.changed() == 0) {
      plan.message = absl::StrCat("up to date (", Count(total, "secondary user store"), ")");
    } else {
      plan.message =
          absl::StrCat(Count(stats.changed(), "secondary user store"), " to copy (", stats.created,
                       " new, ", stats.updated, " replaced, ", stats.unchanged, " already there)");
    }
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewCopySecondaryUserstoresStep() {
  return std::make_unique<CopySecondaryUserstoresStep>();
}

}  // namespace mimic::agent
