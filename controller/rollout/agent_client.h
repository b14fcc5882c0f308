// The controller's side of the wire: one channel per agent, callback-API calls.
#ifndef MIMIC_CONTROLLER_ROLLOUT_AGENT_CLIENT_H_
#define MIMIC_CONTROLLER_ROLLOUT_AGENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/base/mutex.h"
#include "common/config/inventory.h"
#include "mimic/v1/agent.grpc.pb.h"

namespace mimic::controller {

// Credentials for every agent channel, from the inventory's [controller] table.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ControllerCredentials(
    const common::Inventory& inventory);

// One channel to one agent (keepalive on, TLS name checked against the host's
// tls_server_name), shared by every call to that agent.
std::shared_ptr<grpc::Channel> MakeAgentChannel(const common::Host& host,
                                                std::shared_ptr<grpc::ChannelCredentials> creds);

// Cancels one EventCall from any thread; does nothing once the call is done (it may be gone).
class CallCanceller {
 public:
  void Cancel();

 private:
  friend class EventCall;
  common::Mutex mu_;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;  // null once the call is done
};

// Streams the events of Run (or Attach when `attach` is set). Calls `on_event` for each event
// and then `on_done` exactly once with the final status, both on gRPC threads: they must not
// block. `on_event` gets the call's own message, which it may change or move from (scrub in place,
// hand over, no copy): the next read overwrites it. Deletes itself (dropping its reference to the channel) before on_done. Returns what
// cancels it (on_done then gets CANCELLED unless the call had already ended).
class EventCall final : public grpc::ClientReadReactor<mimic::v1::Event> {
 public:
  using EventFn = std::function<void(mimic::v1::Event*)>;
  using DoneFn = std::function<void(const grpc::Status&)>;

  static std::shared_ptr<CallCanceller> StartRun(mimic::v1::Agent::Stub* stub,
                                                 const mimic::v1::RunRequest& req,
                                                 std::chrono::system_clock::time_point deadline,
                                                 EventFn on_event, DoneFn on_done);
  static std::shared_ptr<CallCanceller> StartAttach(
      mimic::v1::Agent::Stub* stub, const mimic::v1::AttachRequest& req,
      std::chrono::system_clock::time_point deadline, EventFn on_event, DoneFn on_done);

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& s) override;

 private:
  EventCall(std::chrono::system_clock::time_point deadline, EventFn on_event, DoneFn on_done);
  grpc::ClientContext ctx_;
  mimic::v1::RunRequest run_req_;
  mimic::v1::AttachRequest attach_req_;
  mimic::v1::Event event_;
  EventFn on_event_;
  DoneFn on_done_;
  std::shared_ptr<CallCanceller> canceller_;
};

// Raises this process's soft limit of open files to its hard limit: the controller holds one
// connection per agent in flight (thousands at a large concurrency), past the usual soft
// limit of 1024. Returns the soft limit now.
uint64_t RaiseOpenFileLimit();

// Blocking unary helpers for CLI commands (not used on the fan-out path).
absl::StatusOr<mimic::v1::Facts> GetFactsBlocking(mimic::v1::Agent::Stub* stub, int timeout_ms);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_ROLLOUT_AGENT_CLIENT_H_
