#!/usr/bin/env bash
# Quick start: 60 days of demo evidence into a fresh embedded store, then the eight example
# requirements evaluated against it. No cluster needed.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet
bin=target/debug/soc2-operator
store=target/quickstart/evidence.db
mkdir -p "$(dirname "$store")"
rm -f "$store" "$store-wal" "$store-shm"

"$bin" demo-data --days 60 | "$bin" ingest --evidence "sqlite://$store" -
# A daily posture history for the last 30 days, as the operator would have recorded it.
for days_ago in $(seq 30 -1 1); do
    at=$(date -u -d "$days_ago days ago" +%Y-%m-%dT%H:%M:%SZ)
    "$bin" evaluate --evidence "sqlite://$store" -f examples/ --at "$at" --record-history -o json >/dev/null
done
echo
"$bin" evaluate --evidence "sqlite://$store" -f examples/ --record-history
echo
echo "Store: $store. Try: $bin evaluate --evidence sqlite://$store -f examples/requirements/cc7-3.yaml -o yaml"
echo "The report with its trend page: $bin export --evidence sqlite://$store -f examples/ --format pdf -o posture.pdf"
