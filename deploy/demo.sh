#!/usr/bin/env bash
# The demo fleet on this machine: installs what is missing, builds mimic, makes a fleet CA and
# certificates, builds three MI 4.0.0 homes (customised: CApps with a Data Mapper CApp,
# keystores made with keytool, custom jars, a customised deployment.toml) and three fresh MI
# 4.2.0 targets with mimic's own generator (bin/make-mi-home; no WSO2 files needed), starts
# three agents on 127.0.0.1 with mutual TLS, and
# rolls the migration out in two stages (dev: one host, prod: two): a --check first, then the
# real run, then the recap and where the audit is. Everything lives under .demo/.
# Usage: bash deploy/demo.sh [DEMO_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
demo=${1:-$here/.demo}
build=${BUILD_DIR:-$here/build}

bash "$here/deploy/install-deps.sh"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target mimic mimic-agent make-mi-home

rm -rf "$demo"
mkdir -p "$demo"
hosts=(mi-dev-1 mi-prod-1 mi-prod-2)
echo "== certificates"
bash "$here/deploy/make-certs.sh" "$demo/certs" "${hosts[@]}" >/dev/null
echo "== MI homes (bin/make-mi-home)"
for h in "${hosts[@]}"; do
  "$build/bin/make-mi-home" 4.0.0 "$demo/fleet/$h/wso2mi-4.0.0" --profile source --hostname "$h"
  "$build/bin/make-mi-home" 4.2.0 "$demo/fleet/$h/wso2mi-4.2.0" --profile target --hostname "$h"
done

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
echo "== agents"
for h in "${hosts[@]}"; do
  cat > "$demo/$h-agent.toml" <<TOML
listen = "127.0.0.1:0"
state_dir = "$demo/agent-state/$h"
allowed_roots = ["$demo/fleet/$h"]
port_file = "$demo/$h.port"
allowed_client_subjects = ["mimic-controller"]
[tls]
cert = "$demo/certs/$h.pem"
key = "$demo/certs/$h.key"
client_ca = "$demo/certs/ca.pem"
TOML
  "$build/bin/mimic-agent" --config "$demo/$h-agent.toml" 2>"$demo/$h-agent.log" &
  pids+=($!)
done
for h in "${hosts[@]}"; do
  for _ in $(seq 100); do [ -s "$demo/$h.port" ] && break; sleep 0.1; done
  [ -s "$demo/$h.port" ] || { echo "agent $h did not start:"; cat "$demo/$h-agent.log"; exit 1; }
  echo "   $h listening on 127.0.0.1:$(cat "$demo/$h.port") (mTLS)"
done

{
  echo '[controller]'
  echo 'state_dir = "controller-state"'
  echo 'ca = "certs/ca.pem"'
  echo 'cert = "certs/controller.pem"'
  echo 'key = "certs/controller.key"'
  for h in "${hosts[@]}"; do
    env=prod; [ "$h" = mi-dev-1 ] && env=dev
    echo
    echo "[hosts.$h]"
    echo "address = \"127.0.0.1:$(cat "$demo/$h.port")\""
    echo "environment = \"$env\""
    echo "vars = { source_home = \"$demo/fleet/$h/wso2mi-4.0.0\", target_home = \"$demo/fleet/$h/wso2mi-4.2.0\" }"
  done
} > "$demo/inventory.toml"
cat > "$demo/plan.toml" <<'TOML'
[migration]
path = "4.0.0->4.2.0"
timeout = "30m"

[[steps]]
name = "preflight"
[[steps]]
name = "snapshot_target"
[[steps]]
name = "migrate_userstore_config"
[[steps]]
name = "copy_secondary_userstores"
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
params = { conflict = "source" }
[[steps]]
name = "hl7_transport"

[[stages]]
name = "dev"
environments = ["dev"]
batch = 1

[[stages]]
name = "prod"
environments = ["prod"]
batch = 2
concurrency = 2
TOML

cd "$demo"
echo
echo "== mimic run --check (dry run: nothing is written)"
"$build/bin/mimic" run --inventory inventory.toml --plan plan.toml --check
echo
echo "== mimic run"
"$build/bin/mimic" run --inventory inventory.toml --plan plan.toml
echo
echo "== mimic status"
"$build/bin/mimic" status --inventory inventory.toml
echo
echo "The audit is $demo/controller-state/audit.db (sqlite3); the migrated homes are"
echo "$demo/fleet/*/wso2mi-4.2.0. Try: cd $demo && $build/bin/mimic report ROLLOUT --format json"
