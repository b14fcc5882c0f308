// Writes into a target MI home, end to end through `mimic-agent local`: they keep the MI user's
// owners, leave no temporary file behind a crash, never write through a symlink in the target,
// and one home (however named) is worked on by one run at a time. The tests run as root (the
// agent's usual user) and skip, saying so, when they are not.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace mimic::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kCarbonApps[] = "/repository/deployment/server/carbonapps";
constexpr char kBig[] = "Big04.car";

struct Homes {
  std::string dir, source, target, state;
};

Homes Build(const std::string& from, const std::string& to) {
  Homes h;
  h.dir = MakeTempDir("writes");
  h.source = h.dir + "/wso2mi-" + from;
  h.target = h.dir + "/wso2mi-" + to;
  h.state = h.dir + "/state";
  MakeMiHome(from, h.source, "source", "p1");
  MakeMiHome(to, h.target, "target", "p1");
  return h;
}

std::string LocalArgs(const Homes& h, const std::string& target) {
  return " local --source " + ShellQuote(h.source) + " --target " + ShellQuote(target) +
         " --state-dir " + ShellQuote(h.state);
}

CommandResult Rollback(const Homes& h, const std::string& run_id, const std::string& as = "") {
  return RunCommand(as + ShellQuote(AgentBinary()) + " local --rollback " + run_id +
                    " --state-dir " + ShellQuote(h.state));
}

// rel path -> "uid:gid mode" for everything under `root`, symlinks not followed.
std::map<std::string, std::string> Owners(const std::string& root) {
  std::map<std::string, std::string> out;
  ForEachEntry(root, [&](const std::string& r, const std::string&, const struct stat& st) {
    char mode[16];
    std::snprintf(mode, sizeof(mode), "%o", st.st_mode & 07777);
    out[r] = std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) + " " + mode;
  });
  return out;
}

// Files under `root` whose name holds ".mimic-tmp-".
std::vector<std::string> TempFiles(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& [rel, what] : Owners(root)) {
    if (rel.find(".mimic-tmp-") != std::string::npos) out.push_back(rel);
  }
  return out;
}

// The one run directory under the state dir's runs/ other than `except`.
std::string NewRunId(const Homes& h, const std::vector<std::string>& except = {}) {
  std::string found;
  DIR* d = opendir((h.state + "/runs").c_str());
  if (d == nullptr) return "";
  while (struct dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n.rfind("local-", 0) != 0) continue;
    bool old = false;
    for (const std::string& x : except) old = old || x == n;
    if (!old) found = n;
  }
  closedir(d);
  return found;
}

// Starts `argv` with stdout and stderr to `out_path`; returns the pid.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path) {
  pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// An 8 MiB CApp (a stored zip, so the steps that read CApps can) in the source's carbonapps.
