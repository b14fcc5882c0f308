#include "agent/daemon/service.h"

#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/utsname.h>

#include <algorithm>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/mutex.h"
#include "absl/time/time.h"
#include "agent/steps/migration_features.h"
#include "agent/steps/steps.h"
#include "common/base/fs.h"
#include "common/rpc/grpc_status.h"
#include "common/base/ids.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/base/subprocess.h"
#include "common/mi/mi_version.h"
#include "common/rpc/tls.h"

namespace mimic::agent {
namespace {

using mimic::v1::Event;

// Streams a run's events from a sequence number on, live, until the run finishes. Events are
// pulled from the RunState by the reactor itself: one write in flight, the message owned here
// until OnWriteDone.
class EventStream final : public grpc::ServerWriteReactor<Event> {
 public:
  EventStream(std::shared_ptr<RunState> run, uint64_t from_seq)
      : run_(std::move(run)), next_seq_(from_seq == 0 ? 1 : from_seq) {
    sub_ = run_->Subscribe([this] { Pump(); });
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      common::MutexLock l(&mu_);
      writing_ = false;
      if (!ok) {
        FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream write failed"));
        return;
      }
      next_seq_ = current_.seq() + 1;  // not ++: recovery may have skipped a damaged record
    }
    Pump();
  }

  void OnCancel() override {
    common::MutexLock l(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    run_->Unsubscribe(sub_);
    delete this;
  }

 private:
  void Pump() {
    common::MutexLock l(&mu_);
    if (writing_ || finished_) return;
    std::vector<Event> next;
    bool done = false;
    run_->Events(next_seq_, 1, &next, &done);
    if (!next.empty()) {
      current_ = std::move(next[0]);
      writing_ = true;
      StartWrite(&current_);
    } else if (done) {
      FinishLocked(grpc::Status::OK);
    }
  }

  void FinishLocked(const grpc::Status& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;  // Finish twice aborts the process
    finished_ = true;
    Finish(st);
  }

  std::shared_ptr<RunState> run_;
  int sub_ = 0;
  common::Mutex mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  Event current_;
};

class ErrorStream final : public grpc::ServerWriteReactor<Event> {
 public:
  explicit ErrorStream(const grpc::Status& st) { Finish(st); }
  void OnDone() override { delete this; }
};

// The version in the first line of `java -version` ("17.0.6"); "" when java does not run.
std::string JavaVersion() {
  common::SubprocessOptions o;
  o.argv = {"java", "-version"};
  o.merge_stderr = true;
  o.stdout_limit = {64 << 10, false};
  o.timeout = absl::Seconds(30);
  absl::StatusOr<common::SubprocessResult> r = common::RunSubprocess(o);
  if (!r.ok()) return "";
  const std::string out = r->stdout_text.substr(0, r->stdout_text.find('\n'));
  size_t q1 = out.find('"');
  size_t q2 = q1 == std::string::npos ? q1 : out.find('"', q1 + 1);
  if (q2 == std::string::npos) return "";
  return out.substr(q1 + 1, q2 - q1 - 1);
}

// What `home` uses that makes migration steps required (read only; logs dropped).
void AddFeatures(const common::PathGuard& guard, const std::string& home, const std::string& version,
                 mimic::v1::MiHome* h) {
  StepContext ctx;
  ctx.guard = &guard;
  ctx.source_home = home;
  ctx.check = true;
  ctx.log = [](LogLevel, const std::string&) {};
  absl::StatusOr<common::MigrationFeatures> f =
      DetectMigrationFeatures(ctx, Homes{home, ""}, version, "");
  if (!f.ok()) return;
  mimic::v1::MiFeatures* out = h->mutable_features();
  for (const std::string& e : f->datamapper) out->add_datamapper(e);
  for (const std::string& e : f->hl7) out->add_hl7(e);
  for (const std::string& e : f->jdbc_userstore) out->add_jdbc_userstore(e);
  for (const std::string& e : f->secure_vault) out->add_secure_vault(e);
}

// MI homes directly under each root or one level below (/opt/wso2/wso2mi-4.0.0, /opt/wso2/x/y),
// with their update level and what they use.
void FindMiHomes(const common::PathGuard& guard, mimic::v1::Facts* facts) {
  for (const std::string& root : guard.roots()) {
    std::vector<std::string> candidates = {root};
    DIR* d = ::opendir(root.c_str());
    if (d == nullptr) continue;
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(common::JoinPath(root, n));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      if (!common::IsDirectory(n)) continue;
      candidates.push_back(n);
    }
    for (const std::string& c : candidates) {
      auto v = common::DetectMiVersion(c);
      if (!v.ok()) continue;
      mimic::v1::MiHome* h = facts->add_mi_homes();
      h->set_path(c);
      h->set_version(v->version);
      h->set_detected_by(v->detected_by);
      h->set_running(common::PidFileAlive(common::JoinPath(c, "wso2carbon.pid")));
      h->set_update_level(common::DetectUpdateLevel(c));
      AddFeatures(guard, c, v->version, h);
    }
  }
}

// Why binding `listen` ("host:port") fails, in words, found by trying it the way gRPC does
// (SO_REUSEADDR, no SO_REUSEPORT).
std::string BindProblem(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  std::string port = listen.substr(listen.rfind(':') + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  struct addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  struct addrinfo* res = nullptr;
  if (::getaddrinfo(host.empty() || host == "*" ? nullptr : host.c_str(), port.c_str(), &hints,
                    &res) != 0 || res == nullptr) {
    return "the address does not resolve on this host; check 'listen'";
  }
  int err = 0;
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  if (fd >= 0) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0) err = errno;
    ::close(fd);
  } else {
    err = errno;
  }
  ::freeaddrinfo(res);
  if (err == EADDRINUSE) {
    return "port " + port + " is already in use (another mimic-agent or another program); stop "
           "it or choose another port";
  }
  if (err == EADDRNOTAVAIL) return "address " + host + " is not one of this host's addresses";
  if (err == EACCES) return "permission denied for port " + port + " (ports below 1024 need "
                            "CAP_NET_BIND_SERVICE)";
  if (err != 0) return std::strerror(err);
  return "the gRPC server did not start (see the log above)";
}

}  // namespace

