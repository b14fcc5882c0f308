#include "common/base/subprocess.h"

#include "common/base/local_time.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

SubprocessOptions Sh(const std::string& script) {
  SubprocessOptions o;
  o.argv = {"/bin/sh", "-c", script};
  return o;
}

// Waits (up to 60 s, as an event on a pidfd) until process `pid` has ended; true when it has.
TEST(ProcessAliveTest, ARunningProcessIsAliveAnEndedOneIsNot) {
  EXPECT_TRUE(ProcessAlive(::getpid()));
  EXPECT_FALSE(ProcessAlive(0));
  EXPECT_FALSE(ProcessAlive(-1));
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  EXPECT_TRUE(ProcessAlive(child));
  EXPECT_FALSE(WaitProcessEnded(child, absl::ZeroDuration())) << "it still runs";
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  // Ended, not yet reaped: a zombie, which does not run.
  EXPECT_TRUE(WaitProcessEnded(child, absl::Seconds(60)));
  EXPECT_FALSE(ProcessAlive(child)) << "a zombie counted as running";
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_FALSE(ProcessAlive(child));
  EXPECT_TRUE(WaitProcessEnded(child, absl::Seconds(60))) << "gone already";
}

// A process of another user, whom we may not signal (EPERM), runs all the same.
TEST(ProcessAliveTest, AnotherUsersProcessIsAlive) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    if (::kill(parent, 0) == 0 || errno != EPERM) ::_exit(3);  // the case under test
    ::_exit(ProcessAlive(parent) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: not alive, 2: could not become nobody, 3: no EPERM";
}

TEST(SubprocessTest, ExitCodeAndOutput) {
  absl::StatusOr<SubprocessResult> r = RunSubprocess(Sh("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->signal, 0);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->stdout_text, "out\n");
  EXPECT_EQ(r->stderr_text, "err\n");
  EXPECT_EQ(r->Describe(), "exit code 3");
}

TEST(SubprocessTest, ProgramLookedUpInPath) {
  SubprocessOptions o;
  o.argv = {"true"};
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok());
}

TEST(SubprocessTest, MissingProgramIsAnError) {
  SubprocessOptions o;
  o.argv = {"mimic-no-such-program-xyz"};
  EXPECT_EQ(RunSubprocess(o).status().code(), absl::StatusCode::kNotFound);
  o.argv = {"/nonexistent/prog"};
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/prog"));
  o.argv = {};
  EXPECT_EQ(RunSubprocess(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SubprocessTest, BadWorkingDirectoryIsAnError) {
  SubprocessOptions o = Sh("true");
  o.cwd = "/nonexistent-dir-for-mimic";
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("cannot chdir to /nonexistent-dir-for-mimic"));
}

TEST(SubprocessTest, Signal) {
  absl::StatusOr<SubprocessResult> r = RunSubprocess(Sh("kill -USR1 $$"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->signal, SIGUSR1);
  EXPECT_EQ(r->exit_code, -1);
  EXPECT_EQ(r->Describe(), absl::StrCat("killed by signal ", SIGUSR1));
}

TEST(SubprocessTest, EnvironmentAddedOrReplaced) {
  ::setenv("MIMIC_SUBPROCESS_TEST_A", "from-parent", 1);
  ::setenv("MIMIC_SUBPROCESS_TEST_B", "parent-b", 1);
  SubprocessOptions o = Sh("echo \"$MIMIC_SUBPROCESS_TEST_A/$MIMIC_SUBPROCESS_TEST_B\"");
  o.env = {"MIMIC_SUBPROCESS_TEST_B=child-b"};
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "from-parent/child-b\n");
  o.replace_env = true;
  r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "/child-b\n");
}

// The TZ the agent pins for itself (common/base/local_time.h) is not a child's: a child sees
// TZ unset, as the process was started, unless the caller gives one.
TEST(SubprocessTest, APinnedTimeZoneIsNotPassedOn) {
  ::unsetenv("TZ");
  PinLocalTimeZone();
  ASSERT_NE(::getenv("TZ"), nullptr);
  EXPECT_STREQ(::getenv("TZ"), ":/etc/localtime");
  EXPECT_EQ(PinnedTimeZoneEntry(), "TZ=:/etc/localtime");
  SubprocessOptions o = Sh("echo \"${TZ-unset}\"");
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "unset\n");
  o.env = {"TZ=UTC"};
  r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "UTC\n");
  // A TZ the process was started with is left alone, and passed on.
  ::setenv("TZ", "Europe/Paris", 1);
  PinLocalTimeZone();
  EXPECT_STREQ(::getenv("TZ"), "Europe/Paris");
  r = RunSubprocess(Sh("echo \"${TZ-unset}\""));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "Europe/Paris\n");
  ::unsetenv("TZ");
}

