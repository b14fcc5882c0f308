#include "common/base/text_diff.h"

#include <git2.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"

namespace mimic::common {
namespace {

// libgit2 keeps global state (allocators, thread-local errors) set up once per process; it is
// never shut down, so pointers it hands out stay valid until exit.
void InitLibgit2() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string LastGitError(std::string_view what) {
  const git_error* e = git_error_last();
  return std::string(what) + ": " +
         (e != nullptr && e->message != nullptr ? e->message : "libgit2");
}

struct PatchDeleter {
  void operator()(git_patch* p) const { git_patch_free(p); }
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
  InitLibgit2();
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  opts.flags |= GIT_DIFF_FORCE_TEXT;
  opts.context_lines = static_cast<uint32_t>(options.context_lines < 0 ? 0 : options.context_lines);
  git_patch* raw = nullptr;
  if (git_patch_from_buffers(&raw, before.data(), before.size(), nullptr, after.data(),
                             after.size(), nullptr, &opts) != 0) {
    return absl::InternalError(LastGitError("diff"));
  }
  std::unique_ptr<git_patch, PatchDeleter> patch(raw);
  std::string out = std::string("--- ").append(before_label).append("\n+++ ").append(after_label)
      .append("\n");
  const size_t hunks = git_patch_num_hunks(patch.get());
  for (size_t h = 0; h < hunks; ++h) {
    const git_diff_hunk* hunk = nullptr;
    size_t lines = 0;
    if (git_patch_get_hunk(&hunk, &lines, patch.get(), h) != 0) {
      return absl::InternalError(LastGitError("diff hunk"));
    }
    out.append(WithoutNewline(hunk->header, hunk->header_len)).push_back('\n');
    for (size_t l = 0; l < lines; ++l) {
      const git_diff_line* line = nullptr;
      if (git_patch_get_line_in_hunk(&line, patch.get(), h, l) != 0) {
        return absl::InternalError(LastGitError("diff line"));
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
  InitLibgit2();
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
  if (git_merge_file(&res, &in_base, &in_ours, &in_theirs, &opts) != 0) {
    return absl::InternalError(LastGitError("three-way merge"));
  }
  Merge3Result out;
  out.clean = res.automergeable != 0;
  out.text.assign(res.ptr != nullptr ? res.ptr : "", res.len);
  git_merge_file_result_free(&res);
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
