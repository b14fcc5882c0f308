#include "agent/engine/run_manager.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "agent/engine/change_set.h"
#include "agent/engine/file_diffs.h"
#include "agent/engine/run_emitter.h"
#include "agent/engine/snapshot.h"
#include "agent/engine/step.h"
#include "common/base/fs.h"
#include "common/base/ids.h"
#include "common/base/logging.h"
#include "common/base/mutex.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"
#include "common/base/text.h"
#include "common/config/step_params.h"
#include "common/mi/secrets.h"

namespace mimic::agent {
namespace {

using mimic::v1::Event;
using mimic::v1::HostPlan;

// "" when neither home is the other or inside it; else why not. Compared by device and inode
// (each home and every ancestor), so a symlink alias is seen through.
std::string HomesOverlap(const std::string& source, const std::string& target) {
  struct stat s, t;
  if (::stat(source.c_str(), &s) != 0 || ::stat(target.c_str(), &t) != 0) return "";
  auto same = [](const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
  };
  if (same(s, t)) {
    return absl::StrCat("source_home ", source, " and target_home ", target,
                        " are the same directory");
  }
  // Walks up from `inner` ("..", as the kernel resolves it) looking for `outer`.
  auto inside = [&](const std::string& inner, const struct stat& outer) {
    std::string p = inner;
    struct stat cur, prev{};
    for (int depth = 0; depth < 4096; ++depth) {
      p += "/..";
      if (::stat(p.c_str(), &cur) != 0) return false;
      if (same(cur, outer)) return true;
      if (depth > 0 && same(cur, prev)) return false;  // reached "/"
      prev = cur;
    }
    return false;
  };
  if (inside(target, s)) {
    return absl::StrCat("target_home ", target, " is inside source_home ", source);
  }
  if (inside(source, t)) {
    return absl::StrCat("source_home ", source, " is inside target_home ", target);
  }
  return "";
}

// A copy of the plan that is safe to journal and stream: secret parameters hidden.
HostPlan RedactedPlan(const HostPlan& plan) {
  HostPlan out = plan;
  for (mimic::v1::StepSpec& s : *out.mutable_steps()) {
    for (auto& [k, v] : *s.mutable_params()) v = common::RedactText(common::RedactValue(k, v));
    s.set_params_toml(common::RedactText(s.params_toml()));
  }
  for (auto& [k, v] : *out.mutable_vars()) v = common::RedactValue(k, v);
  return out;
}

// The run's secrets by value: its plan's (params, commands, vars) and those the configuration of
// its source and target homes holds (a home outside the allowed roots is not read).
std::unique_ptr<common::SecretScrubber> RunSecrets(const HostPlan& plan,
                                                   const common::PathGuard& guard) {
  auto s = std::make_unique<common::SecretScrubber>();
  common::AddPlanSecrets(plan, s.get());
  for (const std::string& home : {plan.source_home(), plan.target_home()}) {
    if (home.empty()) continue;
    if (absl::StatusOr<std::string> r = guard.Resolve(home); r.ok()) {
      common::AddMiHomeSecrets(*r, s.get());
    }
  }
  return s;
}


}  // namespace

bool ValidRunId(const std::string& id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  for (char c : id) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// RunManager

RunManager::RunManager(RunManagerOptions options, Executor* executor)
    : options_(std::move(options)), executor_(executor), guard_(options_.allowed_roots) {}

RunManager::~RunManager() = default;

std::string RunManager::RunDir(const std::string& run_id) const {
  return common::JoinPath(common::JoinPath(options_.state_dir, "runs"), run_id);
}

std::string RunManager::HomeLockPath(const struct stat& home) const {
  return common::JoinPath(common::JoinPath(options_.state_dir, "locks"),
                          absl::StrCat("home-", home.st_dev, "-", home.st_ino, ".lock"));
}

absl::StatusOr<std::shared_ptr<RunState>> RunManager::Find(const std::string& run_id) {
  common::MutexLock l(&mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return absl::NotFoundError(absl::StrCat("no run ", run_id, " on this agent"));
  return it->second;
}

absl::StatusOr<std::shared_ptr<RunState>> RunManager::StartOrGet(const HostPlan& plan,
                                                                 bool* existed) {
  absl::StatusOr<std::shared_ptr<RunState>> run = Start(plan, existed);
  if (run.ok()) return run;
  // A refusal may quote the plan (a parameter's value, a path): it is logged by the agent and
  // sent to the controller, so the plan's secrets are scrubbed from it as from its events.
  common::SecretScrubber secrets;
  common::AddPlanSecrets(plan, &secrets);
  return absl::Status(run.status().code(),
                      common::RedactText(secrets.Scrub(std::string(run.status().message()))));
}

absl::StatusOr<std::shared_ptr<RunState>> RunManager::Start(const HostPlan& in, bool* existed) {
  *existed = false;
  if (!ValidRunId(in.run_id())) {
    return absl::InvalidArgumentError(
        absl::StrCat("run_id '", in.run_id(), "' must be 1-128 characters of [A-Za-z0-9._-]"));
  }
  {
    common::MutexLock l(&mu_);
    auto it = runs_.find(in.run_id());
    if (it != runs_.end()) {
      *existed = true;
      return it->second;
    }
  }
  HostPlan plan = in;
  if (plan.mode() == mimic::v1::MODE_UNSPECIFIED) plan.set_mode(mimic::v1::MODE_APPLY);
  if (plan.mode() == mimic::v1::MODE_ROLLBACK) {
    if (!ValidRunId(plan.rollback_run_id())) {
      return absl::InvalidArgumentError("rollback needs the run_id of the run to undo");
    }
    auto orig = Find(plan.rollback_run_id());
    std::vector<Event> first;
    if (orig.ok()) {
      bool fin = false;
      (*orig)->Events(1, 1, &first, &fin);
      if (!(*orig)->finished()) {
        return absl::FailedPreconditionError("run " + plan.rollback_run_id() + " is still running");
      }
    }
    if (!first.empty() && first[0].seq() == 1 && first[0].has_run_started()) {
      const HostPlan& op = first[0].run_started().plan();
      if (op.mode() != mimic::v1::MODE_APPLY) {
        return absl::FailedPreconditionError(
            absl::StrCat("run ", plan.rollback_run_id(), " wrote nothing (it was a ",
                         op.mode() == mimic::v1::MODE_CHECK ? "check" : "rollback",
                         " run); nothing to roll back"));
      }
      if (plan.target_home().empty()) plan.set_target_home(op.target_home());
      if (plan.source_home().empty()) plan.set_source_home(op.source_home());
    } else {
      // The run's start record is damaged (or its whole journal): a damaged record never costs
      // the run its rollback. Its snapshot says where it wrote and what to restore.
      const std::string dir = RunDir(plan.rollback_run_id());
      absl::StatusOr<std::string> home = SnapshotTargetHome(dir);
      if (!home.ok()) {
        if (!orig.ok() && absl::IsNotFound(home.status())) return orig.status();
        return absl::FailedPreconditionError(absl::StrCat(
            "run ", plan.rollback_run_id(), "'s journal has no readable start record and its "
            "snapshot cannot say where it wrote: ", home.status().message()));
      }
      if (!plan.target_home().empty() && plan.target_home() != *home) {
        return absl::InvalidArgumentError(absl::StrCat(
            "run ", plan.rollback_run_id(), " wrote ", *home, ", not ", plan.target_home()));
      }
      plan.set_target_home(*home);
      LOG(WARNING) << "run " << plan.rollback_run_id()
                   << ": no readable start record in its journal; rolling back from its "
                      "snapshot (target home "
                   << *home << ")";
    }
  } else {
    if (plan.source_home().empty() || plan.target_home().empty()) {
      return absl::InvalidArgumentError("the plan needs source_home and target_home");
    }
    for (const mimic::v1::StepSpec& s : plan.steps()) {
      if (s.name() == "exec" && !options_.allow_exec) {
        return absl::PermissionDeniedError(
            "the plan has an exec step (an operator command) and this agent does not allow it: "
            "set allow_exec = true in its agent.toml");
      }
      if (options_.make_step(s.name()) == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("unknown step '", s.name(), "'; known: ",
                                                       absl::StrJoin(options_.known_steps, ", ")));
      }
      // The schema the controller checked the plan with: a plan from elsewhere is refused
      // before anything runs, with the same message.
      RETURN_IF_ERROR(common::CheckStepParams(
          s.name(), std::map<std::string, std::string>(s.params().begin(), s.params().end()),
          !s.params_toml().empty()));
    }
    ASSIGN_OR_RETURN(std::string src, guard_.Resolve(plan.source_home()));
    plan.set_source_home(src);
  }
  ASSIGN_OR_RETURN(std::string dst, guard_.Resolve(plan.target_home()));
  plan.set_target_home(dst);
  // Homes are compared by device and inode: a symlink or bind-mount alias names the same home.
  if (plan.mode() != mimic::v1::MODE_ROLLBACK) {
    if (std::string overlap = HomesOverlap(plan.source_home(), plan.target_home());
        !overlap.empty()) {
      return absl::InvalidArgumentError(overlap);
    }
  }

  // One run at a time per MI home. Check runs write nothing, so they take no lock.
  int lock_fd = -1;
  if (plan.mode() != mimic::v1::MODE_CHECK && !plan.rollback_check()) {
    std::string lock_dir = common::JoinPath(options_.state_dir, "locks");
    RETURN_IF_ERROR(common::MakeDirs(lock_dir, 0700));
    struct stat target_st;
    if (::stat(plan.target_home().c_str(), &target_st) != 0) {
      return absl::NotFoundError(absl::StrCat("target_home ", plan.target_home(), ": ",
                                              std::strerror(errno)));
    }
    std::string lock_path = HomeLockPath(target_st);
    lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) return absl::InternalError("cannot open lock " + lock_path);
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      auto holder = common::ReadFile(lock_path);
      ::close(lock_fd);
      return absl::FailedPreconditionError(absl::StrCat(
          "another run (", holder.ok() ? *holder : "?", ") is working on ", plan.target_home()));
    }
    if (::ftruncate(lock_fd, 0) == 0) {
      ssize_t w = ::pwrite(lock_fd, plan.run_id().data(), plan.run_id().size(), 0);
      (void)w;
    }
  }

