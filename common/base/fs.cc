#include "common/base/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <random>
#include <string_view>
#include <unordered_map>

#include "common/base/fd.h"
#include "common/base/mutex.h"
#include <ctime>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace mimic::common {
namespace {

absl::Status ErrnoError(const std::string& what, const std::string& path) {
  int e = errno;
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(e));
  if (e == ENOENT) return absl::NotFoundError(msg);
  if (e == EACCES || e == EPERM) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

std::string Hex(const unsigned char* d, unsigned n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (unsigned i = 0; i < n; ++i) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 15];
  }
  return out;
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string Hex() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx_, d, &n);
    return mimic::common::Hex(d, n);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::function<void(const std::string&, uint64_t)>& CopyHook() {
  static auto* hook = new std::function<void(const std::string&, uint64_t)>();
  return *hook;
}

std::function<void(const std::string&)>& CommitHook() {
  static auto* hook = new std::function<void(const std::string&)>();
  return *hook;
}

// Creates a temporary sibling of `name` in `dir_fd`, writes it through `fill`, gives it mode and
// owner and closes it, unsynced. The temporary is removed on any error.
absl::StatusOr<std::string> StageTempAt(int dir_fd, const std::string& name,
                                        const std::string& display, uint32_t mode, int64_t uid,
                                        int64_t gid, const std::function<absl::Status(int fd)>& fill,
                                        bool sync) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string tmp = absl::StrCat(TempPrefix(name), rng() % 1000000000);
  const std::string tmp_display = JoinPath(Dirname(display), tmp);
  // Readable too: a copy whose source changed under it hashes what it wrote (CopyKnownOrHash).
  int fd = ::openat(dir_fd, tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
  if (fd < 0) return ErrnoError("create", tmp_display);
  absl::Status st = fill(fd);
  if (st.ok() && (uid >= 0 || gid >= 0)) {
    struct stat now;
    if (::fstat(fd, &now) != 0) {
      st = ErrnoError("stat", tmp_display);
    } else if ((uid >= 0 && now.st_uid != static_cast<uid_t>(uid)) ||
               (gid >= 0 && now.st_gid != static_cast<gid_t>(gid))) {
      if (::fchown(fd, uid >= 0 ? static_cast<uid_t>(uid) : static_cast<uid_t>(-1),
                   gid >= 0 ? static_cast<gid_t>(gid) : static_cast<gid_t>(-1)) != 0) {
        st = ErrnoError(absl::StrCat("give owner ", uid, ":", gid, " (the owner of what it "
                                     "replaces, or of its folder) to"),
                        display);
      }
    }
  }
  // After fchown: a chown clears set-id bits, so the mode comes last.
  if (st.ok() && ::fchmod(fd, mode & 07777) != 0) st = ErrnoError("chmod", tmp_display);
  if (st.ok() && sync && ::fsync(fd) != 0) st = ErrnoError("fsync", tmp_display);
  // Unsynced, and no writeback started here: SyncStaged's syncfs submits every temporary's
  // bytes together (the flusher plugs them into few requests), where a sync_file_range per file
  // sent each as its own request, a virtio notification each, in the agent's time.
  ::close(fd);
  if (!st.ok()) {
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return st;
  }
  return tmp;
}

// Writes through `fill` into a temporary sibling of `name` in `dir_fd`, gives it mode and owner,
// fsyncs, renames into place and fsyncs the directory.
absl::Status AtomicWriteAt(int dir_fd, const std::string& name, const std::string& display,
                           uint32_t mode, int64_t uid, int64_t gid,
                           const std::function<absl::Status(int fd)>& fill) {
  ASSIGN_OR_RETURN(std::string tmp,
                   StageTempAt(dir_fd, name, display, mode, uid, gid, fill, /*sync=*/true));
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    absl::Status st = ErrnoError("rename to", display);
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return st;
  }
  if (::fsync(dir_fd) != 0 && errno != EINVAL) {
    return ErrnoError("fsync directory of", display);
  }
  return absl::OkStatus();
}

