// A simulated fleet for the controller's scale benchmark (bench/controller_scale.sh): one process
// serves the real mimic.v1.Agent service on N ports of 127.0.0.1 (one port per simulated agent,
// as the controller's inventory needs), with mutual TLS from deploy/make-certs.sh's CA. A Run
// is answered at once, without touching disk, with the events a real agent sends for a no-op
// migration: run_started; per step step_started, `--logs` info lines, step_finished "ok" with
// no change; run_finished "ok". Runs are kept in memory (plan only) so a re-sent Run or an
// Attach replays from the sequence number asked for; a run is never started twice. Unlike a
// real agent it sends no TLS 1.3 session tickets (SendNoSessionTickets).
//
// Usage: sim-fleet --certs DIR --cert NAME --agents N --ports-file FILE [--logs 3]
//   DIR holds ca.pem and NAME.pem/NAME.key (every simulated agent presents that certificate:
//   the inventory sets tls_server_name = NAME). FILE gets one port per line, written once all
//   ports listen (atomically: a reader never sees a partial list). Runs until SIGTERM/SIGINT.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/fs.h"
#include "bench/sim_events.h"
#include "common/rpc/tls.h"
#include "controller/rollout/agent_client.h"
#include "mimic/v1/agent.grpc.pb.h"

namespace {

namespace v1 = ::mimic::v1;
using mimic::bench::MakeSimEvent;
using mimic::bench::SimEventCount;

int g_logs_per_step = 3;

// Writes the run's events from `from_seq` on, one write in flight.
class EventStream final : public grpc::ServerWriteReactor<v1::Event> {
 public:
  EventStream(v1::HostPlan plan, uint64_t from_seq)
      : plan_(std::move(plan)), next_(from_seq == 0 ? 1 : static_cast<int>(from_seq)) {
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream write failed"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ > SimEventCount(plan_, g_logs_per_step)) {
      Finish(grpc::Status::OK);
      return;
    }
    current_ = MakeSimEvent(plan_, next_++, g_logs_per_step);
    if (next_ > SimEventCount(plan_, g_logs_per_step)) {
      // The last event goes with the status (one round less; no OnWriteDone follows).
      StartWriteAndFinish(&current_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    }
    StartWrite(&current_);
  }
  const v1::HostPlan plan_;
  int next_;
  v1::Event current_;
};

class ErrorStream final : public grpc::ServerWriteReactor<v1::Event> {
 public:
  explicit ErrorStream(const grpc::Status& st) { Finish(st); }
  void OnDone() override { delete this; }
};

class SimAgent final : public v1::Agent::CallbackService {
 public:
  grpc::ServerUnaryReactor* GetFacts(grpc::CallbackServerContext* ctx,
                                     const v1::GetFactsRequest*, v1::Facts* resp) override {
    resp->set_hostname("sim-fleet");
    resp->set_agent_version("sim-fleet");
    resp->set_os("simulated");
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

  grpc::ServerWriteReactor<v1::Event>* Run(grpc::CallbackServerContext*,
                                           const v1::RunRequest* req) override {
    const v1::HostPlan& plan = req->plan();
    if (plan.run_id().empty()) {
      return new ErrorStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no run_id"));
    }
    bool existed = false;
    {
      absl::MutexLock l(&mu_);
      existed = !runs_.emplace(plan.run_id(), plan).second;
    }
    return new EventStream(plan, existed ? req->from_seq() : 1);
  }

  grpc::ServerWriteReactor<v1::Event>* Attach(grpc::CallbackServerContext*,
                                              const v1::AttachRequest* req) override {
    absl::MutexLock l(&mu_);
    auto it = runs_.find(req->run_id());
    if (it == runs_.end()) {
      return new ErrorStream(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such run"));
    }
    return new EventStream(it->second, req->from_seq());
  }

  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* ctx, const v1::CancelRequest*,
                                   v1::CancelResponse* resp) override {
    resp->set_accepted(false);
    resp->set_state("finished");
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* ctx,
                                     const v1::ListRunsRequest* req,
                                     v1::ListRunsResponse* resp) override {
    absl::MutexLock l(&mu_);
    for (const auto& [id, plan] : runs_) {
      if (!req->rollout_id().empty() && plan.rollout_id() != req->rollout_id()) continue;
      v1::RunSummary* s = resp->add_runs();
      s->set_run_id(id);
      s->set_rollout_id(plan.rollout_id());
      s->set_host(plan.host());
      s->set_last_seq(SimEventCount(plan, g_logs_per_step));
    }
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, v1::HostPlan> runs_ ABSL_GUARDED_BY(mu_);  // plans only: no disk
};

// OpenSSL 3.0's server sends two TLS 1.3 session tickets after each handshake, and making one
// re-parses the session, the client's certificate included, through OpenSSL 3.0's slow decoders
// (10 % of this process's CPU). The controller (gRPC 1.51 without a session cache) never resumes
// a session, so the tickets are dropped on arrival: this simulated fleet sends none. OpenSSL
// applies the "system_default" section of its configuration to every SSL_CTX, which is the only
// way past gRPC 1.51 to SSL_CTX_set_num_tickets; loaded after the system's configuration, it
// replaces that one's TLS defaults (gRPC sets its own protocol range).
bool SendNoSessionTickets() {
  static const char kConf[] =
      "openssl_conf = openssl_init\n"
      "[openssl_init]\nssl_conf = ssl_sect\n"
      "[ssl_sect]\nsystem_default = sim_fleet_tls\n"
      "[sim_fleet_tls]\nNumTickets = 0\n";
  if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1) return false;
  CONF* conf = NCONF_new(nullptr);
  BIO* bio = BIO_new_mem_buf(kConf, -1);
  long bad_line = 0;
  bool ok = conf != nullptr && bio != nullptr && NCONF_load_bio(conf, bio, &bad_line) > 0 &&
            CONF_modules_load(conf, nullptr, 0) > 0;
  BIO_free(bio);
  NCONF_free(conf);
  return ok;
}

int Usage() {
  std::fprintf(stderr,
               "usage: sim-fleet --certs DIR --cert NAME --agents N --ports-file FILE "
               "[--logs 3]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string certs, cert, ports_file;
  int agents = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--certs") {
      certs = value;
    } else if (flag == "--cert") {
      cert = value;
    } else if (flag == "--agents") {
      agents = std::atoi(value.c_str());
    } else if (flag == "--ports-file") {
      ports_file = value;
    } else if (flag == "--logs") {
      g_logs_per_step = std::max(0, std::atoi(value.c_str()));
    } else {
      return Usage();
    }
  }
  if (certs.empty() || cert.empty() || ports_file.empty() || agents < 1) return Usage();
  // Lock-order checking (on in Debian's Abseil build) on every lock of gRPC's and this
  // process's absl::Mutex: a tool for tests, not for a benchmark's fleet.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (!SendNoSessionTickets()) {
    std::fprintf(stderr, "sim-fleet: cannot configure OpenSSL to send no session tickets\n");
    return 1;
  }
  auto creds = mimic::common::MakeServerCredentials(certs + "/" + cert + ".pem",
                                                     certs + "/" + cert + ".key",
                                                     certs + "/ca.pem");
  if (!creds.ok()) {
    std::fprintf(stderr, "sim-fleet: %s\n", std::string(creds.status().message()).c_str());
    return 1;
  }
  // Blocked before gRPC starts its threads, so only the main thread takes a stop signal.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  mimic::controller::RaiseOpenFileLimit();  // a listening socket and a connection per agent
  SimAgent service;
  grpc::ServerBuilder builder;
  std::vector<int> ports(agents, 0);
  for (int i = 0; i < agents; ++i) builder.AddListeningPort("127.0.0.1:0", *creds, &ports[i]);
  builder.RegisterService(&service);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "sim-fleet: cannot listen on %d ports\n", agents);
    return 1;
  }
  std::string list;
  for (int p : ports) {
    if (p == 0) {
      std::fprintf(stderr, "sim-fleet: a port did not bind\n");
      return 1;
    }
    absl::StrAppend(&list, p, "\n");
  }
  if (absl::Status st = mimic::common::WriteFileAtomic(ports_file, list); !st.ok()) {
    std::fprintf(stderr, "sim-fleet: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  // The main thread waits for a stop signal; gRPC's threads serve.
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
