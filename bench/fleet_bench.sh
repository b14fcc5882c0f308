#!/usr/bin/env bash
# Fleet benchmark: N real mimic-agent processes on 127.0.0.1 (mutual TLS), each with its own MI
# 4.0.0 source and fresh 4.2.0 target made by mimic's generator (bin/make-mi-home), and one
# `mimic run` migrating them all in one stage. Prints wall time and the controller's peak RSS
# for the check run and the real run, and the per-host rate.
# Usage: bash bench/fleet_bench.sh [HOSTS=50] [CONCURRENCY=50]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
hosts=${1:-50}
conc=${2:-50}
build=${BUILD_DIR:-$here/build}
work=$(mktemp -d /tmp/mimic-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

[ -x "$build/bin/mimic" ] && [ -x "$build/bin/make-mi-home" ] ||
  { echo "build first: bash tests/run-all.sh"; exit 1; }
names=(); for i in $(seq -w 1 "$hosts"); do names+=("b$i"); done
bash "$here/deploy/make-certs.sh" "$work/certs" "${names[@]}" >/dev/null
"$build/bin/make-mi-home" 4.0.0 "$work/pristine/src" --profile source --hostname bench
"$build/bin/make-mi-home" 4.2.0 "$work/pristine/tgt" --profile target --hostname bench
{
  echo '[controller]'; echo 'state_dir = "state"'; echo "concurrency = $conc"
  echo 'ca = "certs/ca.pem"'; echo 'cert = "certs/controller.pem"'; echo 'key = "certs/controller.key"'
} > "$work/inventory.toml"
for h in "${names[@]}"; do
  mkdir -p "$work/fleet/$h"
  cp -a "$work/pristine/src" "$work/fleet/$h/wso2mi-4.0.0"
  cp -a "$work/pristine/tgt" "$work/fleet/$h/wso2mi-4.2.0"
  cat > "$work/$h.toml" <<TOML
listen = "127.0.0.1:0"
state_dir = "$work/agent-state/$h"
allowed_roots = ["$work/fleet/$h"]
port_file = "$work/$h.port"
executor_threads = 1
allowed_client_subjects = ["mimic-controller"]
[tls]
cert = "$work/certs/$h.pem"
key = "$work/certs/$h.key"
client_ca = "$work/certs/ca.pem"
TOML
  "$build/bin/mimic-agent" --config "$work/$h.toml" 2>/dev/null &
  pids+=($!)
done
for h in "${names[@]}"; do
  for _ in $(seq 200); do [ -s "$work/$h.port" ] && break; sleep 0.05; done
  printf '\n[hosts.%s]\naddress = "127.0.0.1:%s"\nenvironment = "prod"\nvars = { source_home = "%s", target_home = "%s" }\n' \
    "$h" "$(cat "$work/$h.port")" "$work/fleet/$h/wso2mi-4.0.0" "$work/fleet/$h/wso2mi-4.2.0" >> "$work/inventory.toml"
done
cat > "$work/plan.toml" <<'TOML'
[migration]
path = "4.0.0->4.2.0"
[[steps]]
name = "preflight"
[[steps]]
name = "snapshot_target"
[[steps]]
name = "migrate_userstore_config"
[[steps]]
name = "copy_carbonapps"
[[steps]]
name = "copy_registry"
[[steps]]
name = "copy_deployment"
[[steps]]
name = "migrate_datamapper"
[[steps]]
name = "copy_custom_components"
[[steps]]
name = "copy_keystores"
[[steps]]
name = "merge_config"
[[steps]]
name = "hl7_transport"
TOML
cd "$work"
for mode in "--check" ""; do
  /usr/bin/time -f "%e %M" -o "$work/time" "$build/bin/mimic" run --inventory inventory.toml \
    --plan plan.toml $mode > "$work/out" 2>&1 || { tail -20 "$work/out"; exit 1; }
  read -r secs rss < "$work/time"
  echo "mimic run ${mode:-(apply)}: $hosts hosts, concurrency $conc: ${secs}s wall, controller peak RSS ${rss} KiB, $(awk -v s="$secs" -v n="$hosts" 'BEGIN{printf "%.1f", n/s}') hosts/s"
done
