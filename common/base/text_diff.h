// Line diffs of text: a unified diff of two texts (for --diff) and a three-way merge (an
// operator's edits to one version's file applied to another version's). One implementation for
// the project, on libgit2's xdiff (Debian's libgit2-1.5): the algorithm git and its merge driver
// use, so results match what operators see from `git diff` and `git merge-file`.
#ifndef MIMIC_COMMON_BASE_TEXT_DIFF_H_
#define MIMIC_COMMON_BASE_TEXT_DIFF_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace mimic::common {

// True when `s` holds a NUL byte in its first 8,000 bytes (git's rule): no line diff for it.
bool LooksBinary(std::string_view s);

struct UnifiedDiffOptions {
  int context_lines = 3;
  // Each line's text (without its origin character and newline) passes through this before it
  // is written, when set: callers redact secrets here. Headers are not passed.
  std::function<std::string(std::string_view line)> filter_line;
};

// The unified diff from `before` to `after`: "--- <before_label>\n+++ <after_label>\n" and
// "@@ -a,b +c,d @@" hunks, "\ No newline at end of file" where one side lacks the final newline.
// "" when the texts are equal. When either text LooksBinary, one line
// "Binary files <before_label> and <after_label> differ\n". INTERNAL if libgit2 fails.
absl::StatusOr<std::string> UnifiedDiff(std::string_view before, std::string_view after,
                                        std::string_view before_label,
                                        std::string_view after_label,
                                        const UnifiedDiffOptions& options = {});

// One region both sides changed differently, as lines (each without its newline).
struct MergeConflict {
  int line = 0;  // 1-based line of the conflict's first marker in Merge3Result::text
  std::vector<std::string> base, ours, theirs;
};

struct Merge3Result {
  bool clean = false;  // no conflict: `text` is the merged file
  // The merged text; with diff3-style markers (<<<<<<< ours, ||||||| base, =======,
  // >>>>>>> theirs, using the labels given) around each conflict when !clean.
  std::string text;
  std::vector<MergeConflict> conflicts;  // in file order; empty when clean
};

struct Merge3Labels {
  std::string base = "base", ours = "ours", theirs = "theirs";
};

// Three-way merge of line-based text: the changes from `base` to `theirs` applied to `ours`
// (git merge-file semantics: a region changed on one side only takes that side; the same change on
// both sides is taken once; different changes to one region conflict). Binary input (LooksBinary)
// is INVALID_ARGUMENT; INTERNAL if libgit2 fails.
absl::StatusOr<Merge3Result> Merge3(std::string_view base, std::string_view ours,
                                    std::string_view theirs, const Merge3Labels& labels = {});

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_TEXT_DIFF_H_
