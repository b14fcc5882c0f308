#include "bench/sim_events.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mimic::bench {

namespace v1 = ::mimic::v1;

int SimEventCount(const v1::HostPlan& plan, int logs_per_step) {
  return 2 + plan.steps_size() * (2 + logs_per_step);
}

v1::Event MakeSimEvent(const v1::HostPlan& plan, int seq, int logs_per_step) {
  v1::Event e;
  e.set_run_id(plan.run_id());
  e.set_host(plan.host());
  e.set_seq(seq);
  e.set_time_unix_micros(absl::ToUnixMicros(absl::Now()));
  if (seq == 1) {
    v1::RunStarted* s = e.mutable_run_started();
    s->set_agent_version("sim-fleet");
    s->set_hostname(plan.host());
    return e;
  }
  if (seq >= SimEventCount(plan, logs_per_step)) {
    v1::RunFinished* f = e.mutable_run_finished();
    f->set_status(v1::RUN_OK);
    f->set_message("nothing to do (simulated agent)");
    f->set_steps_ok(plan.steps_size());
    f->set_duration_micros(1000);
    return e;
  }
  const int per_step = 2 + logs_per_step;
  const int step = (seq - 2) / per_step;
  const int at = (seq - 2) % per_step;
  const std::string& name = plan.steps(step).name();
  if (at == 0) {
    e.mutable_step_started()->set_step(name);
    e.mutable_step_started()->set_index(step);
  } else if (at == per_step - 1) {
    v1::StepFinished* f = e.mutable_step_finished();
    f->set_step(name);
    f->set_index(step);
    f->set_status(v1::STEP_OK);
    f->set_message("up to date: nothing to change");
    f->set_duration_micros(100);
  } else {
    v1::LogLine* l = e.mutable_log();
    l->set_step(name);
    l->set_level(v1::LOG_INFO);
    l->set_text(absl::StrCat(name, ": checked ", 10 * at, " paths under ", plan.target_home(),
                             "; all as planned"));
  }
  return e;
}

}  // namespace mimic::bench
