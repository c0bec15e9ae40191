#!/usr/bin/env bash
# Runs every test of the project: formatting and lint gates, the Rust unit and integration tests (real SDK over a
# real socket), and the Python boto3 / AWS CLI suite. Installs what the tests need by itself (a local venv).
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts binaries (honours CARGO_TARGET_DIR, as cargo does).
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --workspace --all-targets -- -D warnings (the server and bench/)"
cargo clippy --workspace --all-targets -- -D warnings

echo "==> cargo build (binary used by the Python suite)"
cargo build

echo "==> Python test environment (.venv)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

echo "==> PostgreSQL on 127.0.0.1:5432 (conformance, replica and migration tests; SDK suites on PostgreSQL)"
# The machine's own cluster (trust auth for postgres on loopback); start it if it is not running.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
psql -h 127.0.0.1 -U postgres -d postgres -qAtc 'SELECT 1' >/dev/null

echo "==> cargo test"
cargo test --all-targets

echo "==> SDK integration suites again, every server on its own PostgreSQL database"
WORKMAIL_PAT_TEST_BACKEND=postgres cargo test --test sdk_operations --test sdk_pagination \
    --test sdk_next_token --test sdk_sigv4

echo "==> pytest (boto3 and AWS CLI against the real server)"
WORKMAIL_PAT_BIN="$TARGET_DIR/debug/workmail-pat" .venv/bin/python -m pytest tests/python -q -p no:cacheprovider

echo "==> pytest plugin: wheel with the binary (maturin), fresh venv, examples/pytest-token-audit with and without -n 2"
.venv/bin/python -m pip install --quiet --disable-pip-version-check 'maturin>=1.9,<2'
rm -rf target/pytest-wheel target/pytest-venv
(cd python && ../.venv/bin/maturin build --release --quiet --out ../target/pytest-wheel)
python3 -m venv target/pytest-venv
target/pytest-venv/bin/python -m pip install --quiet --disable-pip-version-check \
    target/pytest-wheel/pytest_workmail_pat-*.whl -r examples/pytest-token-audit/requirements.txt
target/pytest-venv/bin/python python/check_wheel.py target/pytest-wheel/pytest_workmail_pat-*.whl
(cd examples/pytest-token-audit && env -u WORKMAIL_PAT_BIN ../../target/pytest-venv/bin/python -m pytest -q)
(cd examples/pytest-token-audit && env -u WORKMAIL_PAT_BIN ../../target/pytest-venv/bin/python -m pytest -q -n 2)

echo "==> Benchmark smoke run (issue 4): checks the benchmark works, not its figures"
# Two builds, so the server binary is exactly the one `cargo build --release` makes (no features unified with the
# benchmark's dependencies). The benchmark signs with aws-sigv4 and fails on any answer that is not 200.
cargo build --release --bin workmail-pat
cargo build --release -p workmail-pat-bench
"$TARGET_DIR/release/workmail-pat-bench" --tokens 20000 --seconds 1 --connections 4

echo "==> Hardening smoke runs: fuzz every cargo-fuzz target (10 s in total) and a 15 s soak (issue 5)"
./scripts/fuzz.sh 10
./scripts/soak.sh 15

echo "==> Dovecot: real IMAP logins with personal access tokens (contrib/dovecot)"
# Debian's Dovecot 2.3 and its Lua passdb plugin, installed only when missing (CI runs as root on a fresh machine).
missing=()
for pkg in dovecot-imapd dovecot-submissiond dovecot-auth-lua; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
WORKMAIL_PAT_BIN="$TARGET_DIR/debug/workmail-pat" WORKMAIL_PAT_REQUIRE_DOVECOT=1 \
    .venv/bin/python -m pytest tests/dovecot -q -p no:cacheprovider

echo "==> AWS SDK for JavaScript v3 (node:test)"
npm ci --prefix tests/js --no-audit --no-fund
WORKMAIL_PAT_BIN="$TARGET_DIR/debug/workmail-pat" node --test tests/js/

echo "==> Web page end to end in headless Chromium (node:test + playwright-core)"
if [ ! -x /usr/bin/chromium ]; then
    # Debian's package; Playwright never downloads a browser here (there is no outside network).
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund
WORKMAIL_PAT_BIN="$TARGET_DIR/debug/workmail-pat" node --test tests/browser/
