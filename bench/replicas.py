#!/usr/bin/env python3
"""The replicas bench (issue #14, "Speed"): modgate replicas on one S3-compatible bucket.

    bench/run.sh --only replicas          (or: python3 bench/replicas.py [--keep])

Needs what bench/run.sh needs (release build, Go, nginx, wrk, curl) plus moto's S3
server (`moto_server`, installed by scripts/test.sh; MODGATE_MOTO_SERVER may name it).
Everything runs on 127.0.0.1: the reference upstream (tests/refupstream, -gen 200
-big 1,50), moto as the bucket, nginx, and modgate on its embedded store and as
replicas (`--store s3://modgate-bench/PREFIX`). Three measurements, each beside its
baseline from the same run:

1. warm hits: wrk on `.info`/`.mod` (rotating over 400 files) at 1/16/64 connections
   and the 1 MiB zip at 16: a replica whose local tier holds every artifact (each
   fetched once through it) vs modgate on its embedded store vs nginx, same bytes,
   alternating; median of --rounds runs;
2. a cold miss whose blob is already in the bucket: replica A (the one above) has
   published every artifact; per round a fresh replica B (empty data dir, same prefix)
   fetches 20 real-sized modules' `.mod` and `.zip` and the 1 and 50 MiB zips, beside a
   fresh replica C on an empty prefix (so it fetches from upstream, verifies and
   publishes) and a fresh embedded-store modgate E (upstream, no bucket); B, C and E
   take turns per artifact; --cold-rounds rounds. Also timed: the bucket's own GET of
   the entry and blob B reads and a PUT of the blob (curl against moto), and the
   upstream's own GET. Then again with every upstream answer (proxy and checksum
   database) held --latency-ms first;
3. two fresh replicas on one prefix, 50 concurrent clients each (100 in all), every
   client asking one new version's `.info`, `.mod` and `.zip` in turn, all starting
   at once: how many requests for that version reached the upstream, whether every
   client got 200 and the upstream's bytes; --trials new versions, without and with
   the upstream latency.
"""

import argparse
import collections
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the suite's machinery: processes, refupstream, wrk, warm-up)

BUCKET = "modgate-bench"
# moto never checks signatures, but routes a request to S3 by the credential
# scope of a SigV4-shaped Authorization header (tests/common/s3.rs).
MOTO_AUTH = ("AWS4-HMAC-SHA256 Credential=modgate-bench/20260101/us-east-1/s3/aws4_request, "
             "SignedHeaders=host, Signature=0000")


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def ms(s):
    return f"{s * 1000:.1f}" if s == s else "–"


class Moto:
    """moto's S3 server as a child of the bench."""

    def __init__(self, b):
        self.b = b
        binary = os.environ.get("MODGATE_MOTO_SERVER") or "moto_server"
        if not shutil.which(binary):
            raise RuntimeError(f"{binary} not found: scripts/test.sh installs moto_server "
                               "(or set MODGATE_MOTO_SERVER)")
        port = bench.free_port()
        self.proc = b.spawn("moto", [binary, "-H", "127.0.0.1", "-p", str(port)])
        self.url = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("moto_server exited during start-up (see moto.err)")
            try:
                self.request("GET", "/")
                break
            except OSError:
                if time.monotonic() - t0 > 60:
                    raise RuntimeError("moto_server did not answer within 60 s")
                time.sleep(0.1)
        self.version = subprocess.run([sys.executable, "-c", "import moto; print(moto.__version__)"],
                                      capture_output=True, text=True).stdout.strip() or "?"

    def request(self, method, path, timeout=30):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": MOTO_AUTH})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()

    def timed_put(self, key, data):
        """curl's time_total of one single-request PUT of data (then deleted)."""
        src = os.path.join(self.b.work, "moto-put.in")
        with open(src, "wb") as f:
            f.write(data)
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                            "-H", f"Authorization: {MOTO_AUTH}", "-T", src, self.key_url(key)],
                           capture_output=True, text=True, timeout=900)
        code, t = r.stdout.split()
        if code != "200":
            raise RuntimeError(f"bucket PUT {key}: {code}")
        self.request("DELETE", f"/{BUCKET}/{urllib.parse.quote(key, safe='-._~/')}")
        return float(t)

    def create_bucket(self, name):
        self.request("PUT", f"/{name}")

    def env(self):
        return dict(os.environ, AWS_ENDPOINT_URL=self.url, AWS_ACCESS_KEY_ID="modgate-bench",
                    AWS_SECRET_ACCESS_KEY="modgate-bench-secret", AWS_REGION="us-east-1",
                    AWS_ALLOW_HTTP="true")

    def key_url(self, key):
        return f"{self.url}/{BUCKET}/{urllib.parse.quote(key, safe='-._~/')}"

    def timed_get(self, key):
        """curl's time_total of one authenticated GET of an object, and its body."""
        out = os.path.join(self.b.work, "moto-get.out")
        r = subprocess.run(["curl", "-s", "-o", out, "-w", "%{http_code} %{time_total}",
                            "-H", f"Authorization: {MOTO_AUTH}", self.key_url(key)],
                           capture_output=True, text=True, timeout=900)
        code, t = r.stdout.split()
        if code != "200":
            raise RuntimeError(f"bucket GET {key}: {code}")
        with open(out, "rb") as f:
            return float(t), f.read()


