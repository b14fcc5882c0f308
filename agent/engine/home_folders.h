// The folders beneath a target home that a change set walks, makes and syncs: each op's folder is
// opened walking down from the home one component at a time with O_NOFOLLOW (no symlink is
// followed beneath the home), folders a change set reached are kept open for its later ops, and
// the folders whose entries changed are fsynced once at its end. Used by change_set.cc only.
#ifndef MIMIC_AGENT_ENGINE_HOME_FOLDERS_H_
#define MIMIC_AGENT_ENGINE_HOME_FOLDERS_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/engine/snapshot.h"
#include "common/base/fd.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

// `path`: `what`: strerror(err), as PERMISSION_DENIED, NOT_FOUND or INTERNAL.
absl::Status ErrnoStatus(const std::string& what, const std::string& path, int err);

// The FileChange a folder op reports.
mimic::v1::FileChange DirChange(const std::string& path, mimic::v1::Action action,
                                const std::string& note);

// One write beneath the home: the folder that holds the path, opened without following any
// symlink from the home down, and the entry's name in it.
struct Beneath {
  common::Fd dir;
  std::string name;
  bool found = true;  // false: a folder on the way is missing (nothing to open)
  // found = false: the folders a write would create, outermost first.
  std::vector<std::string> missing;
};

// The folders one change set has reached, each by its walk down from the home without a symlink,
// so every later op in the same folder starts from the descriptor instead of walking again (as a
// staged write already keeps its folder's descriptor until its rename). Keyed by the folder's
// path; only folders found (or made) are kept. An op that removes a folder empties it.
class FolderCache {
 public:
  FolderCache() = default;
  FolderCache(const FolderCache&) = delete;
  FolderCache& operator=(const FolderCache&) = delete;
  // A descriptor of its own for `folder` (-1 when not cached).
  int Dup(const std::string& folder) const {
    auto it = dirs_.find(folder);
    return it == dirs_.end() ? -1 : ::fcntl(it->second.get(), F_DUPFD_CLOEXEC, 0);
  }
  // For `folders` (a path's folders, outermost first): the index of the deepest one cached and
  // a descriptor of its own for it (0, -1 when none is).
  std::pair<size_t, int> DupDeepest(const std::vector<std::string>& folders) const {
    for (size_t i = folders.size(); i-- > 0;) {
      if (const int fd = Dup(folders[i]); fd >= 0) return {i, fd};
    }
    return {0, -1};
  }
  void Put(const std::string& folder, int fd) {
    if (dirs_.size() >= kMaxFolders) dirs_.clear();
    const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own >= 0) dirs_.insert_or_assign(folder, common::Fd(own));
  }
  void Clear() { dirs_.clear(); }

 private:
  static constexpr size_t kMaxFolders = 64;  // descriptors held at most
  std::map<std::string, common::Fd> dirs_;
};

// Directories whose entries changed (a rename, unlink, mkdir or rmdir in them) and still need
// the fsync that makes the change durable: ApplyChangeSet syncs each once, at the end, before
// it reports the change set done. Keyed by device and inode.
class DirSyncs {
 public:
  DirSyncs() = default;
  DirSyncs(const DirSyncs&) = delete;
  DirSyncs& operator=(const DirSyncs&) = delete;
  ~DirSyncs() {
    for (auto& [key, d] : dirs_) ::close(d.fd);
  }
  void Add(int dir_fd, const std::string& shown) {
    struct stat st;
    if (::fstat(dir_fd, &st) != 0) {  // cannot key it: sync it now
      (void)::fsync(dir_fd);
      return;
    }
    const auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    if (dirs_.count(key) > 0) return;
    const int fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      (void)::fsync(dir_fd);
      return;
    }
    dirs_.emplace(key, Dir{fd, shown});
  }
  // fsyncs every directory; the first error names its directory.
  absl::Status SyncAll() {
    absl::Status first;
    for (auto& [key, d] : dirs_) {
      if (::fsync(d.fd) != 0 && errno != EINVAL && first.ok()) {
        first = ErrnoStatus("cannot fsync directory", d.shown, errno);
      }
      ::close(d.fd);
    }
    dirs_.clear();
    return first;
  }

 private:
  struct Dir {
    int fd;
    std::string shown;
  };
  std::map<std::pair<uint64_t, uint64_t>, Dir> dirs_;
};

// The components of `path` below `root`; INVALID_ARGUMENT when `path` is not beneath it.
absl::StatusOr<std::vector<std::string>> Components(const std::string& root,
                                                    const std::string& path);

// Opens the folder of `path` walking down from `root` one component at a time with O_NOFOLLOW,
// so no symlink is followed anywhere beneath the home. With `snapshot`, missing folders are
// created (recorded first, owner and group of their parent, the last one with `last_mode` and,
// when not -1, `last_uid` / `last_gid`); without, a missing folder gives found = false.
absl::StatusOr<Beneath> OpenBeneath(const std::string& root, const std::string& path,
                                    Snapshot* snapshot, std::vector<mimic::v1::FileChange>* applied,
                                    const std::string& note, bool whole_path_is_dir = false,
                                    uint32_t last_mode = 0755, int64_t last_uid = -1,
                                    int64_t last_gid = -1, DirSyncs* syncs = nullptr,
                                    FolderCache* cache = nullptr);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_HOME_FOLDERS_H_
