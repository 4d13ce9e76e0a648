#!/usr/bin/env bash
# A real PostgreSQL on loopback for the tests: Debian's `postgresql` package, a throwaway cluster
# (trust auth, fsync off) owned by the `postgres` user.
#
#   scripts/pg-env.sh up     # start (a running one is reused); prints the admin URL as the last line
#   scripts/pg-env.sh down   # stop what `up` started and delete its data
#
# Tests create a database of their own per case through the admin URL.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${PG_ENV_DIR:-/tmp/soc2-operator-pg-env}
PORT=${PG_ENV_PORT:-25432}

log() { echo "pg-env: $*" >&2; }
bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
# initdb and the server refuse to run as root.
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

up() {
    if [ -z "$(bindir)" ]; then
        log "installing postgresql from Debian"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    fi
    local bin
    bin=$(bindir)
    if [ ! -f "$STATE/data/PG_VERSION" ]; then
        mkdir -p "$STATE"
        [ "$(id -u)" -eq 0 ] && chown postgres: "$STATE"
        as_postgres "$bin/initdb" -D "$STATE/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$STATE/initdb.log"
    fi
    if ! as_postgres "$bin/pg_ctl" -D "$STATE/data" status >/dev/null 2>&1; then
        as_postgres "$bin/pg_ctl" -D "$STATE/data" -l "$STATE/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$STATE -c fsync=off -c max_connections=200" \
            start >/dev/null || { log "server did not start:"; tail -n 20 "$STATE/server.log" >&2; exit 1; }
    fi
    echo "postgres://postgres@127.0.0.1:$PORT/postgres"
}

down() {
    local bin
    bin=$(bindir)
    if [ -n "$bin" ] && [ -f "$STATE/data/PG_VERSION" ]; then
        as_postgres "$bin/pg_ctl" -D "$STATE/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$STATE"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
