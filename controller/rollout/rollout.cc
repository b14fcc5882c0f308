#include "controller/rollout/rollout.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/mutex.h"
#include "absl/time/clock.h"
#include "common/config/host_pattern.h"
#include "common/config/catalogue.h"
#include "common/base/fs.h"
#include "common/base/ids.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "common/mi/secrets.h"
#include "common/rpc/tls.h"
#include "controller/rollout/agent_client.h"
#include "controller/audit/audit.h"

namespace mimic::controller {

const std::vector<std::string>& StepCatalogue() { return common::StepCatalogue(); }

namespace {

using Clock = std::chrono::steady_clock;

// One host's run inside a batch.
struct HostJob {
  const common::Host* host = nullptr;
  std::string stage;
  int batch = 0;
  mimic::v1::HostPlan plan;
  uint64_t last_seq = 0;  // highest event held (audit and this process)
  int attempts = 0;
  bool done = false;
  bool in_flight = false;
  // The current attempt: its call, when it started, whether it is connected (an event came,
  // or its channel was seen READY), whether the connection watchdog cancelled it.
  std::shared_ptr<CallCanceller> call;
  Clock::time_point started;
  bool connected = false;
  bool connect_timed_out = false;
  Clock::time_point not_before;
  bool got_finish = false;
  HostOutcome outcome;
};

bool IsRefusal(grpc::StatusCode c) {
  return c == grpc::StatusCode::INVALID_ARGUMENT || c == grpc::StatusCode::PERMISSION_DENIED ||
         c == grpc::StatusCode::FAILED_PRECONDITION || c == grpc::StatusCode::NOT_FOUND ||
         c == grpc::StatusCode::UNIMPLEMENTED || c == grpc::StatusCode::ALREADY_EXISTS;
}

// The run's final status word (audit's RunStatusName); "unknown" for a run not finished.
std::string OutcomeStatus(mimic::v1::RunStatus s) {
  const std::string word = s == mimic::v1::RUN_RUNNING ? "" : RunStatusName(s);
  return word.empty() ? "unknown" : word;
}

bool Succeeded(const HostOutcome& o) { return o.status == "ok" || o.status == "changed"; }

// Drives batches of host jobs against the agents with at most `concurrency` in flight, of
// which at most `limits.max_connecting` not connected yet (see RolloutOptions).
class FleetRunner {
 public:
  FleetRunner(std::shared_ptr<grpc::ChannelCredentials> creds, Audit* audit, Progress* progress,
              const std::string& rollout_id, int64_t timeout_seconds, int max_attempts,
              const ConnectLimits& limits)
      : creds_(std::move(creds)),
        audit_(audit),
        progress_(progress),
        rollout_id_(rollout_id),
        timeout_seconds_(timeout_seconds),
        max_attempts_(max_attempts),
        max_connecting_(std::max(1, limits.max_connecting)),
        connect_timeout_(std::chrono::milliseconds(std::max(1, limits.connect_timeout_ms))) {
    RaiseOpenFileLimit();  // a connection per host in flight
  }

  // The rollout's secret values (each host's plan, the inventory's vars): every event and
  // error received is scrubbed of them before the audit, the reports or the output see it.
  common::SecretScrubber& secrets() { return secrets_; }

  // The audit's error once appending an event failed (the rollout must stop); OK before.
  absl::Status AuditError() {
    common::MutexLock l(&mu_);
    return audit_error_;
  }

  // Runs every job to completion. `stop` is asked after each finished host; once it says yes,
  // or the audit failed, no new host starts (hosts in flight finish). Returns true when
  // stopped early.
  bool RunBatch(std::vector<HostJob*>& jobs, int concurrency,
                const std::function<bool()>& stop) {
    common::MutexLock l(&mu_);
    bool stopping = false;
    for (;;) {
      int in_flight = 0;
      int connecting = 0;
      Clock::time_point next_wake = Clock::now() + std::chrono::seconds(1);
      WatchConnections(jobs, &next_wake);
      for (HostJob* j : jobs) {
        if (j->in_flight) ++in_flight;
        if (j->in_flight && !j->connected) ++connecting;
      }
      if (!stopping && (stop() || !audit_error_.ok())) stopping = true;
      for (HostJob* j : jobs) {
        if (j->done || j->in_flight || in_flight >= concurrency) continue;
        if (stopping) {
          if (j->attempts == 0) {  // never started: leave it out
            j->done = true;
            j->outcome.status = "not started";
            j->outcome.message = "not started: the rollout stopped";
          }
          continue;
        }
        if (Clock::now() < j->not_before) {
          next_wake = std::min(next_wake, j->not_before);
          continue;
        }
        if (connecting >= max_connecting_) continue;  // woken when one connects or ends
        Start(j);
        ++in_flight;
        ++connecting;
      }
      bool all_done = true;
      for (HostJob* j : jobs) all_done = all_done && j->done;
      ReleaseFinishedChannels();
      if (all_done) break;
      mu_.AwaitWithDeadline(absl::Condition(&changed_),
                            absl::Now() + absl::FromChrono(next_wake - Clock::now()));
      changed_ = false;
    }
    return stopping;
  }

