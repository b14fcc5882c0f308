// copy_custom_components: the operator's jars.
//   * dropins/: every file is copied (created, or replaced when the bytes differ), but the old
//     version's HL7 transport jars when hl7_transport runs in the same plan (it installs the
//     new version's); without hl7_transport in the plan they are carried, with a warning, never
//     dropped. (preflight checks the bundles' Import-Package against the target.)
//   * lib/: a jar the target does not ship is copied; a file of the same name but different
//     bytes is reported and left alone (the operator decides). A jar whose artifact the target
//     ships (in its lib/ or its OSGi bundles, wso2/components/plugins), matched by the file
//     name's artifact or the manifest's Bundle-SymbolicName, is not copied: in another version
//     it is reported (two versions of one library on the classpath break the server), in the
//     same version it is already there.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "agent/engine/change_set.h"
#include "agent/steps/file_steps.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"
#include "common/mi/osgi.h"

namespace mimic::agent {
namespace {

// What identifies a jar: the lower-cased artifact of its file name and, when its manifest can
// be read, its Bundle-SymbolicName; its version from the file name, else the manifest's
// Implementation-Version or Bundle-Version.
struct JarId {
  std::string rel;
  std::string artifact;  // as the file name has it
  std::set<std::string> keys;
  std::string version;
};

JarId IdentifyJar(const std::string& rel, const std::string& path, bool read_manifest) {
  JarId id;
  id.rel = rel;
  const common::JarName name = common::ParseJarFileName(common::Basename(rel));
  id.artifact = name.artifact;
  id.version = name.version;
  id.keys.insert(absl::AsciiStrToLower(name.artifact));
  if (!read_manifest) return id;
  absl::StatusOr<common::Manifest> m = common::ReadJarManifest(path);
  if (!m.ok()) return id;
  auto get = [&](const char* key) {
    auto it = m->find(key);
    return it == m->end() ? std::string() : it->second;
  };
  // "org.example.bundle;singleton:=true" -> "org.example.bundle"
  std::string bsn = get("Bundle-SymbolicName");
  bsn = std::string(absl::StripAsciiWhitespace(bsn.substr(0, bsn.find(';'))));
  if (!bsn.empty()) id.keys.insert(absl::AsciiStrToLower(bsn));
  if (id.version.empty()) id.version = get("Implementation-Version");
  if (id.version.empty()) id.version = get("Bundle-Version");
  return id;
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

    // The jars the target ships, by key: its lib/ (manifests read) and its OSGi bundles
    // (Carbon names them <symbolic name>_<version>.jar: the file name says it).
    std::map<std::string, std::vector<JarId>> target_jars;
    for (const char* dir : {"lib", "wso2/components/plugins"}) {
      const bool is_lib = std::string(dir) == "lib";
      ASSIGN_OR_RETURN(std::vector<std::string> files, ListConfinedFiles(ctx, homes.target, dir));
      for (const std::string& rel : files) {
        if (!absl::EndsWithIgnoreCase(rel, ".jar")) continue;
        ASSIGN_OR_RETURN(std::string path, ctx.guard->ResolveUnder(homes.target, rel));
        const JarId id = IdentifyJar(rel, path, is_lib);
        for (const std::string& key : id.keys) target_jars[key].push_back(id);
      }
    }

    ASSIGN_OR_RETURN(std::vector<std::string> source_lib,
                     ListConfinedFiles(ctx, homes.source, "lib"));
    int lib_copy = 0, lib_same = 0;
    std::vector<std::string> differs, other_version, shipped;
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
        const JarId id = IdentifyJar(rel, from, true);
        std::vector<std::string> same, others;
        std::set<std::string> seen;
        for (const std::string& key : id.keys) {
          auto it = target_jars.find(key);
          if (it == target_jars.end()) continue;
          for (const JarId& t : it->second) {
            if (!seen.insert(t.rel).second) continue;
            (!id.version.empty() && common::SameJarVersion(id.version, t.version) ? same : others)
                .push_back(t.rel);
          }
        }
        const std::string base = common::Basename(rel);
        if (!same.empty()) {
          shipped.push_back(absl::StrCat(base, " (", absl::StrJoin(same, ", "), ")"));
          StepLog(ctx, LogLevel::kInfo,
                  absl::StrCat(rel, ": the target already ships it (", absl::StrJoin(same, ", "),
                               "); not copied"));
          continue;
        }
        if (!others.empty()) {
          const std::string targets = absl::StrJoin(others, ", ");
          other_version.push_back(absl::StrCat(base, " (", id.version.empty() ? "?" : id.version,
                                               "; target: ", targets, ")"));
          StepLog(ctx, LogLevel::kWarning,
                  absl::StrCat(rel, ": the target ships ", id.artifact,
                               " in another version (", targets,
                               "); not copied: two versions of one library on the classpath "
                               "break the server (carry it by hand only if the operator's code "
                               "needs exactly this version, and remove the target's)"));
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
      parts.push_back(absl::StrCat("target ships another version of ",
                                   absl::StrJoin(other_version, ", "), ": not copied"));
    }
    if (!shipped.empty()) {
      parts.push_back(absl::StrCat("target already ships ", absl::StrJoin(shipped, ", "),
                                   ": not copied"));
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
