#!/bin/bash
# tests/sanitize.sh asan|tsan [extra ctest arguments]
#
#   asan  the whole suite (but the fuzz and package labels) under AddressSanitizer + UndefinedBehaviorSanitizer:
#         build-asan/ with MIMIC_SANITIZE=address,undefined
#   tsan  the concurrency tests under ThreadSanitizer: build-tsan/ with MIMIC_SANITIZE=thread;
#         the lock itself (common/base/mutex.h, in common_base_test), the engine (run manager,
#         executor, journal, event emitter) and the audit writer. Not the tests that go
#         through gRPC (rollout, end-to-end): Debian's gRPC is not instrumented and orders its
#         own threads with an uninstrumented absl::Mutex, so TSan reports its call objects as
#         races (README.md, "Hostile input, fuzzing, sanitizers").
#
# MIMIC_SANITIZE_TARGETS="t1 t2" builds only those targets (then pass -R to pick the tests).
# One command each: configures (once), builds what the tests need, runs them; exit status is
# ctest's. Any sanitizer report fails the test that triggered it (halt_on_error). Suppressions
# for code outside mimic (Debian's libraries are not instrumented) are in tests/tsan.supp and
# tests/lsan.supp, each with its reason.
set -euo pipefail
mode=${1:-}
shift || true
src=$(cd "$(dirname "$0")/.." && pwd)
case "$mode" in
  asan)
    sanitize=address,undefined
    build=${MIMIC_SANITIZE_BUILD_DIR:-$src/build-asan}
    # Not the package test: it packages (and so rebuilds) the tree under test while others run it.
    select=(-LE 'fuzz|package')
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1}
    export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/tests/lsan.supp}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    ;;
  tsan)
    sanitize=thread
    build=${MIMIC_SANITIZE_BUILD_DIR:-$src/build-tsan}
    select=(-R '^(common_base_test|agent_engine_test|controller_audit_test)$')
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$src/tests/tsan.supp}
    ;;
  *)
    echo "usage: tests/sanitize.sh asan|tsan [ctest arguments]" >&2
    exit 1
    ;;
esac
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMIMIC_SANITIZE="$sanitize" "${launcher[@]}" >/dev/null
fi
start=$(date +%s)
if [ -n "${MIMIC_SANITIZE_TARGETS:-}" ]; then
  # A subset (quick runs): MIMIC_SANITIZE_TARGETS="common_config_test" tests/sanitize.sh asan -R ...
  # shellcheck disable=SC2086
  nice cmake --build "$build" -j"${MIMIC_SANITIZE_JOBS:-2}" --target $MIMIC_SANITIZE_TARGETS
elif [ "$mode" = asan ]; then
  nice cmake --build "$build" -j"${MIMIC_SANITIZE_JOBS:-2}"
else
  nice cmake --build "$build" -j"${MIMIC_SANITIZE_JOBS:-2}" --target common_base_test \
    agent_engine_test controller_audit_test
fi
built=$(date +%s)
cd "$build"
set +e
ctest -j"${MIMIC_SANITIZE_JOBS:-2}" --timeout 1800 --output-on-failure "${select[@]}" "$@"
rc=$?
echo "sanitize.sh $mode: build $((built - start))s, tests $(( $(date +%s) - built ))s, ctest exit $rc"
exit $rc
