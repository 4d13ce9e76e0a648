"""Benchmark driver for scripts/bench.sh: prints figures beside a baseline measured in the same run."""
import datetime, json, os, platform, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BENCH_BIN", os.path.join(ROOT, "target/release/soc2-operator"))
WORK = os.path.join(ROOT, "target/bench")
END = "2026-12-01T00:00:00Z"
END_US = int(datetime.datetime.fromisoformat(END.replace("Z", "+00:00")).timestamp()) * 1_000_000
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
DAYS = 60


def timed(cmd, **kw):
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, **kw)
    return time.perf_counter() - start, out.stdout


def median_time(cmd, **kw):
    times, out = [], None
    for _ in range(RUNS):
        t, out = timed(cmd, **kw)
        times.append(t)
    return statistics.median(times), out


def write_hashed_bytes(db, path):
    """The bytes the chain hashes, per event: previous hash || encode(seq, event)."""
    import sqlite3, struct
    def text(v):
        b = v.encode()
        return struct.pack(">I", len(b)) + b
    def opt(v):
        return b"\xff\xff\xff\xff" if v is None else text(v)
    with open(path, "wb") as out:
        rows = sqlite3.connect(db).execute(
            "SELECT seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash "
            "FROM audit_events ORDER BY seq")
        for seq, eid, t, typ, actor, outcome, res, attrs, prev in rows:
            out.write(prev + b"soc2-operator/audit-event/v1\n" + struct.pack(">q", seq) + text(eid)
                      + struct.pack(">q", t) + text(typ) + opt(actor) + opt(outcome) + opt(res) + opt(attrs))


PG_ADMIN = os.environ.get("BENCH_POSTGRES")  # admin URL from scripts/pg-env.sh; unset: SQLite only


def fresh_postgres(name):
    base = PG_ADMIN.rsplit("/", 1)[0]
    subprocess.run(["psql", "-q", PG_ADMIN, "-c", f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    return f"{base}/{name}"


def postgres_evaluate(events):
    """Ingest into a fresh database, then `evaluate` beside the hand-written query in psql."""
    url = fresh_postgres("bench_ingest")
    t_ingest, _ = timed([BIN, "ingest", "--evidence", url, events])
    requirements = os.path.join(ROOT, "examples/requirements")
    t_eval, out = median_time([BIN, "evaluate", "--evidence", url, "-f", requirements, "--at", END, "-o", "json"])
    ours = sorted((i["spec"]["id"], i["status"]["state"], i["status"]["coverage"], str(i["status"]["eventsInWindow"]))
                  for i in json.loads(out)["items"])
    # The same hand-written query in psql's dialect, on the same database.
    sql = (open(os.path.join(ROOT, "scripts/bench/handwritten.sql")).read()
           .replace("@now", ":now").replace(" INDEXED BY audit_events_type_time", "")
           .replace("MIN(state = 'Green')", "bool_and(state = 'Green')")
           .replace("MIN(state = 'Red')", "bool_and(state = 'Red')"))
    t_psql, out = median_time(["psql", "-X", "-q", "-A", "-t", "-F", ",", "-v", f"now={END_US}", url],
                              input=sql.encode())
    base = sorted(tuple(line.split(",")) for line in out.decode().splitlines() if line)
    if ours != base:
        print("DIFFERENT ANSWERS on PostgreSQL:\n ours:", ours, "\n hand-written:", base)
        sys.exit(1)
    return url, {"ingest": t_ingest, "evaluate": t_eval, "psql": t_psql}


def postgres_figures(events, sqlite_db):
    url, figures = postgres_evaluate(events)
    figures["verify"], _ = median_time([BIN, "verify", "--evidence", url])
    # What PostgreSQL alone takes to hand over the rows verify reads (binary COPY to nowhere): the
    # floor under any client's verify.
    walk = ("COPY (SELECT seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, prev_hash, hash "
            "FROM audit_events ORDER BY seq) TO STDOUT (FORMAT binary)")
    figures["read"], _ = median_time(["sh", "-c", f'psql -X -q "$0" -c "{walk}" > /dev/null', url])
    # Baseline: COPY of the same rows, hashes as bytea hex, into a fresh database with the schema.
    rows_csv = os.path.join(WORK, "rows-pg.csv")
    with open(rows_csv, "wb") as out:
        subprocess.run(["sqlite3", "-csv", sqlite_db,
                        "SELECT seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, "
                        "'\\x' || hex(prev_hash), '\\x' || hex(hash) FROM audit_events ORDER BY seq"], check=True, stdout=out)
    copy_url = fresh_postgres("bench_copy")
    for migration in sorted(os.listdir(os.path.join(ROOT, "migrations/postgres"))):
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", copy_url, "-f",
                        os.path.join(ROOT, "migrations/postgres", migration)], check=True, capture_output=True)
    figures["copy"], _ = timed(["psql", "-q", "-v", "ON_ERROR_STOP=1", copy_url, "-c",
                                f"\\copy audit_events FROM '{rows_csv}' WITH (FORMAT csv)"])
    return figures