  const bool journaled = plan.mode() != mimic::v1::MODE_CHECK && !plan.rollback_check();
  auto run = std::make_shared<RunState>(
      plan.run_id(), RunDir(plan.run_id()),
      journaled ? common::JoinPath(RunDir(plan.run_id()), "journal") : "");
  {
    common::MutexLock l(&mu_);
    if (shutting_down_) {
      if (lock_fd >= 0) ::close(lock_fd);
      return absl::UnavailableError("the agent is shutting down; no new run starts");
    }
    PruneMemoryOnlyRuns();
    auto [it, inserted] = runs_.emplace(plan.run_id(), run);
    if (!inserted) {  // lost a race with an identical request
      if (lock_fd >= 0) ::close(lock_fd);
      *existed = true;
      return it->second;
    }
    ++queued_;
  }
  executor_->Schedule([this, run, plan, lock_fd] { Execute(run, plan, lock_fd); });
  return run;
}

absl::Status RunManager::Cancel(const std::string& run_id, std::string* state) {
  ASSIGN_OR_RETURN(auto run, Find(run_id));
  if (run->finished()) {
    *state = "finished";
    return absl::OkStatus();
  }
  run->RequestCancel();
  *state = "cancelling";
  return absl::OkStatus();
}

std::vector<mimic::v1::RunSummary> RunManager::List(const std::string& rollout_id) {
  std::vector<mimic::v1::RunSummary> out;
  common::MutexLock l(&mu_);
  for (auto& [id, run] : runs_) {
    mimic::v1::RunSummary s = run->Summary();
    if (rollout_id.empty() || s.rollout_id() == rollout_id) out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.started_unix_micros() > b.started_unix_micros();
  });
  return out;
}

