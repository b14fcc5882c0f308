#include "agent/steps/file_steps.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <set>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/engine/change_set.h"
#include "common/base/fd.h"
#include "common/base/fs.h"
#include "common/base/path_guard.h"
#include "common/mi/home_paths.h"
#include "common/mi/hl7_names.h"
#include "common/mi/mi_version.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;

// Larger text files are copied byte for byte, unread (synapse configurations are far smaller).
constexpr uint64_t kMaxRewrittenBytes = uint64_t{64} << 20;

// Walks the open folder `dir` (`rel` under `home`), appending regular files to `out` and, when
// `empty_dirs` is set, folders without entries to it. Entries are looked at through the
// folder's descriptor (an lstat of one name, no walk of the whole path) and subfolders opened
// from it with O_NOFOLLOW, so nothing is reached through a symlink; a symlink, and any entry
// the guard would refuse, is judged by the guard as before, by path.
absl::Status Walk(const StepContext& ctx, int dir, const std::string& home, const std::string& rel,
                  std::vector<std::string>* out, std::vector<std::string>* empty_dirs = nullptr) {
  const std::string abs_dir = common::JoinPath(home, rel);
  ASSIGN_OR_RETURN(std::vector<std::string> names, common::ReadFolderNames(dir, abs_dir));
  if (names.empty() && empty_dirs != nullptr) empty_dirs->push_back(rel);
  for (const std::string& name : names) {
    const std::string child_rel = rel.empty() ? name : common::JoinPath(rel, name);
    struct stat lst;
    if (::fstatat(dir, name.c_str(), &lst, AT_SYMLINK_NOFOLLOW) != 0) {  // gone since listed
      return absl::InternalError(absl::StrCat("cannot stat ", common::JoinPath(abs_dir, name),
                                              ": ", std::generic_category().message(errno)));
    }
    if (S_ISDIR(lst.st_mode)) {
      common::Fd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      struct stat sst;
      if (sub.get() < 0 || ::fstat(sub.get(), &sst) != 0) {
        return absl::InternalError(absl::StrCat("cannot open folder ",
                                                common::JoinPath(abs_dir, name), ": ",
                                                std::generic_category().message(errno)));
      }
      // Later resolves beneath it start from it, as they would after the guard's own walk.
      ctx.guard->RememberFolder(common::JoinPath(abs_dir, name), sst);
      RETURN_IF_ERROR(Walk(ctx, sub.get(), home, child_rel, out, empty_dirs));
      continue;
    }
    if (S_ISREG(lst.st_mode) && common::RefusedFileKind(lst).empty()) {
      out->push_back(child_rel);
      continue;
    }
    // The guard refuses a symlink that leads outside the roots, and files mimic does not read.
    ASSIGN_OR_RETURN(std::string abs, ctx.guard->ResolveUnder(home, child_rel, &lst));
    if (lst.st_mode == 0 && ::lstat(abs.c_str(), &lst) != 0) {  // gone since the listing
      return absl::InternalError(absl::StrCat("cannot stat ", abs, ": ",
                                              std::generic_category().message(errno)));
    }
    if (S_ISREG(lst.st_mode)) {  // replaced since the fstatat by a file the guard accepts
      out->push_back(child_rel);
      continue;
    }
    if (S_ISLNK(lst.st_mode)) {
      std::error_code ec;
      fs::file_status st = fs::status(abs, ec);
      if (!ec && fs::is_regular_file(st)) {
        out->push_back(child_rel);
        continue;
      }
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(abs, ": ",
                           !ec && fs::is_directory(st) ? "symlinked directory not followed"
                                                       : "dangling symlink skipped"));
      continue;
    }
    if (S_ISDIR(lst.st_mode)) {  // a folder since the fstatat: changed during the walk
      return absl::AbortedError(absl::StrCat(abs, " changed while it was listed; run again"));
    }
    // FIFOs, sockets and devices were refused by the guard (common::RefusedFileKind).
    return absl::FailedPreconditionError(absl::StrCat(abs, ": not a file mimic can copy"));
  }
  return absl::OkStatus();
}

