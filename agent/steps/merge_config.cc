// merge_config: merges the source's conf/deployment.toml into the target's, key by key, with
// the version rules of the migration (common/toml_merge.h), after moving values that are paths
// under the old MI home to the target home (common/mi/home_paths.h; each one logged). The
// change set is one write of the target's conf/deployment.toml when the merged text differs; the
// reported config changes are the merge's non-"keep" changes, secrets redacted. A TOML error
// fails the step (the message names file:line:col) and nothing is written.
// It also carries what the operator changed outside deployment.toml -- start scripts,
// conf/log4j2.properties, other conf/ files -- by three-way merge (agent/steps/conf_edits.h): one
// write per target file that changes; a merge conflict fails the step and nothing is written.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/engine/change_set.h"
#include "agent/steps/conf_edits.h"
#include "agent/steps/file_steps.h"
#include "common/base/fs.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "common/config/toml_load.h"
#include "common/mi/home_paths.h"
#include "common/mi/mi_version.h"
#include "common/mi/toml_merge.h"

namespace mimic::agent {
namespace {

constexpr char kToml[] = "conf/deployment.toml";
constexpr char kDefaultKeystore[] = "repository/resources/security/wso2carbon.jks";


class MergeConfigStep final : public Step {
 public:
  std::string name() const override { return "merge_config"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    ASSIGN_OR_RETURN(std::string source_path, ctx.guard->ResolveUnder(homes.source, kToml));
    ASSIGN_OR_RETURN(std::string target_path, ctx.guard->ResolveUnder(homes.target, kToml));
    for (const std::string& p : {source_path, target_path}) {
      if (!common::IsRegularFile(p)) {
        return absl::FailedPreconditionError(absl::StrCat(p, " not found"));
      }
    }
    // Bounded and regular (ReadConfigFile): a 1 GiB deployment.toml is refused, not merged.
    ASSIGN_OR_RETURN(std::string source_text, common::ReadConfigFile(source_path));
    // Values that are paths under the old MI home move to the target home before the merge, so
    // the change list shows the values the target gets.
    common::HomePathRewrite moved = common::RewriteHomePaths(
        source_text, common::CarriedFormat::kToml, homes.source, homes.target);
    LogHomePathFindings(ctx, kToml, moved.findings, homes);
    source_text = std::move(moved.text);
    // As migrate_userstore_config (earlier in the run) will have left it: exact in check mode.
    ASSIGN_OR_RETURN(std::string target_text, ReadPlanned(ctx, target_path));
    ASSIGN_OR_RETURN(Versions versions, ResolveVersions(ctx, homes));

    common::MergeOptions opts;
    opts.from_version = versions.source;
    opts.to_version = versions.target;
    ASSIGN_OR_RETURN(opts.conflict, ctx.StringParam("conflict"));
    if (ctx.spec != nullptr) opts.overrides_toml = ctx.spec->params_toml();
    // Lets the merge tell the target's operator-set values (a conflict) from its defaults.
    if (const std::string* def = common::ShippedDeploymentToml(versions.target); def != nullptr) {
      opts.target_default_text = *def;
    }
    // Which keystore table a 1.2.0 source read depends on its update level (the same reading
    // preflight puts in the run's facts).
    opts.source_update_level = common::DetectUpdateLevel(homes.source);
    if (ctx.HasParam("keystore_primary_update_level")) {
      ASSIGN_OR_RETURN(opts.keystore_primary_update_level,
                       ctx.IntParam("keystore_primary_update_level"));
    }
    ASSIGN_OR_RETURN(std::string default_jks,
                     ctx.guard->ResolveUnder(homes.target, kDefaultKeystore));
    opts.target_has_wso2carbon_jks = ReadPlanned(ctx, default_jks).ok();
    ASSIGN_OR_RETURN(
        common::MergeResult merged,
        common::MergeDeploymentToml(source_text, source_path, target_text, target_path, opts));
    for (const std::string& w : merged.warnings) {
      StepLog(ctx, LogLevel::kWarning, common::RedactText(w));
    }

    ASSIGN_OR_RETURN(std::string keep, ctx.StringParam("keep_target"));
    std::set<std::string> keep_target;
    for (absl::string_view p : absl::StrSplit(keep, ',', absl::SkipWhitespace())) {
      keep_target.insert(std::string(absl::StripAsciiWhitespace(p)));
    }
    ASSIGN_OR_RETURN(ConfEdits edits, PlanConfEdits(ctx, homes, versions, keep_target));
    for (const std::string& n : edits.not_carried) StepLog(ctx, LogLevel::kWarning, n);
    if (!edits.regenerated.empty()) {
      StepLog(ctx, LogLevel::kInfo,
              absl::StrCat(Count(edits.regenerated.size(), "conf file"),
                           " differ from what MI ", versions.source, " ships but MI regenerates ",
                           edits.regenerated.size() == 1 ? "it" : "them",
                           " from deployment.toml at start, so ",
                           edits.regenerated.size() == 1 ? "it is" : "they are",
                           " not carried (a setting made there belongs in deployment.toml): ",
                           absl::StrJoin(edits.regenerated, ", ")));
    }
    const std::string edits_said = absl::StrCat(
        "; outside deployment.toml: ", Count(edits.changes.size(), "file"), " carried",
        edits.not_carried.empty() ? "" : absl::StrCat(", ", edits.not_carried.size(), " not carried"),
        edits.regenerated.empty()
            ? ""
            : absl::StrCat(", ", edits.regenerated.size(), " regenerated by MI at start"));

    StepPlan plan;
    std::map<std::string, int> by_action;
    int kept = 0;
    std::vector<mimic::v1::ConfigChange> reported;
    for (const mimic::v1::ConfigChange& c : merged.changes) {
      if (c.action() == "keep") {
        ++kept;
        continue;
      }
      ++by_action[c.action()];
      mimic::v1::ConfigChange r = common::RedactConfigChange(c);
      if (r.file().empty()) r.set_file(target_path);
      reported.push_back(std::move(r));
    }
    ASSIGN_OR_RETURN(std::optional<FileOp> op,
                     MakePlannedWriteOp(ctx, target_path, merged.merged_text, 0644,
                                 absl::StrCat("merged from ", source_path)));
    if (!op && edits.ops.empty()) {
      plan.message = absl::StrCat("up to date (", Count(kept, "key"), " unchanged", edits_said, ")");
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }
    if (op) plan.changes.ops.push_back(std::move(*op));
    plan.changes.config_changes = std::move(reported);
    for (FileOp& o : edits.ops) plan.changes.ops.push_back(std::move(o));
    FinishFileChangeSet(&plan.changes);  // an operator's conf/ file may come in a new folder
    for (mimic::v1::ConfigChange& c : edits.changes) {
      plan.changes.config_changes.push_back(std::move(c));
    }
    std::vector<std::string> counts;
    for (const auto& [action, n] : by_action) counts.push_back(absl::StrCat(n, " ", action));
    plan.message = absl::StrCat(
        Count(plan.changes.config_changes.size() - edits.changes.size(), "config change"),
        counts.empty() ? "" : absl::StrCat(" (", absl::StrJoin(counts, ", "), ")"), ", ",
        Count(kept, "key"), " unchanged, ", Count(merged.warnings.size(), "warning"), edits_said);
    StepLog(ctx, LogLevel::kInfo,
            absl::StrCat(plan.message, "; MI ", versions.source, " -> ", versions.target));
    // The toml's changes (conf_edits logged its own).
    const size_t toml_changes = plan.changes.config_changes.size() - edits.changes.size();
    for (size_t i = 0; i < toml_changes; ++i) {
      const mimic::v1::ConfigChange& c = plan.changes.config_changes[i];
      StepLog(ctx, LogLevel::kInfo,
              absl::StrCat(c.action(), " ", c.key(),
                           c.old_value().empty() ? "" : absl::StrCat(": ", c.old_value()),
                           c.new_value().empty() ? "" : absl::StrCat(" -> ", c.new_value()),
                           c.note().empty() ? "" : absl::StrCat(" (", c.note(), ")")));
    }
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewMergeConfigStep() { return std::make_unique<MergeConfigStep>(); }

}  // namespace mimic::agent
