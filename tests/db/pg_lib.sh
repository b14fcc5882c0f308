# Shared by the database test scripts (sourced, not run): a throw-away PostgreSQL cluster of
# the test's own on 127.0.0.1. The caller defines log() and skip() (exit 77) and sets PG_BIN.
#   free_port                -> prints a free 127.0.0.1 TCP port
#   pg_start DIR PASSWORD    -> initdb DIR/pg (user mimic_test, scram-sha-256) and start it on a
#                               free port (3 tries); sets PG_PORT, PG_STARTED=1; skip()s on failure
#   pg_stop DIR              -> stops the cluster started by pg_start (no-op otherwise)
# root cannot run postgres: it runs as the postgres system user (the package creates it).

PG_STARTED=0
PG_RUN_AS=()

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_start() {
  local dir=$1 pw=$2 attempt
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || skip "no postgres system user"
    PG_RUN_AS=(runuser -u postgres --)
  fi
  mkdir -p "$dir/pg" "$dir/pgsock" "$dir/pglog"
  printf '%s\n' "$pw" >"$dir/pgpw"
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir/pg" "$dir/pgsock" "$dir/pglog" "$dir/pgpw"
  fi
  "${PG_RUN_AS[@]}" "$PG_BIN/initdb" -D "$dir/pg" -U mimic_test --pwfile="$dir/pgpw" \
      --auth=scram-sha-256 -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; skip "initdb failed"; }
  # The port is free when picked but may be taken before postgres binds it: try a few.
  for attempt in 1 2 3; do
    PG_PORT=$(free_port)
    PG_STARTED=1
    if "${PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$dir/pg" -w -t 60 -l "$dir/pglog/pg.log" \
        -o "-p $PG_PORT -h 127.0.0.1 -k $dir/pgsock -c fsync=off -c max_connections=200" \
        start >/dev/null; then
      return 0
    fi
    PG_STARTED=0
  done
  cat "$dir/pglog/pg.log" >&2
  skip "PostgreSQL did not start"
}

pg_stop() {
  if [ "$PG_STARTED" = 1 ]; then
    "${PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$1/pg" -m immediate -w -t 30 stop >/dev/null 2>&1
    PG_STARTED=0
  fi
}
