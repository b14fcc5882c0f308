#include "common/base/path_guard.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/mutex.h"
#include "common/base/fs.h"

namespace mimic::common {

struct PathGuard::FolderCache {
  static constexpr size_t kMaxFolders = 8192;  // ~1 MiB at most; then it starts again
  Mutex mu;
  // Confined folder (normalised path) -> (st_dev, st_ino) when it was found confined.
  absl::flat_hash_map<std::string, std::pair<dev_t, ino_t>> folders ABSL_GUARDED_BY(mu);
  std::atomic<uint64_t> checked{0};
};

namespace {

bool Inside(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

// Lexical normalisation: collapses "//" and "/./". Returns "" when a ".." component appears.
std::string Normalise(const std::string& path) {
  std::vector<std::string> parts;
  for (absl::string_view p : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (p == ".") continue;
    if (p == "..") return "";
    parts.emplace_back(p);
  }
  return "/" + absl::StrJoin(parts, "/");
}

}  // namespace

std::string RefusedFileKind(const struct stat& st) {
  if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode) ||
      S_ISBLK(st.st_mode)) {
    return absl::StrCat(S_ISFIFO(st.st_mode)   ? "a FIFO (named pipe)"
                        : S_ISSOCK(st.st_mode) ? "a socket"
                                               : "a device",
                        ", not a regular file: MI homes hold none, and mimic neither reads nor "
                        "replaces one; remove it or move it out of the home");
  }
  if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
    return absl::StrCat(
        "a file with ", st.st_nlink, " names (hard links): mimic cannot tell where the others "
        "are (they may lie outside the allowed roots), so it neither reads nor replaces it; "
        "give it a name of its own (cp -p FILE FILE.new && mv FILE.new FILE)");
  }
  return "";
}

PathGuard::PathGuard(std::vector<std::string> roots) : cache_(std::make_shared<FolderCache>()) {
  for (std::string& r : roots) {
    char buf[PATH_MAX];
    if (::realpath(r.c_str(), buf) != nullptr) {
      roots_.push_back(buf);
    } else {
      std::string n = Normalise(r);
      if (!n.empty()) roots_.push_back(n);
    }
  }
}

