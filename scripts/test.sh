#!/usr/bin/env bash
# Runs modgate's whole test suite. Installs what the tests need when missing:
# the real `go` command and golang.org/x/mod (Debian packages), used by the
# reference upstream, the oracle and the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# git serves a repository (`git daemon`) to the private-module `direct` tests.
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] \
    || ! command -v git >/dev/null 2>&1; then
    echo "scripts/test.sh: installing golang-go, golang-golang-x-mod-dev and git" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go golang-golang-x-mod-dev git >/dev/null
fi

# A short fuzzing pass over every target (scripts/fuzz.sh), when cargo-fuzz
# is available or installable. MODGATE_FUZZ_SECS sets the budget per target
# (default 20; 0 skips it).
#
# cargo-fuzz always builds with full debug info (~1.3 GB for the targets), so
# unless FUZZ_TARGET_DIR names a build directory to keep, the pass builds in
# a scratch directory that is removed before the suite is compiled: a CI
# machine need only find room for one of the two builds at a time.
fuzz_secs="${MODGATE_FUZZ_SECS:-20}"
if [ "$fuzz_secs" -gt 0 ]; then
    if cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked; then
        if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
            scripts/fuzz.sh "$fuzz_secs"
        else
            scratch="$(mktemp -d "${TMPDIR:-/tmp}/modgate-fuzz.XXXXXX")"
            trap 'rm -rf "$scratch"' EXIT
            FUZZ_TARGET_DIR="$scratch" scripts/fuzz.sh "$fuzz_secs"
            rm -rf "$scratch"
        fi
    else
        echo "scripts/test.sh: cargo-fuzz unavailable; skipping the fuzzing pass" >&2
    fi
fi

# The whole suite. cargo-nextest (on every machine of this kind) runs each
# test in its own process with the time limits and one retry set in
# .config/nextest.toml; plain `cargo test` is the fallback.
# Incremental compilation only pays off across edits; for one full build it
# adds ~1 GB of disk. Set CARGO_INCREMENTAL=1 to keep it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked "$@"
else
    cargo test --locked "$@"
fi
