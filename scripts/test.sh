#!/usr/bin/env bash
# The one test command: formatting, lints, generated files, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages sqlite3:sqlite3 python3:python3

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