void AddBigCApp(const Homes& h) {
  const std::string dir = h.source + kCarbonApps;
  CommandResult r = RunCommand("cd " + ShellQuote(dir) +
                               " && head -c 8388608 /dev/zero > big.bin && zip -q -0 " + kBig +
                               " big.bin && rm big.bin");
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

// A `mimic-agent local` run held in the middle of copying Big04.car into `target` (the testing
// agent's --hold-copy), then killed with SIGKILL: a crash mid-write at a known point. Returns
// the interrupted run's id.
std::string CrashMidCopy(const Homes& h, const std::string& target) {
  const std::string gate = h.dir + "/gate";
  mkdir(gate.c_str(), 0755);
  pid_t pid = Spawn({TestingAgentBinary(), "--gate-dir", gate, "--hold-copy", kBig, "local",
                     "--source", h.source, "--target", target, "--state-dir", h.state},
                    h.dir + "/held.log");
  const bool held =
      WaitUntil([&] { return access((gate + "/copying-" + kBig).c_str(), F_OK) == 0; },
                AgentProcess::kGateWaitSeconds, {.dirs = {gate}, .pids = {pid}});
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(held) << ReadText(h.dir + "/held.log");
  EXPECT_TRUE(WIFSIGNALED(status));
  return NewRunId(h);
}

bool IsRoot() { return geteuid() == 0; }

// kill -9 while an 8 MiB CApp is copied: the crash leaves `.Big04.car.mimic-tmp-...` (and the
// temporaries of the CApps before it in its change set); the rollback (after the agent's
// recovery) removes them and the tree is as before, byte for byte, with owners and modes, in a
// folder that existed and in one the run made.
void KillMidCopyThenRollback(bool folder_exists) {
  Homes h = Build("4.0.0", "4.2.0");
  ASSERT_NO_FATAL_FAILURE(AddBigCApp(h));
  if (!folder_exists) {
    ASSERT_EQ(RunCommand("rm -rf " + ShellQuote(h.target + kCarbonApps)).exit_code, 0);
  }
  const auto before = TreeHash(h.target);
  const auto owners_before = Owners(h.target);
  const std::string run = CrashMidCopy(h, h.target);
  ASSERT_FALSE(run.empty());
  // The big CApp's partial copy, and the complete, unsynced temporaries of the CApps its change
  // set wrote before it (a change set's writes are renamed together, after one sync).
  ASSERT_THAT(TempFiles(h.target), ::testing::Contains(HasSubstr(std::string(".") + kBig +
                                                                 ".mimic-tmp-")))
      << "the crash left no partial file";

  CommandResult rb = Rollback(h, run);
  EXPECT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_THAT(TempFiles(h.target), IsEmpty());
  EXPECT_EQ(TreeHash(h.target), before);
  EXPECT_EQ(Owners(h.target), owners_before);
}

TEST(WritesTest, KillMidCopyThenRollbackIsExact) { KillMidCopyThenRollback(true); }

TEST(WritesTest, KillMidCopyIntoAFolderTheRunMadeThenRollbackIsExact) {
  KillMidCopyThenRollback(false);
}

// After the crash, the next run on the home finishes and leaves no temporary file.
TEST(WritesTest, KillMidCopyThenRunAgainLeavesNoTempFile) {
  Homes h = Build("4.0.0", "4.2.0");
  ASSERT_NO_FATAL_FAILURE(AddBigCApp(h));
  const std::string run = CrashMidCopy(h, h.target);
  ASSERT_FALSE(run.empty());
  ASSERT_THAT(TempFiles(h.target),
              ::testing::Contains(HasSubstr(std::string(".") + kBig + ".mimic-tmp-")));
  CommandResult again = RunCommand(ShellQuote(AgentBinary()) + LocalArgs(h, h.target));
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(TempFiles(h.target), IsEmpty());
  EXPECT_EQ(ReadText(h.target + kCarbonApps + "/" + kBig),
            ReadText(h.source + kCarbonApps + "/" + kBig));
}

// A symlink alias of a home is the same home: while a run holds it, a run through the alias is
// refused (the lock is per device and inode), and an alias of the source is not a target.
TEST(WritesTest, AnAliasOfTheHomeTakesTheSameLock) {
  Homes h = Build("4.0.0", "4.2.0");
  ASSERT_NO_FATAL_FAILURE(AddBigCApp(h));
  const std::string alias = h.dir + "/alias-of-target";
  ASSERT_EQ(symlink(h.target.c_str(), alias.c_str()), 0);
  const std::string gate = h.dir + "/gate";
  mkdir(gate.c_str(), 0755);
  pid_t pid = Spawn({TestingAgentBinary(), "--gate-dir", gate, "--hold-copy", kBig, "local",
                     "--source", h.source, "--target", h.target, "--state-dir", h.state},
                    h.dir + "/held.log");
  ASSERT_TRUE(WaitUntil(
      [&] { return access((gate + "/copying-" + kBig).c_str(), F_OK) == 0; },
      AgentProcess::kGateWaitSeconds, {.dirs = {gate}, .pids = {pid}}))
      << ReadText(h.dir + "/held.log");
  const std::vector<std::string> temps = TempFiles(h.target);
  // h.dir is a root too, so the alias is inside the roots and the lock is what stops it.
  CommandResult second = RunCommand(ShellQuote(AgentBinary()) + LocalArgs(h, alias) +
                                    " --root " + ShellQuote(h.dir));
  EXPECT_THAT(temps, ::testing::Contains(HasSubstr(std::string(".") + kBig + ".mimic-tmp-")));
  EXPECT_EQ(TempFiles(h.target), temps) << "the running copy was disturbed";
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_THAT(second.output, HasSubstr("another run")) << second.output;

  const std::string source_alias = h.dir + "/alias-of-source";
  ASSERT_EQ(symlink(h.source.c_str(), source_alias.c_str()), 0);
  CommandResult same = RunCommand(ShellQuote(AgentBinary()) + " local --source " +
                                  ShellQuote(h.source) + " --target " + ShellQuote(source_alias) +
                                  " --state-dir " + ShellQuote(h.state) + " --root " +
                                  ShellQuote(h.dir));
  EXPECT_EQ(same.exit_code, 1) << same.output;
  EXPECT_THAT(same.output, HasSubstr("same directory")) << same.output;
}

// With the target's repository/deployment a symlink to the source's, migrate_datamapper would
// re-pack the source's CApp through it. No write follows the symlink: the run fails naming it
// and the source is untouched.
TEST(WritesTest, TheSourceIsNeverWrittenThroughASymlinkInTheTarget) {
  Homes h = Build("4.0.0", "4.2.0");
  const std::string link = h.target + "/repository/deployment";
  ASSERT_EQ(RunCommand("rm -rf " + ShellQuote(link)).exit_code, 0);
  ASSERT_EQ(symlink((h.source + "/repository/deployment").c_str(), link.c_str()), 0);
  const auto source_before = TreeHash(h.source);
  CommandResult r = RunCommand(ShellQuote(AgentBinary()) + LocalArgs(h, h.target));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("symlink")) << r.output;
  EXPECT_EQ(TreeHash(h.source), source_before) << "the source home was written";
}

