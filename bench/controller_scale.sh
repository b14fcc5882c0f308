#!/usr/bin/env bash
# The controller at scale, on a SIMULATED fleet: N agents served by bin/sim-fleet (the real
# mimic.v1.Agent service over mutual TLS, one 127.0.0.1 port per agent, PER_PROCESS agents per
# process), each answering Run at once, from memory, with a real agent's events for a no-op
# migration (the 12 steps a 4.0.0 -> 4.2.0 plan requires, LOGS info lines each: 62 events per
# host). One `mimic run` of the whole
# fleet in one stage at concurrency N, audit on (SQLite with the keyed ledger in the state dir).
# Measures: the rollout's wall time, the controller's peak RSS and CPU, the simulated fleet's
# CPU, the audit events it committed per second of the rollout, the load average; then the
# audit writer alone (bin/audit-bench, same events, no network). Prints a table and, last, one line of key=value figures.
#
# Usage: bash bench/controller_scale.sh [N=2000]
#   env: PER_PROCESS=500 LOGS=3 CONCURRENCY=N BENCH_DIR=/tmp/mimic-scale-N BUILD_DIR=build
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
hosts=${1:-2000}
per_process=${PER_PROCESS:-500}
logs=${LOGS:-3}
conc=${CONCURRENCY:-$hosts}
work=${BENCH_DIR:-/tmp/mimic-scale-$hosts}
for b in mimic sim-fleet audit-bench; do
  [ -x "$build/bin/$b" ] || { echo "build first: $build/bin/$b is missing" >&2; exit 1; }
done
rm -rf "$work"; mkdir -p "$work"; work=$(cd "$work" && pwd)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"  # a listening socket and a connection per simulated agent

bash "$here/deploy/make-certs.sh" "$work/certs" sim-agent >/dev/null
procs=$(( (hosts + per_process - 1) / per_process ))
for p in $(seq "$procs"); do
  n=$(( p < procs ? per_process : hosts - (procs - 1) * per_process ))
  "$build/bin/sim-fleet" --certs "$work/certs" --cert sim-agent --agents "$n" --logs "$logs" \
    --ports-file "$work/ports.$p" 2> "$work/sim.$p.log" &
  pids+=($!)
done
for p in $(seq "$procs"); do
  for _ in $(seq 1200); do [ -s "$work/ports.$p" ] && break; sleep 0.05; done
  [ -s "$work/ports.$p" ] || { echo "sim-fleet $p did not start: $(tail -3 "$work/sim.$p.log")" >&2; exit 1; }
done
{
  echo '[controller]'; echo 'state_dir = "state"'; echo "concurrency = $conc"
  echo 'ca = "certs/ca.pem"'; echo 'cert = "certs/controller.pem"'; echo 'key = "certs/controller.key"'
  i=0
  for p in $(seq "$procs"); do
    while read -r port; do
      i=$((i + 1))
      printf '\n[hosts.s%05d]\naddress = "127.0.0.1:%s"\ntls_server_name = "sim-agent"\nenvironment = "prod"\nvars = { source_home = "/sim/s%05d/wso2mi-4.0.0", target_home = "/sim/s%05d/wso2mi-4.2.0" }\n' \
        "$i" "$port" "$i" "$i"
    done < "$work/ports.$p"
  done
} > "$work/inventory.toml"
steps=(preflight snapshot_target migrate_userstore_config copy_secondary_userstores
       copy_carbonapps copy_registry copy_deployment migrate_datamapper copy_custom_components
       copy_keystores merge_config hl7_transport)
{
  printf '[migration]\npath = "4.0.0->4.2.0"\n'
  for s in "${steps[@]}"; do printf '[[steps]]\nname = "%s"\n' "$s"; done
} > "$work/plan.toml"

now() { date +%s.%N; }
# The simulated fleet's CPU ticks (user + system, all its processes), taken before and after
# the rollout: its start-up (a TLS context per port) is left out.
sim_ticks() {
  local total=0 p
  for p in "${pids[@]}"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$total"
}
sim_ticks0=$(sim_ticks)
load_before=$(cut -d' ' -f1 /proc/loadavg)
t0=$(now)
rc=0
(cd "$work" && /usr/bin/time -f "%M %e %U %S" -o "$work/time.out" ${WRAP:-} "$build/bin/mimic" run \
  --inventory inventory.toml --plan plan.toml > "$work/mimic.out" 2>&1) || rc=$?
t1=$(now)
load_during=$(cut -d' ' -f1 /proc/loadavg)
sim_cpu_s=$(awk -v t="$(( $(sim_ticks) - sim_ticks0 ))" -v h="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/h}')
[ "$rc" -eq 0 ] || { tail -30 "$work/mimic.out"; echo "mimic run exited $rc" >&2; exit 1; }
read -r rss_kib _ user_s sys_s < "$work/time.out"
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
events=$(sqlite3 "$work/state/audit.db" 'SELECT COUNT(*) FROM events')
runs_ok=$(sqlite3 "$work/state/audit.db" "SELECT COUNT(*) FROM runs WHERE status = 'ok'")
expected=$(( hosts * (2 + ${#steps[@]} * (2 + logs)) ))
[ "$events" -eq "$expected" ] && [ "$runs_ok" -eq "$hosts" ] ||
  { echo "audit holds $events events (expected $expected), $runs_ok hosts ok of $hosts" >&2; exit 1; }
rollout_eps=$(awk -v e="$events" -v w="$wall" 'BEGIN{printf "%.0f", e/w}')
(cd "$work" && "$build/bin/mimic" audit verify --inventory inventory.toml > "$work/verify.out" 2>&1) ||
  { cat "$work/verify.out"; echo "the audit does not verify" >&2; exit 1; }

alone=$("$build/bin/audit-bench" --runs "$hosts" --steps "${#steps[@]}" --logs "$logs" --dir "$work/audit-bench" | tail -1)
alone_eps=$(sed -n 's/.* events_per_s=\([0-9]*\).*/\1/p' <<< "$alone")
alone_cpu_eps=$(sed -n 's/.*events_per_cpu_s=\([0-9]*\).*/\1/p' <<< "$alone")
cpu_s=$(awk -v u="$user_s" -v s="$sys_s" 'BEGIN{printf "%.2f", u+s}')

echo
echo "| agents (simulated) | processes | events | rollout wall | controller peak RSS | controller CPU (user+sys) | audit events/s in the rollout | simulated fleet CPU | audit writer alone, events/s (per CPU s) | load avg (1 min) before / after |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
echo "| $hosts | $procs | $events | ${wall} s | $((rss_kib / 1024)) MiB | $cpu_s s | $rollout_eps | $sim_cpu_s s | $alone_eps ($alone_cpu_eps) | $load_before / $load_during |"
echo "agents=$hosts sim_processes=$procs events=$events wall_s=$wall controller_rss_kib=$rss_kib controller_cpu_s=$cpu_s sim_fleet_cpu_s=$sim_cpu_s rollout_events_per_s=$rollout_eps audit_alone_events_per_s=$alone_eps audit_alone_events_per_cpu_s=$alone_cpu_eps load_before=$load_before load_after=$load_during"
