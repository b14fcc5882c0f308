// copy_deployment: the rest of the source's repository/deployment (synapse-configs,
// dataservices, ..., and its empty folders) into the target, without clobbering the files the
// new version ships unless the operator changed them. Paths under the old MI home inside the
// carried text files are rewritten to the target home (MakeCarryOp). server/carbonapps/
// (copy_carbonapps) and server/userstores/ (copy_secondary_userstores) belong to other steps.
//
// Per source file: absent in the target -> create; same bytes -> nothing; different ->
//   * the source file is the source version's shipped default (mi_defaults.cc): the operator
//     never changed it, so the target keeps the new version's file;
//   * otherwise the operator's file wins and replaces the target's (a shipped file replaced this
//     way gets a note and a warning);
//   * param overwrite_shipped = "never": every differing target file is kept and reported.
// A text file naming EI 7.1's HL7 classes is carried with MI 4.x's names (MakeCarryOp).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/engine/change_set.h"
#include "agent/steps/file_steps.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

constexpr char kDeployment[] = "repository/deployment";
constexpr char kReplacedShippedNote[] =
    "operator-modified shipped file replaced; new version's default saved in snapshot";

// What this step carries: everything under repository/deployment but the folders of
// copy_carbonapps and copy_secondary_userstores.
bool Mine(const std::string& rel) {
  return !absl::StartsWith(rel, "repository/deployment/server/carbonapps/") &&
         !absl::StartsWith(rel, "repository/deployment/server/userstores/");
}

class CopyDeploymentStep final : public Step {
 public:
  std::string name() const override { return "copy_deployment"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    ASSIGN_OR_RETURN(const std::string overwrite, ctx.StringParam("overwrite_shipped"));
    ASSIGN_OR_RETURN(Versions versions, ResolveVersions(ctx, homes));
    const std::map<std::string, std::string>* shipped = common::ShippedDeploymentDefaults(versions.source);
    if (shipped == nullptr) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat("no table of the files MI ", versions.source,
                           " ships; every differing file counts as operator-modified"));
    }
    ASSIGN_OR_RETURN(std::vector<std::string> files,
                     ListConfinedFiles(ctx, homes.source, kDeployment));

    StepPlan plan;
    int created = 0, replaced = 0, unchanged = 0;
    std::vector<std::string> kept_default, kept_never, replaced_shipped;
    for (const std::string& rel : files) {
      if (!Mine(rel)) continue;
      ASSIGN_OR_RETURN(std::string from, ctx.guard->ResolveUnder(homes.source, rel));
      ASSIGN_OR_RETURN(std::string to, ctx.guard->ResolveUnder(homes.target, rel));
      ASSIGN_OR_RETURN(std::optional<FileOp> op, MakeCarryOp(ctx, homes, rel, from, to));
      if (!op) {
        ++unchanged;
        continue;
      }
      if (op->expected_sha256.empty()) {
        ++created;
        plan.changes.ops.push_back(std::move(*op));
        continue;
      }
      // Present in both, different bytes.
      const bool is_shipped = shipped != nullptr && shipped->count(rel) > 0;
      if (is_shipped && shipped->at(rel) == op->new_sha256) {
        kept_default.push_back(rel);
        StepLog(ctx, LogLevel::kInfo,
                absl::StrCat(rel, ": unchanged MI ", versions.source, " default; keeping MI ",
                             versions.target, "'s file"));
        continue;
      }
      if (overwrite == "never") {
        kept_never.push_back(rel);
        StepLog(ctx, LogLevel::kWarning,
                absl::StrCat(rel,
                             ": differs from the source's; kept (overwrite_shipped = "
                             "\"never\")"));
        continue;
      }
      if (is_shipped) {
        op->note = op->note.empty() ? kReplacedShippedNote
                                    : absl::StrCat(kReplacedShippedNote, "; ", op->note);
        replaced_shipped.push_back(rel);
        StepLog(ctx, LogLevel::kWarning,
                absl::StrCat(rel, ": the operator changed this shipped MI ", versions.source,
                             " file; it replaces MI ", versions.target,
                             "'s (whose default stays in the snapshot): check it still suits ",
                             versions.target));
      } else {
        op->note = op->note.empty()
                       ? "replaces the target's different copy"
                       : absl::StrCat("replaces the target's different copy; ", op->note);
      }
      ++replaced;
      plan.changes.ops.push_back(std::move(*op));
    }
    ASSIGN_OR_RETURN(const int folders,
                     PlanEmptyDirs(ctx, homes, kDeployment, Mine, &plan.changes));
    FinishFileChangeSet(&plan.changes);

    std::vector<std::string> parts;
    if (created + replaced > 0) {
      parts.push_back(absl::StrCat(Count(created + replaced, "file"), " to copy (", created,
                                   " new, ", replaced, " replaced)"));
    } else if (folders == 0) {
      parts.push_back("up to date");
    }
    if (folders > 0) parts.push_back(absl::StrCat(Count(folders, "empty folder"), " to make"));
    if (!replaced_shipped.empty()) {
      parts.push_back(absl::StrCat(Count(replaced_shipped.size(), "operator-modified shipped file"),
                                   " among them"));
    }
    if (!kept_default.empty()) {
      parts.push_back(absl::StrCat(Count(kept_default.size(), "unmodified shipped file"),
                                   " left as the new version ships ",
                                   kept_default.size() == 1 ? "it" : "them"));
    }
    if (!kept_never.empty()) {
      parts.push_back(
          absl::StrCat(Count(kept_never.size(), "differing file"),
                       " kept (overwrite_shipped = never): ", absl::StrJoin(kept_never, ", ")));
    }
    plan.message = absl::StrJoin(parts, "; ");
    StepLog(ctx, LogLevel::kInfo,
            absl::StrCat(plan.message, "; ", unchanged, " already identical"));
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewCopyDeploymentStep() { return std::make_unique<CopyDeploymentStep>(); }

}  // namespace mimic::agent
