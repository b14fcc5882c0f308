#!/bin/bash
# N `mimic-agent local` applies at once, each on a fresh copy of one host of a bench fleet
# (bench/make_fleet.sh), with the vs_ansible plan; prints the CPU (task-clock) per host and the
# wall time. N=1 profiles one host's apply; N>1 shows what grows when writers share a disk.
#
# Usage: bash bench/apply_hosts.sh N [AGENT]   env: BENCH_DIR=/tmp/mimic-bench-20 (holds
#        fleetsrc/fleet/h001 and plan.toml), WORK=/tmp/mimic-apply-hosts, CHECK=1 (--check)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:?usage: apply_hosts.sh N [AGENT]}
agent=${2:-${BUILD_DIR:-$here/build}/bin/mimic-agent}
bench=${BENCH_DIR:-/tmp/mimic-bench-20}
work=${WORK:-/tmp/mimic-apply-hosts}
flag=; [ -n "${CHECK:-}" ] && flag=--check
rm -rf "$work"; mkdir -p "$work"
for i in $(seq "$n"); do mkdir -p "$work/$i"; cp -a "$bench/fleetsrc/fleet/h001/." "$work/$i/"; done
sync -f "$work"
t0=$(date +%s.%N)
for i in $(seq "$n"); do
  d=$work/$i
  perf stat -e task-clock -x, -o "$d/perf.txt" "$agent" local $flag --source "$d/wso2mi-4.0.0" \
    --target "$d/wso2mi-4.2.0" --plan "$bench/plan.toml" --state-dir "$d/state" > "$d/out.txt" 2>&1 &
done
wait
wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.3f", b-a}')
failed=0
for i in $(seq "$n"); do grep -q "finished: RUN_CHANGED\|finished: RUN_OK" "$work/$i/out.txt" || failed=$((failed + 1)); done
cat "$work"/*/perf.txt | awk -F, -v n="$n" -v w="$wall" -v f="$failed" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
  '/task-clock/ {t += $1} END {printf "hosts=%d cpu_ms_per_host=%.1f wall_s=%s failed=%d load=%s\n", n, t / n, w, f, l}'
rm -rf "$work"
