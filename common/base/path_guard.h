// Confinement: every path an agent reads or writes is resolved against its allowed roots
// without following symlinks out of them.
#ifndef MIMIC_COMMON_BASE_PATH_GUARD_H_
#define MIMIC_COMMON_BASE_PATH_GUARD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct stat;

namespace mimic::common {

// Why mimic neither reads nor replaces the file `st` describes, or "" when it may:
//   * a FIFO, socket or device: a read would block or never end, and MI homes hold none;
//   * a regular file with more than one name (hard links): by its path mimic cannot tell where
//     its other names are (they may lie outside the allowed roots, e.g. /etc/shadow), so what
//     it would read is not known to be the home's; and replacing it would silently split the
//     link (writes are renames, so the other names would keep the old bytes).
// Directories and symlinks are the walker's and the guard's business ("").
std::string RefusedFileKind(const struct stat& st);

class PathGuard {
 public:
  // `roots` are absolute directories; they are canonicalised (symlinks resolved) once here.
  explicit PathGuard(std::vector<std::string> roots);

  // Returns the absolute, lexically normalised form of `path` when it lies inside an allowed
  // root and no existing component of it is a symlink leading outside the roots (components
  // that do not exist yet are allowed: they will be created inside). Relative paths and paths
  // holding ".." components are refused outright. PERMISSION_DENIED names the path and the roots.
  // An existing path whose file RefusedFileKind refuses (after an inside symlink) is
  // PERMISSION_DENIED too, naming the path and why.
  //
  // When `last_lstat` is set, it receives the lstat of the path's last component as the walk saw
  // it (a symlink as the link itself; a root's own stat for a root), or st_mode 0 when the path
  // does not exist or a component of it could not be looked at: a caller judges the file's kind
  // on it instead of stat'ing the path again.
  absl::StatusOr<std::string> Resolve(const std::string& path,
                                      struct stat* last_lstat = nullptr) const;

  // Folders found confined are remembered (bounded) with their device and inode: a later
  // Resolve beneath one checks it with a single stat (same device and inode: still the folder
  // checked, whatever the path now goes through) instead of an lstat per component; any other
  // answer forgets it and walks again. The components below it are checked every time.
  //
  // Resolve(base + "/" + relative) after refusing a `relative` that is absolute or has "..".
  absl::StatusOr<std::string> ResolveUnder(const std::string& base, const std::string& relative,
                                           struct stat* last_lstat = nullptr) const;

  // Remembers `folder` (absolute) as a confined folder with the device and inode in `st`, as a
  // Resolve of it would have, for a walker that reached it without following a symlink from a
  // folder this guard resolved (openat with O_NOFOLLOW from that folder's descriptor, `st` the
  // fstat of the folder opened). A folder outside the roots, or not a folder, is ignored.
  void RememberFolder(const std::string& folder, const struct stat& st) const;

  const std::vector<std::string>& roots() const { return roots_; }

  // Components lstat'ed and remembered folders stat'ed since construction (for tests and
  // benchmarks).
  uint64_t components_checked() const;

 private:
  struct FolderCache;
  std::vector<std::string> roots_;
  std::shared_ptr<FolderCache> cache_;  // shared by copies
};

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_PATH_GUARD_H_