class Replicas:
    def __init__(self, b, rounds=5, latency_ms=50, trials=5, clients=50, conns=(1, 16, 64)):
        self.b = b
        self.rounds = rounds  # of fresh processes per cold-miss phase (wrk: b.a.rounds)
        self.latency_ms = latency_ms
        self.trials = trials
        self.clients = clients
        self.conns = conns
        self.moto = None

    # ---------- processes ----------

    def start_replica(self, name, data_dir, prefix):
        b = self.b
        port = bench.free_port()
        argv = [b.modgate, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
                "--upstream", b.up_url, "--sumdb", b.sumdb, "--store", f"s3://{BUCKET}/{prefix}"]
        env = self.moto.env()
        env["MODGATE_LOG"] = os.environ.get("MODGATE_LOG", "info")
        p = b.spawn(name, argv, env=env)
        p.url = f"http://127.0.0.1:{port}"
        bench.wait_http(p.url + "/healthz", proc=p)
        return p

    def fresh_dir(self, name):
        d = os.path.join(self.b.work, name)
        shutil.rmtree(d, ignore_errors=True)
        return d

    def control(self, op):
        bench.http_get(f"{self.b.up_url}/_control/{op}", timeout=30)

    def set_latency(self, ms_):
        for what in ("info", "mod", "zip", "sumdb"):
            self.control(f"delay?what={what}&ms={ms_}")

    def proxy_counters(self):
        """refupstream's hit counters of GOPROXY paths (not the checksum database's)."""
        c = json.loads(bench.http_get(self.b.up_url + "/_control/counters"))
        return {k: v for k, v in c.items() if not k.startswith("/sumdb/")}

    def metric(self, p, name):
        text = bench.http_get(p.url + "/metrics", timeout=30).decode()
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name))

    # ---------- 1. warm hits ----------

    def warm_hits(self, mg, ng, static, mods):
        b = self.b
        log = bench.log
        dd = os.path.join(b.work, "data-replica-a")
        ra = self.start_replica("replica-a", dd, "a")
        rstatic = os.path.join(b.work, "static-replica")
        # Up to the 50 MiB zip (a full run's 500 MiB one stays out of moto's memory).
        b.warm(ra, rstatic, [(p, v) for p, v in mods if p != "example.com/big/m500"])
        # The same bytes as the embedded store served (and nginx serves).
        differ = [rel for rel in walk_files(rstatic) if rel != "healthz"
                  and not same_file(os.path.join(static, rel), os.path.join(rstatic, rel))]
        if differ:
            raise RuntimeError(f"the replica served other bytes than the embedded store: {differ[:5]}")
        # Restarted on its warm local tier, as the embedded one was: only hits behind it.
        b.stop(ra)
        ra = self.start_replica("replica-a", dd, "a")
        ra.label, mg.label, ng.label = "replica", "embedded", "nginx"
        servers = [ng, mg, ra]
        gen = [(p, v) for p, v in mods if p.startswith("example.com/gen/")]
        small = [f"/{bench.escape(p)}/@v/{v}.{ext}" for p, v in gen for ext in ("info", "mod")]
        secs = 3 if b.quick else 5
        cases = [(f"`.info`/`.mod` (rotating over {len(small)})", "/", small, c) for c in self.conns]
        cases.append(("`.zip` 1 MiB", "/example.com/big/m1/@v/v1.0.0.zip", None, 16))
        rows = []
        shared0 = self.metric(ra, "modgate_shared_reads_total")
        proxy0 = self.proxy_counters()
        for label, path, paths, c in cases:
            for s in servers:  # a short warm-up per server and case
                b.wrk(s.url + path, min(4, c), 1, paths)
            runs = {s.label: [] for s in servers}
            for _ in range(b.a.rounds):
                for s in servers:
                    runs[s.label].append(b.wrk(s.url + path, c, secs, paths))
            res = {}
            for s in servers:
                rs = runs[s.label]
                res[s.label] = {"rps": median([r["rps"] for r in rs]),
                                "p99_ms": median([r["p99_ms"] for r in rs]),
                                "errors": sum(r["errors"] for r in rs), "runs": rs}
                log(f"  replicas hits {label} c={c} {s.label}: {res[s.label]['rps']:.0f} req/s "
                    f"p99 {res[s.label]['p99_ms']:.2f} ms err {res[s.label]['errors']}")
            rows.append((label, c, res))
        # Hits only: no copy read from the bucket, no proxy request upstream during the runs.
        quiet = (self.metric(ra, "modgate_shared_reads_total") == shared0
                 and self.proxy_counters() == proxy0)
        b.results["replicas_hits"] = [{"case": l, "conns": c, **r} for l, c, r in rows]
        md = b.md
        md += [f"### Replicas: warm hits from the local tier (wrk, same files; median of {b.a.rounds} "
               f"alternating {secs} s runs)\n",
               "| case | conns | nginx req/s | embedded req/s | replica req/s | **replica / embedded** "
               "| replica / nginx | p99 ms nginx / embedded / replica |",
               "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for label, c, res in rows:
            n, e, r = res["nginx"], res["embedded"], res["replica"]
            md.append(f"| {label} | {c} | {n['rps']:.0f} | {e['rps']:.0f} | {r['rps']:.0f} | "
                      f"**{r['rps'] / e['rps']:.2f}×** | {r['rps'] / n['rps']:.2f}× | "
                      f"{n['p99_ms']:.2f} / {e['p99_ms']:.2f} / {r['p99_ms']:.2f} |")
        errs = sum(res[s]["errors"] for _, _, res in rows for s in res)
        md.append(f"\nReplica: `--store s3://{BUCKET}/a` on moto, every artifact fetched once "
                  f"through it, then restarted. Errors: {errs}. Copies read from the bucket "
                  f"(`modgate_shared_reads_total`) and upstream proxy requests (refupstream's counters) "
                  f"during the runs: {'none' if quiet else 'SOME (not hits only!)'}.\n")
        return ra

    # ---------- 2. cold miss, blob in the bucket ----------

    def cold_artifacts(self, mods):
        real = sorted(p for p, v in mods if p.startswith("example.com/genreal/"))[:20]
        arts = []  # (group, path, timed)
        for p in real:
            arts.append(("`.mod`, 20 real-sized modules", f"/{bench.escape(p)}/@v/v1.0.0.mod", p, "mod"))
            arts.append(("`.zip` ~40 KB, 20 real-sized modules", f"/{bench.escape(p)}/@v/v1.0.0.zip", p, "zip"))
        for n in (1, 50):
            p = f"example.com/big/m{n}"
            arts.append((None, f"/{p}/@v/v1.0.0.mod", p, "mod"))  # untimed: the zip's .mod first
            arts.append((f"`.zip` {n} MiB", f"/{p}/@v/v1.0.0.zip", p, "zip"))
        return arts

    def cold_round(self, tag, arts, rnd):
        b = self.b
        procs = {
            "B": self.start_replica(f"replica-b-{tag}{rnd}", self.fresh_dir(f"data-b-{tag}{rnd}"), "a"),
            "C": self.start_replica(f"replica-c-{tag}{rnd}", self.fresh_dir(f"data-c-{tag}{rnd}"),
                                    f"c-{tag}{rnd}"),
            "E": b.start_modgate(f"embedded-e-{tag}{rnd}", self.fresh_dir(f"data-e-{tag}{rnd}")),
        }
        # Untimed: the checksum database client's first contact (trusted head, tiles)
        # with a version no timed artifact is, on each.
        for p in procs.values():
            bench.http_get(p.url + "/example.com/hello/@v/v1.0.0.mod")
        adopted0 = self.metric(procs["B"], 'modgate_shared_reads_total{outcome="adopted"}')
        times = collections.defaultdict(lambda: collections.defaultdict(list))
        order = ["B", "C", "E"]
        for i, (group, path, _, _) in enumerate(arts):
            j = (i + rnd) % 3
            turn = order[j:] + order[:j]  # nobody always first
            for k in turn:
                t = b.curl_time(procs[k].url + path)
                if group:
                    times[group][k].append(t)
        adopted = self.metric(procs["B"], 'modgate_shared_reads_total{outcome="adopted"}') - adopted0
        for p in procs.values():
            b.stop(p)
        for k in ("b", "c", "e"):
            shutil.rmtree(os.path.join(b.work, f"data-{k}-{tag}{rnd}"), ignore_errors=True)
        return times, adopted

    def raw_times(self, arts):
        """What B's reads cost the bucket itself (entry + blob GET), and the upstream's GET."""
        out = collections.defaultdict(lambda: collections.defaultdict(list))
        for group, path, module, kind in arts:
            if not group:
                continue
            te, entry = self.moto.timed_get(f"a/versions/{module}/@v/v1.0.0.{kind}.json")
            digest = json.loads(entry)["digest"]
            tb, blob = self.moto.timed_get(f"a/blobs/sha256/{digest}")
            if hashlib.sha256(blob).hexdigest() != digest:
                raise RuntimeError(f"bucket blob {digest} does not hash to its name")
            out[group]["bucket"].append(te + tb)
            out[group]["put"].append(self.moto.timed_put(f"scratch/{digest}", blob))
            out[group]["upstream"].append(self.b.curl_time(self.b.up_url + path))
        return out

    def cold_miss(self, mods):
        b = self.b
        log = bench.log
        arts = self.cold_artifacts(mods)
        groups = [g for g, _, _, _ in arts if g]
        groups = list(dict.fromkeys(groups))
        phases = [("none", 0), (f"{self.latency_ms} ms", self.latency_ms)] if self.latency_ms else [("none", 0)]
        results = {}
        for label, lat in phases:
            self.set_latency(lat)
            allt = collections.defaultdict(lambda: collections.defaultdict(list))
            adopted = []
            self.control("counters/reset")
            for rnd in range(self.rounds):
                times, ad = self.cold_round(f"l{lat}-", arts, rnd)
                adopted.append(ad)
                for g, per in times.items():
                    for k, ts in per.items():
                        allt[g][k] += ts
                log(f"  cold round {rnd} latency {label}: " + "; ".join(
                    f"{g[:14]} B {ms(median(times[g]['B']))} C {ms(median(times[g]['C']))} "
                    f"E {ms(median(times[g]['E']))} ms" for g in groups))
            # Upstream proxy requests for the artifacts: C's and E's (one each per round), B's?
            c = self.proxy_counters()
            upstream = sum(c.get(path, 0) for _, path, _, _ in arts) - 2 * self.rounds * len(arts)
            for rnd in range(self.rounds):
                for g, per in self.raw_times(arts).items():
                    for k, ts in per.items():
                        allt[g][k] += ts
            self.set_latency(0)
            results[label] = (allt, adopted, upstream)
        b.results["replicas_cold"] = {l: {"times": {g: dict(p) for g, p in a.items()},
                                          "adopted": ad, "upstream_fetches": up}
                                      for l, (a, ad, up) in results.items()}
        md = b.md
        md += [f"### Replicas: a cold miss whose blob is already in the bucket (median ms per artifact, "
               f"{self.rounds} rounds of fresh processes)\n",
               "B: fresh replica, same prefix as A (reads A's published copy, verifies it, adopts it); "
               "C: fresh replica on an empty prefix (fetches from upstream, verifies, publishes to the "
               "bucket, then serves); E: fresh modgate on its embedded store (upstream, no bucket). "
               "\"bucket GET\": curl of the entry and the blob B reads, straight from moto; "
               "\"upstream GET\": curl of the artifact straight from refupstream.\n",
               "| upstream latency | artifact | B (bucket) | C (upstream) | **B / C** | E (embedded) | B / E "
               "| bucket GET | B − bucket GET | upstream GET | bucket PUT |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for label, (allt, adopted, upstream) in results.items():
            for g in groups:
                t = {k: median(v) for k, v in allt[g].items()}
                md.append(f"| {label} | {g} | {ms(t['B'])} | {ms(t['C'])} | **{t['B'] / t['C']:.2f}×** | "
                          f"{ms(t['E'])} | {t['B'] / t['E']:.2f}× | {ms(t['bucket'])} | "
                          f"{ms(t['B'] - t['bucket'])} | {ms(t['upstream'])} | {ms(t['put'])} |")
        notes = []
        for label, (_, adopted, upstream) in results.items():
            notes.append(f"latency {label}: B adopted {'/'.join(str(int(a)) for a in adopted)} copies "
                         f"from the bucket in its rounds and made {upstream} upstream proxy requests "
                         f"for them (refupstream's counters less C's and E's)")
        md.append("\n" + "; ".join(notes) + f" (of {len(arts)} artifacts a round, with the big zips' "
                  "`.mod`s, untimed). \"bucket PUT\": one single-request PUT of the blob to moto (C "
                  "publishes with object_store: large blobs in 10 MiB multipart parts, then the entry "
                  "create-only). With latency, every upstream "
                  f"answer — proxy `.info`/`.mod`/`.zip` and checksum database `lookup`/tiles — is held "
                  f"{self.latency_ms} ms first (refupstream `/_control/delay`); B still asks the checksum "
                  "database for each version's record (its tiles and lookups are per replica), so it "
                  "pays that latency too.\n")

    # ---------- 3. two replicas, 100 clients, one new version ----------

    def storm_trial(self, reps, module, size):
        b = self.b
        self.control(f"add?module={module}&version=v1.0.0&size={size}")
        self.control("counters/reset")
        adopted0 = [self.metric(r, 'modgate_shared_reads_total{outcome="adopted"}') for r in reps]
        n = self.clients * len(reps)
        barrier = threading.Barrier(n)
        got = [None] * n
        base = f"/{bench.escape(module)}/@v/v1.0.0"

        def client(i):
            url = reps[i // self.clients].url + base
            out = []
            barrier.wait()
            for ext in ("info", "mod", "zip"):
                try:
                    with urllib.request.urlopen(f"{url}.{ext}", timeout=300) as r:
                        out.append((ext, r.status, hashlib.sha256(r.read()).hexdigest()))
                except urllib.error.HTTPError as e:
                    out.append((ext, e.code, None))
                except OSError as e:
                    out.append((ext, str(e), None))
            got[i] = out

        t0 = time.monotonic()
        ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.monotonic() - t0
        counters = json.loads(bench.http_get(b.up_url + "/_control/counters"))
        hits = {ext: counters.get(f"{base}.{ext}", 0) for ext in ("info", "mod", "zip")}
        hits["lookup"] = counters.get(f"/sumdb/{bench.SUMDB_NAME}/lookup/{module}@v1.0.0", 0)
        adopted = [self.metric(r, 'modgate_shared_reads_total{outcome="adopted"}') - a0
                   for r, a0 in zip(reps, adopted0)]
        want = {ext: hashlib.sha256(bench.http_get(f"{b.up_url}{base}.{ext}")).hexdigest()
                for ext in ("info", "mod", "zip")}
        ok = sum(1 for out in got if all(s == 200 and h == want[e] for e, s, h in out))
        bad = [out for out in got if not all(s == 200 and h == want[e] for e, s, h in out)]
        return {"module": module, "hits": hits, "ok": ok, "clients": n, "adopted": adopted,
                "wall_s": wall, "bad": bad[:3]}

    def storm(self):
        b = self.b
        log = bench.log
        reps = [self.start_replica(f"replica-s{i}", self.fresh_dir(f"data-s{i}"), "storm") for i in (1, 2)]
        # Untimed: each replica's first contact with the checksum database.
        for r, v in zip(reps, ("v1.0.0", "v1.1.0")):
            bench.http_get(r.url + f"/example.com/hello/@v/{v}.mod")
        size = 1 << 20
        phases = [("none", 0), (f"{self.latency_ms} ms", self.latency_ms)] if self.latency_ms else [("none", 0)]
        rows = []
        for label, lat in phases:
            self.set_latency(lat)
            for k in range(self.trials):
                module = f"example.com/stormbench/l{lat}/n{k}"
                r = self.storm_trial(reps, module, size)
                r["latency"] = label
                rows.append(r)
                log(f"  storm {module}: upstream {r['hits']}, {r['ok']}/{r['clients']} ok, "
                    f"adopted {r['adopted']}, {r['wall_s']:.2f}s")
                if r["bad"]:
                    log(f"    not ok: {r['bad']}")
            self.set_latency(0)
        for r in reps:
            b.stop(r)
        b.results["replicas_storm"] = rows
        md = b.md
        md += [f"### Replicas: one new version, 2 fresh replicas × {self.clients} concurrent clients\n",
               f"Each of the {2 * self.clients} clients asks the version's `.info`, then `.mod`, then `.zip` "
               f"(1 MiB) as `go` does, all starting together (a barrier), {self.clients} on each replica. "
               "Upstream requests are refupstream's own counters for that version; \"adopted\" is "
               "`modgate_shared_reads_total{outcome=\"adopted\"}` on each replica.\n",
               "| upstream latency | version | upstream `.info` | `.mod` | `.zip` | sumdb `lookup` "
               "| clients with 200 and the upstream's bytes (all 3) | adopted (replica 1, 2) | wall s |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            h = r["hits"]
            md.append(f"| {r['latency']} | `{r['module']}` | {h['info']} | {h['mod']} | {h['zip']} | "
                      f"{h['lookup']} | {r['ok']}/{r['clients']} | {int(r['adopted'][0])}, "
                      f"{int(r['adopted'][1])} | {r['wall_s']:.2f} |")
        dist = []
        for label, _ in phases:
            rs = [r for r in rows if r["latency"] == label]
            for ext in ("info", "mod", "zip"):
                c = collections.Counter(r["hits"][ext] for r in rs)
                dist.append(f"latency {label}, `.{ext}`: " + ", ".join(
                    f"{n} fetch{'es' if n != 1 else ''} × {c[n]}" for n in sorted(c)))
        md.append("\nUpstream fetches per version over the trials: " + "; ".join(dist) + ".\n")

    # ---------- all ----------

    def run(self, mg, ng, static, mods):
        log = bench.log
        self.moto = Moto(self.b)
        self.moto.create_bucket(BUCKET)
        self.b.md.append(f"Bucket: moto {self.moto.version} (`moto_server`, a Python dev server) on "
                         "127.0.0.1, sharing the machine.\n")
        log("replicas: warm hits ...")
        ra = self.warm_hits(mg, ng, static, mods)
        # The hit servers are done: free the cores for the rest.
        for s in (ng, mg):
            self.b.stop(s)
        log("replicas: cold misses with the blob in the bucket ...")
        self.cold_miss(mods)
        self.b.stop(ra)
        log("replicas: two replicas, one new version ...")
        self.storm()
        self.b.stop(self.moto.proc)


def walk_files(root):
    for d, _, files in os.walk(root):
        for f in files:
            yield os.path.relpath(os.path.join(d, f), root)


def same_file(a, b):
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="alternating wrk runs per warm-hit case")
    ap.add_argument("--cold-rounds", type=int, default=5, help="rounds of fresh processes per cold-miss phase")
    ap.add_argument("--latency-ms", type=int, default=50,
                    help="upstream latency of the second cold-miss and storm phases (0: skip them)")
    ap.add_argument("--trials", type=int, default=5, help="new versions per storm phase")
    ap.add_argument("--quick", action="store_true", help="3 s wrk runs instead of 5")
    ap.add_argument("--modgate", help="modgate binary (default: the release build)")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    a = ap.parse_args()
    os.environ["PATH"] += ":/usr/sbin"  # nginx, as bench/run.sh does
    b = bench.Bench(argparse.Namespace(quick=True, gen=200, keep=a.keep, modgate=a.modgate,
                                       rounds=a.rounds, only="replicas", cases="", compare=None,
                                       json=a.json, latency_ms=a.latency_ms, trials=a.trials,
                                       cold_rounds=a.cold_rounds))
    b.quick = a.quick
    try:
        b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
