#!/usr/bin/env bash
# Runs every test of the project: formatting and lint gates, the Rust unit and integration tests (real SDK over a
# real socket), and the Python boto3 / AWS CLI suite. Installs what the tests need by itself (a local venv).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

echo "==> cargo build (binary used by the Python suite)"
cargo build

echo "==> Python test environment (.venv)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

echo "==> cargo test"
cargo test --all-targets

echo "==> pytest (boto3 and AWS CLI against the real server)"
WORKMAIL_PAT_BIN="$PWD/target/debug/workmail-pat" .venv/bin/python -m pytest tests/python -q -p no:cacheprovider

echo "==> AWS SDK for JavaScript v3 (node:test)"
npm ci --prefix tests/js --no-audit --no-fund
WORKMAIL_PAT_BIN="$PWD/target/debug/workmail-pat" node --test tests/js/
