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

cargo test --locked "$@"
