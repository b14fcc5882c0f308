// The audit writer alone (controller/audit, SQLite, keyed HMAC ledger): one rollout of `runs`
// runs of a no-op migration (bench/sim_events.h: `steps` steps, `logs` log lines each), every
// event appended from `producers` threads as the controller's gRPC threads do, then Flush.
// Prints events/s for the appends up to the last commit (per wall second and per CPU second of
// the process), then checks the audit (VerifyAudit:
// ledger macs, chains, replayed tables) and prints its time too. Last line: key=value figures.
//
// Usage: audit-bench [--runs 2000] [--steps 10] [--logs 3] [--producers 4] [--dir DIR]
//   DIR (default a fresh folder under $TMPDIR) gets audit.db and audit.key; removed after.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/sim_events.h"
#include "common/base/fs.h"
#include "controller/audit/audit.h"

namespace {

namespace v1 = ::mimic::v1;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU seconds this process has used (every thread).
double CpuSeconds() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int Fail(const std::string& what, const absl::Status& st) {
  std::fprintf(stderr, "audit-bench: %s: %s\n", what.c_str(), std::string(st.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 2000, steps = 10, logs = 3, producers = 4;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int n = std::atoi(argv[i + 1]);
    if (flag == "--runs") runs = std::max(1, n);
    else if (flag == "--steps") steps = std::max(1, n);
    else if (flag == "--logs") logs = std::max(0, n);
    else if (flag == "--producers") producers = std::max(1, n);
    else if (flag == "--dir") dir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: audit-bench [--runs N] [--steps N] [--logs N] "
                           "[--producers N] [--dir DIR]\n");
      return 2;
    }
  }
  const bool own_dir = dir.empty();
  if (own_dir) {
    std::string tmpl = absl::StrCat(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                                    "/audit-bench-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) return Fail("mkdtemp", absl::InternalError(tmpl));
    dir = tmpl;
  } else if (absl::Status st = mimic::common::MakeDirs(dir, 0700); !st.ok()) {
    return Fail(dir, st);
  }
  const std::string db = dir + "/audit.db";
  int code = 0;
  {
    auto audit = mimic::controller::Audit::Open(db);
    if (!audit.ok()) return Fail("open " + db, audit.status());
    const std::string rollout = "r-20261130-100000-000001";
    mimic::controller::RolloutRecord r;
    r.id = rollout;
    r.plan_path = "plan.toml";
    r.plan_sha256 = std::string(64, 'a');
    r.inventory_path = "inventory.toml";
    r.os_user = "bench";
    if (absl::Status st = (*audit)->BeginRollout(r); !st.ok()) return Fail("begin", st);
    std::vector<v1::HostPlan> plans(runs);
    for (int i = 0; i < runs; ++i) {
      v1::HostPlan& p = plans[i];
      p.set_host(absl::StrCat("sim", i));
      p.set_run_id(absl::StrCat(rollout, ".", p.host()));
      p.set_rollout_id(rollout);
      p.set_target_home(absl::StrCat("/opt/", p.host(), "/wso2mi-4.2.0"));
      for (int s = 0; s < steps; ++s) p.add_steps()->set_name(absl::StrCat("step", s));
      if (absl::Status st = (*audit)->RegisterRun(p.run_id(), rollout, p.host(), "prod", 0,
                                                  v1::MODE_APPLY);
          !st.ok()) {
        return Fail("register", st);
      }
    }
    const int per_run = mimic::bench::SimEventCount(plans[0], logs);
    const int64_t total = static_cast<int64_t>(runs) * per_run;
    // Events made ahead, so the clock measures the audit, not the event maker.
    std::vector<std::vector<v1::Event>> events(producers);
    for (int i = 0; i < runs; ++i) {
      for (int seq = 1; seq <= per_run; ++seq) {
        events[i % producers].push_back(mimic::bench::MakeSimEvent(plans[i], seq, logs));
      }
    }
    std::atomic<bool> failed{false};
    const double cpu0 = CpuSeconds();
    const Clock::time_point t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < producers; ++t) {
      threads.emplace_back([&, t] {
        for (const v1::Event& e : events[t]) {
          if (!(*audit)->AppendEvent(rollout, e).ok()) failed = true;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    absl::Status flushed = (*audit)->Flush();
    const Clock::time_point t1 = Clock::now();
    const double cpu = CpuSeconds() - cpu0;
    if (failed || !flushed.ok()) return Fail("append", flushed);
    auto count = (*audit)->EventCount(rollout);
    const Clock::time_point t2 = Clock::now();
    auto verified = (*audit)->VerifyAudit(rollout);
    const Clock::time_point t3 = Clock::now();
    if (!verified.ok()) return Fail("verify", verified.status());
    const double write_s = Seconds(t0, t1);
    const double rate = total / write_s;
    // Per CPU second too: on a shared machine the wall time is mostly other processes' turn.
    const double cpu_rate = cpu > 0 ? total / cpu : 0;
    std::printf("| runs | events | write (wall) | events/s (wall) | CPU | events per CPU s | "
                "verify | audit ok |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    std::printf("| %d | %lld | %.3f s | %.0f | %.3f s | %.0f | %.3f s | %s |\n", runs,
                static_cast<long long>(total), write_s, rate, cpu, cpu_rate, Seconds(t2, t3),
                verified->ok ? "yes" : verified->problem.c_str());
    std::printf("runs=%d events=%lld stored=%lld write_s=%.3f events_per_s=%.0f write_cpu_s=%.3f "
                "events_per_cpu_s=%.0f verify_s=%.3f verify_ok=%d\n",
                runs, static_cast<long long>(total),
                static_cast<long long>(count.ok() ? *count : -1), write_s, rate, cpu, cpu_rate,
                Seconds(t2, t3), verified->ok ? 1 : 0);
    if (!verified->ok || !count.ok() || *count != total) code = 1;
  }
  if (own_dir) {
    std::remove((dir + "/audit.db").c_str());
    std::remove((dir + "/audit.db-wal").c_str());
    std::remove((dir + "/audit.db-shm").c_str());
    std::remove((dir + "/audit.key").c_str());
    rmdir(dir.c_str());
  }
  return code;
}
