// mimic-agent-testing: the real mimic-agent (same AgentMain) with a GATE injected before each
// step, for the e2e tests that need a run held at a known moment. Production code reads no test
// input; only this binary does, from its own flag:
//
//   mimic-agent-testing --gate-dir DIR <mimic-agent arguments>
//
// The gate is a directory of empty files (tests/test_env.h AgentProcess::Hold/WaitReached/
// Release write and read them):
//   hold-<N>               the test: hold every run before step N (0-based)
//   hold-<RUN_ID>-<N>      the test: hold run RUN_ID before step N
//   reached-<RUN_ID>-<N>   this agent: RUN_ID is held before step N (written before it blocks)
//   release-<N>            the test: every run held before step N goes on
//   release-<RUN_ID>-<N>   the test: RUN_ID goes on
//   release-all            the test: every run goes on, now and later (written before it stops
//                          the agent, whose shutdown waits for running steps)
// The hook runs before the run's cancel check, so a cancel sent while a run is held stops it
// before step N starts. Without --gate-dir the binary behaves exactly as mimic-agent.
//
//   mimic-agent-testing --gate-dir DIR --hold-copy NAME <mimic-agent arguments>
//
// also holds the process in the middle of an atomic copy into a file named NAME: once 1 MiB of
// it is written to its temporary file, it writes copying-NAME into DIR and blocks for good
// (the test then kills it: a crash mid-write, at a known point).
//
// For the fault campaigns (tests/fault/), after --gate-dir DIR, in any order:
//   --write-log FILE   appends "<step index>\t<bytes so far>\t<path>" to FILE for every chunk an
//                      atomic write or copy writes while a run is in a step (the campaign's map
//                      of the write points of an uninterrupted run)
//   --hold-write N     at the N-th such chunk (1-based) writes held-write into DIR (holding
//                      "<step index>\t<path>") and blocks for good: the test kills the process
//                      in the middle of that write (its temporary file exists, not renamed).
#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "agent/daemon/agent_main.h"
#include "common/base/fs.h"

namespace {

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

void Touch(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  if (fd >= 0) ::close(fd);
}

// Blocks the run's thread while the gate in `dir` holds `run_id` before step `index`.
void Gate(const std::string& dir, const std::string& run_id, int index) {
  const std::string n = std::to_string(index);
  const std::string one = run_id + "-" + n;
  if (Exists(dir + "/release-all")) return;
  if (!Exists(dir + "/hold-" + n) && !Exists(dir + "/hold-" + one)) return;
  // Watch the directory before saying "reached", so no release written after it is missed.
  const int watch = ::inotify_init1(IN_CLOEXEC);
  if (watch < 0 || ::inotify_add_watch(watch, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    std::perror("mimic-agent-testing: inotify on the gate directory");
    std::abort();
  }
  Touch(dir + "/reached-" + one);
  // Waiting on the test's file: each file created in the directory wakes the read.
  while (!Exists(dir + "/release-" + n) && !Exists(dir + "/release-" + one) &&
         !Exists(dir + "/release-all")) {
    alignas(inotify_event) char events[4096];
    if (::read(watch, events, sizeof events) < 0 && errno != EINTR) {
      std::perror("mimic-agent-testing: reading the gate directory's events");
      std::abort();
    }
  }
  ::close(watch);
}

// The step the (one) run is in: set by the gate hook before each step; -1 before any.
std::atomic<int> g_step{-1};

}  // namespace

int main(int argc, char** argv) {
  mimic::agent::BeforeStepHook hook;
  std::vector<char*> args(argv, argv + argc);
  if (argc >= 3 && std::strcmp(argv[1], "--gate-dir") == 0) {
    const std::string dir = argv[2];
    hook = [dir](const std::string& run_id, int index) {
      g_step = index;
      Gate(dir, run_id, index);
    };
    args.erase(args.begin() + 1, args.begin() + 3);
    std::string hold_copy, write_log;
    long hold_write = 0;
    while (args.size() >= 3) {
      if (std::strcmp(args[1], "--hold-copy") == 0) {
        hold_copy = args[2];
      } else if (std::strcmp(args[1], "--write-log") == 0) {
        write_log = args[2];
      } else if (std::strcmp(args[1], "--hold-write") == 0) {
        hold_write = std::strtol(args[2], nullptr, 10);
      } else {
        break;
      }
      args.erase(args.begin() + 1, args.begin() + 3);
    }
    if (!hold_copy.empty() || !write_log.empty() || hold_write > 0) {
      // A write point: a chunk written into a temporary (bytes so far), or a synced temporary
      // about to be renamed into place (bytes -1, logged as "commit").
      auto point = [dir, write_log, hold_write](const std::string& display, int64_t bytes) {
        const int step = g_step;
        if (step < 0) return;  // not in a run's step (the port file at start)
        static std::mutex mu;
        static long chunks = 0;
        std::lock_guard<std::mutex> l(mu);
        ++chunks;
        const std::string line = std::to_string(step) + "\t" +
                                 (bytes < 0 ? std::string("commit") : std::to_string(bytes)) +
                                 "\t" + display + "\n";
        if (!write_log.empty()) {
          if (FILE* f = std::fopen(write_log.c_str(), "a")) {
            std::fputs(line.c_str(), f);
            std::fclose(f);
          }
        }
        if (hold_write > 0 && chunks == hold_write) {
          const std::string tmp = dir + "/held-write.tmp";
          if (FILE* f = std::fopen(tmp.c_str(), "w")) {
            std::fputs(line.c_str(), f);
            std::fclose(f);
            std::rename(tmp.c_str(), (dir + "/held-write").c_str());
          }
          for (;;) ::pause();  // held mid-write until the test kills the process
        }
      };
      mimic::common::SetCopyProgressHookForTesting(
          [dir, hold_copy, point](const std::string& display, uint64_t bytes) {
            if (!hold_copy.empty() && bytes >= (1u << 20) &&
                mimic::common::Basename(display) == hold_copy) {
              Touch(dir + "/copying-" + hold_copy);
              for (;;) ::pause();  // held mid-write until the test kills the process
            }
            point(display, static_cast<int64_t>(bytes));
          });
      mimic::common::SetCommitHookForTesting(
          [point](const std::string& display) { point(display, -1); });
    }
  }
  args.push_back(nullptr);
  return mimic::agent::AgentMain(static_cast<int>(args.size()) - 1, args.data(), hook);
}
