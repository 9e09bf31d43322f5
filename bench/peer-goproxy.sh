#!/usr/bin/env bash
# Builds the peer of the warm-hit table: goproxy v0.14.0 (github.com/goproxy/goproxy,
# its cmd/goproxy), from its source tag, with Debian's Go and Debian's golang.org/x/mod
# (golang-golang-x-mod-dev, /usr/share/gocode) — offline, in GOPATH mode. v0.14.0's go.mod
# requires only golang.org/x/mod v0.7.0, which is exactly Debian's.
#
#   bench/peer-goproxy.sh [OUT]      default OUT: target/peers/goproxy-v0.14.0
#
# The source: GOPROXY_SRC, a git repository holding the tag v0.14.0 (default: the snapshot
# at /work/.mirror/goproxy+goproxy/repo) or a directory holding that tree. Idempotent: an
# existing OUT is kept. Without the source it prints why and exits 2 (bench.py then leaves
# the peer out of the table).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=v0.14.0
OUT=${1:-target/peers/goproxy-$TAG}
SRC=${GOPROXY_SRC:-/work/.mirror/goproxy+goproxy/repo}

if [ -x "$OUT" ]; then
    echo "peer-goproxy: $OUT already built" >&2
    echo "$OUT"
    exit 0
fi
command -v go >/dev/null || { echo "peer-goproxy: skipped: no go command (Debian's golang-go)" >&2; exit 2; }
[ -f /usr/share/gocode/src/golang.org/x/mod/sumdb/client.go ] || {
    echo "peer-goproxy: skipped: golang.org/x/mod not in /usr/share/gocode (apt-get install golang-golang-x-mod-dev)" >&2
    exit 2
}

scratch=$(mktemp -d /tmp/peer-goproxy.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
dst="$scratch/gopath/src/github.com/goproxy/goproxy"
mkdir -p "$dst"
if git -C "$SRC" rev-parse --verify -q "$TAG^{commit}" >/dev/null 2>&1; then
    git -C "$SRC" archive "$TAG" | tar -x -C "$dst"
    echo "peer-goproxy: source: $SRC at $TAG ($(git -C "$SRC" rev-parse "$TAG^{commit}"))" >&2
elif [ -f "$SRC/goproxy.go" ] && [ -f "$SRC/cmd/goproxy/main.go" ]; then
    cp -r "$SRC/." "$dst/"
    echo "peer-goproxy: source: the tree in $SRC (assumed to be $TAG)" >&2
else
    echo "peer-goproxy: skipped: no goproxy source: $SRC holds neither a git repository with tag $TAG" \
         "nor a source tree (fetch github:goproxy/goproxy, or set GOPROXY_SRC)" >&2
    exit 2
fi
grep -q 'require golang.org/x/mod v0.7.0' "$dst/go.mod" || {
    echo "peer-goproxy: warning: this tree's go.mod does not require exactly golang.org/x/mod v0.7.0:" >&2
    cat "$dst/go.mod" >&2
}

mkdir -p "$(dirname "$OUT")"
GO111MODULE=off GOPATH="$scratch/gopath:/usr/share/gocode" GOCACHE="$scratch/gocache" GOFLAGS= \
    go build -trimpath -o "$OUT.tmp" github.com/goproxy/goproxy/cmd/goproxy
mv "$OUT.tmp" "$OUT"
echo "peer-goproxy: built $OUT with $(go version)" >&2
echo "$OUT"
