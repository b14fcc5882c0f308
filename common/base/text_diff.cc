#include "common/base/text_diff.h"

#include <dlfcn.h>
#include <git2.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "common/base/status_macros.h"

namespace mimic::common {
namespace {

// libgit2 (and the 13 libraries it pulls in: mbedTLS, libssh2, Kerberos, PCRE2...) is loaded
// when the first diff or merge is asked for, not at start: an idle agent does not map it
// (1.4 MiB of its resident set). Its global state (allocators, thread-local errors) is set up
// once; it is never unloaded nor shut down, so pointers it hands out stay valid until exit.
struct Git {
  decltype(&git_libgit2_init) libgit2_init;
  decltype(&git_error_last) error_last;
  decltype(&git_patch_from_buffers) patch_from_buffers;
  decltype(&git_patch_free) patch_free;
  decltype(&git_patch_num_hunks) patch_num_hunks;
  decltype(&git_patch_get_hunk) patch_get_hunk;
  decltype(&git_patch_get_line_in_hunk) patch_get_line_in_hunk;
  decltype(&git_merge_file) merge_file;
  decltype(&git_merge_file_result_free) merge_file_result_free;
};

template <typename F>
bool Bind(void* lib, const char* name, F* f) {
  *f = reinterpret_cast<F>(::dlsym(lib, name));
  return *f != nullptr;
}

absl::StatusOr<const Git*> LoadGit() {
  static const absl::StatusOr<const Git*> loaded = []() -> absl::StatusOr<const Git*> {
    void* lib = ::dlopen(MIMIC_LIBGIT2_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* e = ::dlerror();
      return absl::InternalError(std::string("cannot load " MIMIC_LIBGIT2_SONAME
                                             " (line diffs and merges): ") +
                                 (e != nullptr ? e : "unknown error"));
    }
    auto* g = new Git();
    if (!Bind(lib, "git_libgit2_init", &g->libgit2_init) ||
        !Bind(lib, "git_error_last", &g->error_last) ||
        !Bind(lib, "git_patch_from_buffers", &g->patch_from_buffers) ||
        !Bind(lib, "git_patch_free", &g->patch_free) ||
        !Bind(lib, "git_patch_num_hunks", &g->patch_num_hunks) ||
        !Bind(lib, "git_patch_get_hunk", &g->patch_get_hunk) ||
        !Bind(lib, "git_patch_get_line_in_hunk", &g->patch_get_line_in_hunk) ||
        !Bind(lib, "git_merge_file", &g->merge_file) ||
        !Bind(lib, "git_merge_file_result_free", &g->merge_file_result_free)) {
      delete g;
      return absl::InternalError(MIMIC_LIBGIT2_SONAME " lacks a function mimic uses");
    }
    if (g->libgit2_init() < 0) {
      delete g;
      return absl::InternalError("libgit2 could not be initialised");
    }
    return g;
  }();
  return loaded;
}

std::string LastGitError(const Git& git, std::string_view what) {
  const git_error* e = git.error_last();
  return std::string(what) + ": " +
         (e != nullptr && e->message != nullptr ? e->message : "libgit2");
}

struct PatchDeleter {
  const Git* git;
  void operator()(git_patch* p) const { git->patch_free(p); }
};

std::string_view WithoutNewline(const char* p, size_t n) {
  std::string_view s(p, n);
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

}  // namespace

bool LooksBinary(std::string_view s) {
  return s.substr(0, 8000).find('\0') != std::string_view::npos;
}

absl::StatusOr<std::string> UnifiedDiff(std::string_view before, std::string_view after,
                                        std::string_view before_label,
                                        std::string_view after_label,
                                        const UnifiedDiffOptions& options) {
  if (before == after) return std::string();
  if (LooksBinary(before) || LooksBinary(after)) {
    return std::string("Binary files ").append(before_label).append(" and ").append(after_label)
        .append(" differ\n");
  }
  ASSIGN_OR_RETURN(const Git* git, LoadGit());
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  opts.flags |= GIT_DIFF_FORCE_TEXT;
  opts.context_lines = static_cast<uint32_t>(options.context_lines < 0 ? 0 : options.context_lines);
  git_patch* raw = nullptr;
  if (git->patch_from_buffers(&raw, before.data(), before.size(), nullptr, after.data(),
                             after.size(), nullptr, &opts) != 0) {
    return absl::InternalError(LastGitError(*git, "diff"));
  }
  std::unique_ptr<git_patch, PatchDeleter> patch(raw, PatchDeleter{git});
  std::string out = std::string("--- ").append(before_label).append("\n+++ ").append(after_label)
      .append("\n");
  const size_t hunks = git->patch_num_hunks(patch.get());
  for (size_t h = 0; h < hunks; ++h) {
    const git_diff_hunk* hunk = nullptr;
    size_t lines = 0;
    if (git->patch_get_hunk(&hunk, &lines, patch.get(), h) != 0) {
      return absl::InternalError(LastGitError(*git, "diff hunk"));
    }
    out.append(WithoutNewline(hunk->header, hunk->header_len)).push_back('\n');
    for (size_t l = 0; l < lines; ++l) {
      const git_diff_line* line = nullptr;
      if (git->patch_get_line_in_hunk(&line, patch.get(), h, l) != 0) {
        return absl::InternalError(LastGitError(*git, "diff line"));
      }
      switch (line->origin) {
        case GIT_DIFF_LINE_CONTEXT_EOFNL:
        case GIT_DIFF_LINE_ADD_EOFNL:
        case GIT_DIFF_LINE_DEL_EOFNL:
          out += "\\ No newline at end of file\n";
          break;
        default: {
          std::string_view text = WithoutNewline(line->content, line->content_len);
          out.push_back(static_cast<char>(line->origin));
          if (options.filter_line) {
            out += options.filter_line(text);
          } else {
            out += text;
          }
          out.push_back('\n');
        }
      }
    }
  }
  return out;
}

absl::StatusOr<Merge3Result> Merge3(std::string_view base, std::string_view ours,
                                    std::string_view theirs, const Merge3Labels& labels) {
  if (LooksBinary(base) || LooksBinary(ours) || LooksBinary(theirs)) {
    return absl::InvalidArgumentError("three-way merge of binary content");
  }
  ASSIGN_OR_RETURN(const Git* git, LoadGit());
  git_merge_file_input in_base = GIT_MERGE_FILE_INPUT_INIT;
  git_merge_file_input in_ours = GIT_MERGE_FILE_INPUT_INIT;
  git_merge_file_input in_theirs = GIT_MERGE_FILE_INPUT_INIT;
  in_base.ptr = base.data();
  in_base.size = base.size();
  in_ours.ptr = ours.data();
  in_ours.size = ours.size();
  in_theirs.ptr = theirs.data();
  in_theirs.size = theirs.size();
  git_merge_file_options opts = GIT_MERGE_FILE_OPTIONS_INIT;
  opts.ancestor_label = labels.base.c_str();
  opts.our_label = labels.ours.c_str();
  opts.their_label = labels.theirs.c_str();
  opts.flags = GIT_MERGE_FILE_STYLE_DIFF3;
  git_merge_file_result res = {};
  if (git->merge_file(&res, &in_base, &in_ours, &in_theirs, &opts) != 0) {
    return absl::InternalError(LastGitError(*git, "three-way merge"));
  }
  Merge3Result out;
  out.clean = res.automergeable != 0;
  out.text.assign(res.ptr != nullptr ? res.ptr : "", res.len);
  git->merge_file_result_free(&res);
  if (out.clean) return out;

  // Read the conflicts back from the markers libgit2 wrote (it reports none otherwise).
  enum class Part { kNone, kOurs, kBase, kTheirs } part = Part::kNone;
  const std::string open = "<<<<<<< " + labels.ours, mid_base = "||||||| " + labels.base,
                    close = ">>>>>>> " + labels.theirs;
  int n = 0;
  MergeConflict cur;
  for (size_t pos = 0; pos < out.text.size();) {
    size_t end = out.text.find('\n', pos);
    if (end == std::string::npos) end = out.text.size();
    const std::string_view line(out.text.data() + pos, end - pos);
    pos = end + 1;
    ++n;
    if (part == Part::kNone && line == open) {
      cur = MergeConflict{};
      cur.line = n;
      part = Part::kOurs;
    } else if (part == Part::kOurs && line == mid_base) {
      part = Part::kBase;
    } else if ((part == Part::kOurs || part == Part::kBase) && line == "=======") {
      part = Part::kTheirs;
    } else if (part == Part::kTheirs && line == close) {
      out.conflicts.push_back(std::move(cur));
      part = Part::kNone;
    } else if (part == Part::kOurs) {
      cur.ours.emplace_back(line);
    } else if (part == Part::kBase) {
      cur.base.emplace_back(line);
    } else if (part == Part::kTheirs) {
      cur.theirs.emplace_back(line);
    }
  }
  return out;
}

}  // namespace mimic::common