void RunManager::PruneMemoryOnlyRuns() {
  std::vector<std::pair<int64_t, std::string>> finished;  // (finished at, id)
  for (auto& [id, run] : runs_) {
    if (run->journal_path().empty() && run->finished()) {
      finished.emplace_back(run->Summary().finished_unix_micros(), id);
    }
  }
  if (finished.size() < kMaxMemoryOnlyRuns) return;
  std::sort(finished.begin(), finished.end());
  for (size_t i = 0; i + kMaxMemoryOnlyRuns <= finished.size(); ++i) runs_.erase(finished[i].second);
}

size_t RunManager::EventsInMemory() {
  common::MutexLock l(&mu_);
  size_t n = 0;
  for (auto& [id, run] : runs_) n += run->events_in_memory();
  return n;
}

void RunManager::WaitFinished(const std::shared_ptr<RunState>& run) {
  common::Mutex mu;
  bool done = false;
  int id = run->Subscribe([&] {
    common::MutexLock l(&mu);
    done = run->finished();
  });
  {
    common::MutexLock l(&mu);
    done = done || run->finished();
    mu.Await(absl::Condition(&done));
  }
  run->Unsubscribe(id);
}

// ---------------------------------------------------------------------------------------------
// Execution

namespace {

int64_t Micros(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               since)
      .count();
}

}  // namespace

