// Helpers for cross-module tests: temp dirs, certificates, MI homes made by mimic's generator,
// real mimic-agent processes on 127.0.0.1:0, the real `mimic` binary, tree hashes.
#ifndef MIMIC_TESTS_TEST_ENV_H_
#define MIMIC_TESTS_TEST_ENV_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
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

// Calls visit(rel, full, st) for every entry under `root` (lstat: symlinks are not followed;
// entries that vanish are skipped), each directory before what it holds. The one tree walker of
// the tests.
void ForEachEntry(const std::string& root,
                  const std::function<void(const std::string& rel, const std::string& full,
                                           const struct stat& st)>& visit);

// path (relative to root) -> "sha256 mode" for every regular file and symlink; directories
// as "dir mode". Two equal maps mean byte-for-byte equal trees.
std::map<std::string, std::string> TreeHash(const std::string& root);

// Like TreeHash, with owners: path -> "<sha256> <mode> <uid>:<gid>" for a regular file,
// "dir <mode> <uid>:<gid>", "link <target> <uid>:<gid>" (symlinks are not followed), "other"
// for anything else. Equal maps: equal content, modes, owners and symlink targets.
std::map<std::string, std::string> TreeState(const std::string& root);
// The paths (relative to root) under `root` whose name holds ".mimic-tmp-": what an atomic
// write leaves when it is cut between create and rename.
std::vector<std::string> TempFilesUnder(const std::string& root);

// A mimic-agent child process. With Options::gate the test holds its runs before named
// steps (tests/testing_agent_main.cc has the protocol):
//   agent.Hold(2);                         // before the run starts: hold every run at step 2
//   ... start a run ...
//   std::string run = agent.WaitReached(2);  // the run is now held before step 2, unfinished
//   ... do what the test names (cancel, kill the controller, kill the agent) ...
//   agent.Release(2);
// Every wait is on the agent's file, bounded (kGateWait); none is a delay.
class AgentProcess {
 public:
  struct Options {
    std::string name;        // its certificate name (certs/<name>.pem)
    std::string certs_dir;
    std::string state_dir;
    std::vector<std::string> allowed_roots;
    bool plaintext = false;
    // Runs the testing agent (bin/mimic-agent-testing) with a gate directory, so the test can
    // hold runs; false runs the production binary.
    bool gate = false;
    // Steps every run is held before, from the first run on (same as Hold() before Start()).
    std::vector<int> hold_steps;
    // Lets plans run `exec` steps (agent.toml allow_exec = true).
    bool allow_exec = false;
    // agent.toml allowed_client_subjects (with mutual TLS): the CNs of the controllers let in.
    std::vector<std::string> allowed_client_subjects = {"mimic-controller"};
    // agent.toml allow_any_client_subject = true (then allowed_client_subjects is left out).
    bool allow_any_client_subject = false;
    int executor_threads = 2;  // the agent's step pool
    // The address it listens on (port 0: chosen by the agent, read from its port file).
    std::string listen_host = "127.0.0.1";
    // Run it inside this network namespace (`ip netns exec NETNS ...`); "" = the test's own.
    std::string netns;
    // More arguments of the testing agent (gate only), e.g. {"--hold-write", "7"}.
    std::vector<std::string> testing_args;
  };
  // How long WaitReached waits for a run to reach a gate before it fails the test.
  static constexpr int kGateWaitSeconds = 120;
  explicit AgentProcess(Options o) : o_(std::move(o)) {}
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;  // owns a child process
  AgentProcess& operator=(const AgentProcess&) = delete;

  // Starts the agent and waits (bounded) until it has written its port. Returns false and
  // records a test failure when it does not come up.
  bool Start();
  // Sends sig and reaps the process (bounded for SIGTERM: SIGKILL after 30 s, a test failure).
  // A gated agent has its runs released first, since its shutdown waits for running steps.
  void Kill(int sig);

  // Sends `sig` and returns at once: no release of held runs, no reaping (Kill does both).
  void Signal(int sig);

  // The gate (Options::gate only). Hold: runs (every run, or `run_id`) block before step `step`.
  void Hold(int step, const std::string& run_id = "");
  // Waits until a run is held before `step`; returns its id, or "" with a test failure after
  // kGateWaitSeconds.
  std::string WaitReached(int step);
  // Whether a run has reached the gate at `step` (no wait).
  bool Reached(int step) const;
  // Lets the runs held before `step` (every one, or `run_id`) go on.
  void Release(int step, const std::string& run_id = "");
  // Lets every run go on, now and at every later gate.
  void ReleaseAll();
  std::string gate_dir() const { return o_.state_dir + ".gate"; }
  int port() const { return port_; }
  std::string address() const { return o_.listen_host + ":" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
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
// What can make a WaitUntil condition true: a file created, written, renamed or removed in one
// of `dirs` (existing directories, watched with inotify, not their subdirectories), one of
// `pids` exiting (pidfd), one of `eventfds` signalled (EventStream::wake_fd()).
struct WakeOn {
  std::vector<std::string> dirs;
  std::vector<pid_t> pids;
  std::vector<int> eventfds;
};
// Waits until `done()` holds, for at most `seconds`; false when it never did. `done()` is
// checked first and again after each wake-up `wake` names, never on a timer: a condition that
// `wake` does not cover is a bug of the caller (the wait then ends only at the bound).
bool WaitUntil(const std::function<bool()>& done, int seconds, const WakeOn& wake);
// Waits (bounded: 60 s) until the file at `path` contains `text`.
bool WaitForText(const std::string& path, const std::string& text);
// Waits (bounded: 120 s) for the child `pid` to exit; its exit code, or -1 when it was killed
// by a signal or did not end (then it is killed, and the caller's assertion fails).
int WaitExit(pid_t pid);

// Writes a text file (parents created).
void WriteText(const std::string& path, const std::string& text);
std::string ReadText(const std::string& path);

// plan.toml text: a [[skip]] for each of `steps` with `reason` (common/config/required_steps.h),
// for test plans that run only some of the steps a migration requires.
std::string SkipSteps(const std::vector<std::string>& steps, const std::string& reason);
// A [[skip]] for every catalogue step not in `runs` (for test plans of one or two steps).
std::string SkipAllBut(const std::vector<std::string>& runs, const std::string& reason);
// The steps a plan of only preflight, copy_carbonapps and copy_keystores must skip.
inline std::string CheapPlanSkips() {
  return SkipSteps({"snapshot_target", "migrate_userstore_config", "copy_registry",
                    "copy_deployment", "copy_custom_components", "merge_config",
                    "migrate_datamapper"},
                   "a cheap test plan");
}

}  // namespace mimic::testing

#endif  // MIMIC_TESTS_TEST_ENV_H_
