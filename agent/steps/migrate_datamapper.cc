// migrate_datamapper: MI 4.0 -> 4.2 (API-M 4.0 -> 4.2 guide, "Migrating the Data Mapper
// Configurations"; MI-FACTS §5). MI 4.2 ships Saxon 10, which rejects the pre-4.2 Data Mapper
// stylesheets' `extension-element-prefixes="xs own ..."`. In the TARGET home (after
// copy_carbonapps and copy_registry have run) this step plans:
//   * for every repository/deployment/server/carbonapps/*.car holding a `*_xsltStyleSheet.xml`
//     entry with the old attribute: one write of the re-packed CApp, where only those entries
//     change (common/capp.h; the same string replacement as WSO2's tool), every other entry
//     kept byte for byte, in order, with its name, time, attributes and compression method;
//   * for every registry/{config,governance,local}/**/*_xsltStyleSheet.xml with the old
//     attribute (resources outside CApps, which WSO2's tool ignores): one write each.
// Already migrated files hold no old attribute, so a second plan is empty. A CApp that is not a
// safe zip (zip slip, symlink entries, bombs, encryption, duplicates) fails the step with the
// archive's name at plan time, so nothing is written. Skipped unless the migration chain
// crosses 4.0.0 -> 4.2.0 (4.0.0 -> 4.2.0 and 1.2.0 -> 4.2.0).
//
// Param `tool_jar` (absolute path to the operator's data-mapper-config-migration-service-
// 1.0.1.jar): the CApps that need the rewrite are instead migrated by WSO2's tool, run as the
// guide says: they are copied into a fresh scratch folder <run_dir>/datamapper_tool.XXXXXX/capps
// and `java -jar <tool_jar> <that folder>` writes <scratch>/migrated_capps/*.car, whose bytes
// become the writes. This runs at PLAN time but writes only under the run's state directory,
// never into an MI home (the scratch folder is removed afterwards, kept on failure). The tool
// stamps entries with the current time, so in that mode the sha256 a check reports for the new
// CApp may differ from the one apply writes; the set of files is the same. Params `java` (else
// $JAVA_HOME/bin/java, else `java` from PATH) and `tool_timeout_seconds` (default 600).
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/steps/steps.h"
#include "agent/engine/change_set.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/migration_features.h"
#include "common/mi/capp.h"
#include "common/base/fs.h"
#include "common/mi/mi_version.h"
#include "common/base/status_macros.h"
#include "common/base/subprocess.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;

constexpr char kCarbonapps[] = "repository/deployment/server/carbonapps";
constexpr const char* kRegistryPartitions[] = {"registry/config", "registry/governance",
                                               "registry/local"};
constexpr char kCrossing[] = "4.0.0->4.2.0";

// A CApp whose stylesheets need the rewrite.
struct CappToMigrate {
  std::string path;   // absolute, confined
  std::string bytes;  // as read
  std::string sha256;
  int stylesheets = 0;
};

std::string Note(int stylesheets) {
  return absl::StrCat(Count(stylesheets, "Data Mapper stylesheet"), " migrated (Saxon 10)");
}

// A write of `content` over the regular file `path` that held `old_sha256` when read (maybe an
// earlier step's planned write: check mode is exact); it keeps the file's permission bits.
FileOp WriteOver(const std::string& path, const std::string& old_sha256, std::string content,
                 const std::string& note) {
  return ContentWriteOp(path, old_sha256, std::move(content), common::FileMode(path), note);
}

// The bytes of `path` as they will be when this step applies (an earlier step's planned write
// counts: check mode is exact), with their sha256.
absl::StatusOr<std::string> ReadWithSha(const StepContext& ctx, const std::string& path,
                                        std::string* sha256) {
  ASSIGN_OR_RETURN(std::string bytes, ReadPlanned(ctx, path));
  *sha256 = common::Sha256Hex(bytes);
  return bytes;
}

// The stylesheets to migrate of the CApp at `path` as it will be when this step applies (an
// earlier step's planned write counts, as in ReadPlanned). From a file (the target's own, or
// the source an earlier step copies over it) libzip reads only the central directory and the
// stylesheet entries, once a run (CappStyleSheetsToMigrate: preflight read the source's). (ReadZip
// opens regular files only: a CApp the guard let through as a symlink inside the roots is
// read whole, as ReadPlanned reads it.)
absl::StatusOr<int> PlannedCappStyleSheets(const StepContext& ctx, const std::string& path) {
  std::string file = path;
  if (ctx.overlay != nullptr) {
    auto it = ctx.overlay->find(path);
    if (it != ctx.overlay->end()) {
      const FileOp& op = it->second;
      // A copy an earlier step plans is read from its source; planned bytes or a planned
      // delete are ReadPlanned's.
      file = op.kind == FileOp::Kind::kWrite && !op.has_content ? op.source_path : "";
    }
  }
  if (!file.empty() && common::IsRegularFile(file)) return CappStyleSheetsToMigrate(ctx, file);
  ASSIGN_OR_RETURN(std::string bytes, ReadPlanned(ctx, path));
  ASSIGN_OR_RETURN(std::vector<common::ZipEntry> entries,
                   common::ReadZipFromBytes(bytes, path, common::StyleSheetEntriesOnly()));
  return common::MigrateCappEntries(&entries, nullptr);
}

