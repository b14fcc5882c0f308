#!/usr/bin/env bash
# Installs what is missing, builds mimic and runs every test (unit and end-to-end) with ctest.
# Usage: bash tests/run-all.sh [BUILD_DIR]      (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
bash "$here/deploy/install-deps.sh" --tests
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j 2 --timeout 900
