#!/usr/bin/env python3
"""The storm bench: what the load limits ([limits] in config/modgate.toml) cost warm hits,
and what a storm of abandoned misses costs everyone else.

    bench/storm.py [--modgate BIN] [--compare OLD_BIN] [--rounds N] [--secs S] [--keep]

Needs a release modgate (cargo build --release), Go (for tests/refupstream) and wrk;
everything runs on 127.0.0.1 in a scratch directory. Three figures, each beside its
baseline from the same run:

1. warm hits (.info/.mod rotating over 100 files, wrk 16 connections): this binary vs
   --compare (e.g. a build from before the limits), median of --rounds alternating runs;
2. the same hits while 300 clients each ask for a different uncached zip from an upstream
   that holds every zip answer 120 s, and hang up after 0.5 s (the tests/limits_storm.rs
   storm), vs the same hits without it;
3. during that storm: the most zip fetches the upstream saw at once (the limit is
   max_misses = 8 here), modgate's peak RSS, and how long until inflight_fetches is 0 and
   the spool directory is empty again.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the suite's helpers: processes, refupstream, wrk)

MAX_MISSES = 8
CLIENTS = 300


def start_modgate(b, name, binary, data_dir, config=None):
    port = bench.free_port()
    argv = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
            "--upstream", b.up_url, "--sumdb", b.sumdb]
    if config:  # a binary from before the limits knows no [limits] max_misses
        argv += ["--config", config]
    p = b.spawn(name, argv, env=dict(os.environ, MODGATE_LOG="warn"))
    p.url = f"http://127.0.0.1:{port}"
    bench.wait_http(p.url + "/healthz", proc=p)
    return p


def metric(url, name):
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def storm(url, n):
    """n clients, each a different uncached zip, each hanging up after 0.5 s."""
    def one(i):
        try:
            urllib.request.urlopen(f"{url}/example.com/gen/m{i:04}/@v/v1.0.0.zip", timeout=0.5).read()
        except OSError:
            pass
    ts = [threading.Thread(target=one, args=(i,)) for i in range(100, 100 + n)]
    for t in ts:
        t.start()
    return ts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modgate", default=os.path.join(bench.TARGET, "release", "modgate"))
    ap.add_argument("--compare", help="another modgate binary for the warm-hit baseline")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    b = bench.Bench(argparse.Namespace(quick=True, gen=100 + CLIENTS + 10, keep=a.keep,
                                       modgate=a.modgate, rounds=a.rounds))
    try:
        gopath = os.path.join(b.work, "gopath")
        os.makedirs(gopath, exist_ok=True)
        b.refup_bin = os.path.join(b.work, "refupstream")
        subprocess.run(["go", "build", "-o", b.refup_bin, "./tests/refupstream"], cwd=bench.ROOT,
                       env=dict(os.environ, GO111MODULE="off", GOPATH=f"{gopath}:/usr/share/gocode",
                                GOCACHE=os.path.join(b.work, "gocache")), check=True)
        b.big = [1]
        b.start_refupstream()
        config = os.path.join(b.work, "modgate.toml")
        with open(config, "w") as f:
            f.write(f"[limits]\nmax_misses = {MAX_MISSES}\nmiss_queue_secs = 30\n")
        hot = [f"/example.com/gen/m{i:04}/@v/v1.0.0.{k}" for i in range(50) for k in ("info", "mod")]
        # The storm's .mod files (and lookups) cached too: its misses go straight to the zip.
        warm = hot + [f"/example.com/gen/m{i:04}/@v/v1.0.0.mod" for i in range(100, 100 + CLIENTS)]

        servers = [("this", a.modgate)] + ([("compare", a.compare)] if a.compare else [])
        running = {}
        for label, binary in servers:
            p = start_modgate(b, f"modgate-{label}", binary, os.path.join(b.work, f"data-{label}"),
                              config if label == "this" else None)
            for path in warm:
                urllib.request.urlopen(p.url + path, timeout=60).read()
            running[label] = p
        bench.log("warm hits ...")
        runs = {label: [] for label, _ in servers}
        for _ in range(a.rounds):
            for label, _ in servers:
                runs[label].append(b.wrk(running[label].url + "/", 16, a.secs, hot))
        med = {l: (statistics.median(r["rps"] for r in rs), statistics.median(r["p99_ms"] for r in rs))
               for l, rs in runs.items()}
        print("### Warm hits (.info/.mod, wrk 16 connections, median of %d runs)\n" % a.rounds)
        print("| binary | req/s | p99 ms |\n|---|---|---|")
        for l, (rps, p99) in med.items():
            print(f"| {l} | {rps:.0f} | {p99:.2f} |")
        if "compare" in med:
            print(f"\nthis / compare: {med['this'][0] / med['compare'][0]:.3f}x req/s\n")

        mg = running["this"]
        for label in list(running):
            if label != "this":
                b.stop(running.pop(label))
        urllib.request.urlopen(b.up_url + "/_control/delay?what=zip&ms=120000", timeout=10).read()
        urllib.request.urlopen(b.up_url + "/_control/counters/reset", timeout=10).read()
        calm = b.wrk(mg.url + "/", 16, a.secs, hot)
        bench.log("storm ...")
        t0 = time.monotonic()
        threads = storm(mg.url, CLIENTS)
        during = b.wrk(mg.url + "/", 16, a.secs, hot)
        for t in threads:
            t.join()
        spool = os.path.join(b.work, "data-this", "tmp")
        while metric(mg.url, "modgate_inflight_fetches") > 0 or os.listdir(spool):
            if time.monotonic() - t0 > 120:
                raise RuntimeError("the storm did not clean up within 120 s")
            time.sleep(0.05)
        clean_s = time.monotonic() - t0
        conc = urllib.request.urlopen(b.up_url + "/_control/concurrency", timeout=10).read().decode()
        max_zip = json.loads(conc).get("max:zip", 0)
        print("### A storm of abandoned misses (300 clients, slow upstream, hang up after 0.5 s)\n")
        print("| | req/s | p99 ms |\n|---|---|---|")
        print(f"| hits, no storm | {calm['rps']:.0f} | {calm['p99_ms']:.2f} |")
        print(f"| hits during the storm | {during['rps']:.0f} | {during['p99_ms']:.2f} |")
        print(f"\nupstream saw at most {max_zip} zip fetches at once (max_misses = {MAX_MISSES}); "
              f"modgate VmHWM {bench.mib(bench.vm_hwm_kib(mg.pid)):.1f} MiB; "
              f"inflight 0 and spool empty {clean_s:.2f} s after the storm began")
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
