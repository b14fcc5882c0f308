#!/usr/bin/env bash
# package_test.sh SOURCE_DIR BUILD_DIR -- from `dpkg -i` to a migrated host, in a throwaway root.
#
# Builds the two Debian packages (deploy/package.sh), then, inside a private mount namespace, makes
# a copy-on-write root (overlayfs over this machine's /, changes kept in a tmpfs that vanishes
# with the namespace) and, chrooted into it:
#   1. dpkg -i mimic-agent and mimic: files, system user, state dir, conffile, modes;
#      systemd-analyze verify on the installed unit; man pages and completions present.
#   2. deploy/ansible/install-agent.yml (ansible-core, local connection) on two hosts of an
#      Ansible inventory: package, certificates from the fleet CA, agent.toml.
#   3. starts each agent as the mimic-agent user the way the unit does (no systemd in a chroot),
#      `mimic inventory import` of the same inventory, `mimic run`: both hosts migrated.
#   4. dpkg --purge: binaries and conffile gone, the state dir (snapshots) kept.
# Needs root (mount namespaces, chroot); exits 77 (skipped) otherwise.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root"; exit 77; fi
for tool in unshare chroot ansible-playbook systemd-analyze dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (deploy/install-deps.sh --tests)"; exit 77; }
done
work=$(mktemp -d /tmp/mimic-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix_of() { sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt"; }
prefix_before=$(prefix_of)
bash "$src/deploy/package.sh" "$build" "$work/dist"
# Packaging leaves the build tree under test as it found it (its install prefix included).
if [ "$(prefix_of)" != "$prefix_before" ]; then
  echo "FAIL: deploy/package.sh left $build with CMAKE_INSTALL_PREFIX=$(prefix_of), was $prefix_before"
  exit 1
fi
agent_deb=$(ls "$work"/dist/mimic-agent_*.deb)
ctl_deb=$(ls "$work"/dist/mimic_*.deb)
echo "packages: $(basename "$agent_deb") $(basename "$ctl_deb")"

# Everything below runs in a private mount namespace: mounts vanish when it ends.
export src build work agent_deb ctl_deb
unshare --mount --propagation private bash -euo pipefail -c '
  mkdir -p "$work/ovl" "$work/root"
  mount -t tmpfs -o size=4g tmpfs "$work/ovl"
  mkdir -p "$work/ovl/upper" "$work/ovl/work"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$work/ovl/upper,workdir=$work/ovl/work" "$work/root"
  mount -t proc proc "$work/root/proc"
  mount --rbind /dev "$work/root/dev"
  mount -t tmpfs tmpfs "$work/root/run"
  mkdir -p "$work/root/$work"
  mount --bind "$work" "$work/root/$work"
  # The build tree is visible at its own path inside the root (make-mi-home, the plan).
  mkdir -p "$work/root/$build" "$work/root/$src"
  mount --bind "$build" "$work/root/$build"
  mount --bind "$src" "$work/root/$src"
  chroot "$work/root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    src="$src" build="$build" work="$work" agent_deb="$agent_deb" ctl_deb="$ctl_deb" \
    bash -euo pipefail "$src/tests/package/inside_root.sh"
'
echo "package_test: ok"
