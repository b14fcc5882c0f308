#include "agent/steps/conf_edits.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/base/fs.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "common/base/text_diff.h"
#include "common/config/toml_load.h"
#include "common/mi/shipped_defaults.h"

namespace mimic::agent {
namespace {

// The start scripts operators edit; MI ships the first and the last (wso2server.sh is the
// Carbon-style name some operators keep beside it).
constexpr const char* kStartScripts[] = {"bin/micro-integrator.sh", "bin/wso2server.sh",
                                         "bin/yajsw/wrapper.conf"};
// Carried by other steps of the migration.
constexpr const char* kOwnedElsewhere[] = {"conf/deployment.toml",
                                           "conf/security/secret-conf.properties"};
constexpr char kTemplates[] = "repository/resources/conf/templates";

std::string Indented(const std::vector<std::string>& lines) {
  if (lines.empty()) return "    (no lines)\n";
  std::string out;
  for (const std::string& l : lines) absl::StrAppend(&out, "    | ", common::RedactText(l), "\n");
  return out;
}

// One conflicting region, for the step's error: the three sides' lines.
std::string DescribeConflict(const std::string& rel, const common::MergeConflict& c,
                             const Versions& v) {
  return absl::StrCat(rel, ": the operator's edit conflicts with MI ", v.target,
                      "'s file (merged line ", c.line, ")\n  MI ", v.source, " shipped:\n",
                      Indented(c.base), "  source (the operator's):\n", Indented(c.theirs),
                      "  target (MI ", v.target, "):\n", Indented(c.ours));
}

class Planner {
 public:
  Planner(const StepContext& ctx, const Homes& homes, const Versions& versions,
          const std::set<std::string>& keep_target)
      : ctx_(ctx), homes_(homes), v_(versions), keep_(keep_target) {}

  absl::StatusOr<ConfEdits> Run() {
    const auto* shipped = common::ShippedConfigFiles(v_.source);
    if (shipped == nullptr) {
      out_.not_carried.push_back(absl::StrCat(
          "MI ", v_.source, ": mimic does not know the files this version ships, so edits to "
          "bin/ start scripts and conf/ files were not looked for; compare them by hand"));
      return std::move(out_);
    }
    shipped_ = shipped;
    target_shipped_ = common::ShippedConfigFiles(v_.target);
    ASSIGN_OR_RETURN(std::vector<std::string> rels, Candidates());
    for (const std::string& rel : rels) RETURN_IF_ERROR(Plan(rel));
    if (!conflicts_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          conflicts_.size() == 1 ? "an operator edit" : absl::StrCat(conflicts_.size(), " operator edits"),
          " outside deployment.toml cannot be merged into MI ", v_.target,
          "'s files; nothing was written. Make the change in the target's file by hand (or "
          "decide to keep the target's file: merge_config param keep_target = \"PATH,...\"), "
          "then run again:\n",
          absl::StrJoin(conflicts_, "")));
    }
    return std::move(out_);
  }

 private:
  // The MI_HOME-relative paths to look at: every file under the source's conf/ and the start
  // scripts it has, sorted.
  absl::StatusOr<std::vector<std::string>> Candidates() {
    std::set<std::string> out;
    ASSIGN_OR_RETURN(std::vector<std::string> conf, ListConfinedFiles(ctx_, homes_.source, "conf"));
    out.insert(conf.begin(), conf.end());
    for (const char* s : kStartScripts) {
      ASSIGN_OR_RETURN(std::string p, ctx_.guard->ResolveUnder(homes_.source, s));
      if (common::IsRegularFile(p)) out.insert(s);
    }
    for (const char* s : kOwnedElsewhere) out.erase(s);
    return std::vector<std::string>(out.begin(), out.end());
  }

  absl::StatusOr<bool> Templated(const std::string& rel, const common::ShippedConfigFile* f) {
    if (f != nullptr && f->templated) return true;
    ASSIGN_OR_RETURN(std::string t,
                     ctx_.guard->ResolveUnder(homes_.source, absl::StrCat(kTemplates, "/", rel, ".j2")));
    return common::IsRegularFile(t);
  }

