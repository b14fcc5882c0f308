// File helpers: hashing, whole-file reads, atomic writes, tree walks.
#ifndef MIMIC_COMMON_BASE_FS_H_
#define MIMIC_COMMON_BASE_FS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mimic::common {

// Lower-case hex sha256 of bytes / of a file's content.
std::string Sha256Hex(const std::string& bytes);
// A file's sha256 is read once per process while the file stays as it is: results are kept in a
// bounded process-wide cache keyed by (device, inode, size, mtime_ns, ctime_ns). Any change of
// the bytes moves ctime (which no user call can set back), so a changed file misses. A result is
// kept only when the file's ctime is older than the clock tick in which the read started (less a
// safety margin), so a write in the same tick as the read can never leave a stale entry (git's
// "racily clean" rule).
absl::StatusOr<std::string> Sha256File(const std::string& path);
// The same for an open file (read from offset 0 with pread); `display` names it in errors.
absl::StatusOr<std::string> Sha256Fd(int fd, const std::string& display);
// Hash cache counters since the process started, for tests and benchmarks.
struct HashCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t bytes_hashed = 0;
};
HashCacheStats GetHashCacheStats();
// Forgets every cached hash.
void ClearHashCache();

// "" when the path does not exist (or is not a regular file); the hex sha256 otherwise.
absl::StatusOr<std::string> Sha256IfExists(const std::string& path);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `bytes` to `path` atomically: a temporary sibling, fsync, rename, fsync of the parent.
// Parent directories are created (0755) as needed.
absl::Status WriteFileAtomic(const std::string& path, const std::string& bytes,
                             uint32_t mode = 0644);
// Same, copying the content of `from`.
absl::Status CopyFileAtomic(const std::string& from, const std::string& path,
                            uint32_t mode = 0644);

// Atomic writes into directory `dir_fd` (an open directory), entry `name`, whose durability is
// paid once for many files (ApplyChangeSet's change sets). StageWriteAt / StageCopyAt create a
// temporary sibling named TempPrefix(name) + digits (O_EXCL|O_NOFOLLOW), fill it, give it `mode`
// and the owner `uid`/`gid` (-1 = leave as created; PERMISSION_DENIED when it cannot be given),
// unsynced and not renamed; `display` names the file in errors; the temporary is removed on any
// error. sha256() is that of the bytes written: StageCopyAt takes it from the hash cache when
// `from` is cached and unchanged from before to after the copy (the bytes are then copied in
// the kernel, copy_file_range), and hashes the bytes otherwise. SyncStaged makes every staged temporary durable: one
// syncfs per filesystem (where syncfs fails, an fsync of each temporary, the first error naming
// its file). Commit renames the temporary over the entry (the caller fsyncs the directory before
// it reports the write done). Commit only after SyncStaged returned OK, so a crash never leaves
// a torn file in place: before its rename, a write is only a temporary (TempPrefix) beside its
// entry. A StagedWrite not committed removes its temporary when discarded or destroyed.
class StagedWrite {
 public:
  StagedWrite() = default;
  ~StagedWrite();
  StagedWrite(StagedWrite&& o) noexcept;
  StagedWrite& operator=(StagedWrite&& o) noexcept;
  StagedWrite(const StagedWrite&) = delete;
  StagedWrite& operator=(const StagedWrite&) = delete;

  // The sha256 of the bytes written, hashed as they were written.
  const std::string& sha256() const { return sha256_; }
  // The folder the temporary is in (-1 once committed or discarded).
  int dir_fd() const { return dir_fd_; }
  // Renames the temporary over the entry; on error the temporary is removed.
  absl::Status Commit();
  // Removes the temporary (nothing once committed).
  void Discard();

 private:
  friend absl::StatusOr<StagedWrite> StageWriteAt(int, const std::string&, const std::string&,
                                                  const std::string&, uint32_t, int64_t, int64_t);
  friend absl::StatusOr<StagedWrite> StageCopyAt(const std::string&, int, const std::string&,
                                                 const std::string&, uint32_t, int64_t, int64_t);
  friend absl::Status SyncStaged(const std::vector<StagedWrite*>& writes);
  absl::Status Stage(int dir_fd, const std::string& name, const std::string& display,
                     uint32_t mode, int64_t uid, int64_t gid,
                     const std::function<absl::Status(int fd)>& fill);

  int dir_fd_ = -1;  // owned: a duplicate of the folder's descriptor
  std::string tmp_, name_, display_, sha256_;
};
absl::StatusOr<StagedWrite> StageWriteAt(int dir_fd, const std::string& name,
                                         const std::string& display, const std::string& bytes,
                                         uint32_t mode, int64_t uid, int64_t gid);
absl::StatusOr<StagedWrite> StageCopyAt(const std::string& from, int dir_fd,
                                        const std::string& name, const std::string& display,
                                        uint32_t mode, int64_t uid, int64_t gid);
absl::Status SyncStaged(const std::vector<StagedWrite*>& writes);

// ".<name>.mimic-tmp-": every temporary file of an atomic write of `name` starts with it, so
// what a crash between create and rename leaves can be found and removed.
std::string TempPrefix(const std::string& name);
// Test hook (injected by tests/ binaries only): called after each chunk an atomic copy writes,
// and once after an atomic write of bytes has written them all (before fsync and rename), with
// the final path's display name and the bytes written so far. Null (the default) = none.
void SetCopyProgressHookForTesting(std::function<void(const std::string& display, uint64_t bytes)>);
// Test hook (injected by tests/ binaries only): called by StagedWrite::Commit just before it
// renames a synced temporary into place, with the final path's display name. Null = none.
void SetCommitHookForTesting(std::function<void(const std::string& display)>);

// Creates `path` and its missing parents; each directory it creates is made durable (its parent
// is fsynced). OK when `path` already is a directory.
absl::Status MakeDirs(const std::string& path, uint32_t mode = 0755);

// fsyncs directory `dir` ("" = the working directory) so a create, rename, unlink, mkdir or
// rmdir in it is durable. An error names the directory.
absl::Status FsyncDir(const std::string& dir);

// The names in the open folder `dir_fd` (without "." and ".."), sorted; `dir_fd` itself is not
// moved nor closed. An error names `display`.
absl::StatusOr<std::vector<std::string>> ReadFolderNames(int dir_fd, const std::string& display);

// Regular files under `root` (recursively, symlinks not followed), as paths relative to `root`,
// sorted. A missing root gives an empty list.
absl::StatusOr<std::vector<std::string>> ListFilesRecursive(const std::string& root);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
bool IsRegularFile(const std::string& path);
uint32_t FileMode(const std::string& path);  // permission bits, 0644 when unknown

// Free bytes on the filesystem holding `path` (0 on error).
uint64_t FreeDiskBytes(const std::string& path);

// Joins with exactly one '/'.
std::string JoinPath(const std::string& a, const std::string& b);
// The part before the last '/' ("" for none).
std::string Dirname(const std::string& path);
std::string Basename(const std::string& path);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_FS_H_
