#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (issue 5) for SECONDS in total (default 240), split evenly between targets.
#   scripts/fuzz.sh [SECONDS]        env: FUZZ_TARGETS="decode_request sigv4" to run a subset
# Only the stable toolchain exists here, so libFuzzer's nightly flags are unlocked with RUSTC_BOOTSTRAP=1, and the
# sanitizer is off (the crate forbids unsafe code; a panic or failed assertion is what we look for). cargo-fuzz is
# installed from crates.io once (pinned, idempotent). Crashes land in fuzz/artifacts/<target>/ and fail the script;
# turn each into a regression test in tests/fuzz_equivalents.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL="${1:-240}"
CARGO_FUZZ_VERSION=0.13.2
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION (once)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi
targets=(${FUZZ_TARGETS:-decode_request next_token sigv4 pat_secret})
per=$(( TOTAL / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1
cd fuzz
echo "==> building fuzz targets"
cargo fuzz build --sanitizer none -O
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "==> fuzzing $t for ${per}s"
    log="$(mktemp)"
    if cargo fuzz run --sanitizer none -O "$t" "corpus/$t" -- -max_total_time="$per" -max_len=4096 \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
        echo "    $t: ${execs:-?} executions, no crash"
    else
        status=1
        tail -n 40 "$log"
        echo "    $t: CRASH (see fuzz/artifacts/$t/)"
    fi
    rm -f "$log"
done
exit "$status"