// The path-based form: opens the parent (created as needed) and writes beneath it.
absl::Status AtomicWrite(const std::string& path, uint32_t mode,
                         const std::function<absl::Status(int fd)>& fill) {
  std::string dir = Dirname(path);
  if (!dir.empty()) RETURN_IF_ERROR(MakeDirs(dir));
  const std::string d = dir.empty() ? "." : dir;
  const int dir_fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoError("open directory", d);
  absl::Status st = AtomicWriteAt(dir_fd, Basename(path), path, mode, -1, -1, fill);
  ::close(dir_fd);
  return st;
}

constexpr size_t kCopyChunk = 1 << 17;

// Copies `in` from its offset to its end into `fd`, through user space, hashing the bytes into
// `hash` when given; `copied` is what was copied before (for the progress hook).
absl::Status CopyInto(int in, int fd, const std::string& from, const std::string& display,
                      Sha256* hash = nullptr, uint64_t copied = 0) {
  char buf[kCopyChunk];
  for (;;) {
    ssize_t r = ::read(in, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", from);
    }
    if (r == 0) return absl::OkStatus();
    if (hash != nullptr) hash->Update(buf, static_cast<size_t>(r));
    const char* p = buf;
    size_t n = static_cast<size_t>(r);
    while (n > 0) {
      ssize_t w = ::write(fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("write", display);
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    copied += static_cast<uint64_t>(r);
    if (CopyHook()) CopyHook()(display, copied);
  }
}

// Feeds the file's bytes to `fn` in chunks.
absl::Status ReadChunks(const std::string& path,
                        const std::function<void(const char*, size_t)>& fn) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path);
  char buf[1 << 16];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      absl::Status st = ErrnoError("read", path);
      ::close(fd);
      return st;
    }
    if (r == 0) break;
    fn(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const char* p, size_t n, const std::string& name) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", name);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

// The hash cache (see fs.h).
struct HashKey {
  uint64_t dev, ino, size;
  int64_t mtime_ns, ctime_ns;
  bool operator==(const HashKey& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns &&
           ctime_ns == o.ctime_ns;
  }
};
struct HashKeyHash {
  size_t operator()(const HashKey& k) const {
    uint64_t h = k.dev * 0x9E3779B97F4A7C15ull ^ k.ino;
    h = h * 0x9E3779B97F4A7C15ull ^ k.size;
    h = h * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(k.mtime_ns);
    h = h * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(k.ctime_ns);
    return static_cast<size_t>(h);
  }
};
constexpr size_t kHashCacheMax = 20000;  // ~2.5 MB at most; cleared when full
// A file whose ctime is this close to the read's start is not cached: a write within the same
// coarse clock tick (a few ms) could leave ctime unchanged.
constexpr int64_t kRacyMarginNs = 50'000'000;
constexpr int64_t kCoarseRacyMarginNs = 3'000'000'000;

struct HashCache {
  Mutex mu;
  std::unordered_map<HashKey, std::string, HashKeyHash> map ABSL_GUARDED_BY(mu);
  HashCacheStats stats ABSL_GUARDED_BY(mu);
};
HashCache& Cache() {
  static auto* c = new HashCache();
  return *c;
}

HashKey KeyOf(const struct stat& st) {
  return HashKey{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                 static_cast<uint64_t>(st.st_size),
                 static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                 static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec};
}

int64_t CoarseNowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

absl::StatusOr<std::string> Sha256Fd(int fd, const std::string& display) {
  struct stat before;
  if (::fstat(fd, &before) != 0) return ErrnoError("stat", display);
  const bool cacheable = S_ISREG(before.st_mode);
  const HashKey key = KeyOf(before);
  HashCache& c = Cache();
  if (cacheable) {
    MutexLock l(&c.mu);
    auto it = c.map.find(key);
    if (it != c.map.end()) {
      ++c.stats.hits;
      return it->second;
    }
  }
  const int64_t started = CoarseNowNs();
  Sha256 h;
  char buf[1 << 16];
  uint64_t off = 0;
  for (;;) {
    ssize_t r = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", display);
    }
    if (r == 0) break;
    h.Update(buf, static_cast<size_t>(r));
    off += static_cast<uint64_t>(r);
  }
  std::string hex = h.Hex();
  struct stat after;
  const bool same = ::fstat(fd, &after) == 0 && KeyOf(after) == key && off == key.size;
  MutexLock l(&c.mu);
  ++c.stats.misses;
  c.stats.bytes_hashed += off;
  // Timestamps without nanoseconds come from a coarse filesystem (seconds, or two on FAT):
  // the margin covers its granularity.
  const int64_t margin =
      before.st_ctim.tv_nsec == 0 && before.st_mtim.tv_nsec == 0 ? kCoarseRacyMarginNs
                                                                 : kRacyMarginNs;
  if (cacheable && same && key.ctime_ns + margin < started && key.mtime_ns + margin < started) {
    if (c.map.size() >= kHashCacheMax) c.map.clear();
    c.map.emplace(key, hex);
  }
  return hex;
}

