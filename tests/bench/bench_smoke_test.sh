#!/usr/bin/env bash
# The shell benchmarks still run and still print their figures: each on a tiny fleet, then its
# last line (key=value) must hold every key with a number ("-" where a part was skipped on
# purpose). Nothing is timed or compared: speed is judged by running the benchmarks by hand
# (bench/README.md), never here.
# Usage: bash tests/bench/bench_smoke_test.sh SOURCE_DIR BUILD_DIR [FIXTURES_DIR]
# (merge-bench needs FIXTURES_DIR's 4.2.0 deployment-full.toml and is skipped without it)
set -euo pipefail
src=${1:?source dir} build=${2:?build dir} fixtures=${3:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/mimic-bench-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
export BUILD_DIR=$build
fails=0

# expect NAME LINE KEY[=-]...: each KEY present with a number; KEY=- also takes "-".
expect() {
  local name=$1 line=$2 spec key dash v before=$fails
  shift 2
  for spec in "$@"; do
    key=${spec%=-}; dash=; [ "$spec" != "$key" ] && dash=1
    v=$(tr ' ' '\n' <<<"$line" | sed -n "s/^$key=//p" | head -1)
    if [ -z "$v" ]; then
      echo "FAIL $name: no $key= in: $line"; fails=$((fails + 1))
    elif ! [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] && ! { [ -n "$dash" ] && [ "$v" = - ]; }; then
      echo "FAIL $name: $key=$v is not a number"; fails=$((fails + 1))
    fi
  done
  [ "$fails" -eq "$before" ] && echo "ok $name"
  return 0
}

# Two hosts of 2 small CApps and 2 APIs, real agents over mutual TLS, Ansible skipped.
out=$(BENCH_DIR=$work/va SKIP_ANSIBLE=1 TRIALS=1 FLEET_OPTS="--capps 2 --capp-kb 8 --apis 2" \
      bash "$src/bench/vs_ansible.sh" 2 2>&1) || { echo "$out" | tail -20; exit 1; }
expect vs_ansible "$(tail -1 <<<"$out")" hosts trials cp_s ansible_s=- check_s apply_s cat_s \
  ratio_vs_ansible=- ratio_vs_cp check_vs_cat sha256_s sha256_vs_cat check_vs_sha256 \
  controller_rss_kib agent_idle_rss_kib agent_peak_rss_kib cat_cpu_s sha256_cpu_s \
  check_controller_cpu_s check_agents_cpu_s apply_controller_cpu_s apply_agents_cpu_s load

# Ten simulated agents in one process.
out=$(BENCH_DIR=$work/scale PER_PROCESS=10 bash "$src/bench/controller_scale.sh" 10 2>&1) ||
  { echo "$out" | tail -20; exit 1; }
expect controller_scale "$(tail -1 <<<"$out")" agents sim_processes events wall_s \
  controller_rss_kib controller_cpu_s sim_fleet_cpu_s rollout_events_per_s \
  audit_alone_events_per_s audit_alone_events_per_cpu_s load_before load_after

# One start and one apply of one host of the fleet above.
mkdir -p "$work/rss"
out=$(BENCH_DIR=$work/rss RUNS=1 PEAK_RUNS=1 FLEET=$work/va/fleetsrc/fleet/h001 \
      bash "$src/bench/agent_rss.sh" 2>&1) || { echo "$out" | tail -20; exit 1; }
expect agent_rss "$(tail -1 <<<"$out")" runs idle_rss_kib idle_pss_kib idle_anon_kib threads \
  run_peak_rss_kib agent_text_bytes

catalogue=$fixtures/mi/4.2.0/repository/resources/conf/deployment-full.toml
if [ -n "$fixtures" ] && [ -f "$catalogue" ]; then
  out=$("$build/bin/merge-bench" "$catalogue" 5 2>&1) || { echo "$out" | tail -20; exit 1; }
  expect merge_bench "$(tail -1 <<<"$out")" merge_changes merge_median_ms merge_worst_ms \
    merge_cpu_median_ms runs
else
  echo "skip merge_bench: no $catalogue (WSO2's catalogue is a fixture, not part of a clone)"
fi

[ "$fails" -eq 0 ] || { echo "$fails problem(s)"; exit 1; }
echo "bench smoke: all benchmarks ran and printed their figures"
