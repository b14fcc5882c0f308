#include "common/base/subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/fd.h"
#include "common/base/local_time.h"

extern char** environ;

namespace mimic::common {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status ErrnoStatus(const std::string& what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

// A descriptor at 10 or above (so the child's dup2 onto 0..3 never clobbers a source), cloexec.
int High(int fd) {
  if (fd < 0) return fd;
  const int h = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  return h;
}

absl::Status MakePipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  read_end.Reset(High(p[0]));
  write_end.Reset(High(p[1]));
  if (read_end.get() < 0 || write_end.get() < 0) return ErrnoStatus("fcntl", errno);
  return absl::OkStatus();
}

// The environment the child gets.
std::vector<std::string> ChildEnv(const SubprocessOptions& o) {
  std::vector<std::string> out;
  if (!o.replace_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string_view kv = *e;
      const std::string_view name = kv.substr(0, kv.find('='));
      const bool replaced = std::any_of(o.env.begin(), o.env.end(), [&](const std::string& add) {
        return std::string_view(add).substr(0, add.find('=')) == name;
      });
      if (!replaced && kv != PinnedTimeZoneEntry()) out.emplace_back(kv);
    }
  }
  out.insert(out.end(), o.env.begin(), o.env.end());
  return out;
}

// argv[0] itself when it holds a '/', else the first executable of that name on PATH (the
// child's PATH, else the caller's, else /usr/bin:/bin); "" when none.
std::string ResolveProgram(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string path;
  bool found = false;
  for (const std::string& kv : env) {
    if (kv.rfind("PATH=", 0) == 0) {
      path = kv.substr(5);
      found = true;
    }
  }
  if (!found) path = "/usr/bin:/bin";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    const std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

// What the child reports through the error pipe when it cannot start.
struct ChildError {
  int stage;  // 1 chdir, 2 exec, 3 setup, 4 user and group
  int err;
};

[[noreturn]] void ChildFail(int errpipe, int stage) {
  const ChildError e{stage, errno};
  (void)!::write(errpipe, &e, sizeof(e));
  ::_exit(127);
}

// Keeps the head or the tail of a stream within a limit.
class Capture {
 public:
  explicit Capture(CaptureLimit limit) : limit_(limit) {}
  void Add(const char* data, size_t n) {
    if (limit_.keep_tail) {
      text_.append(data, n);
      if (text_.size() > limit_.max_bytes) {
        dropped_ += text_.size() - limit_.max_bytes;
        text_.erase(0, text_.size() - limit_.max_bytes);
      }
    } else {
      const size_t room = limit_.max_bytes - std::min(limit_.max_bytes, text_.size());
      text_.append(data, std::min(room, n));
      dropped_ += n - std::min(room, n);
    }
  }
  bool truncated() const { return dropped_ > 0; }
  std::string Take() {
    if (dropped_ == 0 || limit_.max_bytes == 0) return std::move(text_);
    const std::string marker = absl::StrCat("[... ", dropped_, " bytes truncated]");
    return limit_.keep_tail ? absl::StrCat(marker, "\n", text_) : absl::StrCat(text_, "\n", marker);
  }

 private:
  CaptureLimit limit_;
  std::string text_;
  uint64_t dropped_ = 0;
};

// Splits a stream into lines for options.on_line.
class Lines {
 public:
  Lines(const SubprocessOptions& o, OutStream s) : o_(o), s_(s) {}
  void Add(const char* data, size_t n) {
    if (!o_.on_line) return;
    for (size_t i = 0; i < n; ++i) {
      if (data[i] == '\n') {
        Flush();
      } else if (data[i] != '\r') {
        buf_.push_back(data[i]);
        if (buf_.size() >= o_.max_line_bytes) Flush();
      }
    }
  }
  void Finish() {
    if (!buf_.empty()) Flush();
  }

 private:
  void Flush() {
    o_.on_line(s_, buf_);
    buf_.clear();
  }
  const SubprocessOptions& o_;
  OutStream s_;
  std::string buf_;
};

// write() that cannot raise SIGPIPE in the caller when the child closed its stdin.
ssize_t WriteNoSigpipe(int fd, const char* data, size_t n) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const ssize_t w = ::write(fd, data, n);
  const int saved = errno;
  if (w < 0 && saved == EPIPE) {
    const timespec zero{0, 0};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return w;
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

int MillisUntil(Clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30));
}

Clock::time_point Deadline(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return Clock::time_point::max();
  return Clock::now() + absl::ToChronoMilliseconds(d);
}

}  // namespace

std::string SubprocessResult::Describe() const {
  if (cancelled) return "cancelled";
  if (timed_out) return "timed out";
  if (signal != 0) return absl::StrCat("killed by signal ", signal);
  return absl::StrCat("exit code ", exit_code);
}