  absl::Status Plan(const std::string& rel) {
    RETURN_IF_ERROR(ctx_.CheckCancelled("merge_config"));
    ASSIGN_OR_RETURN(std::string src_path, ctx_.guard->ResolveUnder(homes_.source, rel));
    ASSIGN_OR_RETURN(std::string dst_path, ctx_.guard->ResolveUnder(homes_.target, rel));
    ASSIGN_OR_RETURN(std::string theirs, common::ReadConfigFile(src_path));
    auto it = shipped_->find(rel);
    const common::ShippedConfigFile* base = it == shipped_->end() ? nullptr : &it->second;
    if (base != nullptr && common::Sha256Hex(theirs) == base->sha256) {
      ++out_.unchanged;
      return absl::OkStatus();
    }
    ++out_.edited;
    ASSIGN_OR_RETURN(bool templated, Templated(rel, base));
    if (templated) {
      out_.regenerated.push_back(rel);
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> ours = ReadPlanned(ctx_, dst_path);
    if (!ours.ok() && !absl::IsNotFound(ours.status())) return ours.status();
    const bool kept = keep_.count(rel) > 0;

    if (base == nullptr) {  // added by the operator
      if (ours.ok()) {
        if (*ours != theirs) {
          NotCarried(rel, kept ? "added by the operator; the target's own file is kept "
                                 "(keep_target)"
                               : "added by the operator; the target holds another file at this "
                                 "path, left as it is: compare them by hand");
        }
        return absl::OkStatus();
      }
      return Write(rel, dst_path, std::move(theirs), common::FileMode(src_path), "add",
                   "added by the operator: carried");
    }

    if (!ours.ok()) {
      NotCarried(rel, target_shipped_ != nullptr && !target_shipped_->count(rel)
                          ? absl::StrCat("edited by the operator; MI ", v_.target,
                                         " does not ship this file, so the edit was not "
                                         "carried: see whether its setting moved")
                          : "edited by the operator; the target home has no such file, so the "
                            "edit was not carried");
      return absl::OkStatus();
    }
    LogOperatorDiff(rel, base->text, theirs);
    if (common::LooksBinary(theirs) || common::LooksBinary(*ours)) {
      NotCarried(rel, "edited by the operator; binary, not merged: carry it by hand");
      return absl::OkStatus();
    }
    common::Merge3Labels labels;
    labels.base = absl::StrCat("MI ", v_.source, " shipped");
    labels.ours = absl::StrCat("target (MI ", v_.target, ")");
    labels.theirs = "source (operator)";
    ASSIGN_OR_RETURN(common::Merge3Result merged, common::Merge3(base->text, *ours, theirs, labels));
    if (!merged.clean) {
      if (kept) {
        NotCarried(rel, "edited by the operator; conflicts with the target's file, which is "
                        "kept (keep_target)");
      } else {
        for (const common::MergeConflict& c : merged.conflicts) {
          conflicts_.push_back(DescribeConflict(rel, c, v_));
        }
      }
      return absl::OkStatus();
    }
    if (merged.text == *ours) return absl::OkStatus();  // already carried
    if (kept) {
      NotCarried(rel, "edited by the operator; the target's file is kept (keep_target)");
      return absl::OkStatus();
    }
    return Write(rel, dst_path, std::move(merged.text), 0644, "merge",
                 absl::StrCat("edited by the operator: merged into MI ", v_.target, "'s file"));
  }

  absl::Status Write(const std::string& rel, const std::string& dst_path, std::string bytes,
                     uint32_t mode, const std::string& action, const std::string& note) {
    ASSIGN_OR_RETURN(std::optional<FileOp> op,
                     MakePlannedWriteOp(ctx_, dst_path, std::move(bytes), mode, note));
    if (!op) return absl::OkStatus();
    out_.ops.push_back(std::move(*op));
    mimic::v1::ConfigChange c;
    c.set_file(dst_path);
    c.set_key(rel);
    c.set_action(action);
    c.set_new_value(note);  // what text reports show beside the key
    c.set_note(note);
    out_.changes.push_back(std::move(c));
    StepLog(ctx_, LogLevel::kInfo, absl::StrCat(rel, ": ", note));
    return absl::OkStatus();
  }

  void NotCarried(const std::string& rel, const std::string& why) {
    out_.not_carried.push_back(absl::StrCat(rel, ": ", why));
  }

  // What the operator changed, as a unified diff from the shipped file (secrets redacted).
  void LogOperatorDiff(const std::string& rel, const std::string& base, const std::string& src) {
    common::UnifiedDiffOptions o;
    o.context_lines = 1;
    o.filter_line = [](std::string_view line) { return common::RedactText(line); };
    absl::StatusOr<std::string> diff =
        common::UnifiedDiff(base, src, absl::StrCat("MI ", v_.source, " shipped ", rel),
                            absl::StrCat("source ", rel), o);
    if (diff.ok() && !diff->empty()) {
      StepLog(ctx_, LogLevel::kInfo,
              absl::StrCat(rel, ": edited by the operator:\n", absl::StripSuffix(*diff, "\n")));
    }
  }

  const StepContext& ctx_;
  const Homes& homes_;
  const Versions& v_;
  const std::set<std::string>& keep_;
  const std::map<std::string, common::ShippedConfigFile>* shipped_ = nullptr;
  const std::map<std::string, common::ShippedConfigFile>* target_shipped_ = nullptr;
  std::vector<std::string> conflicts_;
  ConfEdits out_;
};

}  // namespace

absl::StatusOr<ConfEdits> PlanConfEdits(const StepContext& ctx, const Homes& homes,
                                        const Versions& versions,
                                        const std::set<std::string>& keep_target) {
  return Planner(ctx, homes, versions, keep_target).Run();
}

}  // namespace mimic::agent
