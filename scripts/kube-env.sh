#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the integration tests:
# etcd (Debian's etcd-server) + kube-apiserver + kube-controller-manager (built once from Debian's
# `kubernetes` source package with Debian's Go, cached outside the checkout).
#
#   scripts/kube-env.sh up     # build if needed, start, print the kubeconfig path as the last line
#   scripts/kube-env.sh down   # stop exactly what `up` started
#   scripts/kube-env.sh restart-apiserver   # for tests that survive an apiserver restart
#
# Running `up` twice is safe: a running environment is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

CACHE=${KUBE_ENV_CACHE:-/var/cache/soc2-operator/kube}
STATE=${KUBE_ENV_DIR:-/tmp/soc2-operator-kube-env}
ETCD_PORT=${KUBE_ENV_ETCD_PORT:-23790}
API_PORT=${KUBE_ENV_API_PORT:-26443}
TOKEN=soc2-operator-test-admin-token

log() { echo "kube-env: $*" >&2; }

build_binaries() {
    [ -x "$CACHE/kube-apiserver" ] && [ -x "$CACHE/kube-controller-manager" ] && return 0
    ensure_packages go:golang-go etcd:etcd-server rsync:rsync make:make openssl:openssl
    log "building kube-apiserver and kube-controller-manager from Debian's kubernetes source (~10 min, once)"
    local work uri
    work=$(mktemp -d /var/tmp/soc2-kube-build.XXXXXX)
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    uri=${uri:-http://deb.debian.org/debian}
    mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
    echo "deb-src $uri bookworm main" > "$work/apt/sources.list"
    local apt_opts=(-o "Dir::Etc::sourcelist=$work/apt/sources.list" -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache")
    apt-get "${apt_opts[@]}" update -qq
    (cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only kubernetes >/dev/null)
    local tarball
    tarball=$(ls "$work"/src/kubernetes_*.orig.tar.gz | head -n1)
    mkdir -p "$work/tree"
    tar -xzf "$tarball" -C "$work/tree" --strip-components=1
    # The vendored reflect2 1.0.1 crashes with Go >= 1.18: use Debian's 1.0.2.
    (cd "$work" && apt-get download golang-github-modern-go-reflect2-dev >/dev/null && dpkg-deb -x golang-github-modern-go-reflect2-dev_*.deb reflect2)
    local vendored="$work/tree/vendor/github.com/modern-go/reflect2"
    rm -f "$vendored"/*.go "$vendored"/*.s
    cp "$work"/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$vendored"/
    cp "$work"/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$vendored"/ 2>/dev/null || true
    rm -f "$vendored"/*_test.go
    (cd "$work/tree" && env -u GOFLAGS HOME="$work/home" GOPATH="$work/gopath" GOCACHE="$work/gocache" GOPROXY=off \
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$work/build.log" 2>&1) || {
        log "build failed; log kept at $work/build.log"
        exit 1
    }
    mkdir -p "$CACHE"
    install -m 0755 "$work/tree/_output/bin/kube-apiserver" "$work/tree/_output/bin/kube-controller-manager" "$CACHE/"
    rm -rf "$work"
}

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

ready() {
    curl -fsS --max-time 2 --cacert "$STATE/ca.crt" -H "Authorization: Bearer $TOKEN" \
        "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1
}

make_certs() {
    [ -f "$STATE/sa.key" ] && return 0
    mkdir -p "$STATE"
    (
        cd "$STATE"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=soc2-operator-test-ca" \
            -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' > san.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile san.ext -out server.crt 2>/dev/null
        openssl genrsa -out sa.key 2048 2>/dev/null
        openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
        echo "$TOKEN,admin,admin-uid,\"system:masters\"" > tokens.csv
        # A user with no RBAC at all, for 403 tests.
        echo "soc2-operator-test-nobody-token,nobody,nobody-uid" >> tokens.csv
    )
}

write_kubeconfig() {
    cat > "$STATE/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $STATE/ca.crt
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: test
  context: {cluster: test, user: admin, namespace: default}
current-context: test
KUBECONFIG
}

start() {
    local name=$1
    shift
    alive "$name" && return 0
    setsid "$@" >"$STATE/$name.log" 2>&1 < /dev/null &
    echo $! > "$STATE/$name.pid"
}

start_apiserver() {
    start kube-apiserver "$CACHE/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
        --tls-cert-file "$STATE/server.crt" --tls-private-key-file "$STATE/server.key" \
        --client-ca-file "$STATE/ca.crt" --token-auth-file "$STATE/tokens.csv" --authorization-mode RBAC \
        --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$STATE/sa.pub" \
        --service-account-signing-key-file "$STATE/sa.key" --service-cluster-ip-range 10.96.0.0/16 \
        --enable-priority-and-fairness=false --profiling=false
    for _ in $(seq 1 120); do
        ready && break
        alive kube-apiserver || { log "kube-apiserver exited:"; tail -n 20 "$STATE/kube-apiserver.log" >&2; exit 1; }
        sleep 0.5
    done
    ready || { log "kube-apiserver not ready in 60 s"; tail -n 20 "$STATE/kube-apiserver.log" >&2; exit 1; }
}

up() {
    ensure_packages etcd:etcd-server openssl:openssl curl:curl
    build_binaries
    make_certs
    write_kubeconfig
    start etcd etcd --name soc2-test --data-dir "$STATE/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
        --initial-cluster "soc2-test=http://127.0.0.1:$((ETCD_PORT + 1))" \
        --listen-metrics-urls "http://127.0.0.1:$((ETCD_PORT + 2))"
    start_apiserver
    start kube-controller-manager "$CACHE/kube-controller-manager" --kubeconfig "$STATE/kubeconfig" \
        --controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token \
        --service-account-private-key-file "$STATE/sa.key" --root-ca-file "$STATE/ca.crt" \
        --bind-address 127.0.0.1 --secure-port 0 --port 0 --leader-elect=false
    echo "$STATE/kubeconfig"
}

# Stops and starts kube-apiserver alone (etcd keeps the state), for restart tests.
restart_apiserver() {
    alive kube-apiserver || { log "not running"; exit 1; }
    stop kube-apiserver
    start_apiserver
}

# stop NAME: SIGTERM, then SIGKILL after 5 s (an apiserver drains open watches for a minute).
stop() {
    if alive "$1"; then
        kill "$(cat "$STATE/$1.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do alive "$1" || break; sleep 0.1; done
        if alive "$1"; then
            kill -9 "$(cat "$STATE/$1.pid")" 2>/dev/null || true
            for _ in $(seq 1 50); do alive "$1" || break; sleep 0.1; done
        fi
    fi
    rm -f "$STATE/$1.pid"
}

down() {
    for name in kube-controller-manager kube-apiserver etcd; do
        stop "$name"
    done
    rm -rf "$STATE"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    build) build_binaries ;;
    restart-apiserver) restart_apiserver ;;
    *) echo "usage: $0 up|down|build|restart-apiserver" >&2; exit 2 ;;
esac