// FirstRefusedFile beneath the open folder `dir` (`path` its path).
std::string FirstRefusedAt(int dir, const std::string& path) {
  absl::StatusOr<std::vector<std::string>> names = common::ReadFolderNames(dir, path);
  if (!names.ok()) return "";
  for (const std::string& name : *names) {
    struct stat st;
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    const std::string child = common::JoinPath(path, name);
    if (std::string why = common::RefusedFileKind(st); !why.empty()) {
      return absl::StrCat(child, ": ", why);
    }
    if (!S_ISDIR(st.st_mode)) continue;
    common::Fd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.get() < 0) continue;
    if (std::string why = FirstRefusedAt(sub.get(), child); !why.empty()) return why;
  }
  return "";
}

}  // namespace

std::string FirstRefusedFile(const std::string& home, const std::string& rel_dir) {
  const std::string dir = common::JoinPath(home, rel_dir);
  common::Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.get() < 0 ? "" : FirstRefusedAt(fd.get(), dir);
}

absl::StatusOr<Homes> ResolveHomes(const StepContext& ctx) {
  if (ctx.guard == nullptr) return absl::InvalidArgumentError("step run without a path guard");
  if (ctx.source_home.empty() || ctx.target_home.empty()) {
    return absl::InvalidArgumentError("the plan names no source or no target MI home");
  }
  Homes h;
  ASSIGN_OR_RETURN(h.source, ctx.guard->Resolve(ctx.source_home));
  ASSIGN_OR_RETURN(h.target, ctx.guard->Resolve(ctx.target_home));
  auto inside = [](const std::string& a, const std::string& b) {  // a == b or a under b
    return a == b || (a.size() > b.size() && a.compare(0, b.size(), b) == 0 && a[b.size()] == '/');
  };
  if (inside(h.source, h.target) || inside(h.target, h.source)) {
    return absl::InvalidArgumentError(absl::StrCat("source and target MI homes overlap (", h.source,
                                                   ", ", h.target,
                                                   "); the source must never be written"));
  }
  return h;
}

absl::StatusOr<Versions> ResolveVersions(const StepContext& ctx, const Homes& homes) {
  Versions v{ctx.source_version, ctx.target_version};
  if (v.source.empty()) {
    ASSIGN_OR_RETURN(common::MiVersion mv, common::DetectMiVersion(homes.source));
    v.source = mv.version;
  }
  if (v.target.empty()) {
    ASSIGN_OR_RETURN(common::MiVersion mv, common::DetectMiVersion(homes.target));
    v.target = mv.version;
  }
  return v;
}