 private:
  struct AgentConnection {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<mimic::v1::Agent::Stub> stub;
  };

  AgentConnection& ConnectionFor(const common::Host& h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = stubs_.find(h.name);
    if (it == stubs_.end()) {
      AgentConnection c;
      c.channel = MakeAgentChannel(h, creds_);
      c.stub = mimic::v1::Agent::NewStub(c.channel);
      it = stubs_.emplace(h.name, std::move(c)).first;
    }
    return it->second;
  }

  // The connection watchdog. A call not connected after connect_timeout_ (no event, and its
  // channel not READY) is cancelled: OnDone then counts a failed attempt and closes the
  // channel, so the next attempt connects afresh. gRPC's own connect timeout is not enough:
  // with thousands of TLS handshakes at once, attempts timed out and gRPC 1.51 left most calls
  // neither connected nor failed, for good (the 2,000-host stall). Cancels outside the lock.
  void WatchConnections(std::vector<HostJob*>& jobs, Clock::time_point* next_wake)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const Clock::time_point now = Clock::now();
    std::vector<std::shared_ptr<CallCanceller>> cancel;
    for (HostJob* j : jobs) {
      if (!j->in_flight || j->connected || j->connect_timed_out) continue;
      auto conn = stubs_.find(j->host->name);
      if (conn != stubs_.end() &&
          conn->second.channel->GetState(false) == GRPC_CHANNEL_READY) {
        j->connected = true;  // connected; the agent may take its time to answer
        continue;
      }
      if (now - j->started < connect_timeout_) {
        *next_wake = std::min(*next_wake, j->started + connect_timeout_);
        continue;
      }
      j->connect_timed_out = true;
      if (j->call != nullptr) cancel.push_back(j->call);
    }
    if (cancel.empty()) return;
    mu_.Unlock();
    for (const auto& c : cancel) c->Cancel();
    mu_.Lock();
  }

  // A finished host's channel (its connection, TLS state and buffers) is closed at once, so
  // memory and open files follow the hosts in flight, not the hosts of the rollout. Closed
  // outside the lock: closing may run gRPC's work on this thread.
  void ReleaseFinishedChannels() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_hosts_.empty()) return;
    std::vector<AgentConnection> closing;
    for (const std::string& name : finished_hosts_) {
      auto it = stubs_.find(name);
      if (it == stubs_.end()) continue;
      closing.push_back(std::move(it->second));
      stubs_.erase(it);
    }
    finished_hosts_.clear();
    mu_.Unlock();
    closing.clear();
    mu_.Lock();
  }

  void Start(HostJob* j) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    j->in_flight = true;
    j->started = Clock::now();
    j->connected = false;
    j->connect_timed_out = false;
    ++j->attempts;
    mimic::v1::RunRequest req;
    *req.mutable_plan() = j->plan;
    req.set_from_seq(j->last_seq + 1);
    auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(timeout_seconds_);
    // OnDone may run before StartRun returns: it takes mu_, held here, so j->call is set first.
    j->call = EventCall::StartRun(
        ConnectionFor(*j->host).stub.get(), req, deadline,
        [this, j](mimic::v1::Event* e) { OnEvent(j, e); },
        [this, j](const grpc::Status& s) { OnDone(j, s); });
  }

  // gRPC thread: must not block for long. The audit queues; progress prints one line.
  // `received` is the call's message, scrubbed in place (the next read overwrites it).
  void OnEvent(HostJob* j, mimic::v1::Event* received) {
    common::ScrubEvent(received, secrets_);  // the one place the controller takes events in
    const mimic::v1::Event& e = *received;
    {
      common::MutexLock l(&mu_);
      if (!j->connected) {
        j->connected = true;
        changed_ = true;  // a connection slot is free: RunBatch may start the next host
      }
      if (e.seq() <= j->last_seq) return;  // already held (a replay overlapping what we had)
      j->last_seq = e.seq();
      HostOutcome& o = j->outcome;
      if (e.has_step_finished()) {
        const auto& f = e.step_finished();
        o.files += f.changes_size();
        switch (f.status()) {
          case mimic::v1::STEP_OK: ++o.ok; break;
          case mimic::v1::STEP_CHANGED: ++o.changed; break;
          case mimic::v1::STEP_SKIPPED: ++o.skipped; break;
          default: ++o.failed; break;
        }
      }
      if (e.has_run_finished()) {
        j->got_finish = true;
        o.status = OutcomeStatus(e.run_finished().status());
        o.message = e.run_finished().message();
        o.duration_us = e.run_finished().duration_micros();
      }
    }
    progress_->Event(j->stage, e);
    // May block while the audit's queue is full (back-pressure, nothing dropped). Once the
    // audit has failed, no new host starts: a rollout is not run unaudited. The audit takes
    // the message over (no copy): nothing reads it after this.
    if (absl::Status st = audit_->AppendEvent(rollout_id_, std::move(*received)); !st.ok()) {
      bool first = false;
      {
        common::MutexLock l(&mu_);
        first = audit_error_.ok();
        if (first) audit_error_ = st;
        changed_ = true;
      }
      if (first) {
        progress_->Note("AUDIT FAILED, the rollout stops (hosts in flight finish): " +
                        std::string(st.message()));
      }
    }
  }

  void OnDone(HostJob* j, const grpc::Status& s) {
    HostOutcome report;
    bool report_now = false;
    {
      common::MutexLock l(&mu_);
      j->in_flight = false;
      j->call.reset();
      changed_ = true;
      const std::string why =
          j->connect_timed_out
              ? absl::StrCat("not connected within ",
                             absl::FormatDuration(absl::FromChrono(connect_timeout_)))
              : secrets_.Scrub(common::RedactText(s.error_message()));
      if (j->got_finish) {
        j->done = true;
      } else if (IsRefusal(s.error_code())) {
        j->done = true;
        j->outcome.status = "refused";
        j->outcome.message = secrets_.Scrub(common::RedactText(s.error_message()));
        report_now = true;
      } else if (j->attempts >= max_attempts_) {
        j->done = true;
        j->outcome.status = "unreachable";
        j->outcome.message = absl::StrCat("after ", j->attempts, " attempts: ", why);
        report_now = true;
      } else {
        // Lost the stream or could not connect: re-send Run with the same run_id from the last
        // event held; the agent never starts a run twice.
        j->not_before = Clock::now() + std::chrono::milliseconds(250 << (j->attempts - 1));
      }
      // A finished host's channel is closed, and so is one the watchdog gave up on (the next
      // attempt connects on a new one).
      if (j->done || j->connect_timed_out) finished_hosts_.push_back(j->host->name);
      report = j->outcome;
    }
    if (report_now) progress_->HostDone(report);
  }

  std::shared_ptr<grpc::ChannelCredentials> creds_;
  Audit* audit_;
  Progress* progress_;
  const std::string rollout_id_;
  const int64_t timeout_seconds_;
  const int max_attempts_;
  const int max_connecting_;
  const Clock::duration connect_timeout_;
  common::Mutex mu_;
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, AgentConnection> stubs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> finished_hosts_ ABSL_GUARDED_BY(mu_);  // channels to close
  absl::Status audit_error_ ABSL_GUARDED_BY(mu_);  // the first failed AppendEvent
  common::SecretScrubber secrets_;
};

