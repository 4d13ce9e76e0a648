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
echo
"$bin" evaluate --evidence "sqlite://$store" -f examples/
echo
echo "Store: $store. Try: $bin evaluate --evidence sqlite://$store -f examples/requirements/cc7-3.yaml -o yaml"
