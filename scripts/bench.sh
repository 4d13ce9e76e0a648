#!/usr/bin/env bash
# Benchmarks (not tests): figures beside a baseline measured in the same run, with the ratio.
# BENCH_EVENTS (default 1000000) and BENCH_RUNS (default 7) tune it; SQLite and PostgreSQL.
# BENCH_SCOPE=evaluate measures evaluate alone (e.g. BENCH_EVENTS=10000000, where the baselines'
# copies of the data would not fit on a small disk).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages sqlite3:sqlite3 python3:python3
cargo build --release --quiet
# PostgreSQL rows too: a throwaway server, stopped at the end (BENCH_POSTGRES=0 skips them).
if [ "${BENCH_POSTGRES:-}" != 0 ]; then
    trap 'scripts/pg-env.sh down' EXIT
    BENCH_POSTGRES=$(scripts/pg-env.sh up | tail -n 1)
    export BENCH_POSTGRES
else
    unset BENCH_POSTGRES
fi
python3 scripts/bench/bench.py
# 1,000 requirements on the test apiserver (scripts/kube-env.sh; BENCH_SCALE=0 skips it).
if [ "${BENCH_SCALE:-}" != 0 ] && [ "${BENCH_SCOPE:-}" != evaluate ]; then
    trap 'scripts/pg-env.sh down; scripts/kube-env.sh down' EXIT
    python3 scripts/bench/scale.py
fi
