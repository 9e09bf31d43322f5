#!/usr/bin/env bash
# Runs every fuzz target in fuzz/fuzz_targets for a fixed budget each.
#
#   scripts/fuzz.sh [SECONDS]     (default 60 per target)
#
# Uses cargo-fuzz (installed with `cargo install cargo-fuzz --locked` when
# missing) on the stable toolchain with RUSTC_BOOTSTRAP=1, which unlocks the
# sanitizer flags libFuzzer needs. Build output goes to $FUZZ_TARGET_DIR
# (default fuzz/target); corpora grow in fuzz/corpus/<target>/, starting from
# the checked-in seeds in fuzz/seeds/<target>/ where there are any. A crash
# stops the script with a non-zero status; its input is saved under
# fuzz/artifacts/<target>/ — reproduce with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
target_dir="${FUZZ_TARGET_DIR:-fuzz/target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
cargo fuzz build --target-dir "$target_dir"
for t in $(cargo fuzz list); do
    echo "scripts/fuzz.sh: $t for ${secs}s" >&2
    mkdir -p "fuzz/corpus/$t"
    # -timeout: one input may take at most 10 s (a hang is a bug too).
    # grep keeps libFuzzer's summary and any crash report, not its chatter.
    set +e
    # Checked-in seeds (fuzz/seeds/<target>/) join the growing corpus.
    corpora=("fuzz/corpus/$t")
    [ -d "fuzz/seeds/$t" ] && corpora+=("fuzz/seeds/$t")
    cargo fuzz run --target-dir "$target_dir" "$t" "${corpora[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread '|Test unit written|Running|Error)"
    status="${PIPESTATUS[0]}"
    set -e
    if [ "$status" -ne 0 ]; then
        echo "scripts/fuzz.sh: $t FAILED (status $status); see fuzz/artifacts/$t/" >&2
        exit "$status"
    fi
done
echo "scripts/fuzz.sh: every target ran ${secs}s without a crash" >&2
