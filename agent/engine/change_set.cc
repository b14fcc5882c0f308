#include "agent/engine/change_set.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/engine/home_folders.h"
#include "agent/engine/snapshot.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

using mimic::v1::FileChange;

std::string ShaOrNone(const std::string& sha) { return sha.empty() ? "(none)" : sha; }

std::string Mismatch(const FileOp& op, const std::string& current) {
  return absl::StrCat(op.path, " changed since the plan was made (expected sha256 ",
                      ShaOrNone(op.expected_sha256), ", found ", ShaOrNone(current),
                      "); not overwritten");
}

// The sha256 of `name` in `dir_fd` as CurrentSha256 gives it, without following a symlink.
absl::StatusOr<std::string> ShaAt(int dir_fd, const std::string& name, const std::string& shown,
                                  struct stat* st_out = nullptr) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::string();
    return ErrnoStatus("cannot stat", shown, errno);
  }
  if (st_out != nullptr) *st_out = st;
  if (!S_ISREG(st.st_mode)) {
    const char* what = S_ISDIR(st.st_mode)   ? "a directory"
                       : S_ISLNK(st.st_mode) ? "a symlink"
                                             : "not a file";
    return absl::FailedPreconditionError(
        absl::StrCat(shown, " is ", what, "; mimic only replaces regular files"));
  }
  const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", shown, errno);
  // Hash the open file so the bytes are those of the entry just checked.
  absl::StatusOr<std::string> sha = common::Sha256Fd(fd, shown);
  ::close(fd);
  if (!sha.ok()) return ErrnoStatus("cannot read", shown, EIO);
  return sha;
}

// Opens the op's folder beneath `root` (creating missing folders when `create`), checks that the
// entry holds op.expected_sha256 and that the snapshot still holds it as it is.
absl::StatusOr<Beneath> OpenAndExpect(const std::string& root, const FileOp& op,
                                      Snapshot& snapshot, std::vector<FileChange>* applied,
                                      bool create, struct stat* st, DirSyncs* syncs,
                                      FolderCache* cache) {
  ASSIGN_OR_RETURN(Beneath b, OpenBeneath(root, op.path, nullptr, nullptr, "", false, 0755, -1,
                                          -1, nullptr, cache));
  std::string current;
  if (b.found) {
    ASSIGN_OR_RETURN(current, ShaAt(b.dir.get(), b.name, op.path, st));
  }
  if (current != op.expected_sha256) return absl::FailedPreconditionError(Mismatch(op, current));
  if (!op.temp_debris) RETURN_IF_ERROR(snapshot.CheckUnchanged(op.path, current));
  if (!b.found && create) {
    ASSIGN_OR_RETURN(b, OpenBeneath(root, op.path, &snapshot, applied, "", false, 0755, -1, -1,
                                    syncs, cache));
  }
  return b;
}

// Records ahead, in the snapshot's current batch, what applying `op` will record (the original,
// what is written, the folders made), when `op` would pass its checks now. False when it would
// not (or when its state cannot be read): recording stops there, and the op's apply reports
// why as before.
bool RecordAhead(const std::string& root, const FileOp& op, Snapshot& snapshot,
                 FolderCache& cache) {
  const bool dir_op = op.kind == FileOp::Kind::kMkdir;
  absl::StatusOr<Beneath> b = OpenBeneath(root, op.path, nullptr, nullptr, "", dir_op, 0755, -1,
                                          -1, nullptr, dir_op ? nullptr : &cache);
  if (!b.ok()) return false;
  if (dir_op || op.kind == FileOp::Kind::kWrite) {
    for (const std::string& d : b->missing) {
      if (!snapshot.RecordCreatedDir(d).ok()) return false;
    }
  }
  if (dir_op) {
    return true;
  }
  if (op.kind != FileOp::Kind::kWrite && op.kind != FileOp::Kind::kDelete) return false;
  if (op.temp_debris) return true;
  std::string current;
  if (b->found) {
    absl::StatusOr<std::string> sha = ShaAt(b->dir.get(), b->name, op.path);
    if (!sha.ok()) return false;
    current = *sha;
  }
  if (current != op.expected_sha256 || !snapshot.CheckUnchanged(op.path, current).ok()) {
    return false;
  }
  if (op.kind == FileOp::Kind::kDelete && current.empty()) return true;  // nothing to do
  // A path the run wrote before (an earlier step's change set) keeps that record until its
  // write: its current bytes are what the run wrote last, which CheckUnchanged accepts. Its new
  // record is appended, and fsynced, when it is written.
  if (snapshot.HasWritten(op.path)) return true;
  return snapshot.Save(op.path).ok() &&
         snapshot.RecordWritten(op.path, op.kind == FileOp::Kind::kWrite ? op.new_sha256 : "")
             .ok();
}

