"""1,000 Soc2Requirements on the real test apiserver (scripts/kube-env.sh): time until every status
is written, status writes and Events per reconcile, and the operator's peak RSS. Run by
scripts/bench.sh after bench.py (BENCH_SCALE=0 skips it)."""
import json, os, random, re, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BENCH_BIN", os.path.join(ROOT, "target/release/soc2-operator"))
WORK = os.path.join(ROOT, "target/bench")
COUNT = int(os.environ.get("BENCH_REQUIREMENTS", "1000"))
RSS_TARGET_MIB = 50


def kubectl(kubeconfig, *args, input=None):
    return subprocess.run(["kubectl", *args], env={**os.environ, "KUBECONFIG": kubeconfig},
                          input=input, capture_output=True, check=True).stdout


def metric(port, name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(name))


def main():
    kubeconfig = subprocess.run([os.path.join(ROOT, "scripts/kube-env.sh"), "up"], check=True,
                                capture_output=True).stdout.decode().split()[-1]
    kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", os.path.join(ROOT, "crds/crds.yaml"))
    kubectl(kubeconfig, "wait", "--for=condition=established", "--timeout=60s",
            "crd/soc2requirements.compliance.behavry.io")
    ns = f"scale-{random.randrange(16**6):06x}"
    kubectl(kubeconfig, "create", "namespace", ns)
    os.makedirs(WORK, exist_ok=True)
    db = os.path.join(WORK, "scale.db")
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    events = subprocess.run([BIN, "demo-data", "--days", "40"], check=True, capture_output=True).stdout
    subprocess.run([BIN, "ingest", "--evidence", "sqlite://" + db, "-"], input=events, check=True, capture_output=True)

    # COUNT requirements: the eight examples over and over, each under a name of its own.
    examples = sorted(os.listdir(os.path.join(ROOT, "examples/requirements")))
    texts = [open(os.path.join(ROOT, "examples/requirements", e)).read() for e in examples]
    docs = []
    for i in range(COUNT):
        text = texts[i % len(texts)]
        docs.append(re.sub(r"(?m)^  name: .*$", f"  name: req-{i:04d}", text, count=1))
    kubectl(kubeconfig, "apply", "-n", ns, "-f", "-", input="\n---\n".join(docs).encode())

    port = int(subprocess.run(["python3", "-c", "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"],
                              capture_output=True, check=True).stdout)
    log = open(os.path.join(WORK, "scale-operator.log"), "w")
    start = time.perf_counter()
    operator = subprocess.Popen([BIN, "run", "--evidence", "sqlite://" + db, "--watch-namespace", ns,
                                 "--disable-leader-election", "--http-addr", f"127.0.0.1:{port}",
                                 "--requeue-interval", "10m", "--identity", "scale-bench"],
                                env={**os.environ, "KUBECONFIG": kubeconfig, "RUST_LOG": "warn"},
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        while True:
            items = json.loads(kubectl(kubeconfig, "get", "soc2requirements", "-n", ns, "-o", "json"))["items"]
            done = sum(1 for i in items if (i.get("status") or {}).get("state"))
            if done == COUNT:
                break
            if time.perf_counter() - start > 600 or operator.poll() is not None:
                sys.exit(f"only {done} of {COUNT} statuses written")
            time.sleep(0.5)
        elapsed = time.perf_counter() - start
        time.sleep(5)  # let the burst settle: every reconcile done, Events sent
        reconciles = metric(port, 'soc2_reconcile_total{controller="requirement"}')
        writes = metric(port, 'soc2_status_writes_total{controller="requirement"}')
        events = len(kubectl(kubeconfig, "get", "events.events.k8s.io", "-n", ns, "-o", "name").splitlines())
        with open(f"/proc/{operator.pid}/status") as f:
            hwm_kib = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        kubectl(kubeconfig, "delete", "namespace", ns, "--wait=false")
    rss = hwm_kib / 1024
    print()
    print(f"{'figure (' + format(COUNT, ',') + ' Soc2Requirements, real apiserver)':<44} {'ours':>10} {'target':>10}")
    print(f"{'every status written, from process start':<44} {elapsed:>9.1f}s {'':>10}")
    print(f"{'operator peak RSS (VmHWM)':<44} {rss:>7.1f}MiB {RSS_TARGET_MIB:>7}MiB {'met' if rss <= RSS_TARGET_MIB else 'MISSED'}")
    print(f"{'status writes per reconcile':<44} {writes / reconciles:>10.2f}")
    print(f"{'Events per reconcile':<44} {events / reconciles:>10.2f}")
    print(f"  {reconciles:.0f} reconciles, {writes:.0f} status writes (server-side apply), {events} Events;"
          " reads come from the watch caches, not from requests")


if __name__ == "__main__":
    main()