// Registers the secret values of every host's vars (the inventory's, with its groups').
void AddInventorySecrets(const common::Inventory& inv, common::SecretScrubber* s) {
  for (const common::Host& h : inv.hosts) {
    mimic::v1::HostPlan vars_only;
    for (const auto& [k, v] : h.vars) (*vars_only.mutable_vars())[k] = v;
    common::AddPlanSecrets(vars_only, s);
  }
}

std::string OperatorSubject(const common::Inventory& inv) {
  if (inv.controller.cert.empty()) return "";
  auto s = common::CertificateSubject(inv.controller.cert);
  return s.ok() ? *s : "";
}

absl::StatusOr<std::unique_ptr<Audit>> OpenAudit(const std::string& url,
                                                 const common::Inventory& inv) {
  RETURN_IF_ERROR(common::MakeDirs(inv.controller.state_dir, 0700));
  const std::string& audit_url = url.empty() ? inv.audit_url : url;
  AuditOptions options;
  options.signing_key_path = inv.audit_signing_key.empty()
                                 ? DefaultSigningKeyPath(audit_url, inv.controller.state_dir)
                                 : inv.audit_signing_key;
  return Audit::Open(audit_url, options);
}

// The digest rule: a stage after the first runs only a plan (by sha256) that a real, earlier
// rollout took through the previous stage successfully, unless forced (recorded).
absl::Status CheckPromotion(Audit& audit, const common::Plan& plan, size_t stage_idx,
                            const std::string& rollout_id) {
  const std::string& prev = plan.stages[stage_idx - 1].name;
  ASSIGN_OR_RETURN(auto rollouts, audit.ListRollouts(0));
  for (const RolloutSummary& r : rollouts) {
    if (r.rollout.id == rollout_id || r.rollout.check_mode ||
        r.rollout.plan_sha256 != plan.sha256) {
      continue;
    }
    ASSIGN_OR_RETURN(RolloutDetail d, audit.GetRollout(r.rollout.id));
    for (const StageRecord& s : d.stages) {
      if (s.name == prev && s.status == "ok") return absl::OkStatus();
    }
  }
  return absl::FailedPreconditionError(absl::StrCat(
      plan.path, ": stage '", plan.stages[stage_idx].name, "' needs this plan (sha256 ",
      plan.sha256.substr(0, 12), ") to have succeeded in stage '", prev,
      "' first; run that stage, or pass --force (recorded in the audit)"));
}

