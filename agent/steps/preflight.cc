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
//     (migration_features.h, common/config/required_steps.h), in an order that works;
//   * every dropins/ bundle's Import-Package can be satisfied by what the target MI exports
//     (common/mi/osgi.h: Synapse, Axis2, the MI's own and Carbon kernel packages): a mandatory
//     import out of range fails preflight unless param known_unsatisfied_imports (bundle file
//     names, comma-separated) names the bundle; optional ones, packages mimic has no table for
//     and unreadable manifests are logged.
// Facts: source_version, target_version, migration_chain ("1.2.0->4.0.0,4.0.0->4.2.0"),
// uses_datamapper, uses_hl7, jdbc_userstore, secure_vault ("true"/"false"),
// source_update_level, target_update_level (updates/config.json "update-level"; "" = none),
// dropins_unsatisfied_imports ("dropins/x.jar: pkg [range]; ..." the plan accepted; "" = none).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/migration_features.h"
#include "common/base/fs.h"
#include "common/mi/mi_version.h"
#include "common/mi/osgi.h"
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

// The dropins/ bundles' imports against what MI `target_version` exports. Returns the
// unsatisfied mandatory imports the plan accepted ("dropins/x.jar: pkg [range]"); fails for one
// it did not.
absl::StatusOr<std::vector<std::string>> CheckDropinImports(const StepContext& ctx,
                                                            const std::string& source_home,
                                                            const std::string& target_version) {
  ASSIGN_OR_RETURN(const std::string known_param, ctx.StringParam("known_unsatisfied_imports"));
  std::set<std::string> known;
  for (absl::string_view name : absl::StrSplit(known_param, ',', absl::SkipWhitespace())) {
    known.insert(std::string(absl::StripAsciiWhitespace(name)));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> files,
                   ListConfinedFiles(ctx, source_home, "dropins"));
  std::vector<std::string> refused, accepted, jars;
  for (const std::string& rel : files) {
    if (!absl::EndsWithIgnoreCase(rel, ".jar")) continue;
    const std::string jar = common::Basename(rel);
    jars.push_back(jar);
    ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(source_home, rel));
    absl::StatusOr<common::Manifest> manifest = common::ReadJarManifest(path);
    if (!manifest.ok()) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(rel, ": cannot read its manifest (", manifest.status().message(),
                           "); its imports are not checked"));
      continue;
    }
    auto header = manifest->find("Import-Package");
    if (header == manifest->end()) continue;
    absl::StatusOr<std::vector<common::PackageImport>> imports =
        common::ParseImportPackage(header->second, rel);
    if (!imports.ok()) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(imports.status().message(), "; its imports are not checked"));
      continue;
    }
    std::vector<std::string> unknown;
    for (const common::PackageImport& imp : *imports) {
      std::optional<common::ExportedPackage> exported =
          common::MiExportedPackage(target_version, imp.package);
      if (!exported) {
        unknown.push_back(imp.package);
        continue;
      }
      if (imp.range.Contains(exported->version)) continue;
      const std::string what =
          absl::StrCat(rel, " imports ", imp.package, " version \"", imp.version, "\"",
                       imp.optional ? " (optional)" : "", "; MI ", target_version, " exports ",
                       exported->what);
      if (imp.optional) {
        StepLog(ctx, LogLevel::kWarning,
                absl::StrCat(what, ": the bundle resolves without it, but what uses it fails"));
      } else if (known.count(jar)) {
        StepLog(ctx, LogLevel::kWarning,
                absl::StrCat(what, ": the bundle will not resolve; the plan knows "
                                   "(known_unsatisfied_imports)"));
        accepted.push_back(absl::StrCat(rel, ": ", imp.package, " ", imp.version));
      } else {
        refused.push_back(what);
      }
    }
    if (!unknown.empty()) {
      StepLog(ctx, LogLevel::kInfo,
              absl::StrCat(rel, ": imports mimic has no export table for, not checked: ",
                           absl::StrJoin(unknown, ", ")));
    }
  }
  for (const std::string& name : known) {
    if (std::find(jars.begin(), jars.end(), name) == jars.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "preflight: param known_unsatisfied_imports names ", name,
          ", which is not a jar in the source's dropins/ (it holds: ",
          jars.empty() ? "none" : absl::StrJoin(jars, ", "), ")"));
    }
  }
  if (!refused.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        absl::StrJoin(refused, "; "), ". These bundles would not resolve on MI ", target_version,
        ": rebuild them against it, or set known_unsatisfied_imports = \"<jar>, ...\" on "
        "preflight to migrate knowing they will not start"));
  }
  return accepted;
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
  bool ChangesOnlyItsChangeSet() const override { return true; }

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
    ASSIGN_OR_RETURN(std::vector<std::string> accepted_imports,
                     CheckDropinImports(ctx, homes.source, dst->version));

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
    plan.facts["dropins_unsatisfied_imports"] = absl::StrJoin(accepted_imports, "; ");
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
