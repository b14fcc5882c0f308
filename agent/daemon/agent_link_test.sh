#!/usr/bin/env bash
# agent_link_test.sh MIMIC_AGENT -- the agent binary is linked as mimic_link_rpc_statically
# (cmake/MimicHelpers.cmake) says: gRPC, protobuf and Abseil inside it, none of their shared
# libraries loaded beside (two copies of Abseil's state in one process), OpenSSL the system's,
# relocations packed; and it runs.
set -euo pipefail
bin=${1:?usage: agent_link_test.sh MIMIC_AGENT}
dyn=$(readelf -d "$bin")
fail=0
shared=$(grep NEEDED <<<"$dyn" | grep -E 'lib(grpc|gpr|upb|protobuf|absl_|re2|cares|address_sorting)' || true)
if [ -n "$shared" ]; then
  echo "FAIL: $bin loads shared gRPC/protobuf/Abseil libraries:"; echo "$shared"; fail=1
fi
for lib in libssl.so.3 libcrypto.so.3; do
  grep -q "NEEDED.*\[$lib\]" <<<"$dyn" || { echo "FAIL: $bin does not load the system's $lib"; fail=1; }
done
grep -q '(RELR)' <<<"$dyn" || { echo "FAIL: $bin has no packed relative relocations (DT_RELR)"; fail=1; }
# Every library it needs resolves, and it starts.
if ldd "$bin" | grep -q 'not found'; then echo "FAIL: $(ldd "$bin" | grep 'not found')"; fail=1; fi
"$bin" --version | grep -q '^mimic-agent ' || { echo "FAIL: $bin --version"; fail=1; }
[ "$fail" = 0 ] && echo "ok: $bin"
exit "$fail"