HashCacheStats GetHashCacheStats() {
  HashCache& c = Cache();
  MutexLock l(&c.mu);
  return c.stats;
}

void ClearHashCache() {
  HashCache& c = Cache();
  MutexLock l(&c.mu);
  c.map.clear();
}

std::string Sha256Hex(const std::string& bytes) {
  Sha256 h;
  h.Update(bytes.data(), bytes.size());
  return h.Hex();
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path);
  absl::StatusOr<std::string> sha = Sha256Fd(fd, path);
  ::close(fd);
  return sha;
}

absl::StatusOr<std::string> Sha256IfExists(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::string();
    return ErrnoError("stat", path);
  }
  if (!S_ISREG(st.st_mode)) return std::string();
  return Sha256File(path);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::string out;
  RETURN_IF_ERROR(ReadChunks(path, [&](const char* p, size_t n) { out.append(p, n); }));
  return out;
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& bytes, uint32_t mode) {
  return AtomicWrite(path, mode, [&](int fd) {
    RETURN_IF_ERROR(WriteAll(fd, bytes.data(), bytes.size(), path));
    if (CopyHook()) CopyHook()(path, bytes.size());
    return absl::OkStatus();
  });
}

absl::Status CopyFileAtomic(const std::string& from, const std::string& path, uint32_t mode) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoError("open", from);
  absl::Status st =
      AtomicWrite(path, mode, [&](int fd) { return CopyInto(in, fd, from, path); });
  ::close(in);
  return st;
}

StagedWrite::~StagedWrite() { Discard(); }

StagedWrite::StagedWrite(StagedWrite&& o) noexcept
    : dir_fd_(o.dir_fd_), tmp_(std::move(o.tmp_)), name_(std::move(o.name_)),
      display_(std::move(o.display_)), sha256_(std::move(o.sha256_)) {
  o.dir_fd_ = -1;
}

StagedWrite& StagedWrite::operator=(StagedWrite&& o) noexcept {
  if (this != &o) {
    Discard();
    dir_fd_ = o.dir_fd_;
    tmp_ = std::move(o.tmp_);
    name_ = std::move(o.name_);
    display_ = std::move(o.display_);
    sha256_ = std::move(o.sha256_);
    o.dir_fd_ = -1;
  }
  return *this;
}

void StagedWrite::Discard() {
  if (dir_fd_ < 0) return;
  if (!tmp_.empty()) ::unlinkat(dir_fd_, tmp_.c_str(), 0);
  ::close(dir_fd_);
  dir_fd_ = -1;
}

absl::Status StagedWrite::Commit() {
  if (dir_fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(display_, ": not staged"));
  // The fault campaigns' hook: the temporary is durable, not yet renamed.
  if (CommitHook()) CommitHook()(display_);
  if (::renameat(dir_fd_, tmp_.c_str(), dir_fd_, name_.c_str()) != 0) {
    absl::Status st = ErrnoError("rename to", display_);
    Discard();
    return st;
  }
  tmp_.clear();
  ::close(dir_fd_);
  dir_fd_ = -1;
  return absl::OkStatus();
}

absl::Status StagedWrite::Stage(int dir_fd, const std::string& name, const std::string& display,
                                uint32_t mode, int64_t uid, int64_t gid,
                                const std::function<absl::Status(int fd)>& fill) {
  Discard();
  const int own = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return ErrnoError("open the directory of", display);
  absl::StatusOr<std::string> tmp =
      StageTempAt(own, name, display, mode, uid, gid, fill, /*sync=*/false);
  if (!tmp.ok()) {
    ::close(own);
    return tmp.status();
  }
  dir_fd_ = own;
  tmp_ = *std::move(tmp);
  name_ = name;
  display_ = display;
  return absl::OkStatus();
}

