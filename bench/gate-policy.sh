#!/usr/bin/env bash
# Writes the policy the gate is benchmarked with (BENCHMARKS.md, "Supply-chain
# gate"): 1,000 deny rules of the shapes operators write (none matches the
# bench's example.com modules) and the whole Go vulnerability database as a
# vulnerabilities source, plus a wrapper that starts modgate with it.
#   bench/gate-policy.sh OUT_DIR VULNDB_DIR [MODGATE_BINARY]
# then: bench/run.sh --quick --only hits --modgate OUT_DIR/modgate-with-policy \
#                    --compare target/release/modgate
set -euo pipefail
out="$1"; vulndb="$(cd "$2" && pwd)"; bin="$(realpath "${3:-target/release/modgate}")"
mkdir -p "$out"
policy="$out/policy.toml"
{
    printf '[advisories]\nvulnerabilities = ["%s"]\nrefresh = "1h"\n\n' "$vulndb"
    for i in $(seq 0 999); do
        case $((i % 4)) in
        0) printf '[[deny]]\nmodule = "github.com/owner%d/*"\n' "$i" ;;
        1) printf '[[deny]]\nmodule = "github.com/org%d/repo%d"\nversions = ["<v1.4.0", ">=v2.0.0, <v2.3.5"]\n' "$i" "$i" ;;
        2) printf '[[deny]]\nmodule = "corp%d.example.com"\n' "$i" ;;
        *) if [ $((i % 100)) -eq 3 ]; then printf '[[deny]]\nmodule = "*.evil%d.org"\n' "$i"
           else printf '[[deny]]\nmodule = "gitlab.com/g%d/p"\nversions = ["v1.3.1"]\n' "$i"; fi ;;
        esac
        printf 'reason = "rule %d"\n\n' "$i"
    done
} > "$policy"
cat > "$out/modgate-with-policy" <<WRAP
#!/bin/sh
MODGATE_POLICY="$policy" exec "$bin" "\$@"
WRAP
chmod +x "$out/modgate-with-policy"
echo "$out/modgate-with-policy"
