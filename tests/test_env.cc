#include "tests/test_env.h"

#include <algorithm>

#include "common/config/catalogue.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/fs.h"
#include "gtest/gtest.h"
#include "tests/mi_home/mi_home.h"

namespace mimic::testing {

std::string SourceDir() { return MIMIC_SOURCE_DIR; }
std::string BinaryDir() { return MIMIC_BINARY_DIR; }
std::string AgentBinary() { return BinaryDir() + "/bin/mimic-agent"; }
std::string TestingAgentBinary() { return BinaryDir() + "/bin/mimic-agent-testing"; }
std::string MimicBinary() { return BinaryDir() + "/bin/mimic"; }

std::string MakeTempDir(const std::string& prefix) {
  std::string t = ::testing::TempDir() + "mimic_" + prefix + "_XXXXXX";
  char* d = mkdtemp(t.data());
  EXPECT_NE(d, nullptr);
  return d ? d : "";
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return r;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  int st = pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

void MakeCerts(const std::string& out_dir, const std::vector<std::string>& hosts) {
  std::string cmd = absl::StrCat("ROGUE=1 bash ", ShellQuote(SourceDir() + "/deploy/make-certs.sh"),
                                 " ", ShellQuote(out_dir));
  for (const auto& h : hosts) absl::StrAppend(&cmd, " ", ShellQuote(h));
  CommandResult r = RunCommand(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

void MakeMiHome(const std::string& version, const std::string& dest, const std::string& profile,
                const std::string& hostname) {
  ASSERT_TRUE(profile == "source" || profile == "target") << profile;
  mi_home::Options o;
  o.version = version;
  o.dest = dest;
  o.profile = profile == "source" ? mi_home::Profile::kSource : mi_home::Profile::kTarget;
  if (!hostname.empty()) {
    o.hostname = hostname;
  } else if (const char* h = ::getenv("HOSTNAME"); h != nullptr && *h != '\0') {
    o.hostname = h;  // as the CLI does
  }
  absl::Status st = mi_home::MakeMiHome(o);
  ASSERT_TRUE(st.ok()) << st;
}

namespace {

// path -> what TreeHash (owners false) or TreeState (owners true) records for it.
std::map<std::string, std::string> WalkTree(const std::string& root, bool owners) {
  std::map<std::string, std::string> out;
  ForEachEntry(root, [&](const std::string& r, const std::string& full, const struct stat& st) {
    char mode[16];
    std::snprintf(mode, sizeof(mode), "%o", st.st_mode & 07777);
    const std::string owner = owners ? absl::StrCat(" ", st.st_uid, ":", st.st_gid) : "";
    if (S_ISDIR(st.st_mode)) {
      out[r] = absl::StrCat("dir ", mode, owner);
    } else if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t len = readlink(full.c_str(), buf, sizeof(buf));
      out[r] = absl::StrCat("link ", std::string(buf, len > 0 ? len : 0), owner);
    } else if (S_ISREG(st.st_mode) || !owners) {
      auto sha = common::Sha256File(full);
      out[r] = absl::StrCat(sha.ok() ? *sha : "?", " ", mode, owner);
    } else {
      out[r] = absl::StrCat("other ", mode, owner);
    }
  });
  return out;
}

}  // namespace

void ForEachEntry(const std::string& root,
                  const std::function<void(const std::string& rel, const std::string& full,
                                           const struct stat& st)>& visit) {
  std::function<void(const std::string&)> walk = [&](const std::string& rel) {
    const std::string dir = rel.empty() ? root : root + "/" + rel;
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return;
    std::vector<std::string> names;
    while (struct dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    for (const std::string& n : names) {
      const std::string r = rel.empty() ? n : rel + "/" + n;
      const std::string full = root + "/" + r;
      struct stat st;
      if (lstat(full.c_str(), &st) != 0) continue;
      visit(r, full, st);
      if (S_ISDIR(st.st_mode)) walk(r);
    }
  };
  walk("");
}

std::map<std::string, std::string> TreeHash(const std::string& root) {
  return WalkTree(root, /*owners=*/false);
}

std::map<std::string, std::string> TreeState(const std::string& root) {
  return WalkTree(root, /*owners=*/true);
}

std::vector<std::string> TempFilesUnder(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& [rel, what] : TreeState(root)) {
    if (rel.find(".mimic-tmp-") != std::string::npos) out.push_back(rel);
  }
  return out;
}

void WriteText(const std::string& path, const std::string& text) {
  ASSERT_TRUE(common::WriteFileAtomic(path, text).ok()) << path;
}

std::string ReadText(const std::string& path) {
  auto s = common::ReadFile(path);
  return s.ok() ? *s : "";
}

CommandResult RunMimic(const std::string& dir, const std::string& args) {
  return RunCommand("cd " + ShellQuote(dir) + " && " + ShellQuote(MimicBinary()) + " " + args);
}

pid_t StartMimic(const std::string& dir, const std::vector<std::string>& args,
                 const std::string& out_path) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    if (chdir(dir.c_str()) != 0) _exit(127);
    std::vector<char*> argv = {const_cast<char*>("mimic")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(MimicBinary().c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

std::string RolloutIdFrom(const std::string& output) {
  size_t p = output.find("rollout r-");
  if (p == std::string::npos) return "";
  size_t s = p + 8;
  size_t e = output.find_first_of(" \n", s);
  return output.substr(s, e - s);
}

bool WaitUntil(const std::function<bool()>& done, int seconds, const WakeOn& wake) {
  // The watches are set up before the first check, so no change after it is missed.
  const int notify = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (notify < 0) {
    ADD_FAILURE() << "inotify_init1: " << std::strerror(errno);
    return false;
  }
  std::vector<pollfd> fds = {{notify, POLLIN, 0}};
  bool ok = true;
  for (const std::string& d : wake.dirs) {
    constexpr uint32_t kChanges = IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO |
                                  IN_MOVED_FROM | IN_DELETE | IN_ATTRIB;
    if (::inotify_add_watch(notify, d.c_str(), kChanges) < 0) {
      ADD_FAILURE() << "cannot watch " << d << ": " << std::strerror(errno);
      ok = false;
    }
  }
  std::vector<int> pidfds;
  for (pid_t p : wake.pids) {
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, p, 0));
    if (fd >= 0) {
      pidfds.push_back(fd);
      fds.push_back({fd, POLLIN, 0});
    }  // else it is gone already (reaped): `done()` sees that without a wake-up
  }
  for (int fd : wake.eventfds) fds.push_back({fd, POLLIN, 0});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  bool held = false;
  while (ok && !(held = done())) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left, 1000000)));
    if (n == 0) break;  // the bound: nothing it watches changed, so `done()` is not asked again
    if (n < 0 && errno != EINTR) {
      ADD_FAILURE() << "poll: " << std::strerror(errno);
      break;
    }
    for (pollfd& p : fds) {
      if ((p.revents & POLLIN) == 0) continue;
      if (std::find(pidfds.begin(), pidfds.end(), p.fd) != pidfds.end()) {
        p.fd = -1;  // exited: stays readable, so it is polled no more
        continue;
      }
      alignas(inotify_event) char buf[4096];  // drained: inotify events, or an eventfd's count
      while (::read(p.fd, buf, p.fd == notify ? sizeof buf : sizeof(uint64_t)) > 0 &&
             p.fd == notify) {
      }
    }
  }
  for (int fd : pidfds) ::close(fd);
  ::close(notify);
  return held;
}