namespace {

// ListConfinedFiles, and the empty folders when `empty_dirs` is set.
absl::StatusOr<std::vector<std::string>> ListConfined(const StepContext& ctx,
                                                      const std::string& home,
                                                      const std::string& rel_dir,
                                                      std::vector<std::string>* empty_dirs) {
  std::vector<std::string> out;
  ASSIGN_OR_RETURN(std::string dir, ctx.guard->ResolveUnder(home, rel_dir));
  // A symlink here leads inside the roots (the guard said so): it is followed.
  common::Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return out;
    if (errno == ENOTDIR) {
      return absl::FailedPreconditionError(absl::StrCat(dir, " is not a directory"));
    }
    return absl::InternalError(absl::StrCat("cannot open ", dir, ": ",
                                            std::generic_category().message(errno)));
  }
  RETURN_IF_ERROR(Walk(ctx, fd.get(), home, rel_dir, &out, empty_dirs));
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListConfinedFiles(const StepContext& ctx,
                                                           const std::string& home,
                                                           const std::string& rel_dir) {
  return ListConfined(ctx, home, rel_dir, nullptr);
}

absl::StatusOr<std::vector<std::string>> ListConfinedEmptyDirs(const StepContext& ctx,
                                                               const std::string& home,
                                                               const std::string& rel_dir) {
  std::vector<std::string> dirs;
  RETURN_IF_ERROR(ListConfined(ctx, home, rel_dir, &dirs).status());
  // The top folder itself is the step's business (e.g. copy_registry skips a missing registry/).
  dirs.erase(std::remove(dirs.begin(), dirs.end(), rel_dir), dirs.end());
  return dirs;
}

absl::StatusOr<int> PlanEmptyDirs(const StepContext& ctx, const Homes& homes,
                                  const std::string& rel_dir,
                                  const std::function<bool(const std::string&)>& filter,
                                  ChangeSet* changes) {
  ASSIGN_OR_RETURN(std::vector<std::string> dirs,
                   ListConfinedEmptyDirs(ctx, homes.source, rel_dir));
  int planned = 0;
  for (const std::string& rel : dirs) {
    if (filter && !filter(rel + "/")) continue;
    ASSIGN_OR_RETURN(std::string from, ctx.guard->ResolveUnder(homes.source, rel));
    ASSIGN_OR_RETURN(std::string to, ctx.guard->ResolveUnder(homes.target, rel));
    std::error_code ec;
    if (fs::exists(fs::symlink_status(to, ec))) continue;  // a folder already (or refused later)
    FileOp op;
    op.kind = FileOp::Kind::kMkdir;
    op.path = to;
    op.mode = common::FileMode(from) & 07777;
    op.note = "empty folder of the source";
    changes->ops.push_back(std::move(op));
    ++planned;
  }
  return planned;
}

absl::StatusOr<std::optional<FileOp>> MakeCarryOp(const StepContext& ctx, const Homes& homes,
                                                  const std::string& rel, const std::string& from,
                                                  const std::string& to) {
  const std::optional<common::CarriedFormat> format = common::CarriedFormatOf(rel);
  std::error_code ec;
  if (!format || fs::file_size(from, ec) > kMaxRewrittenBytes || ec) return MakeCopyOp(from, to);
  ASSIGN_OR_RETURN(std::string text, common::ReadFile(from));
  std::string out = text;
  std::vector<std::string> notes;
  if (out.find(homes.source) != std::string::npos) {
    common::HomePathRewrite r = common::RewriteHomePaths(out, *format, homes.source, homes.target);
    LogHomePathFindings(ctx, rel, r.findings, homes);
    if (r.text != out) {
      out = std::move(r.text);
      notes.push_back("paths under the old MI home rewritten to the target home");
    }
  }
  if (out.find(common::kOldHl7Package) != std::string::npos) {
    int n = 0;
    out = common::RewriteOldHl7ClassNames(out, &n);
    const std::string names = Count(n, "HL7 class name");
    StepLog(ctx, LogLevel::kWarning,
            absl::StrCat(rel, ": ", n, " EI 7.1 ", n == 1 ? "HL7 class name" : "HL7 class names",
                         " (", common::kOldHl7Package, "*) rewritten to MI 4.x's (",
                         common::kHl7Package, "*)"));
    notes.push_back(absl::StrCat(names, " rewritten to MI 4.x's"));
  }
  if (out == text) return MakeCopyOp(from, to);
  return MakePlannedWriteOp(ctx, to, std::move(out), common::FileMode(from) & 07777,
                            absl::StrJoin(notes, "; "));
}

absl::Status PlanMirror(const StepContext& ctx, const Homes& homes, const std::string& rel_dir,
                        const std::function<bool(const std::string&)>& filter,
                        const std::string& update_note, ChangeSet* changes, MirrorStats* stats,
                        const ConvertedCheck& converted) {
  ASSIGN_OR_RETURN(std::vector<std::string> files, ListConfinedFiles(ctx, homes.source, rel_dir));
  for (const std::string& rel : files) {
    if (filter && !filter(rel)) continue;
    RETURN_IF_ERROR(ctx.CheckCancelled(absl::StrCat("planning the copy of ", rel_dir)));
    ASSIGN_OR_RETURN(std::string from, ctx.guard->ResolveUnder(homes.source, rel));
    ASSIGN_OR_RETURN(std::string to, ctx.guard->ResolveUnder(homes.target, rel));
    ASSIGN_OR_RETURN(std::optional<FileOp> op, MakeCarryOp(ctx, homes, rel, from, to));
    if (!op) {
      ++stats->unchanged;
      continue;
    }
    if (op->expected_sha256.empty()) {
      ++stats->created;
    } else if (converted) {
      ASSIGN_OR_RETURN(bool already, converted(from, to));
      if (already) {
        ++stats->unchanged;
        continue;
      }
      ++stats->updated;
      op->note = op->note.empty() ? update_note : absl::StrCat(update_note, "; ", op->note);
    } else {
      ++stats->updated;
      op->note = op->note.empty() ? update_note : absl::StrCat(update_note, "; ", op->note);
    }
    changes->ops.push_back(std::move(*op));
  }
  return absl::OkStatus();
}

void LogHomePathFindings(const StepContext& ctx, const std::string& file,
                         const std::vector<common::HomePathFinding>& findings, const Homes& homes) {
  for (const common::HomePathFinding& f : findings) {
    StepLog(ctx, f.rewritten ? LogLevel::kInfo : LogLevel::kWarning,
            common::DescribeHomePathFinding(file, f, homes.source, homes.target));
  }
}

void FinishFileChangeSet(ChangeSet* changes) { AddParentDirOps(changes); }

void StepLog(const StepContext& ctx, LogLevel level, const std::string& text) {
  if (ctx.log) ctx.log(level, text);
}

std::string Count(size_t n, const std::string& singular, const std::string& plural) {
  return absl::StrCat(n, " ", n == 1 ? singular : (plural.empty() ? singular + "s" : plural));
}

absl::StatusOr<std::string> ReadPlanned(const StepContext& ctx, const std::string& path) {
  if (ctx.overlay != nullptr) {
    auto it = ctx.overlay->find(path);
    if (it != ctx.overlay->end()) {
      const FileOp& op = it->second;
      if (op.kind == FileOp::Kind::kDelete) return absl::NotFoundError(path + " will be deleted");
      if (op.kind == FileOp::Kind::kWrite) {
        if (op.has_content) return op.content;
        return common::ReadFile(op.source_path);
      }
    }
  }
  return common::ReadFile(path);
}

absl::StatusOr<std::optional<FileOp>> MakePlannedWriteOp(const StepContext& ctx,
                                                         const std::string& path,
                                                         std::string content, uint32_t mode,
                                                         const std::string& note) {
  if (ctx.overlay != nullptr) {
    auto it = ctx.overlay->find(path);
    if (it != ctx.overlay->end() && it->second.kind == FileOp::Kind::kWrite) {
      const std::string sha = common::Sha256Hex(content);
      if (sha == it->second.new_sha256) return std::nullopt;
      FileOp op;
      op.kind = FileOp::Kind::kWrite;
      op.path = path;
      op.expected_sha256 = it->second.new_sha256;
      op.new_sha256 = sha;
      op.new_size = content.size();
      op.content = std::move(content);
      op.has_content = true;
      op.mode = mode;
      op.note = note;
      return op;
    }
  }
  return MakeWriteOp(path, std::move(content), mode, note);
}

absl::StatusOr<std::vector<std::string>> ListPlanned(const StepContext& ctx,
                                                     const std::string& home,
                                                     const std::string& rel_dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> files, ListConfinedFiles(ctx, home, rel_dir));
  if (ctx.overlay == nullptr) return files;
  std::set<std::string> all(files.begin(), files.end());
  const std::string prefix = common::JoinPath(common::JoinPath(home, rel_dir), "");
  for (const auto& [path, op] : *ctx.overlay) {
    if (op.kind != FileOp::Kind::kWrite || path.compare(0, prefix.size(), prefix) != 0) continue;
    all.insert(path.substr(home.size() + 1));
  }
  return std::vector<std::string>(all.begin(), all.end());
}

}  // namespace mimic::agent