absl::StatusOr<StagedWrite> StageWriteAt(int dir_fd, const std::string& name,
                                         const std::string& display, const std::string& bytes,
                                         uint32_t mode, int64_t uid, int64_t gid) {
  StagedWrite w;
  RETURN_IF_ERROR(w.Stage(dir_fd, name, display, mode, uid, gid, [&](int fd) {
    RETURN_IF_ERROR(WriteAll(fd, bytes.data(), bytes.size(), display));
    if (CopyHook()) CopyHook()(display, bytes.size());
    return absl::OkStatus();
  }));
  w.sha256_ = Sha256Hex(bytes);
  return w;
}

namespace {

// Copies `in` (from offset 0) into `fd` and gives the sha256 of the bytes written. When `in`'s
// sha256 is in the hash cache and `in` has the same cache key (device, inode, size, mtime, ctime)
// before and after the copy, the bytes copied are the bytes once hashed: they are copied inside
// the kernel (copy_file_range; read + write where the filesystem refuses it) and not hashed
// again. When the key moved during the copy, the bytes written are hashed from `fd`. Without a
// cached sha256 they are hashed as they pass through user space.
absl::StatusOr<std::string> CopyKnownOrHash(int in, int fd, const std::string& from,
                                            const std::string& display) {
  struct stat before;
  if (::fstat(in, &before) != 0) return ErrnoError("stat", from);
  std::string known;
  if (S_ISREG(before.st_mode)) {
    HashCache& c = Cache();
    MutexLock l(&c.mu);
    auto it = c.map.find(KeyOf(before));
    if (it != c.map.end()) {
      ++c.stats.hits;
      known = it->second;
    }
  }
  if (known.empty()) {
    Sha256 hash;
    RETURN_IF_ERROR(CopyInto(in, fd, from, display, &hash));
    return hash.Hex();
  }
  uint64_t copied = 0;
  for (;;) {
    const ssize_t n = ::copy_file_range(in, nullptr, fd, nullptr, kCopyChunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
                  errno == EBADF)) {
      // Not offered between these files: the rest through user space (offsets carry on).
      RETURN_IF_ERROR(CopyInto(in, fd, from, display, nullptr, copied));
      break;
    }
    if (n < 0) {
      const int err = errno;
      const std::string what = absl::StrCat("copy ", from, " to");
      errno = err;
      return ErrnoError(what, display);
    }
    if (n == 0) break;
    copied += static_cast<uint64_t>(n);
    if (CopyHook()) CopyHook()(display, copied);
  }
  struct stat after;
  if (::fstat(in, &after) == 0 && KeyOf(after) == KeyOf(before)) return known;
  return Sha256Fd(fd, display);  // changed meanwhile: the hash of what was written
}

}  // namespace

absl::StatusOr<StagedWrite> StageCopyAt(const std::string& from, int dir_fd,
                                        const std::string& name, const std::string& display,
                                        uint32_t mode, int64_t uid, int64_t gid) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoError("open", from);
  std::string sha;
  StagedWrite w;
  absl::Status st = w.Stage(dir_fd, name, display, mode, uid, gid, [&](int fd) {
    ASSIGN_OR_RETURN(sha, CopyKnownOrHash(in, fd, from, display));
    return absl::OkStatus();
  });
  ::close(in);
  RETURN_IF_ERROR(st);
  w.sha256_ = std::move(sha);
  return w;
}

