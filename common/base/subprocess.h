// The one way mimic runs another program: argv (no shell), an explicit environment, a working
// directory, stdin from /dev/null, a file or given bytes, stdout/stderr captured (bounded) or sent
// to a file, a timeout and a cancellation token that end the child's whole process group
// (SIGTERM, then SIGKILL after a grace period). The child gets no descriptor of the caller.
#ifndef MIMIC_COMMON_BASE_SUBPROCESS_H_
#define MIMIC_COMMON_BASE_SUBPROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mimic::common {

enum class OutStream { kStdout, kStderr };

// How much of a captured stream is kept. Past `max_bytes` the rest is dropped and a marker
// "[... N bytes truncated]" takes its place (after the head, or before the tail).
struct CaptureLimit {
  size_t max_bytes = 1 << 20;
  bool keep_tail = false;  // keep the last max_bytes instead of the first
};

struct SubprocessOptions {
  // argv[0] is a path, or a name looked up in the child's PATH. Never run through a shell.
  std::vector<std::string> argv;
  // "NAME=value" entries. With replace_env false they are added to the caller's environment
  // (replacing variables of the same name); with replace_env true they are the whole environment.
  std::vector<std::string> env;
  bool replace_env = false;
  std::string cwd;  // empty: the caller's working directory

  // stdin: these bytes when set, else the file stdin_path when not empty, else /dev/null.
  std::optional<std::string> stdin_bytes;
  std::string stdin_path;

  // stdout goes to this file when not empty (created with stdout_file_mode; truncated, or
  // appended to with stdout_append), else it is captured.
  std::string stdout_path;
  bool stdout_append = false;
  uint32_t stdout_file_mode = 0600;
  bool merge_stderr = false;  // stderr goes wherever stdout goes
  CaptureLimit stdout_limit;
  CaptureLimit stderr_limit = {64 << 10, true};

  // Called on the caller's thread with each line of a captured stream as it arrives, without
  // its '\n' and '\r'; lines longer than max_line_bytes are split.
  std::function<void(OutStream, const std::string&)> on_line;
  size_t max_line_bytes = 4096;

  absl::Duration timeout = absl::InfiniteDuration();
  absl::Duration kill_grace = absl::Seconds(5);  // SIGTERM -> SIGKILL
  // After the child exited, its output is read until EOF for at most this long (a background
  // process it left may hold the pipe open).
  absl::Duration drain_after_exit = absl::Milliseconds(500);
  // The child always leads its own process group; with new_session it also leads a new session
  // (a server it starts must not die with the caller's terminal).
  bool new_session = false;
  // Timeout and cancellation signal the child's whole process group; false: the child only.
  bool signal_group = true;
  // Run the child as this user and group (its supplementary groups become just `gid`); -1 keeps
  // the caller's. Changing them needs the caller to be root; the child fails to start otherwise.
  int64_t uid = -1;
  int64_t gid = -1;
  // Checked while waiting; when it becomes true the child is ended like at the timeout.
  const std::atomic<bool>* cancel = nullptr;
};

struct SubprocessResult {
  int exit_code = -1;  // when the child exited
  int signal = 0;      // when a signal ended it
  bool timed_out = false;
  bool cancelled = false;
  std::string stdout_text;  // captured stdout (with stderr when merged)
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;

  bool ok() const { return exit_code == 0 && !timed_out && !cancelled; }
  // "exit code 3", "killed by signal 9", "timed out", "cancelled".
  std::string Describe() const;
};

// Runs the child to its end. The result describes how it ended; an error Status only when it
// could not be started (empty argv, program not found, cannot exec, cannot chdir, cannot open a
// file), naming what failed.
absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

// Whether process `pid` runs: it exists (also when it belongs to another user, whom we may not
// signal) and has not ended (a zombie, ended and waiting to be reaped, does not run). False for
// pid <= 0.
bool ProcessAlive(pid_t pid);
// Waits up to `timeout` for process `pid` (our child or not) to end, without reaping it. True
// when it ended or was gone already; false when it still runs at the end.
bool WaitProcessEnded(pid_t pid, absl::Duration timeout);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_SUBPROCESS_H_