TEST(SubprocessTest, WorkingDirectoryAndStdin) {
  SubprocessOptions o = Sh("pwd; cat");
  o.cwd = "/tmp";
  o.stdin_bytes = "hello\nworld";
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "/tmp\nhello\nworld");
  o = Sh("cat");  // default: /dev/null
  r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_text, "");
  EXPECT_TRUE(r->ok());
}

TEST(SubprocessTest, StdoutToFileAndMergedStderr) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/subprocess_out.txt");
  SubprocessOptions o = Sh("echo one; echo two >&2");
  o.stdout_path = path;
  o.merge_stderr = true;
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadFile(path).value_or(""), "one\ntwo\n");
  o.stdout_append = true;
  ASSERT_TRUE(RunSubprocess(o).ok());
  EXPECT_EQ(ReadFile(path).value_or(""), "one\ntwo\none\ntwo\n");
}

TEST(SubprocessTest, LinesArriveOnCallback) {
  SubprocessOptions o = Sh("printf 'a\\r\\nb\\n'; printf 'c' >&2");
  std::vector<std::string> lines;
  o.on_line = [&](OutStream s, const std::string& l) {
    lines.push_back(absl::StrCat(s == OutStream::kStdout ? "out:" : "err:", l));
  };
  ASSERT_TRUE(RunSubprocess(o).ok());
  EXPECT_THAT(lines, ::testing::UnorderedElementsAre("out:a", "out:b", "err:c"));
}

TEST(SubprocessTest, BigOutputIsCapped) {
  SubprocessOptions o = Sh("head -c 100000 /dev/zero | tr '\\0' x; head -c 5000 /dev/zero >&2");
  o.stdout_limit = {1000, false};
  o.stderr_limit = {100, true};
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok());
  EXPECT_TRUE(r->stdout_truncated);
  EXPECT_EQ(r->stdout_text, absl::StrCat(std::string(1000, 'x'), "\n[... 99000 bytes truncated]"));
  EXPECT_TRUE(r->stderr_truncated);
  EXPECT_EQ(r->stderr_text, absl::StrCat("[... 4900 bytes truncated]\n", std::string(100, '\0')));
}

TEST(SubprocessTest, DescriptorsAreNotInherited) {
  const int fd = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(fd, 0);
  absl::StatusOr<SubprocessResult> r =
      RunSubprocess(Sh(absl::StrCat("if [ -e /proc/self/fd/", fd, " ]; then echo leaked; fi; "
                                    "ls /proc/self/fd | sort -n | tr '\\n' ' '")));
  ::close(fd);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->stdout_text, ::testing::Not(HasSubstr("leaked")));
  // 0, 1, 2 and the descriptor ls itself opens for /proc/self/fd.
  EXPECT_THAT(r->stdout_text, StartsWith("0 1 2 3 "));
  EXPECT_THAT(r->stdout_text, ::testing::Not(HasSubstr(" 4 ")));
}

// The shell starts a grandchild in its process group, prints its pid, then waits: the timeout
// must end both.
TEST(SubprocessTest, TimeoutKillsTheWholeGroup) {
  SubprocessOptions o = Sh("sleep 1000 & echo $!; wait");
  o.timeout = absl::Seconds(2);
  o.kill_grace = absl::Seconds(30);
  o.drain_after_exit = absl::Seconds(30);
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->signal, SIGTERM);
  int grandchild = 0;
  ASSERT_TRUE(absl::SimpleAtoi(r->stdout_text.substr(0, r->stdout_text.find('\n')), &grandchild))
      << r->stdout_text;
  EXPECT_TRUE(WaitProcessEnded(grandchild, absl::Seconds(60)));
  EXPECT_EQ(r->Describe(), "timed out");
}

// A child that ignores SIGTERM is killed after the grace period.
TEST(SubprocessTest, KillAfterGrace) {
  SubprocessOptions o = Sh("trap '' TERM; echo ready; while :; do sleep 1; done");
  std::atomic<bool> cancel{false};
  o.cancel = &cancel;
  o.kill_grace = absl::Milliseconds(100);
  o.on_line = [&](OutStream, const std::string& l) {
    if (l == "ready") cancel = true;
  };
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->cancelled);
  EXPECT_EQ(r->signal, SIGKILL);
}

// Cancellation, raised when the grandchild's pid arrives, ends the child and the grandchild.
TEST(SubprocessTest, CancellationEndsTheGroup) {
  SubprocessOptions o = Sh("sleep 1000 & echo $!; wait");
  std::atomic<bool> cancel{false};
  int grandchild = 0;
  o.cancel = &cancel;
  o.on_line = [&](OutStream, const std::string& l) {
    if (absl::SimpleAtoi(l, &grandchild)) cancel = true;
  };
  absl::StatusOr<SubprocessResult> r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->Describe(), "cancelled");
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(WaitProcessEnded(grandchild, absl::Seconds(60)));
}

}  // namespace
}  // namespace mimic::common
