#!/usr/bin/env bash
# Run by package_test.sh inside the throwaway root (chroot into an overlay of /). Every change
# here dies with that root. Fails on the first broken promise, naming it.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# A fresh root: no account or config left over from the machine itself.
if getent passwd mimic-agent >/dev/null; then deluser --system --quiet mimic-agent || true; fi
rm -rf /etc/mimic /var/lib/mimic-agent

step "dpkg -i"
export DEBIAN_FRONTEND=noninteractive
dpkg -i "$agent_deb" "$ctl_deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
for f in /usr/bin/mimic-agent /usr/bin/mimic /lib/systemd/system/mimic-agent.service \
         /etc/mimic/agent.toml /usr/share/man/man1/mimic.1.gz /usr/share/man/man8/mimic-agent.8.gz \
         /usr/share/bash-completion/completions/mimic /usr/share/bash-completion/completions/mimic-agent \
         /usr/share/mimic/make-certs.sh /usr/share/mimic/ansible/install-agent.yml \
         /usr/share/doc/mimic/examples/plan.toml.example; do
  [ -e "$f" ] || fail "$f not installed"
done
getent passwd mimic-agent >/dev/null || fail "postinst made no mimic-agent user"
[ "$(stat -c '%U:%G %a' /var/lib/mimic-agent)" = "mimic-agent:mimic-agent 700" ] ||
  fail "state dir is $(stat -c '%U:%G %a' /var/lib/mimic-agent), want mimic-agent:mimic-agent 700"
[ "$(stat -c '%U:%G %a' /etc/mimic/agent.toml)" = "root:mimic-agent 640" ] ||
  fail "agent.toml is $(stat -c '%U:%G %a' /etc/mimic/agent.toml), want root:mimic-agent 640"
dpkg-query -W -f='${Conffiles}\n' mimic-agent | grep -q '/etc/mimic/agent.toml' ||
  fail "/etc/mimic/agent.toml is not a conffile"
grep -q '^ExecStart=/usr/bin/mimic-agent --config /etc/mimic/agent.toml$' \
  /lib/systemd/system/mimic-agent.service || fail "unit ExecStart does not name /usr/bin/mimic-agent"
# gRPC, protobuf, Abseil, toml++ and libstdc++ are linked into mimic-agent
# (cmake/MimicHelpers.cmake mimic_link_static_deps); OpenSSL stays the system's shared library.
dpkg-deb --field "$agent_deb" Depends | grep -q 'libssl3' || fail "mimic-agent Depends lacks libssl3"
dpkg-deb --field "$agent_deb" Depends | grep -q 'libgrpc' && fail "mimic-agent Depends on libgrpc (linked in)"
dpkg-deb --field "$ctl_deb" Depends | grep -q 'libsqlite3' || fail "mimic Depends lacks libsqlite3"
mimic --help >/dev/null || fail "mimic --help"
mimic-agent --help >/dev/null || fail "mimic-agent --help"
zcat /usr/share/man/man1/mimic.1.gz | grep -q 'mimic run' || fail "man page lacks the usage"

step "systemd-analyze verify"
out=$(systemd-analyze verify /lib/systemd/system/mimic-agent.service 2>&1) ||
  { echo "$out"; fail "systemd-analyze verify"; }
# Warnings about the chroot itself (no running systemd) are not the unit's; anything naming the
# unit file is.
if echo "$out" | grep -q 'mimic-agent.service:'; then echo "$out"; fail "unit warnings"; fi

step "ansible-playbook deploy/ansible/install-agent.yml (2 hosts, local connection)"
pki=$work/pki
bash /usr/share/mimic/make-certs.sh "$pki" mi-a mi-b >/dev/null
hosts=(mi-a mi-b)
{
  echo "[dev]"
  echo "mi-a ansible_connection=local ansible_host=127.0.0.1 mimic_agent_port=$((20000 + RANDOM % 20000))"
  echo "[prod]"
  echo "mi-b ansible_connection=local ansible_host=127.0.0.1 mimic_agent_port=$((40001 + RANDOM % 20000))"
  echo "[all:vars]"
  echo "mimic_agent_listen_address=127.0.0.1"
} > "$work/hosts.ini"
# Two agents on one machine: each its own config dir, state dir and MI root.
mkdir -p "$work/host_vars"
for h in "${hosts[@]}"; do
  cat > "$work/host_vars/$h.yml" <<YML
mimic_agent_config_dir: /etc/mimic-$h
mimic_agent_state_dir: /var/lib/mimic-agent-$h
mimic_agent_allowed_roots: ["/opt/wso2/$h"]
YML
done
cp "$work/hosts.ini" "$work/host_vars/../inventory.ini"
ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCALHOST_WARNING=0 \
  ansible-playbook -i "$work/inventory.ini" /usr/share/mimic/ansible/install-agent.yml \
    -e "mimic_agent_deb=$agent_deb" -e "mimic_pki_dir=$pki" >"$work/ansible.log" 2>&1 ||
  { cat "$work/ansible.log"; fail "ansible-playbook"; }
grep -q 'failed=0' "$work/ansible.log" || { cat "$work/ansible.log"; fail "ansible reported failures"; }
for h in "${hosts[@]}"; do
  [ "$(stat -c '%a' /etc/mimic-$h/agent.key)" = 640 ] || fail "/etc/mimic-$h/agent.key not 0640"
  cmp -s "$pki/$h.pem" "/etc/mimic-$h/agent.pem" || fail "$h got another host's certificate"
  [ "$(stat -c '%U %a' /var/lib/mimic-agent-$h)" = "mimic-agent 700" ] || fail "state dir of $h"
