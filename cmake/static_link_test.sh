#!/usr/bin/env bash
# static_link_test.sh BINARY NAME [shared-cxx-runtime] -- BINARY is linked as
# mimic_link_static_deps (cmake/MimicHelpers.cmake) says: gRPC, protobuf, Abseil and toml++ inside
# it, none of their shared libraries loaded beside (two copies of Abseil's state in one process),
# OpenSSL the system's, relocations packed; and `BINARY --version` names NAME.
# The C++ runtime (libstdc++, libgcc) is inside too, and then not loaded shared; with
# `shared-cxx-runtime` (a binary that loads a C++ shared library, e.g. mimic's yaml-cpp) it is
# the system's, and the binary defines none of it (two runtimes would each keep their own state:
# exceptions, allocator, locale).
set -euo pipefail
bin=${1:?usage: static_link_test.sh BINARY NAME [shared-cxx-runtime]}
name=${2:?usage: static_link_test.sh BINARY NAME [shared-cxx-runtime]}
shared_cxx=${3:-}
dyn=$(readelf -d "$bin")
loaded=$(ldd "$bin")
fail=0
inside='lib(grpc|gpr|upb|protobuf|absl_|re2|cares|address_sorting|tomlplusplus)'
[ -n "$shared_cxx" ] || inside="${inside%)}|stdc\+\+|gcc_s)"
shared=$(grep -E "$inside" <<<"$loaded" || true)
if [ -n "$shared" ]; then
  echo "FAIL: $bin loads shared libraries it should have inside:"; echo "$shared"; fail=1
fi
if [ -n "$shared_cxx" ]; then
  # The runtime's entry points that must exist once: throwing, catching, unwinding, allocating.
  own=$(nm -D --defined-only "$bin" |
        grep -E ' (__cxa_throw|__cxa_begin_catch|_Unwind_RaiseException|_Znwm|_ZdlPv)$' || true)
  if [ -n "$own" ]; then
    echo "FAIL: $bin defines C++ runtime symbols beside the shared libstdc++:"; echo "$own"; fail=1
  fi
fi
for lib in libssl.so.3 libcrypto.so.3; do
  grep -q "NEEDED.*\[$lib\]" <<<"$dyn" || { echo "FAIL: $bin does not load the system's $lib"; fail=1; }
done
grep -q '(RELR)' <<<"$dyn" || { echo "FAIL: $bin has no packed relative relocations (DT_RELR)"; fail=1; }
if grep -q 'not found' <<<"$loaded"; then echo "FAIL: $(grep 'not found' <<<"$loaded")"; fail=1; fi
"$bin" --version | grep -q "^$name " || { echo "FAIL: $bin --version"; fail=1; }
[ "$fail" = 0 ] && echo "ok: $bin"
exit "$fail"
