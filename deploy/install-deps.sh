#!/usr/bin/env bash
# Installs the Debian 12 packages mimic builds, tests and demos with, when missing.
# Usage: install-deps.sh [--tests] [--package] [--bench]
#   --bench    what the benchmarks use: ansible-core (vs_ansible.sh compares with it), time
#   --package  what building the Debian packages needs: dpkg-dev (dpkg-shlibdeps), help2man, fakeroot
#   --tests    also what only the tests need: chromium (HTML report), ansible-core and python3-apt
#              (the Ansible role test), clang and libclang-rt-14-dev (a short libFuzzer run),
#              time (the benchmarks' smoke test), and everything --package needs (the package
#              test)
# Runs as root (CI, a fresh machine); as another user it only reports what is missing.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config git
      libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev libabsl-dev
      libgrpc-dev libre2-dev libc-ares-dev  # static archives mimic-agent links (MimicHelpers.cmake)
      libtomlplusplus-dev libgtest-dev libgmock-dev libsqlite3-dev libpq-dev libssl-dev libzip-dev
      libgit2-dev
      libyaml-cpp-dev libxml2-utils
      openssl zip unzip sqlite3 openjdk-17-jdk-headless)
for arg in "$@"; do
  case "$arg" in
    --tests) pkgs+=(chromium ansible-core python3-apt dpkg-dev help2man fakeroot systemd
                    clang libclang-rt-14-dev time) ;;
    --package) pkgs+=(dpkg-dev help2man fakeroot) ;;
    --bench) pkgs+=(ansible-core time) ;;
    *) echo "install-deps.sh: unknown option $arg" >&2; exit 1 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages (run as root to install): ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
