#include "agent/engine/home_folders.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/fs.h"
#include "common/base/status_macros.h"

namespace mimic::agent {

using common::Fd;
using mimic::v1::FileChange;

absl::Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = absl::StrCat(path, ": ", what, ": ", std::strerror(err));
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

FileChange DirChange(const std::string& path, mimic::v1::Action action, const std::string& note) {
  FileChange c;
  c.set_path(path);
  c.set_action(action);
  c.set_note(note);
  return c;
}

namespace {

// Why `name` in `dir_fd` could not be opened as a folder.
absl::Status NotAFolder(int dir_fd, const std::string& name, const std::string& shown, int err) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          shown, " is a symlink; mimic never writes through a symlink in the target home"));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(shown, " is not a directory"));
    }
  }
  return ErrnoStatus("cannot open directory", shown, err);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> Components(const std::string& root,
                                                    const std::string& path) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  const std::string prefix = r == "/" ? "/" : r + "/";
  if (path.compare(0, prefix.size(), prefix) != 0 || path.size() == prefix.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not beneath ", root, "; mimic writes only inside the target home"));
  }
  std::vector<std::string> parts;
  for (absl::string_view c : absl::StrSplit(path.substr(prefix.size()), '/', absl::SkipEmpty())) {
    if (c == "." || c == "..") {
      return absl::InvalidArgumentError(absl::StrCat(path, " has a '", c, "' component"));
    }
    parts.emplace_back(c);
  }
  if (parts.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " is the home itself"));
  return parts;
}


absl::StatusOr<Beneath> OpenBeneath(const std::string& root, const std::string& path,
                                    Snapshot* snapshot, std::vector<FileChange>* applied,
                                    const std::string& note, bool whole_path_is_dir,
                                    uint32_t last_mode, int64_t last_uid, int64_t last_gid,
                                    DirSyncs* syncs, FolderCache* cache) {
  ASSIGN_OR_RETURN(std::vector<std::string> parts, Components(root, path));
  Beneath out;
  const size_t folders = whole_path_is_dir ? parts.size() : parts.size() - 1;
  // levels[k]: the folder reached after k components (levels[0] is the home).
  std::vector<std::string> levels = {root};
  levels.reserve(folders + 1);
  for (size_t i = 0; i < folders; ++i) levels.push_back(common::JoinPath(levels.back(), parts[i]));
  const std::string& folder = levels.back();
  size_t start = 0;  // components already walked
  // The walk resumes below the deepest folder this change set already reached (a folder still
  // missing is walked to again from its nearest existing parent, not from the home).
  if (cache != nullptr) {
    if (const auto [deepest, fd] = cache->DupDeepest(levels); fd >= 0) {
      out.dir = Fd(fd);
      start = deepest;
      if (start == folders) {
        out.name = parts.back();
        return out;
      }
    }
  }
  if (out.dir.get() < 0) {
    // The home itself may be named through a symlink (the operator's /opt/mi-current); nothing
    // beneath it may.
    out.dir = Fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (out.dir.get() < 0) return ErrnoStatus("cannot open the home", root, errno);
  }
  std::string shown = levels[start];
  for (size_t i = start; i < folders; ++i) {
    const std::string& c = parts[i];
    shown = common::JoinPath(shown, c);
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(out.dir.get(), c.c_str(), flags);
    if (fd < 0 && errno == ENOENT) {
      if (snapshot == nullptr) {
        if (cache != nullptr) cache->Put(levels[i], out.dir.get());  // the deepest found
        out.found = false;
        out.name = parts.back();
        for (size_t j = i; j < folders; ++j) {
          out.missing.push_back(j == i ? shown : common::JoinPath(out.missing.back(), parts[j]));
        }
        return out;
      }
      struct stat parent;
      if (::fstat(out.dir.get(), &parent) != 0) return ErrnoStatus("cannot stat", shown, errno);
      RETURN_IF_ERROR(snapshot->RecordCreatedDir(shown));
      const uint32_t mode = i + 1 == folders && whole_path_is_dir ? last_mode : 0755;
      if (::mkdirat(out.dir.get(), c.c_str(), mode) != 0 && errno != EEXIST) {
        return ErrnoStatus("cannot create directory", shown, errno);
      }
      fd = ::openat(out.dir.get(), c.c_str(), flags);
      if (fd < 0) return NotAFolder(out.dir.get(), c, shown, errno);
      Fd made(fd);
      // A made folder takes its parent's owner and group (an agent that is not root can only
      // keep what it may: it is refused the change of owner, which the folder then reports);
      // a folder rollback recreates takes the owner and group it had.
      const bool last = i + 1 == folders && whole_path_is_dir;
      const uid_t uid = last && last_uid >= 0 ? static_cast<uid_t>(last_uid) : parent.st_uid;
      const gid_t gid = last && last_gid >= 0 ? static_cast<gid_t>(last_gid) : parent.st_gid;
      struct stat st;
      if (::fstat(made.get(), &st) == 0 && (st.st_uid != uid || st.st_gid != gid) &&
          ::fchown(made.get(), uid, gid) != 0) {
        return ErrnoStatus(absl::StrCat("cannot give owner ", uid, ":", gid,
                                        last && last_uid >= 0 ? " (its original)"
                                                              : " (its parent's)",
                                        " to the new directory"),
                           shown, errno);
      }
      if (::fchmod(made.get(), mode) != 0) return ErrnoStatus("cannot chmod", shown, errno);
      if (syncs != nullptr) {
        syncs->Add(out.dir.get(), common::Dirname(shown));
      } else {
        (void)::fsync(out.dir.get());  // best effort: the mkdir is done
      }
      if (applied != nullptr) {
        applied->push_back(
            DirChange(shown, mimic::v1::ACTION_MKDIR, i + 1 == folders ? note : ""));
      }
      out.dir = std::move(made);
      continue;
    }
    if (fd < 0) return NotAFolder(out.dir.get(), c, shown, errno);
    out.dir = Fd(fd);
  }
  out.name = parts.back();
  if (cache != nullptr) cache->Put(folder, out.dir.get());
  return out;
}

}  // namespace mimic::agent
