#!/usr/bin/env bash
# modgate's benchmark suite in one command (see bench/README.md):
#   bench/run.sh            full run (500 MiB cases, 100k and 1M-version stores, goproxy peer; ~30 min)
#   bench/run.sh --quick    a couple of minutes
#   bench/run.sh --help     every option
# Everything runs on 127.0.0.1; every load is bounded in time and count.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (Debian packages) ..." >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y "${need[@]}" >&2 || { apt-get update >&2 && apt-get install -y "${need[@]}" >&2; }
    else
        sudo apt-get install -y "${need[@]}" >&2
    fi
fi
command -v go >/dev/null || { echo "bench: needs go (scripts/test.sh installs it)" >&2; exit 1; }
[ -d /usr/share/gocode/src/golang.org/x/mod ] || { echo "bench: needs golang.org/x/mod in /usr/share/gocode (scripts/test.sh installs it)" >&2; exit 1; }
export PATH="$PATH:/usr/sbin"
exec python3 bench/bench.py "$@"