// A write whose temporary is complete but not yet durable nor renamed (see ApplyChangeSet).
struct PendingWrite {
  const FileOp* op;
  common::StagedWrite staged;
};

// Checks `op` and stages its bytes in a temporary beside its path (StagedWrite); the snapshot
// records it first. CommitWrites makes it durable and puts it in place.
absl::Status StageWrite(const std::string& root, const FileOp& op, Snapshot& snapshot,
                        std::vector<FileChange>* applied, DirSyncs& syncs,
                        std::vector<PendingWrite>& pending, FolderCache& cache) {
  struct stat st{};
  ASSIGN_OR_RETURN(Beneath b,
                   OpenAndExpect(root, op, snapshot, applied, true, &st, &syncs, &cache));
  // The written file keeps the owner and group of the file it replaces, or takes its folder's.
  int64_t uid = op.uid, gid = op.gid;
  if (uid < 0 || gid < 0) {
    if (op.expected_sha256.empty() && ::fstat(b.dir.get(), &st) != 0) {
      return ErrnoStatus("cannot stat the folder of", op.path, errno);
    }
    if (uid < 0) uid = st.st_uid;
    if (gid < 0) gid = st.st_gid;
  }
  RETURN_IF_ERROR(snapshot.Save(op.path));
  RETURN_IF_ERROR(snapshot.RecordWritten(op.path, op.new_sha256));
  absl::StatusOr<common::StagedWrite> w =
      op.has_content
          ? common::StageWriteAt(b.dir.get(), b.name, op.path, op.content, op.mode, uid, gid)
          : common::StageCopyAt(op.source_path, b.dir.get(), b.name, op.path, op.mode, uid, gid);
  RETURN_IF_ERROR(w.status());
  pending.push_back(PendingWrite{&op, *std::move(w)});
  return absl::OkStatus();
}

// Makes every pending write durable (SyncStaged), then, in order, re-checks that its path still
// holds op.expected_sha256 (the guard runs again just before the rename), renames it into place
// and verifies the bytes written. Stops at the first failure; the writes not renamed are
// discarded (their temporaries removed).
absl::Status CommitWrites(Snapshot& snapshot,
                          std::vector<FileChange>* applied, DirSyncs& syncs,
                          std::vector<PendingWrite>& pending) {
  std::vector<common::StagedWrite*> staged;
  staged.reserve(pending.size());
  for (PendingWrite& p : pending) staged.push_back(&p.staged);
  absl::Status st = common::SyncStaged(staged);
  for (PendingWrite& p : pending) {
    if (!st.ok()) break;
    const FileOp& op = *p.op;
    // The entry in the folder the write was staged in (reached without a symlink then).
    const int dir_fd = p.staged.dir_fd();
    const std::string name = common::Basename(op.path);
    absl::StatusOr<std::string> current = ShaAt(dir_fd, name, op.path);
    if (!current.ok()) {
      st = current.status();
      break;
    }
    if (*current != op.expected_sha256) {
      st = absl::FailedPreconditionError(Mismatch(op, *current));
      break;
    }
    syncs.Add(dir_fd, common::Dirname(op.path));
    st = p.staged.Commit();
    if (!st.ok()) break;
    if (p.staged.sha256() != op.new_sha256) {
      // Keep the snapshot truthful so a rollback restores this path without force.
      st = snapshot.RecordWritten(op.path, p.staged.sha256());
      if (st.ok()) {
        st = absl::DataLossError(absl::StrCat(
            op.path, ": the written file has sha256 ", p.staged.sha256(), " but ",
            op.new_sha256, " was planned",
            op.has_content ? ""
                           : absl::StrCat(" (did ", op.source_path, " change during the copy?)"),
            "; the original is in the run's snapshot"));
      }
      break;
    }
    if (applied != nullptr) applied->push_back(DescribeOp(op));
  }
  pending.clear();  // what was not renamed is discarded
  return st;
}