// Waits at a stage's gates: a pause, then an approval recorded by `mimic approve`.
absl::Status PassGates(Audit& audit, const common::Stage& stage, StageRecord& sr, bool check,
                       Progress& progress) {
  if (stage.pause_seconds <= 0 && !stage.approval) return absl::OkStatus();
  if (check) {
    progress.Note(absl::StrCat("gate before stage ", stage.name, ":",
                               stage.pause_seconds > 0 ? absl::StrCat(" pause ", stage.pause_seconds, "s") : "",
                               stage.approval ? " approval" : "", " (not waited for in --check)"));
    return absl::OkStatus();
  }
  if (stage.pause_seconds > 0) {
    progress.Note(absl::StrCat("pausing ", stage.pause_seconds, "s before stage ", stage.name));
    absl::SleepFor(absl::Seconds(stage.pause_seconds));
  }
  if (!stage.approval) return absl::OkStatus();
  sr.status = "waiting_approval";
  RETURN_IF_ERROR(audit.RecordStage(sr));
  progress.Note(absl::StrCat("stage ", stage.name, " waits for approval: mimic approve ",
                             sr.rollout_id, " --stage ", stage.name));
  for (;;) {
    ASSIGN_OR_RETURN(RolloutDetail d, audit.GetRollout(sr.rollout_id));
    for (const ApprovalRecord& a : d.approvals) {
      if (a.stage == stage.name) {
        progress.Note(absl::StrCat("stage ", stage.name, " approved by ", a.who));
        sr.status = "running";
        return audit.RecordStage(sr);
      }
    }
    absl::SleepFor(absl::Seconds(1));
  }
}

// A stage's batches of hosts, by stage name, in the order they run.
using Schedule = std::map<std::string, std::vector<std::vector<const common::Host*>>>;

// The scope of a new rollout: the hosts `limit` selects, stage by stage (only `stage` when
// given), each host in the first stage that takes it, cut into that stage's batches.
absl::StatusOr<RolloutScope> PlanScope(const common::Plan& plan, const common::Inventory& inv,
                                       const std::string& stage, const std::string& limit) {
  ASSIGN_OR_RETURN(std::vector<const common::Host*> selected, common::SelectHosts(inv, limit));
  RolloutScope scope;
  scope.stage = stage;
  scope.limit = limit;
  std::set<std::string> seen_hosts;
  for (const common::Stage& st : plan.stages) {
    if (!stage.empty() && st.name != stage) continue;
    std::vector<const common::Host*> hosts;
    for (const common::Host* h : common::SelectStageHosts(st, selected)) {
      if (seen_hosts.insert(h->name).second) hosts.push_back(h);
    }
    if (hosts.empty()) continue;
    ASSIGN_OR_RETURN(auto batches, common::MakeBatches(st, hosts));
    for (size_t bi = 0; bi < batches.size(); ++bi) {
      BatchRecord b;
      b.stage = st.name;
      b.idx = static_cast<int>(bi);
      for (const common::Host* h : batches[bi]) {
        b.hosts.push_back(h->name);
        scope.hosts.push_back(h->name);
      }
      scope.batches.push_back(std::move(b));
    }
  }
  return scope;
}

// The hosts of a stored scope, found in the inventory. A host or stage the inventory or plan
// no longer has is an error: the rollout's scope cannot change under it.
absl::StatusOr<Schedule> ScheduleOf(const RolloutScope& scope, const std::string& rollout_id,
                                    const common::Plan& plan, const common::Inventory& inv) {
  Schedule schedule;
  for (const BatchRecord& b : scope.batches) {
    bool known = false;
    for (const common::Stage& st : plan.stages) known = known || st.name == b.stage;
    if (!known) {
      return absl::FailedPreconditionError(absl::StrCat(
          plan.path, ": no stage '", b.stage, "', which rollout ", rollout_id,
          " runs hosts in; a rollout keeps its scope: start a new rollout for this plan"));
    }
    std::vector<const common::Host*> hosts;
    for (const std::string& name : b.hosts) {
      const common::Host* h = inv.FindHost(name);
      if (h == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            inv.path, ": no host '", name, "', which is in rollout ", rollout_id,
            "'s scope; a rollout keeps its scope: start a new rollout for this inventory"));
      }
      hosts.push_back(h);
    }
    schedule[b.stage].push_back(std::move(hosts));
  }
  return schedule;
}

int ExitCode(const std::vector<HostOutcome>& outcomes, bool stopped) {
  if (stopped) return 2;
  for (const auto& o : outcomes) {
    if (!Succeeded(o)) return 2;
  }
  return 0;
}

}  // namespace

