#include "agent/engine/change_set.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/engine/snapshot.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

using mimic::v1::FileChange;

std::string ShaOrNone(const std::string& sha) { return sha.empty() ? "(none)" : sha; }

absl::Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

absl::Status ExpectSha(const FileOp& op) {
  ASSIGN_OR_RETURN(std::string current, CurrentSha256(op.path));
  if (current != op.expected_sha256) {
    return absl::FailedPreconditionError(absl::StrCat(
        op.path, " changed since the plan was made (expected sha256 ",
        ShaOrNone(op.expected_sha256), ", found ", ShaOrNone(current), "); not overwritten"));
  }
  return absl::OkStatus();
}

FileChange DirChange(const std::string& path, mimic::v1::Action action, const std::string& note) {
  FileChange c;
  c.set_path(path);
  c.set_action(action);
  c.set_note(note);
  return c;
}

// Creates `dir` and its missing ancestors, one level at a time, each recorded in the snapshot
// before it is made.
absl::Status CreateDirs(const std::string& dir, Snapshot& snapshot,
                        std::vector<FileChange>* applied, const std::string& note) {
  std::vector<std::string> missing;
  for (std::string d = dir; !d.empty() && d != "/"; d = common::Dirname(d)) {
    struct stat st;
    if (::lstat(d.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat(d, " is not a directory; cannot create ", dir));
      }
      break;
    }
    missing.push_back(d);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    RETURN_IF_ERROR(snapshot.RecordCreatedDir(*it));
    if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus("cannot create directory", *it, errno);
    }
    (void)common::FsyncDir(common::Dirname(*it));  // best effort: the rmdir is done
    if (applied != nullptr) {
      applied->push_back(DirChange(*it, mimic::v1::ACTION_MKDIR, *it == dir ? note : ""));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyWrite(const FileOp& op, Snapshot& snapshot, std::vector<FileChange>* applied) {
  RETURN_IF_ERROR(ExpectSha(op));
  RETURN_IF_ERROR(CreateDirs(common::Dirname(op.path), snapshot, applied, ""));
  RETURN_IF_ERROR(snapshot.Save(op.path));
  RETURN_IF_ERROR(snapshot.RecordWritten(op.path, op.new_sha256));
  if (op.has_content) {
    RETURN_IF_ERROR(common::WriteFileAtomic(op.path, op.content, op.mode));
  } else {
    RETURN_IF_ERROR(common::CopyFileAtomic(op.source_path, op.path, op.mode));
  }
  ASSIGN_OR_RETURN(std::string written, common::Sha256File(op.path));
  if (written != op.new_sha256) {
    // Keep the snapshot truthful so a rollback restores this path without force.
    RETURN_IF_ERROR(snapshot.RecordWritten(op.path, written));
    return absl::DataLossError(absl::StrCat(
        op.path, ": the written file has sha256 ", written, " but ", op.new_sha256, " was planned",
        op.has_content ? "" : absl::StrCat(" (did ", op.source_path, " change during the copy?)"),
        "; the original is in the run's snapshot"));
  }
  if (applied != nullptr) applied->push_back(DescribeOp(op));
  return absl::OkStatus();
}

absl::Status ApplyDelete(const FileOp& op, Snapshot& snapshot, std::vector<FileChange>* applied) {
  RETURN_IF_ERROR(ExpectSha(op));
  if (op.expected_sha256.empty()) return absl::OkStatus();  // already absent
  RETURN_IF_ERROR(snapshot.Save(op.path));
  RETURN_IF_ERROR(snapshot.RecordWritten(op.path, ""));
  if (::unlink(op.path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("cannot delete", op.path, errno);
  }
  (void)common::FsyncDir(common::Dirname(op.path));  // best effort: the change is done
  if (applied != nullptr) applied->push_back(DescribeOp(op));
  return absl::OkStatus();
}

absl::Status ApplyRmdir(const FileOp& op, Snapshot& snapshot, std::vector<FileChange>* applied) {
  struct stat st;
  if (::lstat(op.path.c_str(), &st) != 0) return absl::OkStatus();  // already gone
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(op.path, " is no longer a directory; not removed"));
  }
  RETURN_IF_ERROR(snapshot.RecordRemovedDir(op.path, st.st_mode & 07777));
  if (::rmdir(op.path.c_str()) != 0) {
    if (errno == ENOTEMPTY || errno == EEXIST) {
      return absl::FailedPreconditionError(absl::StrCat(op.path, " is not empty; not removed"));
    }
    return ErrnoStatus("cannot remove directory", op.path, errno);
  }
  (void)common::FsyncDir(common::Dirname(op.path));  // best effort: the change is done
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

absl::Status ApplyChangeSet(const ChangeSet& changes, Snapshot& snapshot,
                            std::vector<FileChange>* applied) {
  for (const FileOp& op : changes.ops) {
    if (op.path.empty() || op.path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("change set path \"", op.path, "\" is not absolute"));
    }
    switch (op.kind) {
      case FileOp::Kind::kWrite:
        RETURN_IF_ERROR(ApplyWrite(op, snapshot, applied));
        break;
      case FileOp::Kind::kDelete:
        RETURN_IF_ERROR(ApplyDelete(op, snapshot, applied));
        break;
      case FileOp::Kind::kMkdir:
        if (!common::IsDirectory(op.path)) {
          RETURN_IF_ERROR(CreateDirs(op.path, snapshot, applied, op.note));
        }
        break;
      case FileOp::Kind::kRmdir:
        RETURN_IF_ERROR(ApplyRmdir(op, snapshot, applied));
        break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<FileOp>> MakeCopyOp(const std::string& from, const std::string& to,
                                                 const std::string& note) {
  struct stat st;
  if (::stat(from.c_str(), &st) != 0) return ErrnoStatus("cannot read", from, errno);
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

absl::StatusOr<std::optional<FileOp>> MakeWriteOp(const std::string& path, std::string content,
                                                  uint32_t mode, const std::string& note) {
  ASSIGN_OR_RETURN(std::string current, CurrentSha256(path));
  std::string new_sha = common::Sha256Hex(content);
  if (current == new_sha) return std::optional<FileOp>();
  FileOp op;
  op.kind = FileOp::Kind::kWrite;
  op.path = path;
  op.expected_sha256 = current;
  op.new_sha256 = std::move(new_sha);
  op.new_size = content.size();
  op.content = std::move(content);
  op.has_content = true;
  op.mode = current.empty() ? mode : common::FileMode(path);
  op.note = note;
  return std::optional<FileOp>(std::move(op));
}

void AddParentDirOps(ChangeSet* changes) {
  std::set<std::string> planned, missing;
  for (const FileOp& op : changes->ops) {
    if (op.kind == FileOp::Kind::kMkdir) planned.insert(op.path);
  }
  for (const FileOp& op : changes->ops) {
    if (op.kind != FileOp::Kind::kWrite) continue;
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
