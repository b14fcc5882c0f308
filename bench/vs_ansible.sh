#!/usr/bin/env bash
# mimic against Ansible and against the disk, on one fleet of N hosts (bench/make_fleet.sh):
#   cp -a    the bytes the migration copies (repository/deployment, registry, dropins, lib,
#            repository/resources/security, conf/deployment.toml of each source home) into a
#            scratch folder per host, one `cp -a` per folder, then one `sync -f` (on disk)
#   ansible  bench/migrate.yml: the guide's file work (tar backup of the target, copy of the same
#            folders, the lib jars the target lacks, deployment.toml), ansible_connection=local,
#            forks = min(N, 50), then one `sync -f`
#   check    `mimic run --check` with N real mimic-agent processes on 127.0.0.1, mutual TLS,
#            audit on (SQLite in the controller's state dir), concurrency N
#   apply    `mimic run`, same (11 steps per host: snapshot, copies, Data Mapper, merge, ...)
#   cat      `cat` of every file of both homes of every host to /dev/null (the bytes a check
#            reads, once)
#   sha256   `openssl dgst -sha256` of the same files, one process like cat: the least a check
#            that reports the sha256 of every file it would write can cost (check_vs_sha256)
# Each trial starts from a fresh copy of the fleet (untimed, then `sync`); page cache warm for
# all. Medians of TRIALS (default 3). Prints a table and, last, one line of key=value figures.
#
# Usage: bash bench/vs_ansible.sh N          env: TRIALS=3 BENCH_DIR=/tmp/mimic-bench-N
#        SKIP_ANSIBLE=1 (mimic and cp only) ANSIBLE_TRIALS=TRIALS, payload: FLEET_OPTS="--capps 40"
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
hosts=${1:?usage: vs_ansible.sh N}
trials=${TRIALS:-3}
ansible_trials=${ANSIBLE_TRIALS:-$trials}
work=${BENCH_DIR:-/tmp/mimic-bench-$hosts}
forks=$((hosts < 50 ? hosts : 50))
[ -x "$build/bin/mimic" ] && [ -x "$build/bin/mimic-agent" ] ||
  { echo "build first: mimic and mimic-agent are missing in $build/bin" >&2; exit 1; }
if [ -z "${SKIP_ANSIBLE:-}" ] && ! command -v ansible-playbook >/dev/null; then
  echo "ansible-playbook is missing: bash deploy/install-deps.sh --bench" >&2; exit 1
fi

mkdir -p "$work"
work=$(cd "$work" && pwd)
# shellcheck disable=SC2086
bash "$here/bench/make_fleet.sh" "$hosts" "$work/fleetsrc" ${FLEET_OPTS:-} | sed -n 1p
names=(); for i in $(seq -f '%03g' 1 "$hosts"); do names+=("h$i"); done
run=$work/run
pids=()
# Nothing is deleted between the timed parts: ext4 without a journal (this machine's /) skips
# every inode freed in the last 60 s (360 s while its inode table block is dirty) when it
# allocates one, scanning them all again for each file created, so whatever runs right after an
# `rm -rf` of a fleet's copy pays for it (38 % of the agents' CPU in a 20-host apply). Old copies
# are renamed into $work/discarded and deleted on exit; leftovers of an earlier run go first.
rm -rf "$work/discarded"
discarded=0
discard() {
  local p
  for p; do
    [ -e "$p" ] || continue
    mkdir -p "$work/discarded"; discarded=$((discarded + 1)); mv "$p" "$work/discarded/$discarded"
  done
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  rm -rf "$work/discarded"
}
trap cleanup EXIT

