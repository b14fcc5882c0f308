#!/usr/bin/env bash
# Fleet maker for the benchmarks: N host pairs, each an MI 4.0.0 source home (customised by
# mimic's generator build/bin/make-mi-home --profile source, plus a payload of CApps and synapse
# APIs) and a fresh MI 4.2.0 target home. One pristine pair is generated, then copied N times
# (`cp -a`), so every host holds the same bytes (the keystores are made once).
#
# Usage: bash bench/make_fleet.sh N DEST [--capps 40] [--capp-kb 200] [--apis 60]
#   DEST/pristine/{src,tgt}                      the generated pair
#   DEST/fleet/hNNN/{wso2mi-4.0.0,wso2mi-4.2.0}  host i's pair (NNN = 001 .. N)
# A DEST made earlier with the same payload options is reused: only missing hosts are copied.
# The payload is deterministic (CApp bytes come from AES-CTR of a fixed key over zeros).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
usage() { echo "usage: make_fleet.sh N DEST [--capps 40] [--capp-kb 200] [--apis 60]" >&2; exit 1; }
[ $# -ge 2 ] || usage
hosts=$1 dest=$2; shift 2
capps=40 capp_kb=200 apis=60
while [ $# -gt 0 ]; do
  case "$1" in
    --capps) capps=$2; shift 2 ;;
    --capp-kb) capp_kb=$2; shift 2 ;;
    --apis) apis=$2; shift 2 ;;
    *) usage ;;
  esac
done
[[ "$hosts" =~ ^[0-9]+$ && "$hosts" -ge 1 ]] || usage

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
payload="capps=$capps capp_kb=$capp_kb apis=$apis"
if [ -f "$dest/pristine/.payload" ] && [ "$(cat "$dest/pristine/.payload")" != "$payload" ]; then
  echo "$dest holds a fleet with another payload ($(cat "$dest/pristine/.payload")); remove it" >&2
  exit 1
fi

if [ ! -f "$dest/pristine/.payload" ]; then
  [ -x "$build/bin/make-mi-home" ] || { echo "build first: $build/bin/make-mi-home is missing" >&2; exit 1; }
  command -v zip >/dev/null || { echo "zip is missing (bash deploy/install-deps.sh)" >&2; exit 1; }
  rm -rf "$dest/pristine"
  mkdir -p "$dest/pristine"
  "$build/bin/make-mi-home" 4.0.0 "$dest/pristine/src" --profile source --hostname bench >/dev/null
  "$build/bin/make-mi-home" 4.2.0 "$dest/pristine/tgt" --profile target >/dev/null
  src=$dest/pristine/src
  car_dir=$src/repository/deployment/server/carbonapps
  api_dir=$src/repository/deployment/server/synapse-configs/default/api
  tmp=$(mktemp -d)
  for i in $(seq -w 1 "$capps"); do
    name=BenchCapp$i
    mkdir -p "$tmp/$name/${name}Api_1.0.0"
    cat > "$tmp/$name/artifacts.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?><artifacts><artifact name="$name" version="1.0.0" type="carbon/application"><dependency artifact="${name}Api" version="1.0.0" include="true" serverRole="EnterpriseIntegrator"/></artifact></artifacts>
XML
    cat > "$tmp/$name/${name}Api_1.0.0/artifact.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?><artifact name="${name}Api" version="1.0.0" type="synapse/api" serverRole="EnterpriseIntegrator"><file>${name}Api-1.0.0.xml</file></artifact>
XML
    echo "<api xmlns=\"http://ws.apache.org/ns/synapse\" name=\"${name}Api\" context=\"/bench$i\"><resource methods=\"GET\"><inSequence><respond/></inSequence></resource></api>" \
      > "$tmp/$name/${name}Api_1.0.0/${name}Api-1.0.0.xml"
    # The bulk: incompressible, deterministic bytes (a bundled library, as real CApps carry).
    openssl enc -aes-128-ctr -K 000102030405060708090a0b0c0d0e0f -iv "$(printf '%032x' "$((10#$i))")" \
      -in /dev/zero 2>/dev/null | head -c $((capp_kb * 1024)) > "$tmp/$name/${name}Api_1.0.0/lib.bin" || true
    (cd "$tmp/$name" && TZ=UTC zip -q -X -0 -r "$car_dir/${name}CompositeApplication_1.0.0.car" . && \
      touch -d @1700000000 "$car_dir/${name}CompositeApplication_1.0.0.car")
  done
  rm -rf "$tmp"
  mkdir -p "$api_dir"
  for i in $(seq -w 1 "$apis"); do
    {
      echo '<?xml version="1.0" encoding="UTF-8"?>'
      echo "<api xmlns=\"http://ws.apache.org/ns/synapse\" name=\"BenchApi$i\" context=\"/bench-api/$i\">"
      for r in 1 2 3 4 5 6; do
        echo "  <resource methods=\"GET POST\" uri-template=\"/items/{id}/r$r\">"
        echo "    <inSequence><log level=\"custom\"><property name=\"api\" value=\"BenchApi$i r$r\"/></log>"
        echo "      <call><endpoint><http method=\"get\" uri-template=\"http://backend-$i.example.com/items/{uri.var.id}\"/></endpoint></call>"
        echo "    </inSequence><outSequence><respond/></outSequence><faultSequence/></resource>"
      done
      echo '</api>'
    } > "$api_dir/BenchApi$i.xml"
  done
  echo "$payload" > "$dest/pristine/.payload"
fi

mkdir -p "$dest/fleet"
for i in $(seq -f '%03g' 1 "$hosts"); do
  h=$dest/fleet/h$i
  [ -d "$h/wso2mi-4.2.0" ] && continue
  rm -rf "$h"; mkdir -p "$h"
  cp -a "$dest/pristine/src" "$h/wso2mi-4.0.0"
  cp -a "$dest/pristine/tgt" "$h/wso2mi-4.2.0"
done
src_kb=$(du -sk "$dest/pristine/src" | cut -f1)
tgt_kb=$(du -sk "$dest/pristine/tgt" | cut -f1)
echo "fleet: $hosts hosts in $dest/fleet; source home ${src_kb} KiB, target home ${tgt_kb} KiB ($payload)"
echo "hosts=$hosts source_kib=$src_kb target_kib=$tgt_kb capps=$capps capp_kb=$capp_kb apis=$apis"