namespace {


void Touch(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  if (fd < 0) {
    ADD_FAILURE() << "cannot create " << path;
    return;
  }
  close(fd);
}

}  // namespace

bool WaitForText(const std::string& path, const std::string& text) {
  return WaitUntil([&] { return absl::StrContains(ReadText(path), text); }, 60,
                   {.dirs = {common::Dirname(path)}});
}

int WaitExit(pid_t pid) {
  int st = 0;
  bool exited = WaitUntil([&] { return waitpid(pid, &st, WNOHANG) == pid; }, 120, {.pids = {pid}});
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) Kill(SIGTERM);
}

void AgentProcess::Hold(int step, const std::string& run_id) {
  EXPECT_TRUE(o_.gate) << "Hold needs Options::gate";
  Touch(gate_dir() + "/hold-" + (run_id.empty() ? "" : run_id + "-") + std::to_string(step));
}

void AgentProcess::Release(int step, const std::string& run_id) {
  EXPECT_TRUE(o_.gate) << "Release needs Options::gate";
  Touch(gate_dir() + "/release-" + (run_id.empty() ? "" : run_id + "-") + std::to_string(step));
}

void AgentProcess::ReleaseAll() {
  if (o_.gate) Touch(gate_dir() + "/release-all");
}

namespace {
// The run ids of the "reached-<run_id>-<step>" files in `dir`.
std::vector<std::string> ReachedRuns(const std::string& dir, int step) {
  std::vector<std::string> out;
  const std::string suffix = "-" + std::to_string(step);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (absl::StartsWith(n, "reached-") && absl::EndsWith(n, suffix)) {
      out.push_back(n.substr(8, n.size() - 8 - suffix.size()));
    }
  }
  closedir(d);
  return out;
}
}  // namespace

bool AgentProcess::Reached(int step) const { return !ReachedRuns(gate_dir(), step).empty(); }

std::string AgentProcess::WaitReached(int step) {
  EXPECT_TRUE(o_.gate) << "WaitReached needs Options::gate";
  std::vector<std::string> runs;
  bool ok = WaitUntil(
      [&] {
        runs = ReachedRuns(gate_dir(), step);
        return !runs.empty();
      },
      kGateWaitSeconds, {.dirs = {gate_dir()}, .pids = {pid_}});
  if (!ok) {
    ADD_FAILURE() << "agent " << o_.name << ": no run reached step " << step << " within "
                  << kGateWaitSeconds << " s; log:\n" << ReadText(log_path());
    return "";
  }
  return runs.front();
}

