// preflight: reads only, changes nothing. Checks that
//   * both homes exist, lie inside the allowed roots and are MI homes with a detected version;
//   * the migration path is supported (downgrades and unknown versions refused) and matches the
//     plan's migration_path ("auto" or an explicit "1.2.0->4.2.0");
//   * the target MI is not running (a live pid in <target>/wso2carbon.pid);
//   * neither home holds, where the steps read or write (conf, repository/deployment,
//     repository/resources/security, lib, dropins, registry), a FIFO, socket, device or a file
//     with hard links (common::RefusedFileKind);
//   * the target's filesystem has room: (size of what later steps copy) * 2 + 10 MiB, or param
//     min_free_mb;
//   * with param require_java = "true": `java -version` (JAVA_HOME/bin/java when set, or param
//     java) is one the target accepts (MI 4.2.0: JDK 11-17 only; older: 8-11).
//   * the plan runs (or [[skip]]s) every step what the source uses needs: migrate_datamapper for
//     Data Mapper stylesheets on a path to 4.2.0, hl7_transport for HL7, migrate_userstore_db
//     for a JDBC user store on 1.2.0, copy_keystores and merge_config for the secure vault
//     (migration_features.h, common/config/required_steps.h), in an order that works.
// Facts: source_version, target_version, migration_chain ("1.2.0->4.0.0,4.0.0->4.2.0"),
// uses_datamapper, uses_hl7, jdbc_userstore, secure_vault ("true"/"false"),
// source_update_level, target_update_level (updates/config.json "update-level"; "" = none).
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/migration_features.h"
#include "common/base/fs.h"
#include "common/mi/mi_version.h"
#include "common/base/status_macros.h"
#include "common/base/subprocess.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;

// What the later steps copy out of the source home.
constexpr const char* kCopiedDirs[] = {"repository/deployment", "repository/resources/security",
                                       "lib", "dropins", "registry"};
// Where the steps read and write, in either home: checked for files mimic refuses.
constexpr const char* kScannedDirs[] = {"conf", "repository/deployment",
                                        "repository/resources/security", "lib", "dropins",
                                        "registry"};
constexpr uint64_t kMiB = 1024 * 1024;

// Bytes of the regular files under `dir` (symlinks not followed; missing dir = 0).
uint64_t TreeBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2) && !it->is_symlink(e2)) total += it->file_size(e2);
  }
  return total;
}

std::string MiB(uint64_t bytes) { return absl::StrCat((bytes + kMiB - 1) / kMiB, " MiB"); }

// The major version in `java -version` output: "1.8.0_292" -> 8, "17.0.6" -> 17; 0 if none.
int JavaMajor(const std::string& output) {
  static const std::regex kRe(R"re(version "(\d+)(?:\.(\d+))?)re");
  std::smatch m;
  if (!std::regex_search(output, m, kRe)) return 0;
  int major = std::atoi(m[1].str().c_str());
  if (major == 1 && m[2].matched) major = std::atoi(m[2].str().c_str());
  return major;
}

// Runs `java -version` and returns its output (it prints to stderr).
absl::StatusOr<std::string> RunJavaVersion(const std::string& java) {
  common::SubprocessOptions o;
  o.argv = {java, "-version"};
  o.merge_stderr = true;
  o.stdout_limit = {64 << 10, false};
  o.timeout = absl::Seconds(60);
  absl::StatusOr<common::SubprocessResult> r = common::RunSubprocess(o);
  if (!r.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("`", java, " -version` failed: ", r.status().message()));
  }
  if (!r->ok() && JavaMajor(r->stdout_text) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("`", java, " -version` failed (",
                                                      r->Describe(), "): ", r->stdout_text));
  }
  return r->stdout_text;
}

