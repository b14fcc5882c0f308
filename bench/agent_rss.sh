#!/usr/bin/env bash
# agent_rss.sh -- the memory of one mimic-agent serving mutual TLS (issue 11: idle RSS <= 20 MB).
#
# Idle: RUNS (5) fresh starts of an agent configured as bench/vs_ansible.sh configures its
# agents; each is measured as soon as it logs "listening on port" (the line it prints once it
# serves), from /proc/PID/smaps_rollup (Rss, Pss, Anonymous) and /proc/PID/status (Threads).
# Peak: PEAK_RUNS (1) `mimic run` (apply) of one bench host (~9 MB payload, the vs_ansible plan)
# against a fresh agent, then the agent's VmHWM.
# Prints one line per start, then medians as the last line, key=value (with the size of the
# agent's code, `size`'s text: what it maps, not the file with its debug info).
#
# Environment: BUILD_DIR (./build), RUNS=5, PEAK_RUNS=1, BENCH_DIR=/tmp/mimic-agent-rss,
# FLEET=/tmp/mimic-bench-20/fleetsrc/fleet/h001 (one host's source and target homes; made with
# bench/make_fleet.sh 1 when missing).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
runs=${RUNS:-5}
peak_runs=${PEAK_RUNS:-1}
work=${BENCH_DIR:-/tmp/mimic-agent-rss}
[ -x "$build/bin/mimic" ] && [ -x "$build/bin/mimic-agent" ] ||
  { echo "build first: mimic and mimic-agent are missing in $build/bin" >&2; exit 1; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
fleet=${FLEET:-/tmp/mimic-bench-20/fleetsrc/fleet/h001}
if [ ! -d "$fleet" ]; then
  bash "$here/bench/make_fleet.sh" 1 "$work/fleetsrc" | sed -n 1p
  fleet=$work/fleetsrc/fleet/h001
fi
bash "$here/deploy/make-certs.sh" "$work/certs" h001 >/dev/null

agent_pid=
cleanup() { [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

# start_agent: a fresh state dir and agent; returns once the agent logs that it listens.
start_agent() {
  rm -rf "$work/state-agent" "$work/agent.port" "$work/agent.fifo"
  cat > "$work/agent.toml" <<TOML
listen = "127.0.0.1:0"
state_dir = "$work/state-agent"
allowed_roots = ["$work/run"]
port_file = "$work/agent.port"
executor_threads = 1
allowed_client_subjects = ["mimic-controller"]
[tls]
cert = "$work/certs/h001.pem"
key = "$work/certs/h001.key"
client_ca = "$work/certs/ca.pem"
TOML
  mkfifo "$work/agent.fifo"
  "$build/bin/mimic-agent" --config "$work/agent.toml" 2>"$work/agent.fifo" &
  agent_pid=$!
  exec 3<"$work/agent.fifo"
  local line
  while IFS= read -r line <&3; do
    echo "$line" >> "$work/agent.log"
    [[ $line == *"listening on port"* ]] && break
  done
  [[ ${line:-} == *"listening on port"* ]] || { echo "agent did not start: see $work/agent.log" >&2; exit 1; }
  cat <&3 >> "$work/agent.log" &  # keep draining its stderr
  exec 3<&-
}
stop_agent() { kill "$agent_pid"; wait "$agent_pid" || true; agent_pid=; wait 2>/dev/null || true; }
rollup() { awk -v f="$1" '$1 == f":" {print $2}' "/proc/$agent_pid/smaps_rollup"; }

: > "$work/agent.log"
rss=() pss=() anon=() thr=()
for i in $(seq "$runs"); do
  mkdir -p "$work/run"
  start_agent
  rss+=("$(rollup Rss)"); pss+=("$(rollup Pss)"); anon+=("$(rollup Anonymous)")
  thr+=("$(awk '$1 == "Threads:" {print $2}' "/proc/$agent_pid/status")")
  cp "/proc/$agent_pid/smaps" "$work/idle.smaps"  # the last start's, for a per-mapping look
  echo "idle start $i: Rss ${rss[-1]} KiB, Pss ${pss[-1]} KiB, anonymous ${anon[-1]} KiB, ${thr[-1]} threads"
  stop_agent
done

peaks=()
for i in $(seq "$peak_runs"); do
  rm -rf "$work/run" "$work/state-ctl"
  mkdir -p "$work/run"
  cp -a "$fleet" "$work/run/h001"
  start_agent
  cat > "$work/inventory.toml" <<TOML
[controller]
state_dir = "$work/state-ctl"
ca = "$work/certs/ca.pem"
cert = "$work/certs/controller.pem"
key = "$work/certs/controller.key"
[hosts.h001]
address = "127.0.0.1:$(cat "$work/agent.port")"
environment = "prod"
vars = { source_home = "$work/run/h001/wso2mi-4.0.0", target_home = "$work/run/h001/wso2mi-4.2.0" }
TOML
  sed -n '/^cat > "\$work\/plan.toml"/,/^TOML$/p' "$here/bench/vs_ansible.sh" | sed '1d;$d' > "$work/plan.toml"
  (cd "$work" && "$build/bin/mimic" run --inventory inventory.toml --plan plan.toml > "$work/mimic-run.out" 2>&1) ||
    { tail -20 "$work/mimic-run.out" >&2; exit 1; }
  peaks+=("$(awk '$1 == "VmHWM:" {print $2}' "/proc/$agent_pid/status")")
  echo "run $i: agent peak RSS (VmHWM) ${peaks[-1]} KiB"
  stop_agent
done

echo "runs=$runs idle_rss_kib=$(median "${rss[@]}") idle_pss_kib=$(median "${pss[@]}") idle_anon_kib=$(median "${anon[@]}") threads=$(median "${thr[@]}") run_peak_rss_kib=$(median "${peaks[@]}") agent_text_bytes=$(size "$build/bin/mimic-agent" | awk 'NR == 2 {print $1}')"