def serve_stream(db, requirement, fmt):
    """Streams a requirement's supporting set from `serve` over `db`: (rows, seconds, peak RSS MiB)."""
    import re, socket, urllib.request
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen([BIN, "serve", "--evidence", "sqlite://" + db, "-f", os.path.join(ROOT, "examples"),
                               "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/compliance/soc2", timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)
        start = time.perf_counter()
        rows = 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/compliance/soc2/requirements/{requirement}/evidence?format={fmt}", timeout=600) as r:
            for _ in r:
                rows += 1
        elapsed = time.perf_counter() - start
        with open(f"/proc/{server.pid}/status") as f:
            hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024
    finally:
        server.terminate()
        server.wait()
    return rows - 1, elapsed, hwm


def export_figures(db, events):
    """Exports of the eight requirements (beside `evaluate`, the same evaluation unrendered), and the
    streamed supporting set of CC6.6 over a tenth of the events and over all of them."""
    requirements = os.path.join(ROOT, "examples")
    t_eval, _ = median_time([BIN, "evaluate", "--evidence", "sqlite://" + db, "-f", requirements, "--at", END, "-o", "json"])
    figures = {"evaluate": t_eval}
    for fmt in ("pdf", "csv", "json"):
        out = os.path.join(WORK, f"posture.{fmt}")
        figures[fmt], _ = median_time([BIN, "export", "--evidence", "sqlite://" + db, "-f", requirements, "--at", END,
                                       "--format", fmt, "-o", out])
        figures[fmt + "_bytes"] = os.path.getsize(out)
    # A store with the newest tenth of the events: does the server's memory grow with the set?
    small = os.path.join(WORK, "tenth.db")
    for f in (small, small + "-wal", small + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    with open(events, "rb") as f:
        lines = f.readlines()
    subprocess.run([BIN, "ingest", "--evidence", "sqlite://" + small, "-"], input=b"".join(lines[-(len(lines) // 10):]),
                   check=True, capture_output=True)
    figures["stream_small"] = serve_stream(small, "CC6.6", "csv")
    figures["stream_large"] = serve_stream(db, "CC6.6", "csv")
    return figures


def main():
    os.makedirs(WORK, exist_ok=True)
    events = os.path.join(WORK, "events.jsonl")
    db = os.path.join(WORK, "evidence.db")
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    per_day = EVENTS // DAYS + 1
    subprocess.run([BIN, "demo-data", "--days", str(DAYS), "--events-per-day", str(per_day), "--at", END, "-o", events],
                   check=True, capture_output=True)
    n = sum(1 for _ in open(events))
    t_ingest, out = timed([BIN, "ingest", "--evidence", "sqlite://" + db, events])
    print(f"# {n} demo events over {DAYS} days; {platform.node()}: {os.cpu_count()} cores, "
          f"{platform.platform()}; median of {RUNS} runs", flush=True)
    print(f"ingest: {t_ingest:.2f} s ({n / t_ingest:,.0f} events/s, with the hash chain)")

    requirements = os.path.join(ROOT, "examples/requirements")
    t_ours, out = median_time([BIN, "evaluate", "--evidence", "sqlite://" + db, "-f", requirements, "--at", END, "-o", "json"])
    ours = sorted((i["spec"]["id"], i["status"]["state"], i["status"]["coverage"], str(i["status"]["eventsInWindow"]))
                  for i in json.loads(out)["items"])

    sql = open(os.path.join(ROOT, "scripts/bench/handwritten.sql")).read()
    script = f".parameter set @now {END_US}\n.mode list\n.separator ,\n{sql}\n"
    t_base, out = median_time(["sqlite3", "-batch", db], input=script.encode())
    base = sorted(tuple(line.split(",")) for line in out.decode().splitlines() if line)
    if ours != base:
        print("DIFFERENT ANSWERS:\n ours:", ours, "\n hand-written:", base)
        sys.exit(1)
    if os.environ.get("BENCH_SCOPE") == "evaluate":
        # Evaluate only (e.g. at 10M events), on both stores.
        print(f"{'evaluate 8 requirements, ' + format(n, ',') + ' events':<44} {t_ours * 1000:>8.1f}ms {t_base * 1000:>8.1f}ms {t_ours / t_base:>6.2f}x")
        if PG_ADMIN:
            _, pg = postgres_evaluate(events)
            print(f"{'PostgreSQL: evaluate 8 requirements':<44} {pg['evaluate'] * 1000:>8.1f}ms {pg['psql'] * 1000:>8.1f}ms {pg['evaluate'] / pg['psql']:>6.2f}x")
            print(f"  ingest rate: PostgreSQL {n / pg['ingest']:,.0f} events/s")
        return

    # Ingest baseline: the same rows (hashes included) bulk-loaded by `sqlite3 .import` into a
    # fresh database with the same schema, indexes and triggers.
    rows_csv = os.path.join(WORK, "rows.csv")
    with open(rows_csv, "wb") as out:
        subprocess.run(["sqlite3", "-csv", db,
                        "SELECT seq, event_id, occurred_at, event_type, actor, outcome, resource, attributes, "
                        "prev_hash, hash FROM audit_events ORDER BY seq"], check=True, stdout=out)
    imported = os.path.join(WORK, "imported.db")
    if os.path.exists(imported):
        os.remove(imported)
    schema = open(os.path.join(ROOT, "migrations/sqlite/0001_audit_events.sql")).read()
    subprocess.run(["sqlite3", imported], input=schema.encode(), check=True)
    t_import, _ = timed(["sqlite3", imported], input=f".mode csv\n.import {rows_csv} audit_events\n".encode())

    # Verification baseline: sha256sum over the same bytes the chain hashes (previous hash and
    # canonical encoding of every event, as docs/evidence-chain.md defines them).
    hashed = os.path.join(WORK, "hashed.bin")
    write_hashed_bytes(db, hashed)
    t_verify, _ = median_time([BIN, "verify", "--evidence", "sqlite://" + db])
    t_sha, _ = median_time(["sha256sum", hashed])
    hashed_mb = os.path.getsize(hashed) / 1e6

    exports = export_figures(db, events)

    # PostgreSQL (scripts/pg-env.sh): the same ingest and verify, against COPY of the same rows.
    pg = postgres_figures(events, db) if PG_ADMIN else None

    print("same answer from both:", ", ".join(f"{r[0]} {r[1]} {r[2]}" for r in ours))
    print()
    print(f"{'figure':<44} {'ours':>10} {'baseline':>10} {'ratio':>7}")
    print(f"{'evaluate 8 requirements, ' + format(n, ',') + ' events':<44} {t_ours * 1000:>8.1f}ms {t_base * 1000:>8.1f}ms {t_ours / t_base:>6.2f}x")
    print(f"{'ingest with the hash chain':<44} {t_ingest:>9.2f}s {t_import:>9.2f}s {t_ingest / t_import:>6.2f}x")
    print(f"{'verify the chain (' + format(hashed_mb, '.0f') + ' MB hashed)':<44} {t_verify:>9.2f}s {t_sha:>9.2f}s {t_verify / t_sha:>6.2f}x")
    if pg:
        print(f"{'PostgreSQL: ingest with the hash chain':<44} {pg['ingest']:>9.2f}s {pg['copy']:>9.2f}s {pg['ingest'] / pg['copy']:>6.2f}x")
        print(f"{'PostgreSQL: verify the chain':<44} {pg['verify']:>9.2f}s {t_sha:>9.2f}s {pg['verify'] / t_sha:>6.2f}x")
        print(f"{'PostgreSQL: verify beside reading its rows':<44} {pg['verify']:>9.2f}s {pg['read']:>9.2f}s {pg['verify'] / pg['read']:>6.2f}x")
        print(f"{'PostgreSQL: evaluate 8 requirements':<44} {pg['evaluate'] * 1000:>8.1f}ms {pg['psql'] * 1000:>8.1f}ms {pg['evaluate'] / pg['psql']:>6.2f}x")
    for fmt in ("pdf", "csv", "json"):
        label = f"export {fmt.upper()} of the 8 requirements ({exports[fmt + '_bytes'] / 1024:.0f} KiB)"
        print(f"{label:<44} {exports[fmt] * 1000:>8.1f}ms {exports['evaluate'] * 1000:>8.1f}ms {exports[fmt] / exports['evaluate']:>6.2f}x")
    (rows_s, t_s, rss_s), (rows_l, t_l, rss_l) = exports["stream_small"], exports["stream_large"]
    print(f"{'supporting set CC6.6 streamed, ' + format(rows_s, ',') + ' rows':<44} {rss_s:>7.1f}MiB {'':>10} {'':>7}  ({rows_s / t_s:,.0f} rows/s)")
    print(f"{'supporting set CC6.6 streamed, ' + format(rows_l, ',') + ' rows':<44} {rss_l:>7.1f}MiB {rss_s:>7.1f}MiB {rss_l / rss_s:>6.2f}x  ({rows_l / t_l:,.0f} rows/s)")
    print("  exports: `soc2-operator export` whole process, beside `evaluate -o json` (the same evaluation, unrendered);")
    print("  supporting set: `serve`'s peak RSS after streaming the set as CSV, beside the same over a tenth of the events")
    print(f"  ingest rate: SQLite {n / t_ingest:,.0f} events/s" + (f", PostgreSQL {n / pg['ingest']:,.0f} events/s" if pg else ""))
    print(f"  verification throughput: SQLite {hashed_mb / t_verify:.0f} MB/s ({n / t_verify:,.0f} events/s), sha256sum {hashed_mb / t_sha:.0f} MB/s")
    print("  ours: `soc2-operator evaluate -o json`, whole process: open + migration check, counts, recent events;")
    print("  baseline: scripts/bench/handwritten.sql in the sqlite3 CLI, whole process, same covering index")
    print("  ingest: `soc2-operator ingest` of the JSON Lines (parse and canonicalise; chain, insert and roll up on a writer thread)")
    print("  against `sqlite3 .import` of the same rows, hashes precomputed, into the same schema")
    print("  verify: `soc2-operator verify` (read every row, re-encode, SHA-256, compare) against `sha256sum`")
    print("  over the same bytes written to one file")
    if pg:
        print("  PostgreSQL: a fresh database each; baseline `\\copy` (COPY FROM STDIN, CSV) of the same rows,")
        print("  hashes precomputed, into the same schema with its index and triggers; \"reading its rows\":")
        print("  psql's binary COPY of the rows verify reads, to /dev/null (PostgreSQL's share of a verify)")


if __name__ == "__main__":
    main()