absl::StatusOr<mimic::v1::HostPlan> CompileHostPlan(const common::Plan& plan,
                                                    const common::Host& host,
                                                    const std::string& rollout_id,
                                                    mimic::v1::Mode mode) {
  mimic::v1::HostPlan hp;
  hp.set_rollout_id(rollout_id);
  hp.set_run_id(absl::StrCat(rollout_id, ".", host.name));
  hp.set_host(host.name);
  hp.set_plan_sha256(plan.sha256);
  hp.set_mode(mode);
  hp.set_migration_path(plan.migration_path);
  auto src = common::ExpandVars(plan.source_home, host.vars);
  if (!src.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(plan.path, ": migration.source_home for host ",
                                                   host.name, ": ", src.status().message()));
  }
  auto dst = common::ExpandVars(plan.target_home, host.vars);
  if (!dst.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(plan.path, ": migration.target_home for host ",
                                                   host.name, ": ", dst.status().message()));
  }
  hp.set_source_home(*src);
  hp.set_target_home(*dst);
  for (const auto& [k, v] : host.vars) (*hp.mutable_vars())[k] = v;
  for (const common::StepConfig& s : plan.steps) {
    mimic::v1::StepSpec* spec = hp.add_steps();
    spec->set_name(s.name);
    for (const auto& [k, v] : s.params) {
      auto ev = common::ExpandVars(v, host.vars);
      if (!ev.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(plan.path, ":", s.line, ": step ", s.name,
                                                       " param ", k, ": ", ev.status().message()));
      }
      (*spec->mutable_params())[k] = *ev;
    }
    spec->set_params_toml(s.params_toml);
  }
  for (const common::StepSkip& s : plan.skips) {
    mimic::v1::StepSkip* skip = hp.add_skips();
    skip->set_step(s.step);
    skip->set_reason(s.reason);
  }
  return hp;
}

