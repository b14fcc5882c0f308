// `--diff` (HostPlan.diffs): the unified diff of every file a change set writes or deletes, built
// on the agent from the bytes it holds before the change is made, so a check run shows exactly
// what apply would write. Built on common/base/text_diff (UnifiedDiff); each line passes the
// caller's filter (the run redacts there) before it leaves this module.
#ifndef MIMIC_AGENT_ENGINE_FILE_DIFFS_H_
#define MIMIC_AGENT_ENGINE_FILE_DIFFS_H_

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/engine/step.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::agent {

struct FileDiffOptions {
  // Every line of every diff passes through this (headers are not lines): the run's redaction.
  std::function<std::string(std::string_view line)> filter_line;
  // One file's diff is cut at a line boundary before this many bytes, then
  // "... diff truncated (N more bytes)\n" (below the event's field bound, kMaxEventFieldBytes).
  size_t max_bytes_per_file = 60 << 10;
  // Once one step's diffs pass this, the later files of the step get
  // "... diff left out: this step's diffs passed N KiB\n" (events stay far below kMaxEventBytes).
  size_t max_bytes_per_step = 512 << 10;
  // Files larger than this on either side are not diffed: "... file too large to diff (N bytes)".
  size_t max_input_bytes = 16 << 20;
};

// The diff of each path `changes` writes or deletes (kWrite, kDelete ops; directories have
// none), from its bytes before the change set to its bytes after it, by absolute path. "Before"
// is what `overlay` plans for the path (check mode: an earlier step's planned write or delete),
// else what the disk holds; a missing file is "/dev/null". "After" is the op's content or the
// file it copies (a later op of the same path wins). Binary files (a NUL in the first 8000
// bytes, or a .jar/.car/.jks/.p12/.zip/... name) give one line "Binary files A and B differ".
// A path whose bytes do not change (a mode-only write) has no entry. A file that cannot be read
// gets one line "... diff not available: REASON" (diffs never fail a run).
std::map<std::string, std::string> DiffChangeSet(const ChangeSet& changes,
                                                 const std::map<std::string, FileOp>* overlay,
                                                 const FileDiffOptions& options);

// Sets FileChange.diff of the last change of each path in `diffs` (CREATE, UPDATE or DELETE).
void AttachDiffs(const std::map<std::string, std::string>& diffs,
                 std::vector<mimic::v1::FileChange>* changes);

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_ENGINE_FILE_DIFFS_H_
