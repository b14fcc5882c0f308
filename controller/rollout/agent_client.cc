#include "controller/rollout/agent_client.h"

#include <sys/resource.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/rpc/grpc_status.h"
#include "common/rpc/tls.h"

namespace mimic::controller {
namespace {

// How this process dials its agents, for the wording of connection errors only: set by
// ControllerCredentials (a controller process works from one inventory).
std::atomic<common::DialMode> g_dial_mode{common::DialMode::kUnknown};

grpc::Status Described(const grpc::Status& s) {
  if (s.ok()) return s;
  return grpc::Status(s.error_code(), common::DescribeCallError(s, g_dial_mode.load()),
                      s.error_details());
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ControllerCredentials(
    const common::Inventory& inv) {
  g_dial_mode = inv.controller.plaintext ? common::DialMode::kPlaintext
                                         : common::DialMode::kMutualTls;
  if (inv.controller.plaintext) return grpc::InsecureChannelCredentials();
  // The files are checked here (key matches certificate, valid now, clientAuth): a mistake
  // in them is the inventory's, named with its keys, before any agent is dialled.
  auto creds = common::MakeChannelCredentials(inv.controller.ca, inv.controller.cert,
                                              inv.controller.key);
  if (!creds.ok()) {
    return common::Annotate(creds.status(),
                            absl::StrCat(inv.path, ": [controller] ca/cert/key"));
  }
  return creds;
}

std::shared_ptr<grpc::Channel> MakeAgentChannel(const common::Host& host,
                                                std::shared_ptr<grpc::ChannelCredentials> creds) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // Each agent gets its own connection even when addresses repeat (several agents per host).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::string name = host.tls_server_name.empty() ? host.name : host.tls_server_name;
  args.SetSslTargetNameOverride(name);
  return grpc::CreateCustomChannel(host.address, creds, args);
}

void CallCanceller::Cancel() {
  common::MutexLock l(&mu_);
  if (ctx_ != nullptr) ctx_->TryCancel();  // OnDone follows on a gRPC thread, never inline
}

EventCall::EventCall(std::chrono::system_clock::time_point deadline, EventFn on_event,
                     DoneFn on_done)
    : on_event_(std::move(on_event)),
      on_done_(std::move(on_done)),
      canceller_(std::make_shared<CallCanceller>()) {
  ctx_.set_deadline(deadline);
  common::MutexLock l(&canceller_->mu_);
  canceller_->ctx_ = &ctx_;
}

std::shared_ptr<CallCanceller> EventCall::StartRun(mimic::v1::Agent::Stub* stub,
                                                   const mimic::v1::RunRequest& req,
                                                   std::chrono::system_clock::time_point deadline,
                                                   EventFn on_event, DoneFn on_done) {
  auto* call = new EventCall(deadline, std::move(on_event), std::move(on_done));
  std::shared_ptr<CallCanceller> canceller = call->canceller_;
  call->run_req_ = req;
  stub->async()->Run(&call->ctx_, &call->run_req_, call);
  call->StartRead(&call->event_);
  call->StartCall();  // the call may be done and gone from here on
  return canceller;
}

std::shared_ptr<CallCanceller> EventCall::StartAttach(
    mimic::v1::Agent::Stub* stub, const mimic::v1::AttachRequest& req,
    std::chrono::system_clock::time_point deadline, EventFn on_event, DoneFn on_done) {
  auto* call = new EventCall(deadline, std::move(on_event), std::move(on_done));
  std::shared_ptr<CallCanceller> canceller = call->canceller_;
  call->attach_req_ = req;
  stub->async()->Attach(&call->ctx_, &call->attach_req_, call);
  call->StartRead(&call->event_);
  call->StartCall();
  return canceller;
}

void EventCall::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows with the status
  on_event_(&event_);
  StartRead(&event_);
}

void EventCall::OnDone(const grpc::Status& s) {
  // The call (its context holds a reference to the channel) is gone before the owner hears
  // of it, so the owner's thread, not this gRPC thread, closes the channel last: gRPC 1.51
  // tears its callback threads down with the last channel, and a callback thread that did so
  // would join itself and free the queue it still polls (heap corruption, seen at 200 hosts).
  DoneFn done = std::move(on_done_);
  const grpc::Status status = Described(s);
  {
    common::MutexLock l(&canceller_->mu_);  // a Cancel() in progress finishes first
    canceller_->ctx_ = nullptr;
  }
  delete this;
  done(status);
}

uint64_t RaiseOpenFileLimit() {
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return 0;
  if (nofile.rlim_cur < nofile.rlim_max) {
    struct rlimit raised = nofile;
    raised.rlim_cur = nofile.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
  }
  return nofile.rlim_cur;
}

absl::StatusOr<mimic::v1::Facts> GetFactsBlocking(mimic::v1::Agent::Stub* stub, int timeout_ms) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  mimic::v1::Facts facts;
  grpc::Status st = stub->GetFacts(&ctx, mimic::v1::GetFactsRequest(), &facts);
  if (!st.ok()) return common::ToAbslStatus(Described(st));
  return facts;
}

}  // namespace mimic::controller
