// exec: the operator's own command, e.g. applying WSO2 Updates to the target ("Use WSO2 Updates
// to get the latest available updates", both guides). Params:
//
//   command          run with /bin/sh -c (required)
//   chdir            working directory (absolute, inside the allowed roots); default: target home
//   creates          a path: when it exists the command is not run (skipped)
//   removes          a path: when it does NOT exist the command is not run (skipped)
//   timeout_seconds  default 600; on expiry the command's process group gets SIGTERM, then
//                    SIGKILL 5 s later, and the step fails
//
// creates / removes may be relative to the working directory; like chdir they must pass the
// path guard. The command gets stdin from /dev/null, no file descriptor of the agent, and
// MIMIC_SOURCE_HOME / MIMIC_TARGET_HOME in its environment. Every line it prints is logged,
// redacted by common::RedactText.
//
// A command's effect cannot be written as a change set, so this step departs from the contract
// of step.h in one way: with ctx.check false, Plan() itself runs the command and returns an empty
// change set with forced_status STEP_CHANGED (or an error naming the exit code and the last
// output lines). Check mode NEVER runs it: it reports "would run: <command>" (changed) or the
// guard that skips it (skipped), so a check is exact whenever creates / removes decide.
// What the command does is OUTSIDE the run's snapshot: a rollback cannot undo it (logged as a
// warning each time).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/steps/file_steps.h"
#include "agent/steps/steps.h"
#include "common/base/fs.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"

extern char** environ;

namespace mimic::agent {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kDefaultTimeoutSeconds = 600;
constexpr int kMaxTimeoutSeconds = 7 * 24 * 3600;
constexpr size_t kMaxLineBytes = 4096;    // longer output lines are split
constexpr size_t kMaxLoggedLines = 5000;  // the rest is counted, not logged
constexpr size_t kTailLines = 10;         // output lines quoted in a failure
constexpr int kKillGraceMs = 5000;        // SIGTERM -> SIGKILL
constexpr int kDrainAfterExitMs = 500;    // output still read after the shell exited

struct ExecResult {
  bool timed_out = false;
  int exit_code = -1;            // when the shell exited
  int signal = 0;                // when it was killed by a signal
  std::deque<std::string> tail;  // last kTailLines lines, redacted
};

// Splits output into lines for `emit`.
class LineSplitter {
 public:
  explicit LineSplitter(std::function<void(const std::string&)> emit) : emit_(std::move(emit)) {}
  void Add(const char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (data[i] == '\n') {
        Flush();
      } else if (data[i] != '\r') {
        buf_.push_back(data[i]);
        if (buf_.size() >= kMaxLineBytes) Flush();
      }
    }
  }
  void Finish() {
    if (!buf_.empty()) Flush();
  }