fresh() {  # a fresh copy of the fleet at $run, on disk (untimed)
  discard "$run" "$work/cp-scratch"
  mkdir -p "$run"
  for h in "${names[@]}"; do cp -a "$work/fleetsrc/fleet/$h" "$run/$h"; done
  sync -f "$run"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.3f", b-a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

# Agents: started once; every trial rewrites the homes beneath their allowed roots.
bash "$here/deploy/make-certs.sh" "$work/certs" "${names[@]}" >/dev/null
mkdir -p "$work/agents" "$run"
{
  echo '[controller]'; echo 'state_dir = "state"'; echo "concurrency = $hosts"
  echo 'ca = "certs/ca.pem"'; echo 'cert = "certs/controller.pem"'; echo 'key = "certs/controller.key"'
} > "$work/inventory.toml"
for h in "${names[@]}"; do
  rm -f "$work/agents/$h.port"
  cat > "$work/agents/$h.toml" <<TOML
listen = "127.0.0.1:0"
state_dir = "$work/agents/$h-state"
allowed_roots = ["$run/$h"]
port_file = "$work/agents/$h.port"
executor_threads = 1
allowed_client_subjects = ["mimic-controller"]
[tls]
cert = "$work/certs/$h.pem"
key = "$work/certs/$h.key"
client_ca = "$work/certs/ca.pem"
TOML
  "$build/bin/mimic-agent" --config "$work/agents/$h.toml" 2>>"$work/agents/$h.log" &
  pids+=($!)
done
for h in "${names[@]}"; do
  for _ in $(seq 600); do [ -s "$work/agents/$h.port" ] && break; sleep 0.05; done
  [ -s "$work/agents/$h.port" ] || { echo "agent $h did not start: $(tail -3 "$work/agents/$h.log")" >&2; exit 1; }
  printf '\n[hosts.%s]\naddress = "127.0.0.1:%s"\nenvironment = "prod"\nvars = { source_home = "%s", target_home = "%s" }\n' \
    "$h" "$(cat "$work/agents/$h.port")" "$run/$h/wso2mi-4.0.0" "$run/$h/wso2mi-4.2.0" >> "$work/inventory.toml"
done
cat > "$work/plan.toml" <<'TOML'
[migration]
path = "4.0.0->4.2.0"
[[steps]]
name = "preflight"
[[steps]]
name = "snapshot_target"
[[steps]]
name = "migrate_userstore_config"
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
[[steps]]
name = "hl7_transport"
TOML
{
  echo '[mi]'
  for h in "${names[@]}"; do
    echo "$h ansible_connection=local ansible_python_interpreter=/usr/bin/python3 src=$run/$h/wso2mi-4.0.0 tgt=$run/$h/wso2mi-4.2.0"
  done
} > "$work/hosts.ini"

# Agent footprint: resident set of each idle agent (before any run) and its peak after all runs.
rss_of() { awk -v f="$1" '$1 == f":" {print $2}' "/proc/$2/status"; }
# CPU seconds (user + system) the agents have used so far, all of them together.
agents_cpu() {
  local p tot=0 tck; tck=$(getconf CLK_TCK)
  for p in "${pids[@]}"; do tot=$((tot + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  awk -v t="$tot" -v c="$tck" 'BEGIN{printf "%.3f", t/c}'
}
agent_kib() { local m=0 v; for p in "${pids[@]}"; do v=$(rss_of "$1" "$p"); [ "${v:-0}" -gt "$m" ] && m=$v; done; echo "$m"; }
idle_rss=$(agent_kib VmRSS)

cps=() ans=() chk=() app=() cats=() shas=() sha_cpu=() chk_rss=() app_rss=() chk_cpu=() chk_acpu=() app_cpu=() app_acpu=() cat_cpu=()
for t in $(seq "$trials"); do
  fresh
  # cp -a of the bytes the migration copies, then on disk.
  t0=$(now)
  for h in "${names[@]}"; do
    s=$run/$h/wso2mi-4.0.0 d=$work/cp-scratch/$h
    mkdir -p "$d/repository/resources" "$d/conf"
    cp -a "$s/repository/deployment" "$d/repository/"
    cp -a "$s/registry" "$s/dropins" "$s/lib" "$d/"
    cp -a "$s/repository/resources/security" "$d/repository/resources/"
    cp -a "$s/conf/deployment.toml" "$d/conf/"
  done
  sync -f "$work/cp-scratch"
  cps+=("$(elapsed "$t0")")
  discard "$work/cp-scratch"

  # cat of both homes: what a check reads, once.
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$work/time.cat" sh -c 'find "$1" -type f -print0 | xargs -0 cat > /dev/null' _ "$run"
  cats+=("$(elapsed "$t0")")
  cat_cpu+=("$(awk '{printf "%.3f", $1 + $2}' "$work/time.cat")")
  # sha256 of the same files: a check hashes what it would write (sha256_after), so this is the
  # floor under check / cat, whatever else a check does.
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$work/time.sha" sh -c 'find "$1" -type f -print0 | xargs -0 openssl dgst -sha256 > /dev/null' _ "$run"
  shas+=("$(elapsed "$t0")")
  sha_cpu+=("$(awk '{printf "%.3f", $1 + $2}' "$work/time.sha")")

  if [ -z "${SKIP_ANSIBLE:-}" ] && [ "$t" -le "$ansible_trials" ]; then
    t0=$(now)
    ANSIBLE_FORKS=$forks ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_RETRY_FILES_ENABLED=False \
      ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_REMOTE_TEMP="$work/ansible-tmp" \
      ansible-playbook -i "$work/hosts.ini" "$here/bench/migrate.yml" > "$work/ansible.out" 2>&1 ||
      { tail -30 "$work/ansible.out"; exit 1; }
    sync -f "$run"
    ans+=("$(elapsed "$t0")")
    fresh
  fi

  discard "$work/state"
  for mode in check apply; do
    flag=; [ "$mode" = check ] && flag=--check
    a0=$(agents_cpu)
    t0=$(now)
    (cd "$work" && /usr/bin/time -f "%M %U %S" -o "$work/time.$mode" "$build/bin/mimic" run \
      --inventory inventory.toml --plan plan.toml $flag > "$work/mimic-$mode.out" 2>&1) ||
      { tail -30 "$work/mimic-$mode.out"; exit 1; }
    e=$(elapsed "$t0")
    acpu=$(awk -v a="$a0" -v b="$(agents_cpu)" 'BEGIN{printf "%.3f", b-a}')
    rss=$(awk '{print $1}' "$work/time.$mode"); ccpu=$(awk '{printf "%.3f", $2 + $3}' "$work/time.$mode")
    if [ "$mode" = check ]; then chk+=("$e"); chk_rss+=("$rss"); chk_cpu+=("$ccpu"); chk_acpu+=("$acpu");
    else app+=("$e"); app_rss+=("$rss"); app_cpu+=("$ccpu"); app_acpu+=("$acpu"); fi
  done
  a=skipped; [ ${#ans[@]} -ge "$t" ] && a=${ans[-1]}
  echo "trial $t: cp ${cps[-1]} s, cat ${cats[-1]} s (CPU ${cat_cpu[-1]} s), sha256 ${shas[-1]} s (CPU ${sha_cpu[-1]} s), ansible $a s, check ${chk[-1]} s (CPU: controller ${chk_cpu[-1]} s, agents ${chk_acpu[-1]} s), apply ${app[-1]} s (CPU: controller ${app_cpu[-1]} s, agents ${app_acpu[-1]} s), load $(cut -d' ' -f1 /proc/loadavg)" >&2
done

peak_rss=$(agent_kib VmHWM)
cp_m=$(median "${cps[@]}"); cat_m=$(median "${cats[@]}"); sha_m=$(median "${shas[@]}")
chk_m=$(median "${chk[@]}"); app_m=$(median "${app[@]}")
ans_m=-; [ ${#ans[@]} -gt 0 ] && ans_m=$(median "${ans[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "-" || b == "-") print "-"; else printf "%.2f", a/b }'; }
r_ans=$(ratio "$ans_m" "$app_m"); r_cp=$(ratio "$app_m" "$cp_m"); r_cat=$(ratio "$chk_m" "$cat_m")
r_sha=$(ratio "$chk_m" "$sha_m"); r_sha_cat=$(ratio "$sha_m" "$cat_m")
echo
echo "| hosts | cp -a | Ansible $(ansible --version 2>/dev/null | head -1 | grep -o '[0-9][0-9.]*' | head -1) | mimic --check | mimic apply | cat | sha256 | Ansible / mimic | mimic / cp | check / cat | check / sha256 |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
echo "| $hosts | $cp_m s | $ans_m s | $chk_m s | $app_m s | $cat_m s | $sha_m s | ${r_ans}x | ${r_cp}x | ${r_cat}x | ${r_sha}x |"
echo "(CPU seconds, medians: cat $(median "${cat_cpu[@]}"), sha256 $(median "${sha_cpu[@]}"); check: controller $(median "${chk_cpu[@]}"), agents $(median "${chk_acpu[@]}"); apply: controller $(median "${app_cpu[@]}"), agents $(median "${app_acpu[@]}"))"
echo "(medians of $trials trials, Ansible of ${#ans[@]}; controller peak RSS check $(median "${chk_rss[@]}") KiB, apply $(median "${app_rss[@]}") KiB; agent RSS idle max ${idle_rss} KiB, peak max ${peak_rss} KiB)"
echo "hosts=$hosts trials=$trials cp_s=$cp_m ansible_s=$ans_m check_s=$chk_m apply_s=$app_m cat_s=$cat_m ratio_vs_ansible=$r_ans ratio_vs_cp=$r_cp check_vs_cat=$r_cat sha256_s=$sha_m sha256_vs_cat=$r_sha_cat check_vs_sha256=$r_sha controller_rss_kib=$(median "${app_rss[@]}") agent_idle_rss_kib=$idle_rss agent_peak_rss_kib=$peak_rss cat_cpu_s=$(median "${cat_cpu[@]}") sha256_cpu_s=$(median "${sha_cpu[@]}") check_controller_cpu_s=$(median "${chk_cpu[@]}") check_agents_cpu_s=$(median "${chk_acpu[@]}") apply_controller_cpu_s=$(median "${app_cpu[@]}") apply_agents_cpu_s=$(median "${app_acpu[@]}") load=$(cut -d' ' -f1 /proc/loadavg)"