absl::Status SyncStaged(const std::vector<StagedWrite*>& writes) {
  if (writes.empty()) return absl::OkStatus();
  // One syncfs per filesystem writes every temporary's bytes and inode together; it reports
  // a writeback error of that filesystem since the descriptor was opened. Where it fails, each
  // temporary is fsynced on its own so the error names its file.
  std::vector<std::pair<dev_t, int>> done;
  bool fallback = false;
  for (StagedWrite* w : writes) {
    struct stat st;
    if (w->dir_fd_ < 0 || ::fstat(w->dir_fd_, &st) != 0) {
      fallback = true;
      break;
    }
    bool seen = false;
    for (const auto& d : done) seen = seen || d.first == st.st_dev;
    if (seen) continue;
    if (::syncfs(w->dir_fd_) != 0) {
      fallback = true;
      break;
    }
    done.emplace_back(st.st_dev, w->dir_fd_);
  }
  if (!fallback) return absl::OkStatus();
  for (StagedWrite* w : writes) {
    if (w->dir_fd_ < 0) continue;
    const std::string tmp_display = JoinPath(Dirname(w->display_), w->tmp_);
    const int fd = ::openat(w->dir_fd_, w->tmp_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open", tmp_display);
    const bool ok = ::fsync(fd) == 0;
    absl::Status st = ok ? absl::OkStatus() : ErrnoError("fsync", tmp_display);
    ::close(fd);
    RETURN_IF_ERROR(st);
  }
  return absl::OkStatus();
}

std::string TempPrefix(const std::string& name) { return absl::StrCat(".", name, ".mimic-tmp-"); }

void SetCopyProgressHookForTesting(std::function<void(const std::string&, uint64_t)> hook) {
  CopyHook() = std::move(hook);
}

void SetCommitHookForTesting(std::function<void(const std::string&)> hook) {
  CommitHook() = std::move(hook);
}

absl::Status FsyncDir(const std::string& dir) {
  const std::string d = dir.empty() ? "." : dir;
  const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open directory", d);
  // Some filesystems cannot fsync a directory (EINVAL): nothing more can be done there.
  absl::Status st;
  if (::fsync(fd) != 0 && errno != EINVAL) st = ErrnoError("fsync directory", d);
  ::close(fd);
  return st;
}

absl::Status MakeDirs(const std::string& path, uint32_t mode) {
  if (path.empty() || path == "/") return absl::OkStatus();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a directory"));
  }
  RETURN_IF_ERROR(MakeDirs(Dirname(path), mode));
  if (::mkdir(path.c_str(), mode) != 0) {
    if (errno == EEXIST) return absl::OkStatus();  // made by someone else meanwhile
    return ErrnoError("mkdir", path);
  }
  return FsyncDir(Dirname(path));  // the new entry is durable
}

absl::StatusOr<std::vector<std::string>> ReadFolderNames(int dir_fd, const std::string& display) {
  // fdopendir takes the descriptor it is given: a duplicate of its own, read from the start
  // (duplicates share the offset, which the caller's descriptor does not otherwise use).
  const int own = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return ErrnoError("open", display);
  DIR* d = ::fdopendir(own);
  if (d == nullptr) {
    absl::Status st = ErrnoError("open", display);
    ::close(own);
    return st;
  }
  ::rewinddir(d);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) {
    errno = err;
    return ErrnoError("list", display);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::vector<std::string>> ListFilesRecursive(const std::string& root) {
  std::vector<std::string> out;
  if (!IsDirectory(root)) return out;
  std::function<absl::Status(const std::string&)> walk = [&](const std::string& rel) -> absl::Status {
    std::string dir = rel.empty() ? root : JoinPath(root, rel);
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoError("open", dir);
    ASSIGN_OR_RETURN(std::vector<std::string> names, ReadFolderNames(fd.get(), dir));
    for (const std::string& n : names) {
      std::string r = rel.empty() ? n : rel + "/" + n;
      struct stat st;
      if (::lstat(JoinPath(root, r).c_str(), &st) != 0) return ErrnoError("stat", JoinPath(root, r));
      if (S_ISDIR(st.st_mode)) {
        RETURN_IF_ERROR(walk(r));
      } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
        out.push_back(r);
      }
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(walk(""));
  std::sort(out.begin(), out.end());
  return out;
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

uint32_t FileMode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0644;
  return st.st_mode & 07777;
}

uint64_t FreeDiskBytes(const std::string& path) {
  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) != 0) return 0;
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  std::string out = a;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  size_t i = 0;
  while (i < b.size() && b[i] == '/') ++i;
  if (out != "/") out += '/';
  return out + b.substr(i);
}

std::string Dirname(const std::string& path) {
  size_t p = path.find_last_of('/');
  if (p == std::string::npos) return "";
  if (p == 0) return "/";
  return path.substr(0, p);
}

std::string Basename(const std::string& path) {
  size_t p = path.find_last_of('/');
  return p == std::string::npos ? path : path.substr(p + 1);
}

}  // namespace mimic::common