bool AgentProcess::Start() {
  std::string cfg_path = o_.state_dir + ".toml";
  std::string port_file = o_.state_dir + ".port";
  unlink(port_file.c_str());
  std::vector<std::string> roots;
  for (const auto& r : o_.allowed_roots) roots.push_back("\"" + r + "\"");
  std::string cfg = absl::StrCat("listen = \"", o_.listen_host, ":0\"\nstate_dir = \"", o_.state_dir,
                                 "\"\nallowed_roots = [", absl::StrJoin(roots, ", "),
                                 "]\nexecutor_threads = ", o_.executor_threads,
                                 "\nport_file = \"", port_file, "\"\n");
  if (o_.allow_exec) absl::StrAppend(&cfg, "allow_exec = true\n");
  if (!o_.plaintext) {
    if (o_.allow_any_client_subject) {
      absl::StrAppend(&cfg, "allow_any_client_subject = true\n");
    } else {
      std::vector<std::string> subjects;
      for (const auto& s : o_.allowed_client_subjects) subjects.push_back("\"" + s + "\"");
      absl::StrAppend(&cfg, "allowed_client_subjects = [", absl::StrJoin(subjects, ", "), "]\n");
    }
  }
  if (o_.plaintext) {
    absl::StrAppend(&cfg, "[tls]\nplaintext = true\n");
  } else {
    absl::StrAppend(&cfg, "[tls]\ncert = \"", o_.certs_dir, "/", o_.name, ".pem\"\nkey = \"",
                    o_.certs_dir, "/", o_.name, ".key\"\nclient_ca = \"", o_.certs_dir,
                    "/ca.pem\"\n");
  }
  WriteText(cfg_path, cfg);
  std::string log = log_path();
  if (absl::Status st = common::MakeDirs(common::Dirname(log)); !st.ok()) {
    ADD_FAILURE() << st;
    return false;
  }
  // The production binary, unless the test holds runs with the testing agent's gate. A gate
  // directory starts empty: a restarted agent does not inherit the previous one's gates.
  std::vector<std::string> argv = {"mimic-agent"};
  std::string binary = AgentBinary();
  if (o_.gate) {
    binary = TestingAgentBinary();
    CommandResult r = RunCommand("rm -rf " + ShellQuote(gate_dir()) + " && mkdir -p " +
                                 ShellQuote(gate_dir()));
    if (r.exit_code != 0) {
      ADD_FAILURE() << r.output;
      return false;
    }
    for (int step : o_.hold_steps) Hold(step);
    argv.insert(argv.end(), {"--gate-dir", gate_dir()});
    argv.insert(argv.end(), o_.testing_args.begin(), o_.testing_args.end());
  } else if (!o_.testing_args.empty()) {
    ADD_FAILURE() << "Options::testing_args needs Options::gate";
  }
  if (!o_.netns.empty()) {
    // `ip netns exec` enters the namespace and execs the agent: the pid stays the agent's.
    argv[0] = binary;
    argv.insert(argv.begin(), {"ip", "netns", "exec", o_.netns});
    binary = "/usr/sbin/ip";
  }
  argv.insert(argv.end(), {"--config", cfg_path});
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    FILE* f = freopen(log.c_str(), "a", stderr);
    (void)f;
    execv(binary.c_str(), cargv.data());
    _exit(127);
  }
  bool exited = false;
  bool up = WaitUntil(
      [&] {
        std::string p = ReadText(port_file);
        if (!p.empty() && (port_ = std::atoi(p.c_str())) > 0) return true;
        int st;
        exited = waitpid(pid_, &st, WNOHANG) == pid_;
        return exited;
      },
      60, {.dirs = {common::Dirname(port_file)}, .pids = {pid_}});
  if (up && !exited) return true;
  if (exited) {
    pid_ = -1;
    ADD_FAILURE() << "agent " << o_.name << " exited: " << ReadText(log);
  } else {
    ADD_FAILURE() << "agent " << o_.name << " did not start: " << ReadText(log);
  }
  return false;
}

void AgentProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

void AgentProcess::Kill(int sig) {
  if (pid_ <= 0) return;
  if (sig != SIGKILL) ReleaseAll();  // a held step would hold the agent's shutdown
  kill(pid_, sig);
  int st;
  if (sig == SIGKILL) {
    waitpid(pid_, &st, 0);
  } else if (!WaitUntil([&] { return waitpid(pid_, &st, WNOHANG) == pid_; }, 30,
                        {.pids = {pid_}})) {
    ADD_FAILURE() << "agent " << o_.name << " did not stop on signal " << sig
                  << " within 30 s; killed";
    kill(pid_, SIGKILL);
    waitpid(pid_, &st, 0);
  }
  pid_ = -1;
}

std::string SkipSteps(const std::vector<std::string>& steps, const std::string& reason) {
  std::string out;
  for (const std::string& s : steps) {
    out += "[[skip]]\nstep = \"" + s + "\"\nreason = \"" + reason + "\"\n";
  }
  return out;
}

std::string SkipAllBut(const std::vector<std::string>& runs, const std::string& reason) {
  std::vector<std::string> skip;
  for (const std::string& s : common::StepCatalogue()) {
    if (std::find(runs.begin(), runs.end(), s) == runs.end()) skip.push_back(s);
  }
  return SkipSteps(skip, reason);
}

}  // namespace mimic::testing