absl::StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& o) {
  if (o.argv.empty()) return absl::InvalidArgumentError("RunSubprocess: empty argv");
  // Everything the child needs is built before fork(): after it only async-signal-safe calls.
  std::vector<std::string> env = ChildEnv(o);
  const std::string program = ResolveProgram(o.argv[0], env);
  if (program.empty()) {
    return absl::NotFoundError(absl::StrCat("cannot run ", o.argv[0], ": not found in PATH"));
  }
  std::vector<std::string> argv_copy = o.argv;
  std::vector<char*> argv, envp;
  for (std::string& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (std::string& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);

  Fd in_r, in_w, out_r, out_w, err_r, err_w, ep_r, ep_w;
  if (o.stdin_bytes.has_value()) {
    if (absl::Status s = MakePipe(in_r, in_w); !s.ok()) return s;
    if (::fcntl(in_w.get(), F_SETFL, O_NONBLOCK) != 0) return ErrnoStatus("fcntl", errno);
  } else {
    const std::string& p = o.stdin_path.empty() ? std::string("/dev/null") : o.stdin_path;
    in_r.Reset(High(::open(p.c_str(), O_RDONLY | O_CLOEXEC)));
    if (in_r.get() < 0) return ErrnoStatus(absl::StrCat("cannot open ", p), errno);
  }
  if (!o.stdout_path.empty()) {
    const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (o.stdout_append ? O_APPEND : O_TRUNC);
    out_w.Reset(High(::open(o.stdout_path.c_str(), flags, o.stdout_file_mode)));
    if (out_w.get() < 0) return ErrnoStatus(absl::StrCat("cannot open ", o.stdout_path), errno);
  } else if (absl::Status s = MakePipe(out_r, out_w); !s.ok()) {
    return s;
  }
  if (!o.merge_stderr) {
    if (absl::Status s = MakePipe(err_r, err_w); !s.ok()) return s;
  }
  if (absl::Status s = MakePipe(ep_r, ep_w); !s.ok()) return s;
  struct rlimit nofile {};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  const int max_fd = nofile.rlim_cur == RLIM_INFINITY ? 65536 : static_cast<int>(nofile.rlim_cur);
  const std::string& cwd = o.cwd;
  const int in_fd = in_r.get(), out_fd = out_w.get(),
            err_fd = o.merge_stderr ? out_w.get() : err_w.get(), ep_fd = ep_w.get();

  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    if (o.new_session) {
      ::setsid();
    } else {
      ::setpgid(0, 0);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0 ||
        ::dup2(ep_fd, 3) < 0 || ::fcntl(3, F_SETFD, FD_CLOEXEC) < 0) {
      ChildFail(ep_fd, 3);
    }
    // No descriptor of the caller (sockets, journals) leaks into the child.
    if (::syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
      for (int fd = 4; fd < max_fd; ++fd) ::close(fd);
    }
    if (o.gid >= 0) {
      const gid_t gid = static_cast<gid_t>(o.gid);
      if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0) ChildFail(3, 4);
    }
    if (o.uid >= 0 && ::setuid(static_cast<uid_t>(o.uid)) != 0) ChildFail(3, 4);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ChildFail(3, 1);
    ::execve(program.c_str(), argv.data(), envp.data());
    ChildFail(3, 2);
  }
  if (!o.new_session) ::setpgid(pid, pid);  // also here: no race with a kill below
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();
  ep_w.Reset();

  // Did the child start? The error pipe closes on a successful exec.
  ChildError child_error{0, 0};
  ssize_t got;
  while ((got = ::read(ep_r.get(), &child_error, sizeof(child_error))) < 0 && errno == EINTR) {
  }
  if (got == static_cast<ssize_t>(sizeof(child_error))) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    switch (child_error.stage) {
      case 1:
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot run ", o.argv[0], ": cannot chdir to ", cwd, ": ",
            std::strerror(child_error.err)));
      case 2:
        return absl::FailedPreconditionError(
            absl::StrCat("cannot run ", program, ": ", std::strerror(child_error.err)));
      case 4:
        return absl::PermissionDeniedError(absl::StrCat(
            "cannot run ", o.argv[0], " as uid ", o.uid, " gid ", o.gid, ": ",
            std::strerror(child_error.err)));
      default:
        return ErrnoStatus(absl::StrCat("cannot start ", o.argv[0]), child_error.err);
    }
  }

  SubprocessResult r;
  Capture out_cap(o.stdout_limit), err_cap(o.stderr_limit);
  Lines out_lines(o, OutStream::kStdout), err_lines(o, OutStream::kStderr);
  Fd pidfd(PidfdOpen(pid));
  size_t stdin_off = 0;
  if (o.stdin_bytes.has_value() && o.stdin_bytes->empty()) in_w.Reset();

  const Clock::time_point deadline = Deadline(o.timeout);
  Clock::time_point drain_until = Clock::time_point::max();
  bool reaped = false;
  int status = 0;
  char buf[16384];

  // Ends the child: SIGTERM, SIGKILL after the grace period; the group gets SIGKILL either way
  // so nothing the child left behind in it survives.
  auto end_child = [&] {
    auto signal_all = [&](int sig) {
      if (o.signal_group) ::kill(-pid, sig);
      ::kill(pid, sig);
    };
    signal_all(SIGTERM);
    const Clock::time_point until = Deadline(o.kill_grace);
    while (!reaped) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        reaped = true;
        break;
      }
      if (Clock::now() >= until) break;
      if (pidfd.get() >= 0) {
        pollfd p{pidfd.get(), POLLIN, 0};
        ::poll(&p, 1, std::min(MillisUntil(until), 1000));
      } else {
        ::poll(nullptr, 0, std::min(MillisUntil(until), 20));
      }
    }
    if (o.signal_group) ::kill(-pid, SIGKILL);
    if (!reaped) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      reaped = true;
    }
    drain_until = Deadline(o.drain_after_exit);
  };

  while (true) {
    if (!reaped) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        reaped = true;
        drain_until = Deadline(o.drain_after_exit);
      } else if (o.cancel != nullptr && o.cancel->load()) {
        r.cancelled = true;
        end_child();
      } else if (Clock::now() >= deadline) {
        r.timed_out = true;
        end_child();
      }
    }
    const bool reading = out_r.get() >= 0 || err_r.get() >= 0;
    if (reaped && (!reading || Clock::now() >= drain_until)) break;

    pollfd fds[4];
    int n = 0;
    auto add = [&](int fd, short events) {
      if (fd >= 0) fds[n++] = {fd, events, 0};
    };
    add(out_r.get(), POLLIN);
    add(err_r.get(), POLLIN);
    add(in_w.get(), POLLOUT);
    if (!reaped) add(pidfd.get(), POLLIN);
    int wait_ms = MillisUntil(reaped ? drain_until : deadline);
    if (!reaped && (o.cancel != nullptr || pidfd.get() < 0)) wait_ms = std::min(wait_ms, 20);
    if (::poll(fds, n, wait_ms) < 0 && errno != EINTR) return ErrnoStatus("poll", errno);
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      if (fd == in_w.get()) {
        const ssize_t w = WriteNoSigpipe(fd, o.stdin_bytes->data() + stdin_off,
                                         o.stdin_bytes->size() - stdin_off);
        if (w > 0) stdin_off += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
            stdin_off == o.stdin_bytes->size()) {
          in_w.Reset();  // done, or the child closed its stdin (EPIPE)
        }
      } else if (fd == out_r.get() || fd == err_r.get()) {
        const bool is_out = fd == out_r.get();
        const ssize_t got_n = ::read(fd, buf, sizeof(buf));
        if (got_n > 0) {
          (is_out ? out_cap : err_cap).Add(buf, static_cast<size_t>(got_n));
          (is_out ? out_lines : err_lines).Add(buf, static_cast<size_t>(got_n));
        } else if (got_n == 0 || (errno != EINTR && errno != EAGAIN)) {
          (is_out ? out_r : err_r).Reset();
        }
      }
    }
  }
  out_lines.Finish();
  err_lines.Finish();
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.stdout_truncated = out_cap.truncated();
  r.stderr_truncated = err_cap.truncated();
  r.stdout_text = out_cap.Take();
  r.stderr_text = err_cap.Take();
  return r;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  // The state is the field after the command's closing parenthesis (the command may hold any
  // character, parentheses included).
  const int fd = ::open(absl::StrCat("/proc/", pid, "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  // Gone meanwhile, or no /proc here: kill's answer stands.
  if (fd < 0) return ::kill(pid, 0) == 0 || errno == EPERM;
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n <= 0) return true;
  const std::string_view stat(buf, static_cast<size_t>(n));
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos || paren + 2 >= stat.size()) return true;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

bool WaitProcessEnded(pid_t pid, absl::Duration timeout) {
  if (pid <= 0) return true;
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) return true;
    // No pidfds here (a kernel before 5.3): look again every 100 ms.
    const absl::Time until = absl::Now() + timeout;
    while (ProcessAlive(pid)) {
      if (absl::Now() >= until) return false;
      ::poll(nullptr, 0, 100);
    }
    return true;
  }
  // The descriptor becomes readable when the process ends (before it is reaped).
  const absl::Time until = absl::Now() + timeout;
  bool ended = false;
  for (;;) {
    const int64_t left_ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(until - absl::Now()));
    pollfd p{fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1 << 30)));
    if (rc < 0 && errno == EINTR) continue;
    ended = rc == 1;
    break;
  }
  ::close(fd);
  return ended;
}

}  // namespace mimic::common
