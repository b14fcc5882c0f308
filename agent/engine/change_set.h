// Building, describing and applying change sets (see step.h). ApplyChangeSet is the only code
// that writes into a target MI home.
#ifndef MIMIC_AGENT_ENGINE_CHANGE_SET_H_
#define MIMIC_AGENT_ENGINE_CHANGE_SET_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/engine/step.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

class Snapshot;

// The state of `path` as change sets see it: "" when nothing is there, the hex sha256 when it is
// a regular file. FAILED_PRECONDITION when something else is there (a directory, a symlink, a
// device): mimic never writes over those.
absl::StatusOr<std::string> CurrentSha256(const std::string& path);

// One FileChange per op, in order: path, action (CREATE / UPDATE / DELETE / MKDIR / RMDIR),
// size after, sha256 before and after, note.
std::vector<mimic::v1::FileChange> DescribeChangeSet(const ChangeSet& changes);
mimic::v1::FileChange DescribeOp(const FileOp& op);

// Executes `changes.ops` in order, every path beneath `root` (the target home): each folder is
// reached from `root` one component at a time without following a symlink (FAILED_PRECONDITION
// naming the symlink; INVALID_ARGUMENT for a path not beneath `root`), once per change set: its
// descriptor serves the folder's later ops (a kRmdir makes every folder be reached again). For each op: re-checks that the path's current sha256 equals
// op.expected_sha256 ("" = must not exist) and stops with FAILED_PRECONDITION
// "PATH changed since the plan was made (expected sha256 X, found Y); not overwritten" when not;
// records missing parent directories it creates (they are created one level at a time); saves
// the original into `snapshot` and records the sha256 it writes before the first write of the
// path; writes atomically with op.mode: the bytes go to a temporary sibling, and the writes of
// consecutive kWrite ops are made durable together (common::SyncStaged: one syncfs) before
// each is, in order, re-checked (expected sha256 again) and renamed into place, so a crash
// never leaves a torn file in place, only temporaries (TempPrefix) beside recorded paths; then
// verifies the written file's sha256 equals op.new_sha256 (DATA_LOSS otherwise; the snapshot
// still restores it). Every folder changed is fsynced before the call returns. A write or delete also refuses (FAILED_PRECONDITION) a file the snapshot saved ahead that
// changed since (Snapshot::CheckUnchanged). A written file takes op.uid/op.gid, else the owner
// and group of the file it replaces, else of its folder; a made folder those of its parent. kDelete unlinks; kMkdir creates the directory (nothing when it is already a directory);
// kRmdir removes an empty directory (nothing when absent; FAILED_PRECONDITION when not empty).
// `applied` (may be null) receives one FileChange per change made, including parent
// directories created on the way, so on failure it says exactly what was done.
// `cancel` (may be null) is checked before each op: once set, the ops not begun are left and
// the result is CANCELLED (every op made is in `applied` and in the snapshot).
absl::Status ApplyChangeSet(const ChangeSet& changes, const std::string& root,
                            Snapshot& snapshot, std::vector<mimic::v1::FileChange>* applied,
                            const std::atomic<bool>* cancel = nullptr);

// A kWrite op that makes `to` a copy of regular file `from` (bytes and permission bits of
// `from`), or nullopt when `to` already has the same bytes (idempotency). expected_sha256 is the
// current sha256 of `to` ("" when absent). FAILED_PRECONDITION when `to` exists but is not a
// regular file or `from` is a dangling symlink; NOT_FOUND when `from` is missing.
absl::StatusOr<std::optional<FileOp>> MakeCopyOp(const std::string& from, const std::string& to,
                                                 const std::string& note = "");

// A kWrite op that writes `content` to `path`, or nullopt when `path` already holds exactly
// `content`. An existing file keeps its permission bits; a new one gets `mode`.
absl::StatusOr<std::optional<FileOp>> MakeWriteOp(const std::string& path, std::string content,
                                                  uint32_t mode = 0644,
                                                  const std::string& note = "");

// The kWrite op that writes `content` (permission bits `mode`) over `path`, which must hold
// `expected_sha256` ("" = absent) when it is applied. For a step that already knows what
// `path` holds (an earlier step's planned write, in check mode); MakeWriteOp reads it.
FileOp ContentWriteOp(const std::string& path, const std::string& expected_sha256,
                      std::string content, uint32_t mode, const std::string& note = "");

// Adds a kMkdir op, in front of the others and parents first, for every directory missing on
// the way to a kWrite or kMkdir op's path, so the described change set lists the directories apply will
// create.
void AddParentDirOps(ChangeSet* changes);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_CHANGE_SET_H_
