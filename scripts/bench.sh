#!/usr/bin/env bash
# Benchmarks (not tests): figures beside a baseline measured in the same run, with the ratio.
# BENCH_EVENTS (default 1000000) and BENCH_RUNS (default 7) tune it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages sqlite3:sqlite3 python3:python3
cargo build --release --quiet
exec python3 scripts/bench/bench.py
