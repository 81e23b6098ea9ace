#!/usr/bin/env bash
# pg-local.sh: a private, throw-away PostgreSQL server for the tests, the demo and the benchmarks.
#
#   scripts/pg-local.sh start DIR   initdb DIR/data, start the server on a unix socket in DIR/sock
#                                   (no TCP port, so it never collides with anything), and print
#                                   the shell exports (PGHOST PGPORT PGUSER) to eval
#   scripts/pg-local.sh stop DIR    stop it (immediate) if it runs
#
# initdb refuses to run as root, so as root the server runs as the `postgres` system user
# (created by Debian's postgresql package). Fails loudly when no PostgreSQL is installed: a missing
# database must fail the run, never skip it.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

pg_bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    echo "pg-local: no PostgreSQL server binaries found (initdb); run scripts/install-deps.sh" >&2
    exit 1
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

bin=$(pg_bindir)
case "$cmd" in
start)
    mkdir -p "$dir/sock"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --nosync -E UTF8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir/sock'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 128MB
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
log_min_messages = warning
CONF
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "export PGHOST='$dir/sock' PGPORT=5432 PGUSER=postgres"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