AgentService::AgentService(const AgentConfig& config, RunManager* runs, Executor* executor)
    : config_(config), runs_(runs), executor_(executor) {}

grpc::Status AgentService::Authorize(grpc::CallbackServerContext* ctx) const {
  // Plaintext (loopback only) has no client certificates; allow_any_client_subject is the
  // config's explicit opt-in to any certificate signed by tls.client_ca.
  if (config_.plaintext || config_.allow_any_client_subject) return grpc::Status::OK;
  std::string presented;
  auto auth = ctx->auth_context();
  if (auth != nullptr) {
    for (const auto& cn : auth->FindPropertyValues("x509_common_name")) {
      std::string s(cn.data(), cn.size());
      for (const std::string& allowed : config_.allowed_client_subjects) {
        if (s == allowed) return grpc::Status::OK;
      }
      absl::StrAppend(&presented, presented.empty() ? "" : ", ", s);
    }
  }
  if (presented.empty()) presented = "(none)";
  LOG(WARNING) << "refused a client from " << ctx->peer() << ": certificate subject CN="
               << presented << " is not in allowed_client_subjects of " << config_.path;
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      absl::StrCat("the agent does not allow client certificate subject CN=",
                                   presented, ": add it to allowed_client_subjects in the "
                                   "agent's config, or use a controller certificate whose CN "
                                   "is listed there"));
}

