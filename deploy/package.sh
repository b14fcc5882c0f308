#!/usr/bin/env bash
# Builds the two Debian packages, mimic-agent and mimic, into dist/ (or OUT_DIR).
# Usage: bash deploy/package.sh [BUILD_DIR] [OUT_DIR]     (defaults: build, dist)
# Installs what is missing (deploy/install-deps.sh --package), builds with the /usr prefix and
# runs CPack; an existing BUILD_DIR keeps its generator and gets its install prefix back.
# Runtime dependencies are computed by dpkg-shlibdeps from Debian's library packages.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
out=${2:-$here/dist}
bash "$here/deploy/install-deps.sh" --package
# Packages need the /usr prefix (and with it /etc for the conffile), but the build tree gets its
# own prefix back on exit: a later `cmake --install` of it must not land in /usr, over an
# operator's /etc/mimic/agent.toml. A tree made here keeps /usr.
prev_prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
restore_prefix() {
  if [ -n "$prev_prefix" ] && [ "$prev_prefix" != /usr ]; then
    cmake -S "$here" -B "$build" -DCMAKE_INSTALL_PREFIX="$prev_prefix" >/dev/null
  fi
}
trap restore_prefix EXIT
generator=(); [ -f "$build/CMakeCache.txt" ] || generator=(-G Ninja)
cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
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