done
# A second run changes nothing (idempotent role).
ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCALHOST_WARNING=0 \
  ansible-playbook -i "$work/inventory.ini" /usr/share/mimic/ansible/install-agent.yml \
    -e "mimic_agent_deb=$agent_deb" -e "mimic_pki_dir=$pki" >"$work/ansible2.log" 2>&1 ||
  { cat "$work/ansible2.log"; fail "ansible-playbook (second run)"; }
grep -qE 'changed=0 +unreachable=0 +failed=0' "$work/ansible2.log" ||
  { cat "$work/ansible2.log"; fail "second ansible run changed something"; }

step "agents started as mimic-agent (as the unit does), MI homes under /opt/wso2"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
for h in "${hosts[@]}"; do
  "$build/bin/make-mi-home" 4.0.0 "/opt/wso2/$h/wso2mi-4.0.0" --profile source --hostname "$h" >/dev/null
  "$build/bin/make-mi-home" 4.2.0 "/opt/wso2/$h/wso2mi-4.2.0" --profile target --hostname "$h" >/dev/null
  chown -R mimic-agent:mimic-agent "/opt/wso2/$h"
  sed -i "1i port_file = \"/var/lib/mimic-agent-$h/port\"" "/etc/mimic-$h/agent.toml"
  setpriv --reuid mimic-agent --regid mimic-agent --init-groups \
    /usr/bin/mimic-agent --config "/etc/mimic-$h/agent.toml" 2>"$work/$h-agent.log" &
  pids+=($!)
done
for h in "${hosts[@]}"; do
  for _ in $(seq 300); do [ -s "/var/lib/mimic-agent-$h/port" ] && break; sleep 0.1; done
  [ -s "/var/lib/mimic-agent-$h/port" ] || { cat "$work/$h-agent.log"; fail "agent $h did not start"; }
done

step "mimic inventory import, mimic run"
cd "$work"
mimic inventory import inventory.ini -o inventory.toml >/dev/null || fail "inventory import"
# The import leaves the controller's TLS files to fill in; the homes are per-host vars.
for h in "${hosts[@]}"; do
  grep -q "^\[hosts\.$h\]" inventory.toml || fail "import lost host $h"
done
python3 - "$work" "$pki" <<'PY'
import sys
work, pki = sys.argv[1], sys.argv[2]
p = f"{work}/inventory.toml"
s = open(p).read()
s = s.replace('ca = "certs/ca.pem"', f'state_dir = "controller-state"\nca = "{pki}/ca.pem"')
s = s.replace('cert = "certs/controller.pem"', f'cert = "{pki}/controller.pem"')
s = s.replace('key = "certs/controller.key"', f'key = "{pki}/controller.key"')
for h in ("mi-a", "mi-b"):
    s = s.replace(f"[hosts.{h}]\n", f"[hosts.{h}]\nvars = {{ source_home = \"/opt/wso2/{h}/wso2mi-4.0.0\", "
                  f"target_home = \"/opt/wso2/{h}/wso2mi-4.2.0\" }}\n", 1)
open(p, "w").write(s)
PY
[ "$(mimic inventory list --inventory inventory.toml --limit 'all:!mi-b')" = mi-a ] ||
  fail "inventory list --limit 'all:!mi-b'"
cat > plan.toml <<'TOML'
[migration]
path = "4.0.0->4.2.0"
[[steps]]
name = "preflight"
[[steps]]
name = "snapshot_target"
[[steps]]
name = "migrate_userstore_config"
[[steps]]
name = "copy_secondary_userstores"
[[steps]]
name = "copy_carbonapps"
[[steps]]
name = "copy_registry"
[[steps]]
name = "copy_deployment"
[[steps]]
name = "migrate_datamapper"
[[steps]]
name = "copy_custom_components"
[[steps]]
name = "copy_keystores"
[[steps]]
name = "merge_config"
params = { conflict = "source" }
[[steps]]
name = "hl7_transport"
[[stages]]
name = "all"
environments = ["dev", "prod"]
TOML
mimic run --inventory inventory.toml --plan plan.toml >"$work/run.log" 2>&1 ||
  { cat "$work/run.log" "$work"/*-agent.log; fail "mimic run"; }
for h in "${hosts[@]}"; do
  grep -q "$h" "$work/run.log" || fail "run output does not name $h"
  cmp -s "/opt/wso2/$h/wso2mi-4.0.0/repository/resources/security/wso2carbon.jks" \
         "/opt/wso2/$h/wso2mi-4.2.0/repository/resources/security/wso2carbon.jks" ||
    fail "$h: keystore not migrated"
done
cleanup
trap - EXIT

step "dpkg --purge"
dpkg --purge mimic-agent mimic >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
[ ! -e /usr/bin/mimic-agent ] && [ ! -e /usr/bin/mimic ] || fail "binaries left after purge"
[ ! -e /etc/mimic/agent.toml ] || fail "conffile left after purge"
[ -d /var/lib/mimic-agent-mi-a ] || fail "purge removed a state dir holding snapshots"
echo "inside_root: ok"