grpc::ServerUnaryReactor* AgentService::GetFacts(grpc::CallbackServerContext* ctx,
                                                 const mimic::v1::GetFactsRequest*,
                                                 mimic::v1::Facts* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (grpc::Status st = Authorize(ctx); !st.ok()) {
    reactor->Finish(st);
    return reactor;
  }
  // Scanning disks and running java are slow: do it on the executor, never in the reaction.
  executor_->Schedule([this, reactor, resp] {
    resp->set_hostname(common::Hostname());
    resp->set_agent_version(kAgentVersion);
    for (const std::string& r : config_.allowed_roots) resp->add_allowed_roots(r);
    if (!config_.allowed_roots.empty()) {
      resp->set_disk_free_bytes(common::FreeDiskBytes(config_.allowed_roots[0]));
    }
    struct utsname u;
    if (::uname(&u) == 0) resp->set_os(absl::StrCat(u.sysname, " ", u.release, " ", u.machine));
    resp->set_java_version(JavaVersion());
    FindMiHomes(runs_->guard(), resp);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<Event>* AgentService::Run(grpc::CallbackServerContext* ctx,
                                                   const mimic::v1::RunRequest* req) {
  if (grpc::Status st = Authorize(ctx); !st.ok()) return new ErrorStream(st);
  mimic::v1::HostPlan plan = req->plan();
  if (plan.operator_().empty()) {
    auto auth = ctx->auth_context();
    if (auth != nullptr) {
      auto ids = auth->GetPeerIdentity();
      if (!ids.empty()) plan.set_operator_(std::string(ids[0].data(), ids[0].size()));
    }
  }
  bool existed = false;
  auto run = runs_->StartOrGet(plan, &existed);
  if (!run.ok()) {
    LOG(WARNING) << "run " << plan.run_id() << " refused: " << run.status();
    return new ErrorStream(common::ToGrpcStatus(run.status()));
  }
  LOG(INFO) << (existed ? "re-attached to run " : "started run ") << plan.run_id();
  return new EventStream(*run, existed ? req->from_seq() : 1);
}

grpc::ServerWriteReactor<Event>* AgentService::Attach(grpc::CallbackServerContext* ctx,
                                                      const mimic::v1::AttachRequest* req) {
  if (grpc::Status st = Authorize(ctx); !st.ok()) return new ErrorStream(st);
  auto run = runs_->Find(req->run_id());
  if (!run.ok()) return new ErrorStream(common::ToGrpcStatus(run.status()));
  return new EventStream(*run, req->from_seq());
}

grpc::ServerUnaryReactor* AgentService::Cancel(grpc::CallbackServerContext* ctx,
                                               const mimic::v1::CancelRequest* req,
                                               mimic::v1::CancelResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (grpc::Status st = Authorize(ctx); !st.ok()) {
    reactor->Finish(st);
    return reactor;
  }
  std::string state;
  absl::Status st = runs_->Cancel(req->run_id(), &state);
  resp->set_accepted(st.ok() && state == "cancelling");
  resp->set_state(state);
  reactor->Finish(common::ToGrpcStatus(st));
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::ListRuns(grpc::CallbackServerContext* ctx,
                                                 const mimic::v1::ListRunsRequest* req,
                                                 mimic::v1::ListRunsResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (grpc::Status st = Authorize(ctx); !st.ok()) {
    reactor->Finish(st);
    return reactor;
  }
  for (auto& s : runs_->List(req->rollout_id())) *resp->add_runs() = s;
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<AgentServer>> AgentServer::Start(
    const AgentConfig& config, std::function<void(const std::string&, int)> before_step) {
  // TLS files first: a mistake in them is named before anything on disk changes.
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (config.plaintext) {
    if (!common::IsLoopbackAddress(config.listen)) {
      return absl::InvalidArgumentError("plaintext is allowed only on loopback");
    }
    creds = grpc::InsecureServerCredentials();
  } else {
    auto c = common::MakeServerCredentials(config.cert_file, config.key_file,
                                           config.client_ca_file);
    if (!c.ok()) {
      return common::Annotate(c.status(), config.path + ": [tls] cert/key/client_ca");
    }
    creds = *c;
  }
  std::unique_ptr<AgentServer> s(new AgentServer(config));
  if (absl::Status st = common::MakeDirs(config.state_dir, 0700); !st.ok()) return st;
  s->executor_ = std::make_unique<Executor>(config.executor_threads);
  s->facts_executor_ = std::make_unique<Executor>(1);
  RunManagerOptions run_options;
  run_options.state_dir = config.state_dir;
  run_options.allowed_roots = config.allowed_roots;
  run_options.allow_exec = config.allow_exec;
  run_options.make_step = &MakeStep;
  run_options.known_steps = KnownSteps();
  run_options.before_step = std::move(before_step);
  s->runs_ = std::make_unique<RunManager>(std::move(run_options), s->executor_.get());
  if (absl::Status st = s->runs_->Recover(); !st.ok()) return st;
  s->service_ =
      std::make_unique<AgentService>(s->config_, s->runs_.get(), s->facts_executor_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, creds, &s->port_);
  builder.RegisterService(s->service_.get());
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // gRPC sets SO_REUSEPORT by default, so a second agent on a taken port would start and
  // share (steal) its connections. One port, one agent: the second one fails to bind.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot listen on ", config.listen, " (key 'listen' in ", config.path, "): ",
        BindProblem(config.listen)));
  }
  if (auto* health = s->server_->GetHealthCheckService()) {
    health->SetServingStatus("", true);
    health->SetServingStatus("mimic.v1.Agent", true);
  }
  if (!config.port_file.empty()) {
    if (absl::Status st = common::WriteFileAtomic(config.port_file, std::to_string(s->port_) + "\n");
        !st.ok()) {
      return st;
    }
  }
  return s;
}

AgentServer::~AgentServer() { Shutdown(); }

void AgentServer::Wait() {
  if (server_) server_->Wait();
}

void AgentServer::Shutdown(int grace_ms) {
  if (server_ && !shut_down_) {
    shut_down_ = true;
    if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
    const int queued = runs_ != nullptr ? runs_->BeginShutdown() : 0;
    LOG(INFO) << "shutting down: health NOT_SERVING; " << queued
              << " queued run(s) will not run (reported interrupted)";
    // Runs in their steps may complete while the server still serves: their streams deliver the
    // last events, and health answers NOT_SERVING meanwhile. Queued runs end at once. Past the
    // grace, a run still going is stopped inside its step and ends INTERRUPTED.
    if (runs_ != nullptr &&
        !runs_->WaitAllFinished(absl::Now() + absl::Seconds(config_.stop_grace_seconds))) {
      const int n = runs_->InterruptRunning();
      LOG(WARNING) << n << " run(s) still going " << config_.stop_grace_seconds
                   << " s after the stop began: interrupted inside their current step";
    }
    executor_.reset();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  }
  executor_.reset();
  facts_executor_.reset();
}

}  // namespace mimic::agent
