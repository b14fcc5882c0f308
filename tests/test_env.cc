#include "tests/test_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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

std::map<std::string, std::string> TreeHash(const std::string& root) {
  std::map<std::string, std::string> out;
  std::function<void(const std::string&)> walk = [&](const std::string& rel) {
    std::string dir = rel.empty() ? root : root + "/" + rel;
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return;
    std::vector<std::string> names;
    while (struct dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    for (const std::string& n : names) {
      std::string r = rel.empty() ? n : rel + "/" + n;
      std::string full = root + "/" + r;
      struct stat st;
      if (lstat(full.c_str(), &st) != 0) continue;
      char mode[16];
      std::snprintf(mode, sizeof(mode), "%o", st.st_mode & 07777);
      if (S_ISDIR(st.st_mode)) {
        out[r] = absl::StrCat("dir ", mode);
        walk(r);
      } else if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        ssize_t len = readlink(full.c_str(), buf, sizeof(buf));
        out[r] = absl::StrCat("link ", std::string(buf, len > 0 ? len : 0));
      } else {
        auto sha = common::Sha256File(full);
        out[r] = absl::StrCat(sha.ok() ? *sha : "?", " ", mode);
      }
    }
  };
  walk("");
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

bool WaitForText(const std::string& path, const std::string& text) {
  for (int i = 0; i < 400; ++i) {
    if (absl::StrContains(ReadText(path), text)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) Kill(SIGTERM);
}

bool AgentProcess::Start() {
  std::string cfg_path = o_.state_dir + ".toml";
  std::string port_file = o_.state_dir + ".port";
  unlink(port_file.c_str());
  std::vector<std::string> roots;
  for (const auto& r : o_.allowed_roots) roots.push_back("\"" + r + "\"");
  std::string cfg = absl::StrCat("listen = \"127.0.0.1:0\"\nstate_dir = \"", o_.state_dir,
                                 "\"\nallowed_roots = [", absl::StrJoin(roots, ", "),
                                 "]\nexecutor_threads = 2\nport_file = \"", port_file, "\"\n");
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
  // The production binary, unless the test asked for a hook the testing agent provides.
  const std::string binary =
      std::getenv("MIMIC_TEST_STEP_DELAY_MS") != nullptr ? TestingAgentBinary() : AgentBinary();
  pid_ = fork();
  if (pid_ == 0) {
    FILE* f = freopen(log.c_str(), "a", stderr);
    (void)f;
    execl(binary.c_str(), "mimic-agent", "--config", cfg_path.c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 300; ++i) {  // bounded: 30 s
    std::string p = ReadText(port_file);
    if (!p.empty()) {
      port_ = std::atoi(p.c_str());
      if (port_ > 0) return true;
    }
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "agent " << o_.name << " exited: " << ReadText(log);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "agent " << o_.name << " did not start: " << ReadText(log);
  return false;
}

void AgentProcess::Kill(int sig) {
  if (pid_ <= 0) return;
  kill(pid_, sig);
  int st;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

}  // namespace mimic::testing
