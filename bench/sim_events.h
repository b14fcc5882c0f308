// The events a real agent streams for a no-op migration run (every step "ok", nothing to
// change), made in memory: the simulated fleet (sim_fleet.cc) sends them, the audit benchmark
// (audit_bench.cc) writes them.
#ifndef MIMIC_BENCH_SIM_EVENTS_H_
#define MIMIC_BENCH_SIM_EVENTS_H_

#include "mimic/v1/agent.pb.h"

namespace mimic::bench {

// How many events a no-op run of `plan` has: run_started; per step step_started,
// `logs_per_step` info lines and step_finished; run_finished.
int SimEventCount(const mimic::v1::HostPlan& plan, int logs_per_step);

// Event `seq` (1..SimEventCount) of that run, stamped now.
mimic::v1::Event MakeSimEvent(const mimic::v1::HostPlan& plan, int seq, int logs_per_step);

}  // namespace mimic::bench

#endif  // MIMIC_BENCH_SIM_EVENTS_H_
