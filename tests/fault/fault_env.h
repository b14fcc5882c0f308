// Helpers of the fault campaigns (tests/fault/): the seed and the number of trials, a gRPC
// client that streams a run's events while the test injects a fault, the agent's journal read
// back, and the one line of figures each campaign prints at its end.
//
// Every campaign is seeded: MIMIC_FAULT_SEED=N replays one (the default is fixed, so CI runs
// the same faults every time), MIMIC_FAULT_TRIALS=N sizes it (the CI size is the default).
// These variables are read by the tests only, never by mimic or mimic-agent.
#ifndef MIMIC_TESTS_FAULT_FAULT_ENV_H_
#define MIMIC_TESTS_FAULT_FAULT_ENV_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "common/base/mutex.h"
#include "mimic/v1/agent.grpc.pb.h"
#include "mimic/v1/agent.pb.h"

namespace mimic::testing {

// MIMIC_FAULT_SEED when set, else `fallback`.
uint32_t FaultSeed(uint32_t fallback);
// MIMIC_FAULT_TRIALS when set (> 0), else `ci_default`.
int FaultTrials(int ci_default);

// Mounts a tmpfs on the (empty) directory `dir` when the test runs as root, so the campaign's
// many fsyncs cost nothing and it fits its CI budget: SIGKILL loses no page cache, so what the
// process-kill campaigns prove holds on any disk. True when mounted (unmount with
// UnmountScratch); false, and `dir` stays on the test's disk, otherwise.
bool MountScratch(const std::string& dir);
void UnmountScratch(const std::string& dir);

// One host's homes for the agent campaigns, under `dir`: a 4.0.0 source and a 4.2.0 target made
// by mimic's generator, plus a 640 KiB CApp (a stored zip: its copy writes ten chunks), owned by
// nobody when the test runs as root (keystores 0600, deployment.toml 0640), as an MI user's
// homes are. `source` (dir/mi/wso2mi-4.0.0) is never written; ResetTarget() makes `target`
// (dir/mi/wso2mi-4.2.0) the pristine target again.
struct MigrationHomes {
  std::string dir, pristine_target, source, target;
  void Make(const std::string& dir);  // gtest assertions; check HasFatalFailure()
  // Copies the pristine target's content into `at` (default `target`), which may be a mount
  // point (then only its content is replaced).
  void ResetTarget(const std::string& at = "") const;
  // Every step of a 4.0.0 -> 4.2.0 migration on these homes, in MODE_APPLY.
  mimic::v1::HostPlan Plan(const std::string& run_id) const;
  // Rolls back run `of` (run id "<of>.rollback1").
  static mimic::v1::HostPlan RollbackPlan(const std::string& of);
  // The plan's step names, in order.
  static const std::vector<std::string>& Steps();
};

// A plaintext (loopback) or mutual-TLS channel to an agent.
std::shared_ptr<grpc::Channel> PlainChannel(const std::string& address);
std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const std::string& certs_dir,
                                          const std::string& server_name);

// A Run stream read on its own thread, so the test can act (kill the agent) while events come.
class EventStream {
 public:
  // Starts Run(plan) (from_seq 1) on `channel`.
  EventStream(std::shared_ptr<grpc::Channel> channel, const mimic::v1::HostPlan& plan,
              int deadline_seconds = 300);
  // Attach(run_id, from_seq) instead of Run.
  EventStream(std::shared_ptr<grpc::Channel> channel, const std::string& run_id,
              uint64_t from_seq, int deadline_seconds = 120);
  ~EventStream();  // cancels the call if still going, joins
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  // Events received so far.
  size_t count() const;
  std::vector<mimic::v1::Event> events() const;
  // Whether the stream has ended (its status is then final).
  bool done() const;
  // An eventfd signalled on each event received and at the end (WakeOn::eventfds).
  int wake_fd() const { return wake_fd_; }
  // Waits for the end (bounded: the call's deadline); the final status.
  grpc::Status Wait();

 private:
  void Read(std::unique_ptr<grpc::ClientReader<mimic::v1::Event>> reader);
  std::unique_ptr<mimic::v1::Agent::Stub> stub_;
  grpc::ClientContext ctx_;
  mimic::v1::RunRequest run_req_;
  mimic::v1::AttachRequest attach_req_;
  mutable common::Mutex mu_;
  std::vector<mimic::v1::Event> events_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  int wake_fd_;
  std::thread thread_;
};

// Runs `plan` to its end; its events, and the call's status in `status` when given.
std::vector<mimic::v1::Event> RunToEnd(std::shared_ptr<grpc::Channel> channel,
                                       const mimic::v1::HostPlan& plan,
                                       grpc::Status* status = nullptr);
// Every event of `run_id` the agent holds (its journal, after a restart), from seq 1.
std::vector<mimic::v1::Event> AttachAll(std::shared_ptr<grpc::Channel> channel,
                                        const std::string& run_id, grpc::Status* status = nullptr);

// Why a run ended as it did: its status, message and every failed step's message.
std::string Why(const std::vector<mimic::v1::Event>& events);
// MIMIC_FAULT_TRIAL=N: a campaign draws every trial as usual but runs only trial N (to replay
// one failure of a seeded campaign); -1 when unset.
int OnlyTrial();
// The run's end (status RUN_RUNNING when `events` has no run_finished).
mimic::v1::RunFinished Finished(const std::vector<mimic::v1::Event>& events);
// "" when `replay` (the agent's events after a restart) holds every event of `streamed` (what
// a client received before the fault) at the same place, equal field by field (map entries in
// any order), with seq 1..N and no
// gap; else what differs. `last_word_may_differ`: the streamed events may end with the run's
// last word that was streamed from memory only (a journal that failed), absent from the replay.
std::string CompareEvents(const std::vector<mimic::v1::Event>& streamed,
                          const std::vector<mimic::v1::Event>& replay,
                          bool last_word_may_differ = false);

// The events in the run's journal file, read as the agent reads it on restart.
std::vector<mimic::v1::Event> JournalEvents(const std::string& journal_path);

// The differences between two TreeState maps, one line each (at most `max` lines).
std::string TreeDiff(const std::map<std::string, std::string>& want,
                     const std::map<std::string, std::string>& got, size_t max = 20);

// The figures line a campaign prints at its end, e.g.
//   "[fault] agent-kill: 50 trials, 50 survived, seed=20261130 (...)".
void PrintFigures(const std::string& campaign, int trials, int survived, uint32_t seed,
                  const std::string& detail);

}  // namespace mimic::testing

#endif  // MIMIC_TESTS_FAULT_FAULT_ENV_H_