absl::StatusOr<int> RunRollout(const RolloutOptions& opt, std::FILE* out) {
  std::unique_ptr<Audit> audit;
  std::string rollout_id = opt.resume_rollout_id;
  std::string inventory_path = opt.inventory_path, plan_path = opt.plan_path;
  bool check = opt.check;
  std::string limit = opt.limit;
  RolloutDetail previous;
  if (!rollout_id.empty()) {
    // Resume: the audit named by the inventory (or --audit) says what the rollout was.
    ASSIGN_OR_RETURN(common::Inventory inv0, common::LoadInventory(inventory_path));
    ASSIGN_OR_RETURN(audit, OpenAudit(opt.audit_url, inv0));
    ASSIGN_OR_RETURN(previous, audit->GetRollout(rollout_id));
    if (plan_path.empty()) plan_path = previous.rollout.plan_path;
    check = previous.rollout.check_mode;
  }
  ASSIGN_OR_RETURN(common::Inventory inv, common::LoadInventory(inventory_path));
  ASSIGN_OR_RETURN(common::Plan plan, common::LoadPlan(plan_path, StepCatalogue()));
  RETURN_IF_ERROR(common::ValidatePlanAgainstInventory(plan, inv));
  RETURN_IF_ERROR(common::CheckPlanCoversPath(plan));
  // The scope: a new rollout's from --stage and --limit; a resumed one's as it was stored
  // when it started (resume never widens it; a --stage or --limit that differs is refused).
  RolloutScope scope;
  std::string stage_only = opt.stage;
  if (!rollout_id.empty()) {
    if (!previous.rollout.has_scope) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rollout ", rollout_id, " was started by a mimic that did not record its scope; "
          "resume cannot tell which hosts it covers: start a new rollout (with --stage and "
          "--limit)"));
    }
    scope = previous.rollout.scope;
    if ((!opt.limit.empty() && opt.limit != scope.limit) ||
        (!opt.stage.empty() && opt.stage != scope.stage)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rollout ", rollout_id, " keeps the scope it started with (", DescribeScope(scope),
          "); resume acts inside it: to migrate other hosts or stages, start a new rollout"));
    }
    stage_only = scope.stage;
  } else {
    if (!opt.stage.empty()) {
      bool found = false;
      for (const auto& s : plan.stages) found = found || s.name == opt.stage;
      if (!found) {
        return absl::InvalidArgumentError(absl::StrCat(plan.path, ": no stage '", opt.stage, "'"));
      }
    }
    ASSIGN_OR_RETURN(scope, PlanScope(plan, inv, opt.stage, limit));
  }
  ASSIGN_OR_RETURN(Schedule schedule, ScheduleOf(scope, rollout_id, plan, inv));
  // Every host plan compiles before anything starts: bad input stops here, nothing changed.
  // Their secret values (params as expanded for each host, vars) are what events are scrubbed of.
  const mimic::v1::Mode mode = check ? mimic::v1::MODE_CHECK : mimic::v1::MODE_APPLY;
  std::vector<mimic::v1::HostPlan> compiled;
  for (const auto& [stage_name, batches] : schedule) {
    for (const auto& batch : batches) {
      for (const common::Host* h : batch) {
        ASSIGN_OR_RETURN(compiled.emplace_back(), CompileHostPlan(plan, *h, "r", mode));
      }
    }
  }
  ASSIGN_OR_RETURN(auto creds, ControllerCredentials(inv));
  const std::string op_user = common::OsUser();
  const std::string op_subject = OperatorSubject(inv);

  if (audit == nullptr) {
    ASSIGN_OR_RETURN(audit, OpenAudit(opt.audit_url, inv));
    rollout_id = NewRolloutId();
    RolloutRecord r;
    r.id = rollout_id;
    r.plan_path = plan.path;
    r.plan_sha256 = plan.sha256;
    r.inventory_path = inv.path;
    r.os_user = op_user;
    r.cert_subject = op_subject;
    r.check_mode = check;
    r.status = "running";
    r.has_scope = true;
    r.scope = scope;
    for (BatchRecord& b : r.scope.batches) b.rollout_id = rollout_id;
    RETURN_IF_ERROR(audit->BeginRollout(r));
  } else {
    if (previous.rollout.plan_sha256 != plan.sha256 && !opt.force) {
      return absl::FailedPreconditionError(absl::StrCat(
          plan.path, " changed since rollout ", rollout_id, " started (sha256 ",
          previous.rollout.plan_sha256.substr(0, 12), " -> ", plan.sha256.substr(0, 12),
          "); use --force to resume with the new plan"));
    }
    RETURN_IF_ERROR(audit->ResumeRollout(rollout_id));
  }

  Progress progress(out, opt.json, isatty(fileno(out)) != 0);
  progress.SetDryRun(check);  // a resumed check rollout is a dry run too
  progress.SetVerbosity(opt.verbosity);
  progress.Note(absl::StrCat(opt.resume_rollout_id.empty() ? "rollout " : "resuming rollout ",
                             rollout_id, check ? " (check: nothing is written)" : "",
                             " plan ", plan.sha256.substr(0, 12), " operator ", op_user,
                             op_subject.empty() ? "" : " (" + op_subject + ")"));
  progress.Note("scope: " + DescribeScope(scope));
  FleetRunner runner(creds, audit.get(), &progress, rollout_id, plan.timeout_seconds,
                     opt.max_attempts, opt.connect);
  for (const mimic::v1::HostPlan& hp : compiled) common::AddPlanSecrets(hp, &runner.secrets());
  AddInventorySecrets(inv, &runner.secrets());

  // What the audit already holds for this rollout (resume): finished runs are not re-run.
  std::map<std::string, RunRecord> prior;
  for (const RunRecord& r : LatestRunPerHost(previous.runs)) prior[r.host] = r;

  std::vector<HostOutcome> outcomes;
  bool stopped = false;
  std::string stop_reason;
  int rollout_failures = 0;
  for (size_t si = 0; si < plan.stages.size() && !stopped; ++si) {
    const common::Stage& stage = plan.stages[si];
    if (!stage_only.empty() && stage.name != stage_only) continue;
    auto scheduled = schedule.find(stage.name);
    if (scheduled == schedule.end()) {
      progress.Note(absl::StrCat("stage ", stage.name, ": no hosts selected"));
      continue;
    }
    const std::vector<std::vector<const common::Host*>>& batches = scheduled->second;
    size_t host_count = 0;
    for (const auto& b : batches) host_count += b.size();
    StageRecord sr{rollout_id, stage.name, static_cast<int>(si), "running", common::NowMicros(), 0};
    RETURN_IF_ERROR(audit->RecordStage(sr));
    bool passed_before = false;  // a resumed rollout was let into this stage already
    for (const ApprovalRecord& a : previous.approvals) {
      passed_before = passed_before || (a.stage == stage.name && a.forced);
    }
    if (!stage_only.empty() && si > 0 && !check && !passed_before) {
      if (absl::Status st = CheckPromotion(*audit, plan, si, rollout_id); !st.ok()) {
        if (!opt.force) {
          sr.status = "refused";
          RETURN_IF_ERROR(audit->RecordStage(sr));
          RETURN_IF_ERROR(audit->FinishRollout(rollout_id, "refused", std::string(st.message())));
          return st;
        }
        RETURN_IF_ERROR(audit->RecordApproval({rollout_id, stage.name, op_user, 0, true}));
        progress.Note(absl::StrCat("forced past the digest rule: ", st.message()));
      }
    }
    RETURN_IF_ERROR(PassGates(*audit, stage, sr, check, progress));
    progress.Note(absl::StrCat("stage ", stage.name, ": ", host_count, " hosts in ",
                               batches.size(), " batches"));
    int stage_failures = 0;
    for (size_t bi = 0; bi < batches.size() && !stopped; ++bi) {
      std::vector<std::string> names;
      for (const common::Host* h : batches[bi]) names.push_back(h->name);
      RETURN_IF_ERROR(audit->RecordBatch({rollout_id, stage.name, static_cast<int>(bi), names}));
      std::vector<std::unique_ptr<HostJob>> owned;
      std::vector<HostJob*> jobs;
      std::vector<Audit::RunRegistration> registrations;
      for (const common::Host* h : batches[bi]) {
        auto job = std::make_unique<HostJob>();
        job->host = h;
        job->stage = stage.name;
        job->batch = static_cast<int>(bi);
        ASSIGN_OR_RETURN(job->plan, CompileHostPlan(plan, *h, rollout_id, mode));
        job->plan.set_stage(stage.name);
        job->plan.set_diffs(opt.diff);
        job->plan.set_operator_(op_subject.empty() ? op_user : op_user + " (" + op_subject + ")");
        job->outcome.host = h->name;
        job->outcome.stage = stage.name;
        job->outcome.run_id = job->plan.run_id();
        auto p = prior.find(h->name);
        if (p != prior.end() && p->second.run_id == job->plan.run_id()) {
          ASSIGN_OR_RETURN(job->last_seq, audit->LastSeq(job->plan.run_id()));
          if (p->second.finished_at_us != 0) {
            // Finished while we were away and already audited: never migrate a host twice.
            job->done = true;
            job->outcome.status = p->second.status;  // the audit's words: ok, changed, ...
            if (auto steps = audit->Steps(job->plan.run_id()); steps.ok()) {
              for (const StepRecord& sr : *steps) {
                if (sr.status == "ok") ++job->outcome.ok;
                if (sr.status == "changed") ++job->outcome.changed;
                if (sr.status == "skipped") ++job->outcome.skipped;
                if (sr.status == "failed") ++job->outcome.failed;
              }
            }
            if (auto files = audit->FileChanges(job->plan.run_id()); files.ok()) {
              job->outcome.files = static_cast<int>(files->size());
            }
            job->outcome.message = p->second.message;
          }
        }
        registrations.push_back(
            {job->plan.run_id(), h->name, stage.name, static_cast<int>(bi), mode});
        jobs.push_back(job.get());
        owned.push_back(std::move(job));
      }
      // One commit for the batch's runs (thousands of hosts: one fsync, not one per host).
      RETURN_IF_ERROR(audit->RegisterRuns(rollout_id, registrations));
      progress.BeginBatch(stage.name, static_cast<int>(bi), static_cast<int>(batches.size()), names);
      const int concurrency = stage.concurrency > 0 ? stage.concurrency : inv.controller.concurrency;
      const int batch_size = static_cast<int>(jobs.size());
      auto failures_now = [&] {
        int f = 0;
        for (HostJob* j : jobs) {
          if (!j->done) continue;
          if (j->outcome.status == "unreachable" && !stage.unreachable_is_failure) continue;
          if (!Succeeded(j->outcome) && j->outcome.status != "not started") ++f;
        }
        return f;
      };
      bool early = runner.RunBatch(jobs, concurrency, [&]() -> bool {
        int f = failures_now();
        if (stage.max_fail_percentage >= 0 && f * 100 > stage.max_fail_percentage * batch_size) {
          stop_reason = absl::StrCat("stage ", stage.name, " batch ", bi + 1, ": ", f, " of ",
                                     batch_size, " hosts failed, over max_fail_percentage ",
                                     stage.max_fail_percentage);
          return true;
        }
        if (stage.max_failures >= 0 && stage_failures + f > stage.max_failures) {
          stop_reason = absl::StrCat("stage ", stage.name, ": ", stage_failures + f,
                                     " hosts failed, over max_failures ", stage.max_failures);
          return true;
        }
        if (plan.rollout_max_failures >= 0 &&
            rollout_failures + stage_failures + f > plan.rollout_max_failures) {
          stop_reason = absl::StrCat("rollout: ", rollout_failures + stage_failures + f,
                                     " hosts failed, over max_failures ",
                                     plan.rollout_max_failures);
          return true;
        }
        return false;
      });
      stage_failures += failures_now();
      for (HostJob* j : jobs) outcomes.push_back(j->outcome);
      if (early || !stop_reason.empty()) stopped = true;
      if (absl::Status a = runner.AuditError(); !a.ok()) {
        stopped = true;
        stop_reason = absl::StrCat("the audit failed: ", a.message());
      }
    }
    rollout_failures += stage_failures;
    sr.status = stopped ? "failed" : (stage_failures > 0 ? "failed" : "ok");
    sr.finished_at_us = common::NowMicros();
    RETURN_IF_ERROR(audit->RecordStage(sr));
    if (stopped) progress.Note("stopped: " + stop_reason + "; no new host was started");
  }
  RETURN_IF_ERROR(audit->Flush());
  int code = ExitCode(outcomes, stopped);
  std::string status = stopped ? "stopped" : (code == 0 ? "ok" : "failed");
  RETURN_IF_ERROR(audit->FinishRollout(rollout_id, status, stop_reason));
  // The hosts that did not succeed go to a retry file, for `--limit @FILE` (as Ansible's).
  std::string retry_file;
  if (std::vector<std::string> retry = HostsToRetry(outcomes); !retry.empty()) {
    retry_file = common::JoinPath(inv.controller.state_dir, rollout_id + ".retry");
    std::string text = absl::StrCat("# hosts of rollout ", rollout_id,
                                    " that did not succeed; mimic ... --limit @", retry_file,
                                    "\n", absl::StrJoin(retry, "\n"), "\n");
    if (absl::Status w = common::MakeDirs(inv.controller.state_dir, 0700); !w.ok()) {
      retry_file.clear();
    } else if (absl::Status w2 = common::WriteFileAtomic(retry_file, text); !w2.ok()) {
      progress.Note(absl::StrCat("could not write the retry file: ", w2.message()));
      retry_file.clear();
    }
  }
  if (!opt.json) {
    std::fprintf(out, "\n%s", RecapTable(outcomes).c_str());
    std::fprintf(out, "rollout %s %s; audit: %s\n", rollout_id.c_str(), status.c_str(),
                 common::RedactText(opt.audit_url.empty() ? inv.audit_url : opt.audit_url).c_str());
    std::fputs(NextCommands(rollout_id, outcomes, retry_file, opt.check).c_str(), out);
  } else {
    progress.Note(absl::StrCat("rollout ", rollout_id, " ", status));
  }
  return code;
}