absl::Status ApplyDelete(const std::string& root, const FileOp& op, Snapshot& snapshot,
                         std::vector<FileChange>* applied, DirSyncs& syncs, FolderCache& cache) {
  ASSIGN_OR_RETURN(Beneath b,
                   OpenAndExpect(root, op, snapshot, applied, false, nullptr, &syncs, &cache));
  if (op.expected_sha256.empty()) return absl::OkStatus();  // already absent
  if (!op.temp_debris) {
    RETURN_IF_ERROR(snapshot.Save(op.path));
    RETURN_IF_ERROR(snapshot.RecordWritten(op.path, ""));
  }
  if (::unlinkat(b.dir.get(), b.name.c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoStatus("cannot delete", op.path, errno);
  }
  syncs.Add(b.dir.get(), common::Dirname(op.path));
  if (applied != nullptr) applied->push_back(DescribeOp(op));
  return absl::OkStatus();
}

absl::Status ApplyRmdir(const std::string& root, const FileOp& op, Snapshot& snapshot,
                        std::vector<FileChange>* applied, DirSyncs& syncs, FolderCache& cache) {
  ASSIGN_OR_RETURN(Beneath b, OpenBeneath(root, op.path, nullptr, nullptr, ""));
  if (!b.found) return absl::OkStatus();  // already gone
  struct stat st;
  if (::fstatat(b.dir.get(), b.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return absl::OkStatus();  // already gone
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(op.path, " is no longer a directory; not removed"));
  }
  RETURN_IF_ERROR(snapshot.RecordRemovedDir(op.path, st.st_mode & 07777, st.st_uid, st.st_gid));
  cache.Clear();  // the folder, and any below it, may no longer be reached from the home
  if (::unlinkat(b.dir.get(), b.name.c_str(), AT_REMOVEDIR) != 0) {
    if (errno == ENOTEMPTY || errno == EEXIST) {
      return absl::FailedPreconditionError(absl::StrCat(op.path, " is not empty; not removed"));
    }
    return ErrnoStatus("cannot remove directory", op.path, errno);
  }
  syncs.Add(b.dir.get(), common::Dirname(op.path));
  if (applied != nullptr) applied->push_back(DescribeOp(op));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> CurrentSha256(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::string();
    return ErrnoStatus("cannot stat", path, errno);
  }
  if (S_ISREG(st.st_mode)) return common::Sha256File(path);
  const char* what = S_ISDIR(st.st_mode)   ? "a directory"
                     : S_ISLNK(st.st_mode) ? "a symlink"
                                           : "not a file";
  return absl::FailedPreconditionError(
      absl::StrCat(path, " is ", what, "; mimic only replaces regular files"));
}

FileChange DescribeOp(const FileOp& op) {
  FileChange c;
  c.set_path(op.path);
  c.set_note(op.note);
  switch (op.kind) {
    case FileOp::Kind::kWrite:
      c.set_action(op.expected_sha256.empty() ? mimic::v1::ACTION_CREATE
                                              : mimic::v1::ACTION_UPDATE);
      c.set_size(op.new_size);
      c.set_sha256_before(op.expected_sha256);
      c.set_sha256_after(op.new_sha256);
      break;
    case FileOp::Kind::kDelete:
      c.set_action(mimic::v1::ACTION_DELETE);
      c.set_sha256_before(op.expected_sha256);
      break;
    case FileOp::Kind::kMkdir:
      c.set_action(mimic::v1::ACTION_MKDIR);
      break;
    case FileOp::Kind::kRmdir:
      c.set_action(mimic::v1::ACTION_RMDIR);
      break;
  }
  return c;
}

std::vector<FileChange> DescribeChangeSet(const ChangeSet& changes) {
  std::vector<FileChange> out;
  out.reserve(changes.ops.size());
  for (const FileOp& op : changes.ops) out.push_back(DescribeOp(op));
  return out;
}

absl::Status ApplyChangeSet(const ChangeSet& changes, const std::string& root,
                            Snapshot& snapshot, std::vector<FileChange>* applied,
                            const std::atomic<bool>* cancel) {
  if (root.empty() || root[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("home \"", root, "\" is not absolute"));
  }
  size_t done = 0;
  // Batched durability: first the snapshot records of every op that passes its checks now, with
  // one fsync for all; then the ops, each re-checked just before it writes (a record an op still
  // needs, e.g. after a change behind mimic's back, is appended and fsynced on its own as
  // before); then one fsync per folder changed, before the change set is reported done.
  snapshot.BeginBatch();
  FolderCache cache;
  for (const FileOp& op : changes.ops) {
    if (op.path.empty() || op.path[0] != '/' || !RecordAhead(root, op, snapshot, cache)) break;
  }
  RETURN_IF_ERROR(snapshot.Flush());
  DirSyncs syncs;
  absl::Status st;
  // Writes are staged (temporaries written, not yet synced nor renamed) and committed together:
  // before any other kind of op, before a second write of a path already pending, every
  // kMaxPending writes (each holds a folder descriptor) and at the end.
  constexpr size_t kMaxPending = 256;
  std::vector<PendingWrite> pending;
  std::set<std::string> pending_paths;
  auto commit = [&]() -> absl::Status {
    pending_paths.clear();
    if (pending.empty()) return absl::OkStatus();
    return CommitWrites(snapshot, applied, syncs, pending);
  };
  for (const FileOp& op : changes.ops) {
    if (cancel != nullptr && cancel->load()) {
      st = commit();
      if (st.ok()) {
        st = absl::CancelledError(absl::StrCat(
            "cancelled after ", done, " of ", changes.ops.size(),
            " changes (each one made is in the run's snapshot; the rest were not begun)"));
      }
      break;
    }
    ++done;
    if (op.path.empty() || op.path[0] != '/') {
      st = absl::InvalidArgumentError(
          absl::StrCat("change set path \"", op.path, "\" is not absolute"));
      break;
    }
    if (op.kind != FileOp::Kind::kWrite || pending_paths.count(op.path) > 0 ||
        pending.size() >= kMaxPending) {
      st = commit();
      if (!st.ok()) break;
    }
    switch (op.kind) {
      case FileOp::Kind::kWrite:
        st = StageWrite(root, op, snapshot, applied, syncs, pending, cache);
        if (st.ok()) pending_paths.insert(op.path);
        break;
      case FileOp::Kind::kDelete:
        st = ApplyDelete(root, op, snapshot, applied, syncs, cache);
        break;
      case FileOp::Kind::kMkdir:
        st = OpenBeneath(root, op.path, &snapshot, applied, op.note,
                         /*whole_path_is_dir=*/true,
                         (op.mode & 0100) != 0 ? op.mode & 07777 : 0755, op.uid, op.gid, &syncs)
                 .status();
        break;
      case FileOp::Kind::kRmdir:
        st = ApplyRmdir(root, op, snapshot, applied, syncs, cache);
        break;
    }
    if (!st.ok()) break;
  }
  // The writes checked and staged before a failure are made as they would have been before it.
  absl::Status committed = commit();
  if (st.ok()) st = committed;
  // What was done is made durable on failure too: a reported change is on disk.
  absl::Status synced = syncs.SyncAll();
  return st.ok() ? synced : st;
}

absl::StatusOr<std::optional<FileOp>> MakeCopyOp(const std::string& from, const std::string& to,
                                                 const std::string& note) {
  struct stat st;
  if (::stat(from.c_str(), &st) != 0) {
    const int err = errno;
    struct stat link;
    if (err == ENOENT && ::lstat(from.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
      char buf[4096];
      const ssize_t n = ::readlink(from.c_str(), buf, sizeof(buf));
      return absl::FailedPreconditionError(
          absl::StrCat(from, " is a dangling symlink (to ", std::string(buf, n > 0 ? n : 0),
                       "); not copied: remove it or restore what it points to"));
    }
    return ErrnoStatus("cannot read", from, err);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(from, " is not a regular file"));
  }
  ASSIGN_OR_RETURN(std::string from_sha, common::Sha256File(from));
  ASSIGN_OR_RETURN(std::string to_sha, CurrentSha256(to));
  if (from_sha == to_sha) return std::optional<FileOp>();
  FileOp op;
  op.kind = FileOp::Kind::kWrite;
  op.path = to;
  op.expected_sha256 = to_sha;
  op.source_path = from;
  op.new_sha256 = from_sha;
  op.new_size = static_cast<uint64_t>(st.st_size);
  op.mode = st.st_mode & 07777;
  op.note = note;
  return std::optional<FileOp>(std::move(op));
}

FileOp ContentWriteOp(const std::string& path, const std::string& expected_sha256,
                      std::string content, uint32_t mode, const std::string& note) {
  FileOp op;
  op.kind = FileOp::Kind::kWrite;
  op.path = path;
  op.expected_sha256 = expected_sha256;
  op.new_sha256 = common::Sha256Hex(content);
  op.new_size = content.size();
  op.content = std::move(content);
  op.has_content = true;
  op.mode = mode;
  op.note = note;
  return op;
}

absl::StatusOr<std::optional<FileOp>> MakeWriteOp(const std::string& path, std::string content,
                                                  uint32_t mode, const std::string& note) {
  ASSIGN_OR_RETURN(std::string current, CurrentSha256(path));
  if (current == common::Sha256Hex(content)) return std::optional<FileOp>();
  const uint32_t bits = current.empty() ? mode : common::FileMode(path);
  return std::optional<FileOp>(ContentWriteOp(path, current, std::move(content), bits, note));
}

void AddParentDirOps(ChangeSet* changes) {
  std::set<std::string> planned, missing;
  for (const FileOp& op : changes->ops) {
    if (op.kind == FileOp::Kind::kMkdir) planned.insert(op.path);
  }
  for (const FileOp& op : changes->ops) {
    if (op.kind != FileOp::Kind::kWrite && op.kind != FileOp::Kind::kMkdir) continue;
    for (std::string d = common::Dirname(op.path); !d.empty() && d != "/"; d = common::Dirname(d)) {
      if (missing.count(d) > 0 || common::PathExists(d)) break;
      if (planned.count(d) == 0) missing.insert(d);
    }
  }
  if (missing.empty()) return;
  // std::set order puts every directory before the paths below it.
  std::vector<FileOp> ops;
  for (const std::string& d : missing) {
    FileOp op;
    op.kind = FileOp::Kind::kMkdir;
    op.path = d;
    op.mode = 0755;
    ops.push_back(std::move(op));
  }
  std::move(changes->ops.begin(), changes->ops.end(), std::back_inserter(ops));
  changes->ops = std::move(ops);
}

}  // namespace mimic::agent
