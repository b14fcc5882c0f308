// Helpers for cross-module tests: temp dirs, certificates, MI homes made by mimic's generator,
// real mimic-agent processes on 127.0.0.1:0, the real `mimic` binary, tree hashes.
#ifndef MIMIC_TESTS_TEST_ENV_H_
#define MIMIC_TESTS_TEST_ENV_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace mimic::testing {

std::string SourceDir();    // the repository
std::string BinaryDir();    // the build tree
std::string AgentBinary();
// The same agent with the test hooks of tests/testing_agent_main.cc.
std::string TestingAgentBinary();
std::string MimicBinary();

// A fresh directory under the test temp dir.
std::string MakeTempDir(const std::string& prefix);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
};
// Runs `command` with /bin/sh; fails the test (ADD_FAILURE) only when it cannot be started.
CommandResult RunCommand(const std::string& command);
std::string ShellQuote(const std::string& s);

// deploy/make-certs.sh OUTDIR HOSTS... (with the rogue CA and client for refusal tests).
void MakeCerts(const std::string& out_dir, const std::vector<std::string>& hosts);
// An MI home made in-process by mimic's generator (tests/mi_home), as
// `make-mi-home VERSION DEST --profile PROFILE [--hostname NAME]` makes it.
void MakeMiHome(const std::string& version, const std::string& dest, const std::string& profile,
                const std::string& hostname = "");

// path (relative to root) -> "sha256 mode" for every regular file and symlink; directories
// as "dir mode". Two equal maps mean byte-for-byte equal trees.
std::map<std::string, std::string> TreeHash(const std::string& root);

// A mimic-agent child process.
class AgentProcess {
 public:
  struct Options {
    std::string name;        // its certificate name (certs/<name>.pem)
    std::string certs_dir;
    std::string state_dir;
    std::vector<std::string> allowed_roots;
    bool plaintext = false;
  };
  explicit AgentProcess(Options o) : o_(std::move(o)) {}
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;  // owns a child process
  AgentProcess& operator=(const AgentProcess&) = delete;

  // Starts the agent and waits (bounded) until it has written its port. Returns false and
  // records a test failure when it does not come up.
  bool Start();
  void Kill(int sig);  // sends sig and reaps the process
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const Options& options() const { return o_; }
  std::string log_path() const { return o_.state_dir + ".log"; }

 private:
  Options o_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// The `mimic` binary run in `dir` with `args` (a shell-quoted string), to its end.
CommandResult RunMimic(const std::string& dir, const std::string& args);
// `mimic ARGS...` started in the background in `dir`, stdout and stderr to `out_path`;
// returns its pid (the caller waits for or kills it).
pid_t StartMimic(const std::string& dir, const std::vector<std::string>& args,
                 const std::string& out_path);
// The rollout id ("r-...") a `mimic run` printed first; "" when none.
std::string RolloutIdFrom(const std::string& output);
// Polls (bounded: 20 s) until the file at `path` contains `text`.
bool WaitForText(const std::string& path, const std::string& text);

// Writes a text file (parents created).
void WriteText(const std::string& path, const std::string& text);
std::string ReadText(const std::string& path);

}  // namespace mimic::testing

#endif  // MIMIC_TESTS_TEST_ENV_H_