absl::StatusOr<int> RollbackRollout(const RollbackOptions& opt, std::FILE* out) {
  ASSIGN_OR_RETURN(common::Inventory inv, common::LoadInventory(opt.inventory_path));
  ASSIGN_OR_RETURN(auto audit, OpenAudit(opt.audit_url, inv));
  ASSIGN_OR_RETURN(RolloutDetail detail, audit->GetRollout(opt.rollout_id));
  ASSIGN_OR_RETURN(std::vector<const common::Host*> selected, common::SelectHosts(inv, opt.limit));
  std::set<std::string> wanted;
  for (const common::Host* h : selected) wanted.insert(h->name);
  ASSIGN_OR_RETURN(auto creds, ControllerCredentials(inv));
  Progress progress(out, opt.json);
  progress.SetDryRun(opt.check);
  progress.SetRollback(true);
  progress.SetVerbosity(opt.verbosity);
  const std::string rollout_id = opt.rollout_id;
  FleetRunner runner(creds, audit.get(), &progress, rollout_id, 3600, 4, ConnectLimits{});
  AddInventorySecrets(inv, &runner.secrets());
  std::vector<std::unique_ptr<HostJob>> owned;
  std::vector<HostJob*> jobs;
  std::vector<Audit::RunRegistration> registrations;
  std::map<std::string, int> rollbacks_so_far;
  for (const RunRecord& r : detail.runs) {  // a new run id for each rollback, dry ones too
    if (r.mode == ModeName(mimic::v1::MODE_ROLLBACK) || r.mode == kRollbackCheckMode) {
      ++rollbacks_so_far[r.host];
    }
  }
  // Inside the rollout's scope only (its apply runs are there; this holds it so).
  std::set<std::string> in_scope(detail.rollout.scope.hosts.begin(),
                                 detail.rollout.scope.hosts.end());
  for (const RunRecord& r : detail.runs) {
    if (r.mode != "apply" || !wanted.count(r.host)) continue;
    if (detail.rollout.has_scope && !in_scope.count(r.host)) continue;
    const common::Host* h = inv.FindHost(r.host);
    if (h == nullptr) continue;
    auto job = std::make_unique<HostJob>();
    job->host = h;
    job->stage = r.stage;
    job->plan.set_rollout_id(rollout_id);
    job->plan.set_host(h->name);
    job->plan.set_mode(mimic::v1::MODE_ROLLBACK);
    job->plan.set_rollback_check(opt.check);
    job->plan.set_rollback_run_id(r.run_id);
    job->plan.set_force(opt.force);
    job->plan.set_diffs(opt.diff);
    job->plan.set_operator_(common::OsUser());
    job->plan.set_run_id(absl::StrCat(r.run_id, ".rollback", ++rollbacks_so_far[r.host],
                                      opt.check ? "-check" : ""));
    job->outcome.host = h->name;
    job->outcome.stage = r.stage;
    job->outcome.run_id = job->plan.run_id();
    registrations.push_back(
        {job->plan.run_id(), h->name, r.stage, -1, mimic::v1::MODE_ROLLBACK, opt.check});
    jobs.push_back(job.get());
    owned.push_back(std::move(job));
  }
  if (jobs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("rollout ", rollout_id,
                                                   " has no applied runs on the selected hosts"));
  }
  RETURN_IF_ERROR(audit->RegisterRuns(rollout_id, registrations));
  progress.Note(opt.check ? absl::StrCat("rollback check of ", jobs.size(), " hosts of rollout ",
                                         rollout_id, " (dry run: nothing written)")
                          : absl::StrCat("rolling back ", jobs.size(), " hosts of rollout ",
                                         rollout_id));
  runner.RunBatch(jobs, inv.controller.concurrency, [] { return false; });
  RETURN_IF_ERROR(audit->Flush());
  std::vector<HostOutcome> outcomes;
  for (HostJob* j : jobs) outcomes.push_back(j->outcome);
  if (!opt.json) {
    std::fprintf(out, "\n%s", RecapTable(outcomes).c_str());
    std::fprintf(out, "rollback %sof rollout %s: %s\n", opt.check ? "check " : "",
                 rollout_id.c_str(),
                 opt.check ? "dry run, nothing was written"
                           : (ExitCode(outcomes, false) == 0 ? "hosts restored"
                                                             : "not every host was restored"));
    std::fputs(NextRollbackCommands(rollout_id, outcomes, opt.check, opt.limit).c_str(), out);
  }
  return ExitCode(outcomes, false);
}

}  // namespace mimic::controller