// Before planning a write over `path`: it must still be the regular file read with `sha256`.
// FAILED_PRECONDITION for a symlink or anything else ApplyChangeSet would refuse to write over.
absl::Status CheckWritable(const StepContext& ctx, const std::string& path,
                           const std::string& sha256) {
  if (ctx.overlay != nullptr && ctx.overlay->count(path)) return absl::OkStatus();  // not yet written
  ASSIGN_OR_RETURN(std::string current, CurrentSha256(path));
  if (current != sha256) {
    return absl::AbortedError(absl::StrCat(path, " changed while it was read; plan again"));
  }
  return absl::OkStatus();
}

// The source and target versions: the context's, else detected from the homes.
absl::StatusOr<std::string> VersionOf(const StepContext& ctx, const std::string& known,
                                      const std::string& home, const char* which) {
  if (!known.empty()) return known;
  if (home.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the ", which, " MI version is unknown (run preflight first)"));
  }
  ASSIGN_OR_RETURN(std::string resolved, ctx.guard->Resolve(home));
  absl::StatusOr<common::MiVersion> v = common::DetectMiVersion(resolved);
  if (!v.ok()) {
    return common::Annotate(v.status(), absl::StrCat(which, " MI home"));
  }
  return v->version;
}

std::string JavaCommand(const StepContext& ctx) {
  std::string java = ctx.Param("java");
  if (!java.empty()) return java;
  const char* home = ::getenv("JAVA_HOME");
  return (home != nullptr && *home != '\0') ? common::JoinPath(home, "bin/java") : "java";
}

// Runs argv (PATH lookup for argv[0]) with stdin from /dev/null, sending each line it prints
// (stdout and stderr) to ctx.log. Fails on a non-zero exit, a signal or the timeout (the child
// is then killed).
absl::Status RunLogged(const StepContext& ctx, const std::vector<std::string>& argv,
                       int timeout_seconds) {
  const std::string shown = absl::StrCat("`", argv[0], " -jar ", argv[2], " ", argv[3], "`");
  common::SubprocessOptions o;
  o.argv = argv;
  o.merge_stderr = true;
  o.stdout_limit = {0, false};  // lines are logged, not kept
  o.on_line = [&](common::OutStream, const std::string& line) {
    StepLog(ctx, LogLevel::kInfo, absl::StrCat("data-mapper tool: ", line));
  };
  o.timeout = absl::Seconds(timeout_seconds);
  o.kill_grace = absl::ZeroDuration();
  o.cancel = ctx.cancel;
  absl::StatusOr<common::SubprocessResult> r = common::RunSubprocess(o);
  if (!r.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(shown, " did not start: ", r.status().message()));
  }
  if (r->timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(shown, " did not finish within ", timeout_seconds, " s; killed"));
  }
  if (r->cancelled) return absl::CancelledError(absl::StrCat(shown, ": cancelled; killed"));
  if (r->ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      shown, r->signal == 0 ? absl::StrCat(" exited with status ", r->exit_code)
                            : absl::StrCat(" was killed by signal ", r->signal)));
}