 private:
  void Flush() {
    emit_(buf_);
    buf_.clear();
  }
  std::function<void(const std::string&)> emit_;
  std::string buf_;
};

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Kills `pid`'s process group: SIGTERM, then SIGKILL after the grace period; reaps `pid`.
int KillAndReap(pid_t pid) {
  ::kill(-pid, SIGTERM);
  int status = 0;
  const auto until = Clock::now() + std::chrono::milliseconds(kKillGraceMs);
  while (Clock::now() < until) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      ::kill(-pid, SIGKILL);  // whatever the shell left behind in its group
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(-pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// Runs /bin/sh -c `command` in `cwd`; calls `on_line(is_stderr, line)` for every output line.
absl::StatusOr<ExecResult> RunCommand(
    const std::string& command, const std::string& cwd, int timeout_seconds,
    const std::vector<std::string>& env_add,
    const std::function<void(bool, const std::string&)>& on_line) {
  // Everything the child needs is built before fork(): after it only async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string kv = *e;
    bool replaced = false;
    for (const std::string& add : env_add) {
      replaced = replaced || kv.compare(0, add.find('=') + 1, add, 0, add.find('=') + 1) == 0;
    }
    if (!replaced) env_strings.push_back(kv);
  }
  for (const std::string& add : env_add) env_strings.push_back(add);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  static constexpr char kChdirFailed[] = "mimic exec: cannot chdir to the working directory\n";
  static constexpr char kExecFailed[] = "mimic exec: cannot execute /bin/sh\n";

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Errno("pipe");
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return Errno("pipe");
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    return Errno("fork");
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::close_range(3, ~0U, 0);  // no descriptor of the agent (sockets, journal) leaks
    if (::chdir(cwd.c_str()) != 0) {
      (void)!::write(2, kChdirFailed, sizeof(kChdirFailed) - 1);
      ::_exit(127);
    }
    ::execve(argv[0], argv, envp.data());
    (void)!::write(2, kExecFailed, sizeof(kExecFailed) - 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: no race with the kill below
  ::close(out[1]);
  ::close(err[1]);

  ExecResult result;
  auto emit = [&](bool is_err, const std::string& line) {
    std::string red = common::RedactText(line);
    result.tail.push_back(red);
    if (result.tail.size() > kTailLines) result.tail.pop_front();
    on_line(is_err, red);
  };
  LineSplitter out_lines([&](const std::string& l) { emit(false, l); });
  LineSplitter err_lines([&](const std::string& l) { emit(true, l); });

  const auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  std::optional<Clock::time_point> exited_at;
  int status = 0;
  bool reaped = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[8192];
  while (open_fds > 0) {
    const auto now = Clock::now();
    if (!reaped && now >= deadline) {
      result.timed_out = true;
      break;
    }
    if (exited_at && now - *exited_at > std::chrono::milliseconds(kDrainAfterExitMs)) {
      break;  // the shell is gone; a background child it left keeps the pipe open
    }
    const int rc = ::poll(fds, 2, 100);
    if (rc < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && rc > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? out_lines : err_lines).Add(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
    if (!reaped && ::waitpid(pid, &status, WNOHANG) == pid) {
      reaped = true;
      exited_at = Clock::now();
    }
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  out_lines.Finish();
  err_lines.Finish();
  if (result.timed_out) {
    status = reaped ? status : KillAndReap(pid);
  } else if (!reaped) {
    // Output closed; wait for the shell within what is left of the timeout.
    while (!reaped) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        reaped = true;
      } else if (Clock::now() >= deadline) {
        result.timed_out = true;
        status = KillAndReap(pid);
        break;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

// `p` made absolute against `cwd` and confined.
absl::StatusOr<std::string> GuardedPath(const StepContext& ctx, const std::string& param,
                                        const std::string& p, const std::string& cwd) {
  absl::StatusOr<std::string> r =
      ctx.guard->Resolve(p.front() == '/' ? p : common::JoinPath(cwd, p));
  if (!r.ok()) {
    return absl::Status(r.status().code(),
                        absl::StrCat("exec: ", param, ": ", r.status().message()));
  }
  return r;
}

class ExecStep final : public Step {
 public:
  std::string name() const override { return "exec"; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    const std::string command = ctx.Param("command");
    if (command.empty()) return absl::InvalidArgumentError("exec: param command is required");
    const std::string shown = common::RedactText(command);

    int timeout = kDefaultTimeoutSeconds;
    const std::string timeout_param = ctx.Param("timeout_seconds");
    if (!timeout_param.empty() && (!absl::SimpleAtoi(timeout_param, &timeout) || timeout <= 0 ||
                                   timeout > kMaxTimeoutSeconds)) {
      return absl::InvalidArgumentError(absl::StrCat("exec: param timeout_seconds = \"",
                                                     timeout_param,
                                                     "\" is not a whole number of "
                                                     "seconds between 1 and ",
                                                     kMaxTimeoutSeconds));
    }
    std::string cwd = homes.target;
    if (const std::string chdir = ctx.Param("chdir"); !chdir.empty()) {
      if (chdir.front() != '/') {
        return absl::InvalidArgumentError(
            absl::StrCat("exec: param chdir = \"", chdir, "\" must be an absolute path"));
      }
      ASSIGN_OR_RETURN(cwd, GuardedPath(ctx, "chdir", chdir, cwd));
    }

    StepPlan plan;
    std::string skip;
    if (const std::string creates = ctx.Param("creates"); !creates.empty()) {
      ASSIGN_OR_RETURN(std::string p, GuardedPath(ctx, "creates", creates, cwd));
      if (common::PathExists(p)) skip = absl::StrCat("creates: ", p, " exists");
    }
    if (const std::string removes = ctx.Param("removes"); skip.empty() && !removes.empty()) {
      ASSIGN_OR_RETURN(std::string p, GuardedPath(ctx, "removes", removes, cwd));
      if (!common::PathExists(p)) skip = absl::StrCat("removes: ", p, " does not exist");
    }
    if (!skip.empty()) {
      plan.forced_status = mimic::v1::STEP_SKIPPED;
      plan.message = absl::StrCat("not run (", skip, "): ", shown);
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }

    constexpr char kOutsideSnapshot[] =
        "the command's effects are outside the run's snapshot: a rollback cannot undo them";
    if (ctx.check) {
      plan.forced_status = mimic::v1::STEP_CHANGED;
      plan.message = absl::StrCat("would run: ", shown, " (in ", cwd, ", timeout ", timeout, " s)");
      if (!common::IsDirectory(cwd))
        absl::StrAppend(&plan.message, "; ", cwd, " does not exist now");
      StepLog(ctx, LogLevel::kInfo, plan.message);
      StepLog(ctx, LogLevel::kWarning, kOutsideSnapshot);
      return plan;
    }

    if (!common::IsDirectory(cwd)) {
      return absl::FailedPreconditionError(
          absl::StrCat("exec: working directory ", cwd, " is not a directory"));
    }
    StepLog(ctx, LogLevel::kWarning, kOutsideSnapshot);
    StepLog(ctx, LogLevel::kInfo, absl::StrCat("running: ", shown, " (in ", cwd, ")"));
    size_t lines = 0, dropped = 0;
    auto on_line = [&](bool is_err, const std::string& line) {
      if (++lines > kMaxLoggedLines) {
        ++dropped;
        return;
      }
      StepLog(ctx, LogLevel::kInfo, is_err ? absl::StrCat("[stderr] ", line) : line);
    };
    const auto t0 = Clock::now();
    ASSIGN_OR_RETURN(ExecResult r, RunCommand(command, cwd, timeout,
                                              {absl::StrCat("MIMIC_SOURCE_HOME=", homes.source),
                                               absl::StrCat("MIMIC_TARGET_HOME=", homes.target)},
                                              on_line));
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (dropped > 0) {
      StepLog(ctx, LogLevel::kWarning,
              absl::StrCat(dropped, " more output lines not logged (limit ", kMaxLoggedLines, ")"));
    }
    const std::string tail =
        r.tail.empty()
            ? "no output"
            : absl::StrCat("last output: ", absl::StrJoin(r.tail.begin(), r.tail.end(), " | "));
    if (r.timed_out) {
      return absl::DeadlineExceededError(
          absl::StrCat("exec: timed out after ", timeout, " s and killed: ", shown, "; ", tail));
    }
    if (r.signal != 0) {
      return absl::AbortedError(
          absl::StrCat("exec: killed by signal ", r.signal, ": ", shown, "; ", tail));
    }
    plan.facts["exec.exit_code"] = absl::StrCat(r.exit_code);
    if (r.exit_code != 0) {
      return absl::AbortedError(
          absl::StrCat("exec: exit code ", r.exit_code, ": ", shown, "; ", tail));
    }
    plan.forced_status = mimic::v1::STEP_CHANGED;
    plan.message = absl::StrFormat("ran: %s (exit code 0 in %.1f s)", shown, secs);
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }
};

}  // namespace

std::unique_ptr<Step> NewExecStep() { return std::make_unique<ExecStep>(); }

}  // namespace mimic::agent