// The MI home belongs to a non-root user (keystores 0600, deployment.toml 0640); the agent runs
// as root. Every file the run writes and every folder it makes belongs to that user; rollback
// gives every file its owner, group and mode back.
TEST(WritesTest, RootAgentKeepsTheMiUsersOwners) {
  if (!IsRoot()) GTEST_SKIP() << "runs the agent as root with a home owned by nobody";
  Homes h = Build("4.0.0", "4.2.0");
  for (const std::string& home : {h.source, h.target}) {
    ASSERT_EQ(RunCommand("chown -R 65534:65534 " + ShellQuote(home) + " && chmod 0640 " +
                         ShellQuote(home + "/conf/deployment.toml") + " && chmod 0600 " +
                         ShellQuote(home) + "/repository/resources/security/*.jks")
                  .exit_code,
              0);
  }
  const auto before = TreeHash(h.target);
  const auto owners_before = Owners(h.target);
  CommandResult r = RunCommand(ShellQuote(AgentBinary()) + LocalArgs(h, h.target) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_NE(TreeHash(h.target), before) << "the run changed nothing";
  for (const auto& [rel, owner] : Owners(h.target)) {
    EXPECT_EQ(owner.substr(0, owner.find(' ')), "65534:65534") << rel;
  }
  EXPECT_EQ(Owners(h.target)["conf/deployment.toml"], "65534:65534 640");
  const std::string run = NewRunId(h);
  CommandResult rb = Rollback(h, run);
  ASSERT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_EQ(TreeHash(h.target), before);
  EXPECT_EQ(Owners(h.target), owners_before);
}

// The agent runs as the MI user itself (not root), whose homes' group is a supplementary group
// of it: every written file keeps that group (a plain rename would give the user's primary
// group), and rollback restores the tree with owners and modes.
TEST(WritesTest, NonRootAgentKeepsGroupsAndRollsBack) {
  if (!IsRoot()) GTEST_SKIP() << "needs root to set up a home owned by nobody:daemon";
  Homes h = Build("4.0.0", "4.2.0");
  ASSERT_EQ(RunCommand("chmod 0755 " + ShellQuote(h.dir) + " && mkdir -p " + ShellQuote(h.state) +
                       " && chown -R 65534:1 " + ShellQuote(h.source) + " " +
                       ShellQuote(h.target) + " " + ShellQuote(h.state))
                .exit_code,
            0);
  const std::string as_mi_user = "setpriv --reuid=65534 --regid=65534 --groups=1 -- ";
  CommandResult can = RunCommand(as_mi_user + "test -w " + ShellQuote(h.target));
  if (can.exit_code != 0) GTEST_SKIP() << "nobody cannot reach " << h.target << ": " << can.output;
  const auto before = TreeHash(h.target);
  const auto owners_before = Owners(h.target);
  CommandResult r = RunCommand(as_mi_user + ShellQuote(AgentBinary()) + LocalArgs(h, h.target));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_NE(TreeHash(h.target), before) << "the run changed nothing";
  for (const auto& [rel, owner] : Owners(h.target)) {
    EXPECT_EQ(owner.substr(0, owner.find(' ')), "65534:1") << rel;
  }
  CommandResult rb = Rollback(h, NewRunId(h), as_mi_user);
  ASSERT_EQ(rb.exit_code, 0) << rb.output;
  EXPECT_EQ(TreeHash(h.target), before);
  EXPECT_EQ(Owners(h.target), owners_before);
}

}  // namespace
}  // namespace mimic::testing