// Migrates `capps` with WSO2's jar in a scratch folder under ctx.run_dir; returns the migrated
// bytes in the same order.
absl::StatusOr<std::vector<std::string>> MigrateWithTool(const StepContext& ctx,
                                                         const std::string& jar,
                                                         const std::vector<CappToMigrate>& capps) {
  if (jar.empty() || jar[0] != '/' || !common::IsRegularFile(jar)) {
    return absl::InvalidArgumentError(
        absl::StrCat("param tool_jar must be the absolute path of the operator's "
                     "data-mapper-config-migration-service jar; ",
                     jar, " is not a file"));
  }
  ASSIGN_OR_RETURN(const int64_t timeout, ctx.IntParam("tool_timeout_seconds"));
  if (ctx.run_dir.empty()) {
    return absl::FailedPreconditionError("no run directory for the data-mapper tool's scratch");
  }
  RETURN_IF_ERROR(common::MakeDirs(ctx.run_dir, 0700));
  std::string scratch = common::JoinPath(ctx.run_dir, "datamapper_tool.XXXXXX");
  if (::mkdtemp(scratch.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a scratch folder in ", ctx.run_dir));
  }
  const std::string in = common::JoinPath(scratch, "capps");
  RETURN_IF_ERROR(common::MakeDirs(in, 0700));
  for (const CappToMigrate& c : capps) {
    RETURN_IF_ERROR(
        common::WriteFileAtomic(common::JoinPath(in, common::Basename(c.path)), c.bytes, 0600));
  }
  StepLog(ctx, LogLevel::kInfo,
          absl::StrCat("running WSO2's data-mapper migration tool on ", Count(capps.size(), "CApp"),
                       " in ", in));
  const std::vector<std::string> argv = {JavaCommand(ctx), "-jar", jar, in};
  if (absl::Status st = RunLogged(ctx, argv, timeout); !st.ok()) {
    return common::AnnotateAfter(st, absl::StrCat(" (its files are kept in ", scratch, ")"));
  }
  std::vector<std::string> out;
  for (const CappToMigrate& c : capps) {
    const std::string name = common::Basename(c.path);
    const std::string migrated = common::JoinPath(scratch, "migrated_capps/" + name);
    absl::StatusOr<std::string> bytes = common::ReadFile(migrated);
    if (!bytes.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the data-mapper tool did not produce ", migrated, " (files kept in ", scratch, ")"));
    }
    // The tool's output is checked like any archive, and must be fully migrated.
    ASSIGN_OR_RETURN(std::vector<common::ZipEntry> entries,
                     common::ReadZipFromBytes(*bytes, migrated));
    if (common::MigrateCappEntries(&entries, nullptr) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the data-mapper tool left old stylesheets in ", migrated, " (kept in ", scratch, ")"));
    }
    out.push_back(*std::move(bytes));
  }
  std::error_code ec;
  fs::remove_all(scratch, ec);
  return out;
}

class MigrateDatamapperStep final : public Step {
 public:
  std::string name() const override { return "migrate_datamapper"; }
  bool PlansFilesOnly() const override { return true; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    if (ctx.guard == nullptr || ctx.target_home.empty()) {
      return absl::InvalidArgumentError("migrate_datamapper needs a target home and a guard");
    }
    ASSIGN_OR_RETURN(std::string target, ctx.guard->Resolve(ctx.target_home));
    StepPlan plan;
    ASSIGN_OR_RETURN(std::string from,
                     VersionOf(ctx, ctx.source_version, ctx.source_home, "source"));
    ASSIGN_OR_RETURN(std::string to, VersionOf(ctx, ctx.target_version, target, "target"));
    absl::StatusOr<std::vector<std::string>> chain = common::MigrationChain(from, to);
    bool crosses = false;
    if (chain.ok()) {
      for (const std::string& hop : *chain) crosses = crosses || hop == kCrossing;
    }
    if (!crosses) {
      plan.forced_status = mimic::v1::STEP_SKIPPED;
      plan.message =
          absl::StrCat("not needed for ", from, " -> ", to,
                       ": the Data Mapper stylesheets change only from 4.0.0 to 4.2.0",
                       chain.ok() ? "" : absl::StrCat(" (", chain.status().message(), ")"));
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }

    // CApps: only top-level *.car files are deployed.
    ASSIGN_OR_RETURN(std::vector<std::string> files, ListPlanned(ctx, target, kCarbonapps));
    std::vector<CappToMigrate> capps;
    int capps_checked = 0, stylesheets = 0;
    for (const std::string& rel : files) {
      if (rel.find('/', sizeof(kCarbonapps)) != std::string::npos ||
          !absl::EndsWithIgnoreCase(rel, ".car")) {
        continue;
      }
      ++capps_checked;
      ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(target, rel));
      CappToMigrate c;
      c.path = path;
      // The stylesheets first, from the central directory: most CApps have none, and only a
      // CApp to re-pack is read whole, inflated and hashed (the bytes the plan is made of).
      absl::StatusOr<int> found = PlannedCappStyleSheets(ctx, path);
      if (!found.ok()) return common::AnnotateAfter(found.status(), "; nothing was migrated");
      if (*found == 0) continue;
      ASSIGN_OR_RETURN(c.bytes, ReadPlanned(ctx, path));
      absl::StatusOr<std::vector<common::ZipEntry>> entries =
          common::ReadZipFromBytes(c.bytes, path);
      if (!entries.ok()) {
        return common::AnnotateAfter(entries.status(), "; nothing was migrated");
      }
      c.stylesheets = common::MigrateCappEntries(&*entries, nullptr);
      if (c.stylesheets == 0) continue;
      c.sha256 = common::Sha256Hex(c.bytes);
      RETURN_IF_ERROR(CheckWritable(ctx, path, c.sha256));
      stylesheets += c.stylesheets;
      if (ctx.Param("tool_jar").empty()) {
        ASSIGN_OR_RETURN(std::string repacked, common::WriteZip(*entries));
        plan.changes.ops.push_back(
            WriteOver(path, c.sha256, std::move(repacked), Note(c.stylesheets)));
      }
      capps.push_back(std::move(c));
    }
    if (const std::string jar = ctx.Param("tool_jar"); !jar.empty() && !capps.empty()) {
      ASSIGN_OR_RETURN(std::vector<std::string> migrated, MigrateWithTool(ctx, jar, capps));
      for (size_t i = 0; i < capps.size(); ++i) {
        plan.changes.ops.push_back(WriteOver(capps[i].path, capps[i].sha256, std::move(migrated[i]),
                                             Note(capps[i].stylesheets) + " by WSO2's tool"));
      }
    }

    // Loose stylesheets in the file registry.
    int loose_checked = 0, loose_changed = 0;
    for (const char* partition : kRegistryPartitions) {
      ASSIGN_OR_RETURN(std::vector<std::string> reg, ListPlanned(ctx, target, partition));
      for (const std::string& rel : reg) {
        if (!common::IsXsltStyleSheetName(common::Basename(rel))) continue;
        ++loose_checked;
        ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(target, rel));
        std::string sha;
        ASSIGN_OR_RETURN(std::string text, ReadWithSha(ctx, path, &sha));
        int n = 0;
        std::string migrated = common::MigrateXsltStyleSheet(text, &n);
        if (n == 0) continue;
        RETURN_IF_ERROR(CheckWritable(ctx, path, sha));
        ++loose_changed;
        plan.changes.ops.push_back(WriteOver(path, sha, std::move(migrated), Note(1)));
      }
    }
    FinishFileChangeSet(&plan.changes);

    const std::string checked =
        absl::StrCat(Count(capps_checked, "CApp"), ", ",
                     Count(loose_checked, "registry stylesheet"), " checked");
    if (capps.empty() && loose_changed == 0) {
      plan.message = absl::StrCat("up to date (", checked, ")");
    } else {
      const char* by = ctx.Param("tool_jar").empty() ? "" : " by WSO2's tool";
      plan.message =
          absl::StrCat(Count(stylesheets + loose_changed, "Data Mapper stylesheet"),
                       " to migrate for Saxon 10 (", Count(capps.size(), "CApp"), " to re-pack", by,
                       ", ", Count(loose_changed, "registry file"), "; ", checked, ")");
    }
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }
};

}  // namespace

