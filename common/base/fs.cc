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

// Writes through `fill` into a temporary sibling of `name` in `dir_fd`, gives it mode and owner,
// fsyncs, renames into place and fsyncs the directory.
absl::Status AtomicWriteAt(int dir_fd, const std::string& name, const std::string& display,
                           uint32_t mode, int64_t uid, int64_t gid,
                           const std::function<absl::Status(int fd)>& fill) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string tmp = absl::StrCat(TempPrefix(name), rng() % 1000000000);
  const std::string tmp_display = JoinPath(Dirname(display), tmp);
  int fd = ::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
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
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoError("fsync", tmp_display);
  ::close(fd);
  if (st.ok() && ::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    st = ErrnoError("rename to", display);
  }
  if (!st.ok()) {
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return st;
  }
  if (::fsync(dir_fd) != 0 && errno != EINVAL) return ErrnoError("fsync directory of", display);
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

absl::Status CopyInto(int in, int fd, const std::string& from, const std::string& display) {
  char buf[1 << 16];
  uint64_t copied = 0;
  for (;;) {
    ssize_t r = ::read(in, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", from);
    }
    if (r == 0) return absl::OkStatus();
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

}  // namespace

std::string Sha256Hex(const std::string& bytes) {
  Sha256 h;
  h.Update(bytes.data(), bytes.size());
  return h.Hex();
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  Sha256 h;
  RETURN_IF_ERROR(ReadChunks(path, [&](const char* p, size_t n) { h.Update(p, n); }));
  return h.Hex();
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

absl::Status WriteFileAtomicAt(int dir_fd, const std::string& name, const std::string& display,
                               const std::string& bytes, uint32_t mode, int64_t uid, int64_t gid) {
  return AtomicWriteAt(dir_fd, name, display, mode, uid, gid, [&](int fd) {
    RETURN_IF_ERROR(WriteAll(fd, bytes.data(), bytes.size(), display));
    if (CopyHook()) CopyHook()(display, bytes.size());
    return absl::OkStatus();
  });
}

absl::Status CopyFileAtomicAt(const std::string& from, int dir_fd, const std::string& name,
                              const std::string& display, uint32_t mode, int64_t uid, int64_t gid) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoError("open", from);
  absl::Status st = AtomicWriteAt(dir_fd, name, display, mode, uid, gid,
                                  [&](int fd) { return CopyInto(in, fd, from, display); });
  ::close(in);
  return st;
}

std::string TempPrefix(const std::string& name) { return absl::StrCat(".", name, ".mimic-tmp-"); }

void SetCopyProgressHookForTesting(std::function<void(const std::string&, uint64_t)> hook) {
  CopyHook() = std::move(hook);
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

absl::StatusOr<std::vector<std::string>> ListFilesRecursive(const std::string& root) {
  std::vector<std::string> out;
  if (!IsDirectory(root)) return out;
  std::function<absl::Status(const std::string&)> walk = [&](const std::string& rel) -> absl::Status {
    std::string dir = rel.empty() ? root : JoinPath(root, rel);
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoError("opendir", dir);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
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
