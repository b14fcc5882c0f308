// copy_custom_components: the operator's jars.
//   * dropins/: every file is copied (created, or replaced when the bytes differ), but the old
//     version's HL7 transport jars when hl7_transport runs in the same plan (it installs the
//     new version's); without hl7_transport in the plan they are carried, with a warning, never
//     dropped.
//   * lib/: a jar the target does not ship (no file of that name) is copied; a jar of the same
//     name but different bytes is reported and left alone (the operator decides); a jar whose
//     artifact the target ships in another version (foo-1.0.jar vs foo-2.0.jar) is reported
//     and not copied, since two versions of one library on the classpath break the server.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/engine/change_set.h"
#include "agent/steps/file_steps.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

// "mysql-connector-java-8.0.28.jar" -> "mysql-connector-java"; "h2_1.4.199.wso2v1.jar" -> "h2";
// "ojdbc8.jar" -> "ojdbc8". The version starts at the first '-' or '_' followed by a digit.
std::string ArtifactName(const std::string& file_name) {
  std::string stem = file_name;
  if (absl::EndsWithIgnoreCase(stem, ".jar")) stem.resize(stem.size() - 4);
  for (size_t i = 0; i + 1 < stem.size(); ++i) {
    if ((stem[i] == '-' || stem[i] == '_') && absl::ascii_isdigit(stem[i + 1])) {
      return stem.substr(0, i);
    }
  }
  return stem;
}

class CopyCustomComponentsStep final : public Step {
 public:
  std::string name() const override { return "copy_custom_components"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    StepPlan plan;
    MirrorStats dropins;
    // The HL7 transport's jars are built per MI version: the old version's must not be carried
    // over. hl7_transport installs the new version's from the operator's wso2mi-hl7 zip.
    bool hl7_step = false;
    if (ctx.plan != nullptr) {
      for (const mimic::v1::StepSpec& s : ctx.plan->steps()) {
        hl7_step = hl7_step || s.name() == "hl7_transport";
      }
    }
    std::vector<std::string> hl7_left, hl7_carried;
    auto not_hl7 = [&](const std::string& rel) {
      const std::string base = common::Basename(rel);
      if (absl::StrContains(base, "business.messaging.hl7") ||
          (absl::StartsWith(base, "openjpa-all") && absl::EndsWith(base, ".jar"))) {
        if (!hl7_step) {
          hl7_carried.push_back(base);
          return true;
        }
        hl7_left.push_back(base);
        return false;
      }
      return true;
    };
    RETURN_IF_ERROR(PlanMirror(ctx, homes, "dropins", not_hl7,
                               "replaces the target's different copy", &plan.changes, &dropins));
    for (const std::string& jar : hl7_left) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat("dropins/", jar, " is an HL7 transport jar of the old MI version: not "
                           "copied; hl7_transport installs the new version's"));
    }
    for (const std::string& jar : hl7_carried) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat("dropins/", jar, " is an HL7 transport jar of the old MI version; "
                           "hl7_transport is not in the plan, so it is carried as it is: replace "
                           "it with the target version's (wso2mi-hl7 zip)"));
    }

    // The target's lib/ jars by (directory, artifact).
    ASSIGN_OR_RETURN(std::vector<std::string> target_lib,
                     ListConfinedFiles(ctx, homes.target, "lib"));
    std::map<std::pair<std::string, std::string>, std::vector<std::string>> target_artifacts;
    for (const std::string& rel : target_lib) {
      if (!absl::EndsWithIgnoreCase(rel, ".jar")) continue;
      target_artifacts[{common::Dirname(rel), ArtifactName(common::Basename(rel))}].push_back(
          common::Basename(rel));
    }

    ASSIGN_OR_RETURN(std::vector<std::string> source_lib,
                     ListConfinedFiles(ctx, homes.source, "lib"));
    int lib_copy = 0, lib_same = 0;
    std::vector<std::string> differs, other_version;
    for (const std::string& rel : source_lib) {
      ASSIGN_OR_RETURN(std::string from, ctx.guard->ResolveUnder(homes.source, rel));
      ASSIGN_OR_RETURN(std::string to, ctx.guard->ResolveUnder(homes.target, rel));
      if (common::PathExists(to)) {
        ASSIGN_OR_RETURN(std::string from_sha, common::Sha256File(from));
        ASSIGN_OR_RETURN(std::string to_sha, common::Sha256File(to));
        if (from_sha == to_sha) {
          ++lib_same;
        } else {
          differs.push_back(rel);
          StepLog(ctx, LogLevel::kWarning,
                  absl::StrCat(rel,
                               ": the target has a different file of this name; not "
                               "replaced (compare them and copy by hand if the source's "
                               "is the one you need)"));
        }
        continue;
      }
      if (absl::EndsWithIgnoreCase(rel, ".jar")) {
        auto it =
            target_artifacts.find({common::Dirname(rel), ArtifactName(common::Basename(rel))});
        if (it != target_artifacts.end()) {
          const std::string others = absl::StrJoin(it->second, ", ");
          other_version.push_back(absl::StrCat(common::Basename(rel), " (target: ", others, ")"));
          StepLog(ctx, LogLevel::kWarning,
                  absl::StrCat(rel, ": target ships newer/other version ", others, "; not copied"));
          continue;
        }
      }
      ASSIGN_OR_RETURN(std::optional<FileOp> op, MakeCopyOp(from, to));
      if (op) {
        op->note = "custom jar the target does not ship";
        plan.changes.ops.push_back(std::move(*op));
        ++lib_copy;
      }
    }
    FinishFileChangeSet(&plan.changes);

    std::vector<std::string> parts;
    if (dropins.changed() > 0) {
      parts.push_back(absl::StrCat(Count(dropins.changed(), "dropins file"), " to copy"));
    }
    if (lib_copy > 0) parts.push_back(absl::StrCat(Count(lib_copy, "lib jar"), " to copy"));
    if (parts.empty()) parts.push_back("up to date");
    if (!differs.empty()) {
      parts.push_back(absl::StrCat(
          Count(differs.size(), "lib file"), differs.size() == 1 ? " differs" : " differ",
          " from the target's, not replaced: ", absl::StrJoin(differs, ", ")));
    }
    if (!other_version.empty()) {
      parts.push_back(absl::StrCat("target ships newer/other version of ",
                                   absl::StrJoin(other_version, ", "), ": not copied"));
    }
    plan.message = absl::StrJoin(parts, "; ");
    StepLog(ctx, LogLevel::kInfo,
            absl::StrCat(plan.message, " (", dropins.unchanged + lib_same, " already identical)"));
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewCopyCustomComponentsStep() {
  return std::make_unique<CopyCustomComponentsStep>();
}

}  // namespace mimic::agent