ConvertedCheck DatamapperConvertedCheck(const StepContext& ctx) {
  auto from = VersionOf(ctx, ctx.source_version, ctx.source_home, "source");
  auto to = VersionOf(ctx, ctx.target_version, ctx.target_home, "target");
  if (!from.ok() || !to.ok()) return nullptr;
  auto chain = common::MigrationChain(*from, *to);
  if (!chain.ok() || std::find(chain->begin(), chain->end(), kCrossing) == chain->end()) {
    return nullptr;
  }
  return [&ctx](const std::string& source_path,
                const std::string& target_path) -> absl::StatusOr<bool> {
    std::string target_sha;
    ASSIGN_OR_RETURN(std::string target_bytes, ReadWithSha(ctx, target_path, &target_sha));
    (void)target_bytes;
    ASSIGN_OR_RETURN(std::string source_bytes, common::ReadFile(source_path));
    std::string migrated;
    if (absl::EndsWithIgnoreCase(source_path, ".car")) {
      auto entries =
          common::ReadZipFromBytes(source_bytes, source_path, common::StyleSheetEntriesOnly());
      if (!entries.ok()) return false;  // the copy goes ahead; migrate_datamapper reports it
      if (common::MigrateCappEntries(&*entries, nullptr) == 0) return false;
      entries = common::ReadZipFromBytes(source_bytes, source_path);
      if (!entries.ok()) return false;
      common::MigrateCappEntries(&*entries, nullptr);
      ASSIGN_OR_RETURN(migrated, common::WriteZip(*entries));
    } else if (common::IsXsltStyleSheetName(common::Basename(source_path))) {
      int n = 0;
      migrated = common::MigrateXsltStyleSheet(source_bytes, &n);
      if (n == 0) return false;
    } else {
      return false;
    }
    return common::Sha256Hex(migrated) == target_sha;
  };
}

std::unique_ptr<Step> NewMigrateDatamapperStep() {
  return std::make_unique<MigrateDatamapperStep>();
}

}  // namespace mimic::agent
