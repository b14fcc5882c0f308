#!/usr/bin/env bash
# make-mi-home.sh VERSION DEST [--profile source|target] [--hostname NAME] [--with FEATURE]... [--force] [-v]
#
# Thin wrapper around <build>/bin/make-mi-home, mimic's own MI home generator (tests/mi_home/;
# see tests/mi_home/mi_home.h for what a source and a target home hold). It needs no WSO2 files.
# BUILD_DIR picks the build tree (default: build/ of this clone); the generator is built there
# first when it is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
if [ ! -x "$build/bin/make-mi-home" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target make-mi-home >/dev/null
fi
exec "$build/bin/make-mi-home" "$@"
