// The mimic.v1.Agent gRPC service (callback API) and the server that hosts it.
#ifndef MIMIC_AGENT_DAEMON_SERVICE_H_
#define MIMIC_AGENT_DAEMON_SERVICE_H_

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "agent/daemon/agent_config.h"
#include "agent/engine/executor.h"
#include "agent/engine/run_manager.h"
#include "mimic/v1/agent.grpc.pb.h"

namespace mimic::agent {

class AgentService final : public mimic::v1::Agent::CallbackService {
 public:
  // `facts_executor` runs GetFacts' scans: a pool of its own, so facts never wait for runs.
  AgentService(const AgentConfig& config, RunManager* runs, Executor* facts_executor);

  grpc::ServerUnaryReactor* GetFacts(grpc::CallbackServerContext* ctx,
                                     const mimic::v1::GetFactsRequest* req,
                                     mimic::v1::Facts* resp) override;
  grpc::ServerWriteReactor<mimic::v1::Event>* Run(grpc::CallbackServerContext* ctx,
                                                  const mimic::v1::RunRequest* req) override;
  grpc::ServerWriteReactor<mimic::v1::Event>* Attach(grpc::CallbackServerContext* ctx,
                                                     const mimic::v1::AttachRequest* req) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* ctx,
                                   const mimic::v1::CancelRequest* req,
                                   mimic::v1::CancelResponse* resp) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* ctx,
                                     const mimic::v1::ListRunsRequest* req,
                                     mimic::v1::ListRunsResponse* resp) override;

 private:
  // OK when the peer's certificate subject is allowed (any, when no allow-list is set).
  grpc::Status Authorize(grpc::CallbackServerContext* ctx) const;

  const AgentConfig& config_;
  RunManager* runs_;
  Executor* executor_;
};

// Owns everything a running agent needs: executor, runs, service, gRPC server.
class AgentServer {
 public:
  // Loads runs from the state directory, binds the listen address and starts serving.
  // `before_step` is passed to the run manager (RunManagerOptions::before_step): null in
  // production, a gate in tests.
  static absl::StatusOr<std::unique_ptr<AgentServer>> Start(
      const AgentConfig& config,
      std::function<void(const std::string& run_id, int index)> before_step = nullptr);
  ~AgentServer();
  AgentServer(const AgentServer&) = delete;  // owns a server and threads
  AgentServer& operator=(const AgentServer&) = delete;

  int port() const { return port_; }
  // Blocks until Shutdown() is called from another thread (or a signal handler's thread).
  void Wait();
  // In order: health NOT_SERVING; runs still queued will not run (each finishes
  // RUN_INTERRUPTED, journaled) and new ones are refused; runs in their steps get
  // stop_grace_seconds to complete while the server still serves (streams deliver their last
  // events), then the step of each run still going is cancelled (its subprocess's process group
  // ended) and the run ends RUN_INTERRUPTED, journaled; then stops accepting calls and ends
  // open streams within `grace_ms`.
  void Shutdown(int grace_ms = 2000);

 private:
  AgentServer(const AgentConfig& config) : config_(config) {}
  AgentConfig config_;
  std::unique_ptr<Executor> executor_;        // runs (their steps)
  std::unique_ptr<Executor> facts_executor_;  // GetFacts: never waits behind runs
  std::unique_ptr<RunManager> runs_;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_DAEMON_SERVICE_H_
