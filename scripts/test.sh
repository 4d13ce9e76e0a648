#!/usr/bin/env bash
# The one test command: formatting, lints, generated files, and every test — the integration
# tests against a real kube-apiserver (scripts/kube-env.sh), a real PostgreSQL (scripts/pg-env.sh)
# and a real S3-compatible server (scripts/s3-env.sh), all started here and stopped at the end,
# and the dashboard's test in Debian's headless chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages sqlite3:sqlite3 python3:python3 curl:curl pdftotext:poppler-utils openssl:openssl \
    chromium:chromium node:nodejs npm:npm
# Node helpers of the tests, pinned by their lock file: playwright-core (it drives Debian's
# chromium) and prometheus-operator's schemas (for the chart's ServiceMonitor and PrometheusRule).
(cd tests/browser && npm ci --silent --prefer-offline --no-audit --no-fund)

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings

# The first run on a machine builds the apiserver (~10 min); later runs reuse the cache.
scripts/kube-env.sh up >/dev/null
trap 'scripts/kube-env.sh down; scripts/s3-env.sh down; scripts/pg-env.sh down' EXIT
scripts/s3-env.sh up >/dev/null
scripts/pg-env.sh up >/dev/null
cargo test --all-targets
