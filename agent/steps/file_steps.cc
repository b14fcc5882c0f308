#include "agent/steps/file_steps.h"

#include <sys/stat.h>

#include <set>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/engine/change_set.h"
#include "common/base/fs.h"
#include "common/base/path_guard.h"
#include "common/mi/mi_version.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;

// Walks `abs` (lexical path of `rel` under `home`), appending regular files to `out`.
absl::Status Walk(const StepContext& ctx, const std::string& home, const std::string& rel,
                  std::vector<std::string>* out) {
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it(common::JoinPath(home, rel), ec), end; !ec && it != end;
       it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot list ", common::JoinPath(home, rel), ": ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string child_rel = rel.empty() ? name : common::JoinPath(rel, name);
    // The guard refuses a symlink (here or in any parent) that leads outside the roots.
    ASSIGN_OR_RETURN(std::string abs, ctx.guard->ResolveUnder(home, child_rel));
    fs::file_status lst = fs::symlink_status(abs, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot stat ", abs, ": ", ec.message()));
    if (fs::is_directory(lst)) {
      RETURN_IF_ERROR(Walk(ctx, home, child_rel, out));
      continue;
    }
    if (fs::is_regular_file(lst)) {
      out->push_back(child_rel);
      continue;
    }
    if (fs::is_symlink(lst)) {
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
    // FIFOs, sockets and devices were refused by the guard (common::RefusedFileKind).
    return absl::FailedPreconditionError(absl::StrCat(abs, ": not a file mimic can copy"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FirstRefusedFile(const std::string& home, const std::string& rel_dir) {
  std::error_code ec;
  const std::string dir = common::JoinPath(home, rel_dir);
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (std::string why = common::RefusedFileKind(st); !why.empty()) {
      return absl::StrCat(it->path().string(), ": ", why);
    }
  }
  return "";
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

absl::StatusOr<std::vector<std::string>> ListConfinedFiles(const StepContext& ctx,
                                                           const std::string& home,
                                                           const std::string& rel_dir) {
  std::vector<std::string> out;
  ASSIGN_OR_RETURN(std::string dir, ctx.guard->ResolveUnder(home, rel_dir));
  std::error_code ec;
  fs::file_status st = fs::symlink_status(dir, ec);
  if (ec || !fs::exists(st)) return out;
  if (fs::is_symlink(st)) st = fs::status(dir, ec);  // inside the roots: the guard said so
  if (!fs::is_directory(st)) {
    return absl::FailedPreconditionError(absl::StrCat(dir, " is not a directory"));
  }
  RETURN_IF_ERROR(Walk(ctx, home, rel_dir, &out));
  return out;
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
    ASSIGN_OR_RETURN(std::optional<FileOp> op, MakeCopyOp(from, to));
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
      op->note = update_note;
    } else {
      ++stats->updated;
      op->note = update_note;
    }
    changes->ops.push_back(std::move(*op));
  }
  return absl::OkStatus();
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
