#!/bin/bash
# Runs the audit suite ($1, controller_audit_test) against a throw-away PostgreSQL cluster of
# its own: data dir under a temp dir, 127.0.0.1 on a random free port, password login
# (scram-sha-256), stopped and removed on exit. Installs postgresql with apt-get when missing
# (root only). Exports for the test:
#   MIMIC_TEST_PG_URL=postgresql://mimic_test:PASSWORD@127.0.0.1:PORT/postgres
# (each test then creates and drops a schema of its own). Extra arguments go to the test.
# Exit code 77 (ctest SKIP_RETURN_CODE) when PostgreSQL cannot be installed or started here.
set -u
TEST_BIN=${1:?usage: run_pg_audit_tests.sh TEST_BINARY [gtest args...]}
shift
START=$(date +%s)
# shellcheck source=tests/db/pg_lib.sh
source "$(dirname "$0")/pg_lib.sh"
log() { echo "run_pg_audit_tests: $*" >&2; }
skip() { log "SKIP: $*"; exit 77; }

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  [ "$(id -u)" = 0 ] || skip "PostgreSQL missing and not root: cannot apt-get install"
  log "installing postgresql with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 apt-get install -y -q postgresql >/tmp/run_pg_audit_tests.apt.log 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && timeout 900 apt-get install -y -q postgresql \
           >/tmp/run_pg_audit_tests.apt.log 2>&1; } \
    || skip "apt-get install failed (see /tmp/run_pg_audit_tests.apt.log)"
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || skip "no initdb after installing postgresql"
fi
command -v python3 >/dev/null 2>&1 || skip "python3 (to pick a free port) is missing"

TMP=$(mktemp -d /tmp/mimic_pg_audit_test.XXXXXX)
chmod 755 "$TMP"
cleanup() {
  pg_stop "$TMP"
  rm -rf "$TMP"
  log "done in $(( $(date +%s) - START )) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Hex only: safe in a URL without escaping.
PW=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

pg_start "$TMP" "$PW"
log "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$PG_PORT" \
    "(up in $(( $(date +%s) - START )) s)"

export MIMIC_TEST_PG_URL="postgresql://mimic_test:$PW@127.0.0.1:$PG_PORT/postgres"
timeout 900 "$TEST_BIN" "$@"
rc=$?
if [ "$rc" != 0 ]; then
  log "test exit code $rc; server log tail:"
  tail -20 "$TMP/pglog/pg.log" >&2
fi
exit $rc
