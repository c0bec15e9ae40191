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
# Switches on the PostgreSQL half of the store conformance suite (tests/store_conformance.rs), on the server above.
export WORKMAIL_PAT_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432
cargo test --all-targets

echo "==> SDK integration suites again, every server on its own PostgreSQL database"
WORKMAIL_PAT_TEST_BACKEND=postgres cargo test --test sdk_operations --test sdk_pagination \
    --test sdk_next_token --test sdk_sigv4

echo "==> systemd-analyze (checks contrib/systemd/workmail-pat.service in the Python suite)"
# Debian's `systemd` package (a few seconds); `verify` and `security --offline` need no running systemd. Where it
# cannot be installed the unit tests are skipped with the reason shown in pytest's summary (-ra).
if ! command -v systemd-analyze >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    { $SUDO apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends systemd >/dev/null; } ||
        echo "WARNING: systemd-analyze could not be installed; the systemd unit tests will be skipped"
fi

echo "==> pytest (boto3 and AWS CLI against the real server; the README's code blocks: test_frontdoor.py)"
WORKMAIL_PAT_BIN="$TARGET_DIR/debug/workmail-pat" .venv/bin/python -m pytest tests/python -q -p no:cacheprovider

echo "==> OpenAPI contract: Schemathesis against a live server with docs/openapi.yaml (about 25 s)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/openapi/requirements.txt
WORKMAIL_PAT_BIN="$TARGET_DIR/debug/workmail-pat" .venv/bin/python -m pytest tests/openapi -q -p no:cacheprovider

echo "==> pytest plugin: manylinux2014 wheel with the static binary (maturin), auditwheel, fresh venv, examples/pytest-token-audit with and without -n 2"
.venv/bin/python -m pip install --quiet --disable-pip-version-check 'maturin>=1.9,<2' 'auditwheel>=6,<7'
rm -rf target/pytest-wheel target/pytest-venv
# The static release build (issue 17), the same flags and --target as scripts/image.sh, so the container image step
# below reuses this compile (only the final link differs: maturin strips the binary). A static binary needs no
# glibc of the machine, so the wheel is manylinux2014 (glibc 2.17), installable on every Linux of the last decade.
STATIC_TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
STATIC_RUSTFLAGS_VAR="CARGO_TARGET_$(echo "$STATIC_TRIPLE" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
(cd python && env "$STATIC_RUSTFLAGS_VAR=-C target-feature=+crt-static" ../.venv/bin/maturin build --release \
    --locked --quiet --target "$STATIC_TRIPLE" --compatibility manylinux2014 --out ../target/pytest-wheel)
python3 -m venv target/pytest-venv
target/pytest-venv/bin/python -m pip install --quiet --disable-pip-version-check \
    target/pytest-wheel/pytest_workmail_pat-*.whl -r examples/pytest-token-audit/requirements.txt
target/pytest-venv/bin/python python/check_wheel.py --auditwheel .venv/bin/auditwheel \
    target/pytest-wheel/pytest_workmail_pat-*.whl
(cd examples/pytest-token-audit && env -u WORKMAIL_PAT_BIN ../../target/pytest-venv/bin/python -m pytest -q)
(cd examples/pytest-token-audit && env -u WORKMAIL_PAT_BIN ../../target/pytest-venv/bin/python -m pytest -q -n 2)

echo "==> Container image (issue 17): FROM scratch with the static binary (podman), run: health, boto3, volume, by name"
# podman (Debian's) is installed by image.sh when missing; image.sh writes target/podman/containers.conf (runc,
# explicit ulimits) unless CONTAINERS_CONF is set, and the tests use the same file. A machine that cannot run
# containers at all skips the run tests with the reason shown (-rs); the image build itself needs no runtime.
./scripts/image.sh
CONTAINERS_CONF="${CONTAINERS_CONF:-$TARGET_DIR/podman/containers.conf}" \
    WORKMAIL_PAT_BIN="$TARGET_DIR/$STATIC_TRIPLE/release/workmail-pat" WORKMAIL_PAT_IMAGE=workmail-pat:latest \
    .venv/bin/python -m pytest tests/container -q -rs -p no:cacheprovider

echo "==> Benchmark smoke run (issue 4): checks the benchmark works, not its figures"
# Against the static release server built above for the wheel and the image (one release compile of the server in
# the whole run); the benchmark is built on its own (-p), so the server binary is not rebuilt with the benchmark's
# dependencies. It signs with aws-sigv4 and fails on any answer that is not 200.
env "$STATIC_RUSTFLAGS_VAR=-C target-feature=+crt-static" cargo build --release --locked --target "$STATIC_TRIPLE" \
    -p workmail-pat-bench
"$TARGET_DIR/$STATIC_TRIPLE/release/workmail-pat-bench" --tokens 20000 --seconds 1 --connections 4 --profile-requests 20

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

echo "==> Web page and HTML audit report end to end in headless Chromium (node:test + playwright-core)"
if [ ! -x /usr/bin/chromium ]; then
    # Debian's package; Playwright never downloads a browser here (there is no outside network).
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund
WORKMAIL_PAT_BIN="$TARGET_DIR/debug/workmail-pat" node --test tests/browser/
