#!/usr/bin/env bash
# agent_link_test.sh MIMIC_AGENT -- the agent binary is linked as mimic_link_static_deps
# (cmake/MimicHelpers.cmake) says: gRPC, protobuf, Abseil, toml++ and the C++ runtime inside it,
# none of their shared libraries loaded beside (two copies of Abseil's or libstdc++'s state in
# one process), OpenSSL the system's, relocations packed; and it runs.
set -euo pipefail
bin=${1:?usage: agent_link_test.sh MIMIC_AGENT}
dyn=$(readelf -d "$bin")
loaded=$(ldd "$bin")
fail=0
inside='lib(grpc|gpr|upb|protobuf|absl_|re2|cares|address_sorting|tomlplusplus|stdc\+\+|gcc_s)'
shared=$(grep -E "$inside" <<<"$loaded" || true)
if [ -n "$shared" ]; then
  echo "FAIL: $bin loads shared libraries it should have inside:"; echo "$shared"; fail=1
fi
for lib in libssl.so.3 libcrypto.so.3; do
  grep -q "NEEDED.*\[$lib\]" <<<"$dyn" || { echo "FAIL: $bin does not load the system's $lib"; fail=1; }
done
grep -q '(RELR)' <<<"$dyn" || { echo "FAIL: $bin has no packed relative relocations (DT_RELR)"; fail=1; }
if grep -q 'not found' <<<"$loaded"; then echo "FAIL: $(grep 'not found' <<<"$loaded")"; fail=1; fi
"$bin" --version | grep -q '^mimic-agent ' || { echo "FAIL: $bin --version"; fail=1; }
[ "$fail" = 0 ] && echo "ok: $bin"
exit "$fail"