int RunManager::BeginShutdown() {
  common::MutexLock l(&mu_);
  shutting_down_ = true;
  return queued_;
}

int RunManager::InterruptRunning() {
  common::MutexLock l(&mu_);
  int n = 0;
  for (auto& [id, run] : runs_) {
    if (run->finished()) continue;
    run->RequestCancel(/*interrupt=*/true);
    ++n;
  }
  return n;
}

bool RunManager::WaitAllFinished(absl::Time deadline) {
  std::vector<std::shared_ptr<RunState>> going;
  {
    common::MutexLock l(&mu_);
    for (auto& [id, run] : runs_) {
      if (!run->finished()) going.push_back(run);
    }
  }
  for (const std::shared_ptr<RunState>& run : going) {
    common::Mutex mu;
    bool done = false;
    int id = run->Subscribe([&] {
      common::MutexLock l(&mu);
      done = run->finished();
    });
    bool in_time;
    {
      common::MutexLock l(&mu);
      done = done || run->finished();
      in_time = mu.AwaitWithDeadline(absl::Condition(&done), deadline);
    }
    run->Unsubscribe(id);
    if (!in_time) return false;
  }
  return true;
}

void RunManager::Execute(std::shared_ptr<RunState> run, HostPlan plan, int lock_fd) {
  bool dropped = false;  // queued when the agent began to shut down: not run
  {
    common::MutexLock l(&mu_);
    --queued_;
    dropped = shutting_down_;
  }
  const bool check = plan.mode() == mimic::v1::MODE_CHECK ||
                     (plan.mode() == mimic::v1::MODE_ROLLBACK && plan.rollback_check());
  const auto run_start = std::chrono::steady_clock::now();
  std::unique_ptr<Journal> journal;
  std::unique_ptr<Snapshot> snapshot;
  absl::Status setup = absl::OkStatus();
  if (!check) {
    // Check runs leave no trace on the host: their events live in memory only.
    auto j = Journal::Open(common::JoinPath(run->run_dir(), "journal"));
    if (j.ok()) {
      journal = std::move(*j);
      auto s = Snapshot::Open(run->run_dir(), plan.target_home());
      if (s.ok()) {
        snapshot = std::move(*s);
      } else {
        setup = s.status();
      }
    } else {
      setup = j.status();
    }
  }
  Emitter em(run.get(), plan.host(), std::move(journal), options_.state_dir,
             RunSecrets(plan, guard_), options_.log_flush_delay);
  // --diff: every diff line redacted by key pattern, then by the run's secret values.
  FileDiffOptions diff_options;
  diff_options.filter_line = [&em](std::string_view line) {
    return em.secrets().Scrub(common::RedactText(line));
  };

  Event started;
  *started.mutable_run_started()->mutable_plan() = RedactedPlan(plan);
  started.mutable_run_started()->set_agent_version(kAgentVersion);
  started.mutable_run_started()->set_hostname(common::Hostname());
  (void)em.Emit(started);  // on a journal error em.ok() turns false and the run stops

  mimic::v1::RunFinished fin;
  // `durable`: kWithNext when the next step starts right after: its start's sync covers this
  // end too (one journal sync per step boundary); the end is streamed only then.
  auto finish_step = [&](mimic::v1::StepFinished& sf,
                         Emitter::Durable durable = Emitter::Durable::kNow) {
    Event e;
    *e.mutable_step_finished() = sf;
    const bool emitted = em.Emit(e, durable);
    if (!emitted) {  // the journal failed: the step fails, and says why, from memory
      sf.set_status(mimic::v1::STEP_FAILED);
      sf.set_message(em.Failure());
      *e.mutable_step_finished() = sf;
      em.EmitLastWord(e);
    }
    switch (sf.status()) {
      case mimic::v1::STEP_OK: fin.set_steps_ok(fin.steps_ok() + 1); break;
      case mimic::v1::STEP_CHANGED: fin.set_steps_changed(fin.steps_changed() + 1); break;
      case mimic::v1::STEP_SKIPPED: fin.set_steps_skipped(fin.steps_skipped() + 1); break;
      default: fin.set_steps_failed(fin.steps_failed() + 1); break;
    }
  };

  bool cancelled = false;
  if (dropped) {
    fin.set_message("not run: the agent shut down before the run started; nothing was changed");
    em.Log("", LogLevel::kWarning, fin.message());
  } else if (!setup.ok()) {
    em.Log("", LogLevel::kError, std::string(setup.message()));
    fin.set_steps_failed(1);
    fin.set_message("cannot prepare the run: " + std::string(setup.message()));
  } else if (plan.mode() == mimic::v1::MODE_ROLLBACK) {
    const std::string step_name = "rollback";
    Event ss;
    ss.mutable_step_started()->set_step(step_name);
    auto t0 = std::chrono::steady_clock::now();
    mimic::v1::StepFinished sf;
    sf.set_step(step_name);
    auto cs = PlanRollback(RunDir(plan.rollback_run_id()), plan.force());
    absl::Status st = cs.status();
    if (st.ok() && !em.Emit(ss)) st = absl::UnavailableError(em.Failure());
    if (st.ok()) {  // the snapshot manifest is ours, but confinement is checked all the same
      for (const FileOp& op : cs->ops) {
        if (auto r = guard_.Resolve(op.path); !r.ok()) {
          st = r.status();
          break;
        }
      }
    }
    if (st.ok()) {
      std::vector<mimic::v1::FileChange> applied;
      std::map<std::string, std::string> diffs;  // before anything is restored
      if (plan.diffs()) diffs = DiffChangeSet(*cs, nullptr, diff_options);
      if (check) {
        applied = DescribeChangeSet(*cs);
      } else {
        st = ApplyChangeSet(*cs, plan.target_home(), *snapshot, &applied, run->cancel_token());
      }
      AttachDiffs(diffs, &applied);
      for (auto& c : applied) *sf.add_changes() = c;
      sf.set_status(applied.empty() ? mimic::v1::STEP_OK : mimic::v1::STEP_CHANGED);
      sf.set_message(applied.empty() ? "target already as before run " + plan.rollback_run_id()
                                     : absl::StrCat(applied.size(),
                                                    check ? " paths would be restored from run "
                                                          : " paths restored from run ",
                                                    plan.rollback_run_id(), "'s snapshot"));
    }
    if (!st.ok()) {
      if (run->cancel_requested()) cancelled = true;
      sf.set_status(mimic::v1::STEP_FAILED);
      sf.set_message(common::RedactText(std::string(st.message())));
    }
    sf.set_duration_micros(Micros(t0));
    finish_step(sf);
  } else {
    StepContext base;
    base.plan = &plan;
    base.source_home = plan.source_home();
    base.target_home = plan.target_home();
    base.guard = &guard_;
    base.check = check;
    base.state_dir = options_.state_dir;
    base.run_dir = run->run_dir();
    base.cancel = run->cancel_token();
    RunMemo memo;
    base.memo = &memo;
    // Check mode: what earlier steps planned, so later steps plan against it (exact dry run).
    std::map<std::string, FileOp> overlay;
    if (check) base.overlay = &overlay;
    auto add_to_overlay = [](const ChangeSet& cs, std::map<std::string, FileOp>* o) {
      for (const FileOp& op : cs.ops) {
        if (op.kind == FileOp::Kind::kWrite || op.kind == FileOp::Kind::kDelete) (*o)[op.path] = op;
      }
    };
    // The plans snapshot_target made of the later steps (check mode, over the planned writes
    // of the steps before each), with their log lines and the facts they were made with. In a
    // check run each is exactly the plan the step makes when its turn comes, so it is used
    // instead of planning again; in an apply run too for a step whose plan does not depend on
    // the mode (Step::PlansFilesOnly): what --check reported is what is applied, each op still
    // guarded by its expected sha256. Other steps plan again against the disk.
    struct Preplanned {
      StepPlan plan;
      std::vector<std::pair<LogLevel, std::string>> logs;
      std::string source_version, target_version;
    };
    std::map<int, Preplanned> preplanned;
    for (int i = 0; i < plan.steps_size(); ++i) {
      if (options_.before_step) options_.before_step(plan.run_id(), i);
      if (run->cancel_requested()) {
        cancelled = true;
        break;
      }
      if (!em.ok()) break;  // the journal failed: no further step starts
      const mimic::v1::StepSpec& spec = plan.steps(i);
      Event ss;
      ss.mutable_step_started()->set_step(spec.name());
      ss.mutable_step_started()->set_index(i);
      if (!em.Emit(ss)) break;
      auto t0 = std::chrono::steady_clock::now();
      mimic::v1::StepFinished sf;
      sf.set_step(spec.name());
      sf.set_index(i);
      std::unique_ptr<Step> step = options_.make_step(spec.name());
      StepContext ctx = base;
      ctx.spec = &spec;
      ctx.log = [&em, &spec](LogLevel l, const std::string& text) { em.Log(spec.name(), l, text); };
      ctx.paths_of_later_steps = [&, i]() -> absl::StatusOr<std::vector<std::string>> {
        std::set<std::string> paths;
        std::map<std::string, FileOp> later_overlay = overlay;
        for (int j = i + 1; j < plan.steps_size(); ++j) {
          StepContext later = base;
          later.spec = &plan.steps(j);
          later.check = true;
          later.overlay = &later_overlay;
          std::vector<std::pair<LogLevel, std::string>> logs;
          later.log = [&logs](LogLevel l, const std::string& text) { logs.emplace_back(l, text); };
          std::unique_ptr<Step> later_step = options_.make_step(plan.steps(j).name());
          ASSIGN_OR_RETURN(StepPlan p, later_step->Plan(later));
          for (const FileOp& op : p.changes.ops) paths.insert(op.path);
          add_to_overlay(p.changes, &later_overlay);
          if (check || later_step->PlansFilesOnly()) {
            preplanned[j] = Preplanned{std::move(p), std::move(logs), base.source_version,
                                       base.target_version};
          }
        }
        return std::vector<std::string>(paths.begin(), paths.end());
      };
      // An apply step that may act beyond its plan (exec, verify, ...) may change what the
      // later steps would plan: they plan again after it.
      const bool drop_preplanned_after = !check && !preplanned.empty() && !step->PlansFilesOnly();
      absl::StatusOr<StepPlan> p;
      if (auto pre = preplanned.find(i);
          pre != preplanned.end() && pre->second.source_version == base.source_version &&
          pre->second.target_version == base.target_version) {
        for (const auto& [level, text] : pre->second.logs) ctx.log(level, text);
        p = std::move(pre->second.plan);
      } else {
        p = step->Plan(ctx);
      }
      preplanned.erase(i);
      if (drop_preplanned_after) preplanned.clear();
      if (!check && !step->ChangesOnlyItsChangeSet()) memo.Clear();
      absl::Status st = p.status();
      if (st.ok()) {
        for (const auto& [k, v] : p->facts) {
          // Later steps plan with them; RunFinished carries them to the controller.
          if (k == "source_version") {
            base.source_version = v;
            fin.set_source_version(v);
          }
          if (k == "target_version") {
            base.target_version = v;
            fin.set_target_version(v);
          }
        }
        std::vector<mimic::v1::FileChange> changes;
        if (!em.ok()) {
          // The journal failed while the step planned (its log lines): write nothing.
          st = absl::UnavailableError(em.Failure());
        } else if (p->forced_status == mimic::v1::STEP_FAILED) {
          st = absl::FailedPreconditionError(p->message);
        } else if (check) {
          changes = DescribeChangeSet(p->changes);
          if (plan.diffs()) AttachDiffs(DiffChangeSet(p->changes, &overlay, diff_options), &changes);
          add_to_overlay(p->changes, &overlay);
        } else {
          std::map<std::string, std::string> diffs;  // from the bytes before the step writes
          if (plan.diffs()) diffs = DiffChangeSet(p->changes, nullptr, diff_options);
          st = snapshot->SaveAll(p->snapshot_paths);  // one manifest fsync for all
          if (st.ok()) {
            st = ApplyChangeSet(p->changes, plan.target_home(), *snapshot, &changes,
                                run->cancel_token());
          }
          AttachDiffs(diffs, &changes);
        }
        for (auto& c : changes) *sf.add_changes() = c;
        for (const auto& c : p->changes.config_changes) *sf.add_config_changes() = c;
        if (st.ok()) {
          if (p->forced_status == mimic::v1::STEP_SKIPPED) {
            sf.set_status(mimic::v1::STEP_SKIPPED);
          } else if (p->forced_status == mimic::v1::STEP_CHANGED) {
            sf.set_status(mimic::v1::STEP_CHANGED);  // exec: ran, or would run, a command
          } else {
            sf.set_status(changes.empty() ? mimic::v1::STEP_OK : mimic::v1::STEP_CHANGED);
          }
          sf.set_message(common::RedactText(p->message));
        }
      }
      // A step that failed once the run was told to stop was cut by the cancel (its
      // subprocess ended, its loop left): the run ends CANCELLED / INTERRUPTED, not FAILED.
      const bool cut = !st.ok() && run->cancel_requested();
      if (!st.ok()) {
        sf.set_status(mimic::v1::STEP_FAILED);
        sf.set_message(common::RedactText(std::string(st.message())));
        em.Log(spec.name(), cut ? LogLevel::kWarning : LogLevel::kError, sf.message());
      }
      sf.set_duration_micros(Micros(t0));
      const bool next_step_starts =
          !cut && sf.status() != mimic::v1::STEP_FAILED && i + 1 < plan.steps_size();
      finish_step(sf, next_step_starts ? Emitter::Durable::kWithNext : Emitter::Durable::kNow);
      if (cut) {
        cancelled = true;
        fin.set_message(absl::StrCat("stopped during step ", spec.name(), ": ", sf.message()));
        break;
      }
      if (sf.status() == mimic::v1::STEP_FAILED) {
        fin.set_message(absl::StrCat("step ", spec.name(), " failed: ", sf.message()));
        break;
      }
    }
  }

  if (!em.ok()) {
    fin.set_status(mimic::v1::RUN_FAILED);
    fin.set_message(em.Failure());
  } else if (dropped) {
    fin.set_status(mimic::v1::RUN_INTERRUPTED);
  } else if (cancelled) {
    const bool interrupted = run->interrupt_requested();
    fin.set_status(interrupted ? mimic::v1::RUN_INTERRUPTED : mimic::v1::RUN_CANCELLED);
    const std::string why = interrupted ? "interrupted: the agent is stopping"
                                        : "cancelled by the operator";
    fin.set_message(absl::StrCat(
        why, "; ", fin.message().empty() ? "stopped between steps" : fin.message(),
        "; the steps before were completed: roll the run back from its snapshot or run the "
        "plan again"));
  } else if (fin.steps_failed() > 0) {
    fin.set_status(mimic::v1::RUN_FAILED);
  } else if (fin.steps_changed() > 0) {
    fin.set_status(mimic::v1::RUN_CHANGED);
  } else {
    fin.set_status(mimic::v1::RUN_OK);
  }
  fin.set_duration_micros(Micros(run_start));
  Event fe;
  *fe.mutable_run_finished() = fin;
  if (lock_fd >= 0) ::close(lock_fd);  // release before the last event: a follow-up may start
  em.EmitLastWord(fe);
}

}  // namespace mimic::agent
