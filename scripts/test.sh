#!/usr/bin/env bash
# Runs modgate's whole test suite. Installs what the tests need when missing:
# the real `go` command and golang.org/x/mod (Debian packages), used by the
# reference upstream, the oracle and the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb ]; then
    echo "scripts/test.sh: installing golang-go and golang-golang-x-mod-dev" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go golang-golang-x-mod-dev >/dev/null
fi

# A short fuzzing pass over every target (scripts/fuzz.sh), when cargo-fuzz
# is available or installable. MODGATE_FUZZ_SECS sets the budget per target
# (default 20; 0 skips it).
fuzz_secs="${MODGATE_FUZZ_SECS:-20}"
if [ "$fuzz_secs" -gt 0 ]; then
    if cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked; then
        scripts/fuzz.sh "$fuzz_secs"
    else
        echo "scripts/test.sh: cargo-fuzz unavailable; skipping the fuzzing pass" >&2
    fi
fi

# The whole suite. cargo-nextest (on every machine of this kind) runs each
# test in its own process with the time limits and one retry set in
# .config/nextest.toml; plain `cargo test` is the fallback.
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked "$@"
else
    cargo test --locked "$@"
fi
