#!/usr/bin/env bash
# Installs the Debian 12 packages mimic builds, tests and demos with, when missing.
# Usage: install-deps.sh [--tests|--bench]   (--tests adds what only the tests need: chromium;
#        --bench what bench/vs_ansible.sh compares with: ansible-core)
# Runs as root (CI, a fresh machine); as another user it only reports what is missing.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config git
      libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev libabsl-dev
      libtomlplusplus-dev libgtest-dev libgmock-dev libsqlite3-dev libpq-dev libssl-dev libzip-dev
      libyaml-cpp-dev libxml2-utils
      openssl zip unzip sqlite3 openjdk-17-jdk-headless)
# Tests also render the HTML report in a real headless Chromium.
if [ "${1:-}" = "--tests" ]; then
  pkgs+=(chromium)
fi
# bench/vs_ansible.sh runs the same migration as an Ansible play.
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(ansible-core)
fi
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