class PreflightStep final : public Step {
 public:
  std::string name() const override { return "preflight"; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    if (!common::IsDirectory(homes.source) || !common::IsDirectory(homes.target)) {
      const bool src_missing = !common::IsDirectory(homes.source);
      return absl::FailedPreconditionError(
          absl::StrCat(src_missing ? "source" : "target", " MI home ",
                       src_missing ? homes.source : homes.target, " does not exist"));
    }
    absl::StatusOr<common::MiVersion> src = common::DetectMiVersion(homes.source);
    if (!src.ok()) return Prefixed("source", src.status());
    absl::StatusOr<common::MiVersion> dst = common::DetectMiVersion(homes.target);
    if (!dst.ok()) return Prefixed("target", dst.status());
    StepLog(ctx, LogLevel::kInfo,
            absl::StrCat("source ", homes.source, ": MI ", src->version, " (from ",
                         src->detected_by, ")"));
    StepLog(ctx, LogLevel::kInfo,
            absl::StrCat("target ", homes.target, ": MI ", dst->version, " (from ",
                         dst->detected_by, ")"));

    ASSIGN_OR_RETURN(std::vector<std::string> chain,
                     common::MigrationChain(src->version, dst->version));
    const std::string path = absl::StrCat(src->version, "->", dst->version);
    const std::string wanted = ctx.plan == nullptr ? "auto" : ctx.plan->migration_path();
    if (!wanted.empty() && wanted != "auto" && wanted != path) {
      return absl::FailedPreconditionError(
          absl::StrCat("the plan's migration_path is ", wanted, " but the homes are ", path,
                       " (source MI ", src->version, " from ", src->detected_by, ", target MI ",
                       dst->version, " from ", dst->detected_by, ")"));
    }

    const std::string pid_file = common::JoinPath(homes.target, "wso2carbon.pid");
    if (common::PidFileAlive(pid_file)) {
      return absl::FailedPreconditionError(absl::StrCat("the target MI is running (", pid_file,
                                                        " names a live process); stop it first"));
    }
    if (common::PidFileAlive(common::JoinPath(homes.source, "wso2carbon.pid"))) {
      StepLog(ctx, LogLevel::kInfo, "the source MI is running; mimic only reads it");
    }

    // Before anything is written: a FIFO, device or hard-linked file where the steps read or
    // write is refused here, by name, rather than by the step that meets it.
    for (const auto& [label, home] : {std::pair<const char*, const std::string&>{"source", homes.source},
                                      {"target", homes.target}}) {
      for (const char* rel : kScannedDirs) {
        if (std::string found = FirstRefusedFile(home, rel); !found.empty()) {
          return absl::FailedPreconditionError(absl::StrCat(label, " MI home: ", found));
        }
      }
    }

    ASSIGN_OR_RETURN(uint64_t needed, NeededBytes(ctx, homes));
    const uint64_t free_bytes = common::FreeDiskBytes(homes.target);
    StepLog(ctx, LogLevel::kInfo,
            absl::StrCat("free on the target's filesystem: ", MiB(free_bytes),
                         ", needed: ", MiB(needed)));
    if (free_bytes < needed) {
      return absl::FailedPreconditionError(
          absl::StrCat("not enough free disk for ", homes.target, ": ", MiB(free_bytes), " free, ",
                       MiB(needed), " needed (copies plus their snapshot)"));
    }

    // What the source uses decides steps the plan cannot leave out (required_steps.h).
    ASSIGN_OR_RETURN(common::MigrationFeatures features,
                     DetectMigrationFeatures(ctx, homes, src->version, dst->version));
    for (const common::RequiredStep& r : common::FeatureRequiredSteps(features)) {
      StepLog(ctx, LogLevel::kInfo, absl::StrCat("needs ", r.step, ": ", r.reason));
    }
    RETURN_IF_ERROR(CheckPlanForFeatures(ctx, features));

    std::string java_note;
    ASSIGN_OR_RETURN(const bool require_java, ctx.BoolParam("require_java"));
    if (require_java) {
      ASSIGN_OR_RETURN(java_note, CheckJava(ctx, dst->version));
    }

    StepPlan plan;
    plan.facts["source_version"] = src->version;
    plan.facts["target_version"] = dst->version;
    plan.facts["migration_chain"] = absl::StrJoin(chain, ",");
    const std::string src_level = common::DetectUpdateLevel(homes.source);
    const std::string dst_level = common::DetectUpdateLevel(homes.target);
    plan.facts["source_update_level"] = src_level;
    plan.facts["target_update_level"] = dst_level;
    StepLog(ctx, LogLevel::kInfo,
            absl::StrCat("WSO2 update levels (updates/config.json): source ",
                         src_level.empty() ? "none" : src_level, ", target ",
                         dst_level.empty() ? "none" : dst_level));
    plan.facts["uses_datamapper"] = features.datamapper.empty() ? "false" : "true";
    plan.facts["uses_hl7"] = features.hl7.empty() ? "false" : "true";
    plan.facts["jdbc_userstore"] = features.jdbc_userstore.empty() ? "false" : "true";
    plan.facts["secure_vault"] = features.secure_vault.empty() ? "false" : "true";
    plan.message = absl::StrCat("MI ", src->version, " -> ", dst->version, " (",
                                absl::StrJoin(chain, ", then "), "); target stopped; ",
                                MiB(free_bytes), " free", java_note);
    ctx.source_version = src->version;
    ctx.target_version = dst->version;
    return plan;
  }

 private:
  static absl::Status Prefixed(const char* label, const absl::Status& st) {
    return common::Annotate(st, absl::StrCat(label, " MI home"));
  }

  static absl::StatusOr<uint64_t> NeededBytes(const StepContext& ctx, const Homes& homes) {
    if (ctx.HasParam("min_free_mb")) {
      ASSIGN_OR_RETURN(const int64_t mb, ctx.IntParam("min_free_mb"));
      return static_cast<uint64_t>(mb) * kMiB;
    }
    uint64_t copied = 0;
    for (const char* rel : kCopiedDirs) {
      ASSIGN_OR_RETURN(std::string dir, ctx.guard->ResolveUnder(homes.source, rel));
      copied += TreeBytes(dir);
    }
    return copied * 2 + 10 * kMiB;
  }

  // ", java 17" on success.
  static absl::StatusOr<std::string> CheckJava(const StepContext& ctx,
                                               const std::string& target_version) {
    std::string java = ctx.Param("java");
    if (java.empty()) {
      const char* home = std::getenv("JAVA_HOME");
      java = (home != nullptr && *home != '\0') ? common::JoinPath(home, "bin/java") : "java";
    }
    ASSIGN_OR_RETURN(std::string out, RunJavaVersion(java));
    const int major = JavaMajor(out);
    const bool v42 = target_version == "4.2.0";
    const int lo = v42 ? 11 : 8, hi = v42 ? 17 : 11;
    StepLog(ctx, LogLevel::kInfo, absl::StrCat(java, ": JDK ", major));
    if (major < lo || major > hi) {
      const std::string msg = absl::StrCat("MI ", target_version, " needs JDK ", lo, "-", hi, "; ",
                                           java, " is JDK ", major);
      if (v42) {  // micro-integrator.sh of 4.2.0 exits without starting on other JDKs
        return absl::FailedPreconditionError(msg);
      }
      StepLog(ctx, LogLevel::kWarning, msg + " (the server starts, with a warning)");
    }
    return absl::StrCat(", JDK ", major);
  }
};

}  // namespace

std::unique_ptr<Step> NewPreflightStep() { return std::make_unique<PreflightStep>(); }

}  // namespace mimic::agent
