#!/bin/bash
# Runs the database step tests ($1, e.g. agent_db_test) against a throw-away PostgreSQL cluster
# and MariaDB server of their own: data dirs under a temp dir, 127.0.0.1 on random free ports,
# stopped and removed on exit. Installs postgresql / mariadb-server / clients with apt-get when
# missing (root only). Exports for the test:
#   MIMIC_TEST_PG_HOST MIMIC_TEST_PG_PORT MIMIC_TEST_PG_USER MIMIC_TEST_PG_PASSWORD
#   MIMIC_TEST_MY_HOST MIMIC_TEST_MY_PORT MIMIC_TEST_MY_USER MIMIC_TEST_MY_PASSWORD
# Exit code 77 (ctest SKIP_RETURN_CODE) when the servers cannot be installed or started here.
set -u
TEST_BIN=${1:?usage: run_db_tests.sh TEST_BINARY [gtest args...]}
shift
START=$(date +%s)
# shellcheck source=tests/db/pg_lib.sh
source "$(dirname "$0")/pg_lib.sh"
log() { echo "run_db_tests: $*" >&2; }
skip() { log "SKIP: $*"; exit 77; }

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
need_install=0
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || need_install=1
for c in psql pg_dump pg_restore mariadbd mariadb-install-db mysql mysqldump mysqladmin; do
  command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || need_install=1
done
if [ "$need_install" = 1 ]; then
  [ "$(id -u)" = 0 ] || skip "database servers missing and not root: cannot apt-get install"
  log "installing postgresql and mariadb-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 apt-get install -y -q postgresql postgresql-client mariadb-server mariadb-client \
      >/tmp/run_db_tests.apt.log 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && timeout 900 apt-get install -y -q postgresql \
           postgresql-client mariadb-server mariadb-client >/tmp/run_db_tests.apt.log 2>&1; } \
    || skip "apt-get install failed (see /tmp/run_db_tests.apt.log)"
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)

TMP=$(mktemp -d /tmp/mimic_db_test.XXXXXX)
chmod 755 "$TMP"
MY_PID=""
cleanup() {
  pg_stop "$TMP"
  if [ -n "$MY_PID" ]; then
    kill "$MY_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$MY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$MY_PID" 2>/dev/null
  fi
  rm -rf "$TMP"
  log "done in $(( $(date +%s) - START )) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PW=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

# --- PostgreSQL
pg_start "$TMP" "$PW"
log "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$PG_PORT"

# --- MariaDB
MY_PORT=$(free_port)
mariadb-install-db --datadir="$TMP/my" --user=root --auth-root-authentication-method=socket \
    --skip-test-db >"$TMP/my-install.log" 2>&1 \
  || { cat "$TMP/my-install.log" >&2; skip "mariadb-install-db failed"; }
"$MARIADBD" --no-defaults --datadir="$TMP/my" --port="$MY_PORT" --bind-address=127.0.0.1 \
    --socket="$TMP/my.sock" --pid-file="$TMP/my.pid" --user=root --skip-log-bin \
    --innodb-flush-log-at-trx-commit=0 >"$TMP/my.log" 2>&1 &
MY_PID=$!
for _ in $(seq 1 300); do
  mysqladmin --no-defaults --socket="$TMP/my.sock" -uroot ping >/dev/null 2>&1 && break
  kill -0 "$MY_PID" 2>/dev/null || break
  sleep 0.1
done
mysql --no-defaults --socket="$TMP/my.sock" -uroot -e \
  "CREATE USER 'mimic_test'@'127.0.0.1' IDENTIFIED BY '$PW';
   GRANT ALL PRIVILEGES ON *.* TO 'mimic_test'@'127.0.0.1' WITH GRANT OPTION;" \
  || { tail -20 "$TMP/my.log" >&2; skip "MariaDB did not start"; }
log "MariaDB on 127.0.0.1:$MY_PORT (servers up in $(( $(date +%s) - START )) s)"

export MIMIC_TEST_PG_HOST=127.0.0.1 MIMIC_TEST_PG_PORT=$PG_PORT MIMIC_TEST_PG_USER=mimic_test \
       MIMIC_TEST_PG_PASSWORD=$PW
export MIMIC_TEST_MY_HOST=127.0.0.1 MIMIC_TEST_MY_PORT=$MY_PORT MIMIC_TEST_MY_USER=mimic_test \
       MIMIC_TEST_MY_PASSWORD=$PW
timeout 900 "$TEST_BIN" "$@"
rc=$?
exit $rc
