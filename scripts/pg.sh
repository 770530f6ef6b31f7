#!/usr/bin/env bash
# A throwaway PostgreSQL for tests.
#   scripts/pg.sh start DIR   initdb into DIR, start on a free loopback port, print the URL
#   scripts/pg.sh stop DIR    stop it and delete DIR
#   scripts/pg.sh pause DIR   stop the server, keeping its data (clients see it go away)
#   scripts/pg.sh resume DIR  start it again on the same port
# Tests run it with fsync off; PG_FSYNC=on makes it durable (the benchmark).
set -euo pipefail

bin_dir() {
  if command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v pg_ctl)"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
  echo "$d"
}

# PostgreSQL refuses to run as root: use the postgres account when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  as_pg "$BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w \
    -o "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$1 -c fsync=${PG_FSYNC:-off} -c max_connections=300" \
    start >/dev/null
}

cmd=${1:?start|stop|pause|resume}; dir=${2:?data directory}
BIN=$(bin_dir)
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    pg_start "$dir" "$port"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  pause)
    as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  resume)
    pg_start "$dir" "$(cat "$dir/port")"
    ;;
  stop)
    if [ -d "$dir/data" ]; then as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop|pause|resume DIR" >&2; exit 2 ;;
esac
