// Helpers shared by the file-copying steps (copy_carbonapps, copy_deployment,
// copy_custom_components, copy_keystores, merge_config, preflight, ...). Every path goes through ctx.guard; the source home is only read.
#ifndef MIMIC_AGENT_STEPS_FILE_STEPS_H_
#define MIMIC_AGENT_STEPS_FILE_STEPS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/engine/step.h"
#include "common/mi/home_paths.h"
#include "common/mi/shipped_defaults.h"

namespace mimic::agent {

// The two MI homes after confinement.
struct Homes {
  std::string source;
  std::string target;
};

// ctx.source_home and ctx.target_home resolved through ctx.guard. INVALID_ARGUMENT when either is
// empty, ctx.guard is null or one home lies inside the other; the guard's PERMISSION_DENIED when
// either lies outside the roots.
absl::StatusOr<Homes> ResolveHomes(const StepContext& ctx);

// The source and target MI versions: ctx.source_version / ctx.target_version (set from
// preflight's facts), each detected again from its home when empty.
struct Versions {
  std::string source;
  std::string target;
};
absl::StatusOr<Versions> ResolveVersions(const StepContext& ctx, const Homes& homes);

// The first file under `home`/`rel_dir` (recursively, symlinks not followed; a missing folder
// has none) that common::RefusedFileKind refuses, as "PATH: why"; "" when there is none.
std::string FirstRefusedFile(const std::string& home, const std::string& rel_dir);

// Regular files under `home`/`rel_dir`, recursively, as sorted paths relative to `home`
// ("repository/deployment/server/carbonapps/a.car"). A missing directory gives an empty list.
// Every entry is checked by ctx.guard: a symlink leading outside the allowed roots fails with
// the guard's message; a symlink to a file inside the roots is listed (its target's bytes are
// what will be read); symlinked directories and dangling links are skipped with a warning log
// line. A FIFO, socket, device or hard-linked file fails with the guard's message naming it
// (common::RefusedFileKind).
absl::StatusOr<std::vector<std::string>> ListConfinedFiles(const StepContext& ctx,
                                                           const std::string& home,
                                                           const std::string& rel_dir);

// The bytes at `path` as they will be when this step applies: an earlier step's planned write
// (ctx.overlay) wins over the file on disk. NOT_FOUND when it does not (or will not) exist.
absl::StatusOr<std::string> ReadPlanned(const StepContext& ctx, const std::string& path);
// MakeWriteOp against the file as it will be when this step applies (ctx.overlay first): the
// op expects the sha256 an earlier step will have written, and is nullopt when `content` is
// what that step writes anyway.
absl::StatusOr<std::optional<FileOp>> MakePlannedWriteOp(const StepContext& ctx,
                                                         const std::string& path,
                                                         std::string content, uint32_t mode,
                                                         const std::string& note);
// ListConfinedFiles plus the files earlier steps plan to create under home/rel_dir, sorted.
absl::StatusOr<std::vector<std::string>> ListPlanned(const StepContext& ctx,
                                                     const std::string& home,
                                                     const std::string& rel_dir);

// Directories under home/`rel_dir` that hold nothing (empty folders), recursively, as sorted
// paths relative to `home`; confined and skipped like ListConfinedFiles. A missing directory
// gives an empty list.
absl::StatusOr<std::vector<std::string>> ListConfinedEmptyDirs(const StepContext& ctx,
                                                               const std::string& home,
                                                               const std::string& rel_dir);

// Appends a kMkdir op (with the source folder's mode) for every empty folder under
// source/`rel_dir` accepted by `filter` that the target lacks, so empty folders are carried like
// files (rollback removes the folders the run made). Returns how many it planned.
absl::StatusOr<int> PlanEmptyDirs(const StepContext& ctx, const Homes& homes,
                                  const std::string& rel_dir,
                                  const std::function<bool(const std::string&)>& filter,
                                  ChangeSet* changes);

// The op that carries source file `from` (`rel` under the home) to `to`: a copy of its bytes;
// or, for a text file (common::CarriedFormatOf, at most 64 MiB), its bytes with
//  * paths under the source home moved to the target home (common/mi/home_paths.h), each logged
//    as "rel:line: key: path ...", and paths that only look like the old home logged as left;
//  * EI 7.1's HL7 class names (org.wso2.carbon.business.messaging.hl7.*, common/mi/hl7_names.h)
//    replaced by MI 4.x's, logged and said in the op's note.
// nullopt when `to` already holds what would be written.
absl::StatusOr<std::optional<FileOp>> MakeCarryOp(const StepContext& ctx, const Homes& homes,
                                                  const std::string& rel, const std::string& from,
                                                  const std::string& to);

// Logs each finding of common::RewriteHomePaths in `file` (relative to the home): rewritten ones
// as info, ones left as they are as warnings.
void LogHomePathFindings(const StepContext& ctx, const std::string& file,
                         const std::vector<common::HomePathFinding>& findings, const Homes& homes);

// Counts of a mirror, for the step's message.
struct MirrorStats {
  int created = 0;
  int updated = 0;
  int unchanged = 0;
  int changed() const { return created + updated; }
};

// Plans copies (MakeCarryOp) of every file under source/`rel_dir` accepted by `filter` (called
// with the path relative to the home; null accepts all) to the same relative path in the target: create when
// absent, update when the bytes differ (with `update_note`), nothing when equal. Appends the ops
// to `changes` (without parent directories: see FinishFileChangeSet) and counts into `stats`.
// `converted`, when set, is asked about a target file whose bytes differ from the source's:
// true means the target already holds the form a later step of the migration turns the source
// file into (a Data Mapper CApp rewritten for MI 4.2), so it is left alone; without that, the
// copy and the later step would undo each other on every run.
using ConvertedCheck =
    std::function<absl::StatusOr<bool>(const std::string& source_path, const std::string& target_path)>;
absl::Status PlanMirror(const StepContext& ctx, const Homes& homes, const std::string& rel_dir,
                        const std::function<bool(const std::string&)>& filter,
                        const std::string& update_note, ChangeSet* changes, MirrorStats* stats,
                        const ConvertedCheck& converted = nullptr);

// migrate_datamapper's test for a CApp it has already converted (copy_carbonapps uses it so a
// converted CApp in the target is not copied over again).
ConvertedCheck DatamapperConvertedCheck(const StepContext& ctx);

// Adds the parent-directory ops (AddParentDirOps) so the plan lists everything apply does.
void FinishFileChangeSet(ChangeSet* changes);

// Sends one log line to ctx.log when set.
void StepLog(const StepContext& ctx, LogLevel level, const std::string& text);

// "1 CApp", "3 CApps" (plural = singular + "s" unless given).
std::string Count(size_t n, const std::string& singular, const std::string& plural = "");

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_FILE_STEPS_H_
