#!/usr/bin/env bash
# Builds the two Debian packages, mimic-agent and mimic, into dist/ (or OUT_DIR).
# Usage: bash deploy/package.sh [BUILD_DIR] [OUT_DIR]     (defaults: build, dist)
# Installs what is missing (deploy/install-deps.sh --package), builds with the /usr prefix and
# runs CPack. Runtime dependencies are computed by dpkg-shlibdeps from Debian's library packages.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/dist}
bash "$here/deploy/install-deps.sh" --package
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$build" -j "$(nproc)" --target mimic mimic-agent man
mkdir -p "$out"
out=$(cd "$out" && pwd)
(cd "$build" && cpack -G DEB -B "$out/.cpack" >/dev/null)
mv -f "$out"/.cpack/*.deb "$out"/
rm -rf "$out/.cpack"
for deb in "$out"/*.deb; do
  echo "$deb"
  dpkg-deb --field "$deb" Package Version Depends | sed 's/^/  /'
done
