#!/usr/bin/env bash
# Runs modgate's whole test suite. Installs what the tests need when missing:
# the real `go` command and golang.org/x/mod (Debian packages), used by the
# reference upstream, the oracle and the end-to-end tests; moto's S3 server,
# the object store of the replica tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian/Ubuntu packages, as root or through sudo; the package lists are
# updated once per run.
apt_updated=""
apt_install() {
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    if [ -z "$apt_updated" ]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# git serves a repository (`git daemon`) to the private-module `direct` tests.
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] \
    || ! command -v git >/dev/null 2>&1; then
    echo "scripts/test.sh: installing golang-go, golang-golang-x-mod-dev and git" >&2
    apt_install golang-go golang-golang-x-mod-dev git
fi

# moto's S3 server (`moto_server`) stands in for an S3-compatible object store
# in the replica tests (tests/common/s3.rs). They run MODGATE_MOTO_SERVER if
# set, else `moto_server` from PATH; when neither exists it is installed here
# into a virtualenv (PEP 668 forbids pip on Debian's own python), by default
# ~/.cache/modgate/moto-venv (MODGATE_MOTO_VENV), and that venv's bin/ goes
# first on PATH. The replica tests rely on moto refusing a PutObject whose
# If-None-Match: * or If-Match: <etag> does not hold (recent 5.x releases);
# tests/s3_harness.rs checks that the installed moto does.
if [ -z "${MODGATE_MOTO_SERVER:-}" ] && ! command -v moto_server >/dev/null 2>&1; then
    moto_venv="${MODGATE_MOTO_VENV:-$HOME/.cache/modgate/moto-venv}"
    if [ ! -x "$moto_venv/bin/moto_server" ] \
        || ! "$moto_venv/bin/python" -c 'import moto.server' >/dev/null 2>&1; then
        echo "scripts/test.sh: installing moto[server] into $moto_venv" >&2
        command -v python3 >/dev/null 2>&1 || apt_install python3
        mkdir -p "$(dirname "$moto_venv")"
        if ! "$moto_venv/bin/python" -m pip --version >/dev/null 2>&1; then
            # Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in python3-venv.
            if ! python3 -m venv "$moto_venv" >/dev/null 2>&1; then
                apt_install python3-venv
                python3 -m venv "$moto_venv" >/dev/null 2>&1 || true
            fi
            # Still no pip inside: the system's pip (python3-pip) seen from the
            # venv, which installs into the venv, not the system.
            if ! "$moto_venv/bin/python" -m pip --version >/dev/null 2>&1; then
                python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
                python3 -m venv --without-pip --system-site-packages "$moto_venv"
            fi
        fi
        "$moto_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            'moto[server]>=5.1,<6'
    fi
    export PATH="$moto_venv/bin:$PATH"
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
