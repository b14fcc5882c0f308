// copy_registry: the file-based registry, <MI_HOME>/registry/{config,governance,local}/**, from
// the source to the target (MI-FACTS §1.1, Summary 8). These are the registry resources that are
// not inside CApps (resources put there by hand or by older deployments), with their properties
// in .metadata/*.meta files. Every file is created in the target when absent and replaced when
// its bytes differ (text resources: paths under the old MI home moved to the target home, EI
// 7.1's HL7 class names to MI 4.x's: MakeCarryOp); empty collections (folders) are made too;
// nothing is deleted from the target. Skipped when the source has no registry/ folder (MI 1.2.0
// and 4.0.0 create it at runtime only).
//
// When the source's registry.xml points a registry root elsewhere (ConfigRegRoot, GovRegRoot,
// LocalRegRoot, RegRoot), that folder is not under MI_HOME: the step says so and leaves it.
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/steps/steps.h"
#include "agent/steps/file_steps.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;

constexpr char kRegistry[] = "registry";
constexpr const char* kPartitions[] = {"config", "governance", "local"};
constexpr char kRegistryXml[] = "repository/deployment/server/synapse-configs/default/registry.xml";

// `xml` without its <!-- ... --> comments (the shipped registry.xml has the root parameters
// commented out).
std::string StripXmlComments(const std::string& xml) {
  std::string out;
  size_t pos = 0;
  while (pos < xml.size()) {
    size_t open = xml.find("<!--", pos);
    if (open == std::string::npos) {
      out.append(xml, pos, std::string::npos);
      break;
    }
    out.append(xml, pos, open - pos);
    size_t close = xml.find("-->", open + 4);
    if (close == std::string::npos) break;
    pos = close + 3;
  }
  return out;
}

// Warns about registry roots the source's registry.xml moves out of MI_HOME/registry.
void WarnAboutMovedRoots(const StepContext& ctx, const Homes& homes) {
  absl::StatusOr<std::string> path = ctx.guard->ResolveUnder(homes.source, kRegistryXml);
  if (!path.ok() || !common::IsRegularFile(*path)) return;
  absl::StatusOr<std::string> xml = common::ReadFile(*path);
  if (!xml.ok()) return;
  const std::string live = StripXmlComments(*xml);
  std::vector<std::string> moved;
  for (const char* param : {"ConfigRegRoot", "GovRegRoot", "LocalRegRoot", "RegRoot"}) {
    for (const char* quote : {"\"", "'"}) {
      if (live.find(absl::StrCat("name=", quote, param, quote)) != std::string::npos) {
        moved.push_back(param);
        break;
      }
    }
  }
  if (moved.empty()) return;
  StepLog(ctx, LogLevel::kWarning,
          absl::StrCat(kRegistryXml, " sets ", absl::StrJoin(moved, ", "),
                       ": registry resources under that root live outside MI_HOME/registry and "
                       "are not copied by this step; copy that folder yourself"));
}

class CopyRegistryStep final : public Step {
 public:
  std::string name() const override { return "copy_registry"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    StepPlan plan;
    WarnAboutMovedRoots(ctx, homes);
    ASSIGN_OR_RETURN(std::string registry, ctx.guard->ResolveUnder(homes.source, kRegistry));
    if (!common::IsDirectory(registry)) {
      plan.forced_status = mimic::v1::STEP_SKIPPED;
      plan.message = "the source has no registry/ folder (no file-registry resources to copy)";
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }

    // Anything in registry/ beside the three partitions is not read by MI: report, not copy.
    std::error_code ec;
    std::vector<std::string> others;
    for (fs::directory_iterator it(registry, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string entry = it->path().filename().string();
      bool known = false;
      for (const char* p : kPartitions) known = known || entry == p;
      if (!known) others.push_back(entry);
    }
    if (!others.empty()) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat("registry/ also holds ", absl::StrJoin(others, ", "),
                           "; MI reads only config/, governance/ and local/, so these are not "
                           "copied"));
    }

    MirrorStats stats;
    for (const char* partition : kPartitions) {
      RETURN_IF_ERROR(PlanMirror(ctx, homes, common::JoinPath(kRegistry, partition), nullptr,
                                 "replaces the target's different registry resource", &plan.changes,
                                 &stats, DatamapperConvertedCheck(ctx)));
    }
    int folders = 0;
    for (const char* partition : kPartitions) {
      ASSIGN_OR_RETURN(const int n,
                       PlanEmptyDirs(ctx, homes, common::JoinPath(kRegistry, partition), nullptr,
                                     &plan.changes));
      folders += n;
    }
    FinishFileChangeSet(&plan.changes);

    const int total = stats.changed() + stats.unchanged;
    if (total == 0) {
      plan.message = "up to date (the source's registry/ holds no resources)";
    } else if (stats.changed() == 0) {
      plan.message = absl::StrCat("up to date (", Count(total, "registry file"), ")");
    } else {
      plan.message =
          absl::StrCat(Count(stats.changed(), "registry file"), " to copy (", stats.created,
                       " new, ", stats.updated, " replaced, ", stats.unchanged, " already there)");
    }
    if (folders > 0) {
      plan.message =
          absl::StrCat(plan.message, "; ", Count(folders, "empty collection"), " to make");
    }
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewCopyRegistryStep() { return std::make_unique<CopyRegistryStep>(); }

}  // namespace mimic::agent