absl::StatusOr<std::string> PathGuard::Resolve(const std::string& path,
                                               struct stat* last_lstat) const {
  struct stat unused;
  if (last_lstat == nullptr) last_lstat = &unused;
  last_lstat->st_mode = 0;
  auto refuse = [&](const std::string& why) {
    return absl::PermissionDeniedError(absl::StrCat("path ", path, " refused: ", why,
                                                    " (allowed roots: ",
                                                    absl::StrJoin(roots_, ", "), ")"));
  };
  if (path.empty() || path[0] != '/') return refuse("not an absolute path");
  for (absl::string_view p : absl::StrSplit(path, '/')) {
    if (p == "..") return refuse("'..' is not allowed");
  }
  std::string norm = Normalise(path);
  const std::string* root = nullptr;
  for (const std::string& r : roots_) {
    if (Inside(norm, r)) {
      root = &r;
      break;
    }
  }
  if (root == nullptr) return refuse("outside the allowed roots");
  // Start below the deepest remembered folder that is still the one checked (a folder whose
  // path now leads elsewhere, through a swapped component or symlink, has another inode). A
  // folder moved out of the roots whole keeps its inode: what lies beneath it is still
  // checked, and writes walk down from the root with O_NOFOLLOW regardless (change_set).
  size_t start = root->size();
  for (size_t cut = norm.rfind('/'); cut != std::string::npos && cut > root->size();
       cut = norm.rfind('/', cut - 1)) {
    const std::string folder = norm.substr(0, cut);
    std::pair<dev_t, ino_t> id;
    {
      MutexLock l(&cache_->mu);
      auto it = cache_->folders.find(folder);
      if (it == cache_->folders.end()) continue;
      id = it->second;
    }
    cache_->checked.fetch_add(1, std::memory_order_relaxed);
    struct stat st;
    if (::stat(folder.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == id.first &&
        st.st_ino == id.second) {
      start = cut;
      break;
    }
    MutexLock l(&cache_->mu);
    cache_->folders.erase(folder);
  }
  // Walk the existing components below it; a symlink must resolve inside the roots.
  std::string cur = norm.substr(0, start);
  std::string rest = norm.substr(start);
  // The walk's last stat (symlink followed) describes `norm` itself when it reached the end:
  // the file kind is judged on it, without a stat of its own.
  struct stat last{};
  bool walked_to_end = rest.find_first_not_of('/') != std::string::npos;
  for (absl::string_view comp : absl::StrSplit(rest, '/', absl::SkipEmpty())) {
    cur = JoinPath(cur, std::string(comp));
    cache_->checked.fetch_add(1, std::memory_order_relaxed);
    struct stat st;
    if (::lstat(cur.c_str(), &st) != 0) {  // does not exist yet: created inside
      last_lstat->st_mode = 0;
      // Nothing at or below a missing component: no file kind to judge.
      if (errno == ENOENT || errno == ENOTDIR) return norm;
      walked_to_end = false;
      break;
    }
    *last_lstat = st;  // the last component's when the walk reaches the end
    if (S_ISLNK(st.st_mode)) {
      char buf[PATH_MAX];
      if (::realpath(cur.c_str(), buf) == nullptr) return refuse("dangling symlink " + cur);
      bool ok = false;
      for (const std::string& r : roots_) ok = ok || Inside(buf, r);
      if (!ok) return refuse(absl::StrCat("symlink ", cur, " leads outside the allowed roots"));
      cache_->checked.fetch_add(1, std::memory_order_relaxed);
      if (::stat(cur.c_str(), &st) != 0) {
        last_lstat->st_mode = 0;
        walked_to_end = false;
        break;
      }
    }
    last = st;
    if (S_ISDIR(st.st_mode)) {
      MutexLock l(&cache_->mu);
      if (cache_->folders.size() >= FolderCache::kMaxFolders) cache_->folders.clear();
      cache_->folders[cur] = {st.st_dev, st.st_ino};
    }
  }
  struct stat st;
  if (walked_to_end) {
    st = last;
  } else {
    last_lstat->st_mode = 0;
    cache_->checked.fetch_add(1, std::memory_order_relaxed);
    if (::stat(norm.c_str(), &st) != 0) return norm;
    // A root itself (no component walked) holds no symlink: its stat is its lstat.
    if (norm == *root) *last_lstat = st;
  }
  if (std::string why = RefusedFileKind(st); !why.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(norm, ": ", why));
  }
  return norm;
}

void PathGuard::RememberFolder(const std::string& folder, const struct stat& st) const {
  if (!S_ISDIR(st.st_mode) || folder.empty() || folder[0] != '/') return;
  std::string norm = Normalise(folder);
  if (norm.empty()) return;
  bool inside = false;
  for (const std::string& r : roots_) inside = inside || Inside(norm, r);
  if (!inside) return;
  MutexLock l(&cache_->mu);
  if (cache_->folders.size() >= FolderCache::kMaxFolders) cache_->folders.clear();
  cache_->folders[std::move(norm)] = {st.st_dev, st.st_ino};
}

// Counts every stat and lstat the guard makes: the final check of the path itself too.
uint64_t PathGuard::components_checked() const {
  return cache_->checked.load(std::memory_order_relaxed);
}

absl::StatusOr<std::string> PathGuard::ResolveUnder(const std::string& base,
                                                    const std::string& relative,
                                                    struct stat* last_lstat) const {
  if (!relative.empty() && relative[0] == '/') {
    return absl::PermissionDeniedError(
        absl::StrCat("path ", relative, " refused: must be relative to ", base));
  }
  for (absl::string_view p : absl::StrSplit(relative, '/')) {
    if (p == "..") {
      return absl::PermissionDeniedError(
          absl::StrCat("path ", relative, " refused: '..' is not allowed"));
    }
  }
  return Resolve(JoinPath(base, relative), last_lstat);
}

}  // namespace mimic::common
