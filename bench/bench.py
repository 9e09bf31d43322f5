#!/usr/bin/env python3
"""modgate's benchmark suite; run it through bench/run.sh (see bench/README.md).

Starts everything on 127.0.0.1 in a scratch directory — the Go reference upstream
(tests/refupstream, with generated modules and 1/50/500 MiB zips), modgate (release) on
its embedded store, and nginx serving the same bytes as a static GOPROXY tree — then
measures and prints a markdown table where every figure stands next to a baseline
measured in the same run on the same machine. Every load is bounded in time and count.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SUMDB_NAME = "refsum.test"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=600):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def wait_http(url, deadline_s=120, proc=None):
    """Polls url until it answers 200; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{url} did not answer within {deadline_s}s")


def escape(s):
    """GOPROXY !-escaping of a module path or version."""
    return "".join("!" + c.lower() if c.isupper() else c for c in s)


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def mib(kib):
    return kib / 1024.0


class Bench:
    def __init__(self, args):
        self.a = args
        self.quick = args.quick
        self.work = tempfile.mkdtemp(prefix="modgate-bench-")
        os.chmod(self.work, 0o755)  # nginx workers run as an unprivileged user
        self.procs = []
        self.md = []  # markdown lines of the report
        self.results = {}
        self.big = [1, 50] if self.quick else [1, 50, 500]
        self.gen = args.gen

    # ---------- processes ----------

    def spawn(self, name, argv, env=None, **kw):
        out = open(os.path.join(self.work, f"{name}.out"), "ab")
        err = open(os.path.join(self.work, f"{name}.err"), "ab")
        p = subprocess.Popen(argv, stdout=kw.pop("stdout", out), stderr=err, env=env, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in list(self.procs):
            self.stop(p)
        if self.a.keep:
            log(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # ---------- build ----------

    def build(self):
        log("building modgate (release), the helper, and refupstream ...")
        subprocess.run(["cargo", "build", "--release", "--bin", "modgate"], cwd=ROOT, check=True)
        out = subprocess.run(
            ["cargo", "bench", "--bench", "helper", "--no-run", "--message-format=json"],
            cwd=ROOT, check=True, capture_output=True, text=True).stdout
        self.helper = None
        for line in out.splitlines():
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "helper" \
                    and m.get("executable"):
                self.helper = m["executable"]
        if not self.helper:
            raise RuntimeError("could not find the helper executable")
        self.modgate = self.a.modgate or os.path.join(TARGET, "release", "modgate")
        gopath = os.path.join(self.work, "gopath")
        os.makedirs(gopath, exist_ok=True)
        self.refup_bin = os.path.join(self.work, "refupstream")
        env = dict(os.environ, GO111MODULE="off", GOPATH=f"{gopath}:/usr/share/gocode",
                   GOCACHE=os.path.join(self.work, "gocache"))
        subprocess.run(["go", "build", "-o", self.refup_bin, "./tests/refupstream"],
                       cwd=ROOT, env=env, check=True)

    def start_refupstream(self):
        log(f"starting refupstream -gen {self.gen} -big {','.join(map(str, self.big))} ...")
        p = self.spawn("refupstream", [self.refup_bin, "-gen", str(self.gen), "-gen-files", "20",
                                       "-big", ",".join(map(str, self.big))], stdout=subprocess.PIPE)
        kv = {}
        while len(kv) < 3:
            line = p.stdout.readline().decode()
            if not line:
                raise RuntimeError("refupstream exited during start-up")
            k, _, v = line.strip().partition(" ")
            kv[k] = v
        self.up_url, self.vkey = kv["URL"], kv["VKEY"]
        self.sumdb = f"{self.vkey} {self.up_url}/sumdb/{SUMDB_NAME}"
        # For re-running a server by hand on a --keep'd scratch dir.
        with open(os.path.join(self.work, "sumdb.txt"), "w") as f:
            f.write(self.sumdb + "\n")
        self.refup = p

    def start_modgate(self, name, data_dir, binary=None, offline=False):
        port = free_port()
        argv = [binary or self.modgate, "serve", "--listen", f"127.0.0.1:{port}",
                "--data-dir", data_dir, "--upstream", self.up_url, "--sumdb", self.sumdb]
        if offline:
            argv.append("--offline")
        env = dict(os.environ, MODGATE_LOG=os.environ.get("MODGATE_LOG", "info"))
        t0 = time.monotonic()
        p = self.spawn(name, argv, env=env)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz", proc=p)
        p.startup_s = time.monotonic() - t0
        p.url = url
        return p

    def start_nginx(self, static):
        port = free_port()
        d = os.path.join(self.work, "nginx")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes {os.cpu_count() or 2};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {"off" if self.a.nginx_access_log == "off" else f"{d}/access.log"};
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 100000000; keepalive_timeout 120s;
    types {{ application/json info; text/plain mod; application/zip zip; }}
    default_type text/plain;
    etag on;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {static};
        add_header Cache-Control "public, max-age=31536000, immutable";
    }}
}}
""")
        p = self.spawn("nginx", ["nginx", "-p", d, "-c", conf, "-e", f"{d}/error.log",
                                 "-g", "daemon off;"])
        p.url = f"http://127.0.0.1:{port}"
        with open(os.path.join(static, "healthz"), "w") as f:
            f.write("ok\n")
        wait_http(p.url + "/healthz", proc=p)
        return p

    # ---------- data ----------

    def modules(self):
        mods = json.loads(http_get(self.up_url + "/_control/modules"))
        return [(m["path"], m["version"]) for m in mods
                if m["path"].startswith(("example.com/gen/", "example.com/genreal/", "example.com/big/"))]

    def warm(self, mg, static, mods=None):
        """Fetches every artifact (of `mods`, default all) through modgate (a verified miss
        each) and writes the bytes modgate served into a GOPROXY tree."""
        mods = mods if mods is not None else self.modules()
        log(f"warming modgate: {len(mods)} module versions (.info .mod .zip) ...")

        def one(pv):
            path, ver = pv
            d = os.path.join(static, escape(path), "@v")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "list"), "w") as f:
                f.write(ver + "\n")
            for ext in ("mod", "info", "zip"):
                rel = f"{escape(path)}/@v/{escape(ver)}.{ext}"
                with urllib.request.urlopen(f"{mg.url}/{rel}", timeout=900) as r, \
                        open(os.path.join(static, rel), "wb") as f:
                    shutil.copyfileobj(r, f, 1 << 20)

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(one, mods))
        log(f"  warmed in {time.monotonic() - t0:.1f}s")
        return mods

    # ---------- load ----------

    def wrk(self, url, conns, secs, paths=None):
        """One bounded wrk run; returns req/s, p50/p99 (ms), MiB/s, errors."""
        script = os.path.join(self.work, f"wrk-{abs(hash(tuple(paths or ())))}.lua")
        if not os.path.exists(script):
            with open(script, "w") as f:
                if paths:
                    f.write("local paths = {\n" + ",\n".join(json.dumps(p) for p in paths) + "}\n")
                    f.write("local i = math.random(#paths)\n")
                    f.write("request = function()\n  i = i % #paths + 1\n"
                            "  return wrk.format(nil, paths[i])\nend\n")
                f.write(r'''
done = function(s, lat, req)
  local e = s.errors
  io.write(string.format(
    'JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\n',
    s.requests, s.duration, s.bytes, e.connect + e.read + e.write + e.status + e.timeout,
    lat:percentile(50), lat:percentile(99)))
end
''')
        threads = min(2, conns)
        out = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{secs}s",
                              "--timeout", "60s", "-s", script, url],
                             capture_output=True, text=True, timeout=secs + 120).stdout
        line = next((l for l in out.splitlines() if l.startswith("JSON ")), None)
        if not line:
            raise RuntimeError(f"wrk printed no result:\n{out}")
        r = json.loads(line[5:])
        dur = r["duration_us"] / 1e6
        return {"rps": r["requests"] / dur, "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
                "mibps": r["bytes"] / dur / (1 << 20), "errors": r["errors"], "requests": r["requests"]}

    # ---------- sections ----------

    def sec_hits(self, servers, mods):
        gen = [(p, v) for p, v in mods if p.startswith("example.com/gen/")]
        small = [f"/{escape(p)}/@v/{v}.{ext}" for p, v in gen for ext in ("info", "mod")]
        cases = []
        if "small" in self.a.cases:
            cases.append(("`.info`/`.mod` (rotating over %d)" % len(small), None, small, 2 if self.quick else 5))
        for n in (n for n in (1, 50) if f"zip{n}" in self.a.cases):
            cases.append((f"`.zip` {n} MiB", f"/example.com/big/m{n}/@v/v1.0.0.zip", None,
                          (2 if n == 1 else 4) if self.quick else (5 if n == 1 else 10)))
        concs = [int(c) for c in self.a.conns.split(",")]
        rows = []
        for label, path, paths, secs in cases:
            for s in servers:  # one short warm-up per server and case
                self.wrk(s.url + (path or "/"), 4, 1, paths)
            for c in concs:
                res = {}
                # 256 clients of a 50 MiB zip share ~1-2 GiB/s: give each time for a few answers.
                t = secs * 3 if "50 MiB" in label and c == 256 else secs
                runs = {s.label: [] for s in servers}
                for _ in range(self.a.rounds):  # servers alternate; the median resists a noisy neighbour
                    for s in servers:
                        runs[s.label].append(self.wrk(s.url + (path or "/"), c, t, paths))
                for s in servers:
                    rs = runs[s.label]
                    res[s.label] = {"rps": statistics.median(r["rps"] for r in rs),
                                    "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                                    "mibps": statistics.median(r["mibps"] for r in rs),
                                    "errors": sum(r["errors"] for r in rs), "runs": rs}
                    log(f"  hits {label} c={c} {s.label}: {res[s.label]['rps']:.0f} req/s "
                        f"p99 {res[s.label]['p99_ms']:.2f} ms err {res[s.label]['errors']}")
                rows.append((label, c, res))
        self.results["hits"] = [{"case": l, "conns": c, **{k: v for k, v in r.items()}} for l, c, r in rows]
        base = servers[0].label  # nginx
        others = [s.label for s in servers[1:]]
        self.md.append(f"### Warm hits (wrk, same files; median of {self.a.rounds} alternating runs; "
                       f"nginx access_log {self.a.nginx_access_log}, modgate MODGATE_LOG="
                       f"{os.environ.get('MODGATE_LOG', 'info')}; ratio = modgate / nginx)\n")
        head = "| case | conns | nginx req/s | nginx p99 ms |"
        sep = "|---|---:|---:|---:|"
        for o in others:
            head += f" {o} req/s | {o} p99 ms | req/s ratio | p99 ratio |"
            sep += "---:|---:|---:|---:|"
        self.md += [head, sep]
        for label, c, res in rows:
            b = res[base]
            line = f"| {label} | {c} | {b['rps']:.0f} | {b['p99_ms']:.2f} |"
            for o in others:
                r = res[o]
                line += (f" {r['rps']:.0f} | {r['p99_ms']:.2f} | **{r['rps'] / b['rps']:.2f}×** |"
                         f" **{r['p99_ms'] / max(b['p99_ms'], 1e-3):.2f}×** |")
            self.md.append(line)
        errs = sum(r["errors"] for _, _, res in rows for r in res.values())
        self.md.append(f"\nTargets: req/s ≥ 0.9× nginx, p99 ≤ 1.5× nginx. Socket/status errors in all runs: {errs}.\n")

    def go_env(self, proxy, modcache):
        home = os.path.join(self.work, "gohome")
        os.makedirs(home, exist_ok=True)
        return {"PATH": os.environ["PATH"], "HOME": home, "GOPATH": os.path.join(home, "gopath"),
                "GOMODCACHE": modcache, "GOCACHE": os.path.join(home, "gocache"),
                "GOFLAGS": "-modcacherw", "GOPROXY": proxy, "GOSUMDB": "off",
                "GONOSUMDB": "", "GOPRIVATE": "", "GONOPROXY": "", "GO111MODULE": "on",
                "GOTOOLCHAIN": "local", "GOENV": "off"}

    # The two generated graphs of the whole-client run: same shape (module i
    # requires i-1 and i/2), different module sizes.
    GRAPHS = [
        ("tiny modules (2 files, ~0.5 KB zip): per-request overhead at its largest share",
         "example.com/gen"),
        ("real-sized modules (22 files, ~40 KB zip; the 26 real 2020 zips: median 22 files, 35 KB)",
         "example.com/genreal"),
    ]

    def sec_client(self, mg, ng, static):
        self.results["client"] = {}
        for title, prefix in self.GRAPHS:
            self.client_graph(mg, ng, static, title, prefix)

    def client_graph(self, mg, ng, static, title, prefix):
        last = f"{prefix}/m{self.gen - 1:04d}"
        tag = prefix.rsplit("/", 1)[1]
        d = os.path.join(self.work, f"client-{tag}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "go.mod"), "w") as f:
            # go 1.16: an unpruned graph, so `all` is every module of the generated graph.
            f.write(f"module bench.example/client\n\ngo 1.16\n\nrequire {last} v1.0.0\n")
        with open(os.path.join(d, "main.go"), "w") as f:
            f.write(f'package main\n\nimport "{last}"\n\nfunc main() {{ println({last.rsplit("/", 1)[1]}.N()) }}\n')
        # nginx on the same tree: the same HTTP client work in `go`, with a static server.
        proxies = [("GOPROXY=file://", "file://" + static), ("nginx", ng.url), ("modgate", mg.url)]
        # go.sum once (the timed runs then only download).
        mc = os.path.join(self.work, "modcache-init")
        subprocess.run(["go", "mod", "tidy"], cwd=d, env=self.go_env(mg.url, mc), check=True,
                       capture_output=True, timeout=600)
        shutil.rmtree(mc, ignore_errors=True)
        reps = 3 if self.quick else 7
        times = {k: [] for k, _ in proxies}
        count = 0
        # The module cache on tmpfs when there is one: extracting 200 modules on a
        # disk leaves writeback behind that slows every later run (times grew 5x over
        # 7 rounds on ext4), which would measure the disk, not the proxies.
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else self.work
        for i in range(reps):
            # Rotate who goes first, so no proxy always follows the same one.
            for k, url in proxies[i % 3:] + proxies[:i % 3]:
                mc = os.path.join(shm, f"modgate-bench-modcache-{os.getpid()}-{i}")
                t0 = time.monotonic()
                r = subprocess.run(["go", "mod", "download", "-json", "all"], cwd=d,
                                   env=self.go_env(url, mc), capture_output=True, text=True, timeout=600)
                t = time.monotonic() - t0
                if r.returncode != 0:
                    raise RuntimeError(f"go mod download via {k} failed:\n{r.stderr}\n{r.stdout[-2000:]}")
                count = r.stdout.count('"Path"')
                times[k].append(t)
                log(f"  go mod download all ({tag}) via {k}: {t:.2f}s ({count} modules)")
                shutil.rmtree(mc, ignore_errors=True)
        base = statistics.median(times[proxies[0][0]])
        n = statistics.median(times["nginx"])
        m = statistics.median(times["modgate"])
        self.results["client"][tag] = {"modules": count, "file_s": times[proxies[0][0]],
                                       "nginx_s": times["nginx"], "modgate_s": times["modgate"]}
        self.md += [f"### Whole client, {title}: `go mod download all`, {count} modules, "
                    f"fresh GOMODCACHE, median of {reps} alternating runs\n",
                    "| GOPROXY | seconds | ratio to `file://` | ratio to nginx |", "|---|---:|---:|---:|",
                    f"| `file://` same tree (baseline) | {base:.2f} | 1.00× | |",
                    f"| nginx, same tree | {n:.2f} | {n / base:.2f}× | 1.00× |",
                    f"| modgate (warm) | {m:.2f} | **{m / base:.2f}×** | **{m / n:.2f}×** |",
                    "\nTarget ≤ 1.2× `file://`.\n"]

    def curl_time(self, url):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", url],
                           capture_output=True, text=True, timeout=900)
        code, t = r.stdout.split()
        if code != "200":
            raise RuntimeError(f"GET {url}: {code}")
        return float(t)

    def floor(self, zip_path, reps=3):
        out = subprocess.run([self.helper, "floor", zip_path, str(reps)], capture_output=True,
                             text=True, check=True, timeout=900).stdout
        return json.loads(out)

    def cold_zip(self, n, tag):
        """A fresh modgate; its .mod and .info warmed (so the lookup is proven and cached);
        then the timed cold GET of the zip: fetch, spool, check + h1, commit, stream out."""
        dd = os.path.join(self.work, f"data-cold-{tag}")
        shutil.rmtree(dd, ignore_errors=True)
        mg = self.start_modgate(f"modgate-cold-{tag}", dd)
        base = f"/example.com/big/m{n}/@v/v1.0.0"
        for ext in ("mod", "info"):
            http_get(mg.url + base + "." + ext)
        idle = vm_hwm_kib(mg.pid)
        t = self.curl_time(mg.url + base + ".zip")
        hwm = vm_hwm_kib(mg.pid)
        self.stop(mg)
        return t, idle, hwm, dd

    def sec_miss(self, static):
        n = 50
        reps = 2 if self.quick else 3
        zp = os.path.join(static, f"example.com/big/m{n}/@v/v1.0.0.zip")
        fl = self.floor(zp)
        direct = min(self.curl_time(f"{self.up_url}/example.com/big/m{n}/@v/v1.0.0.zip") for _ in range(reps))
        ts = []
        for i in range(reps):
            t, _, _, dd = self.cold_zip(n, f"miss{i}")
            shutil.rmtree(dd, ignore_errors=True)
            ts.append(t)
            log(f"  cold {n} MiB zip through modgate: {t:.3f}s")
        t = min(ts)
        self.results["miss"] = {"floor": fl, "direct_s": direct, "modgate_s": ts}
        both = fl["floor_s"] + direct
        self.md += [f"### Miss pipeline: cold {n} MiB zip (best of {reps})\n",
                    "| what | seconds | ratio |", "|---|---:|---:|",
                    f"| floor: SHA-256 of the zip + inflate & SHA-256 of every entry (helper, page cache) | {fl['floor_s']:.3f} | 1.00× |",
                    f"| fetch from refupstream alone (curl) | {direct:.3f} | {direct / fl['floor_s']:.2f}× |",
                    f"| floor + fetch | {both:.3f} | {both / fl['floor_s']:.2f}× |",
                    f"| modgate cold GET: fetch → spool → zip rules + h1 → fsync/commit → stream to client | {t:.3f} | **{t / fl['floor_s']:.2f}×** (vs floor + fetch: **{t / both:.2f}×**) |",
                    "\nTarget ≤ 1.3× (the `.mod` and the sumdb lookup were verified before the clock started). "
                    "Micro-benchmarks: `cargo bench --bench h1`, `cargo bench --bench proofs`.\n"]

    def sec_memory(self):
        n = 500 if not self.quick else 50
        clients = 100
        t, idle, hwm, dd = self.cold_zip(n, "mem")
        log(f"  cold {n} MiB: {t:.2f}s, VmHWM {mib(hwm):.1f} MiB (idle {mib(idle):.1f})")
        mg = self.start_modgate("modgate-mem", dd)
        url = f"{mg.url}/example.com/big/m{n}/@v/v1.0.0.zip"
        http_get(url.replace(".zip", ".mod"))
        idle2 = vm_hwm_kib(mg.pid)
        t0 = time.monotonic()
        ps = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "900", url],
                               stdout=subprocess.PIPE, text=True) for _ in range(clients)]
        codes = [p.communicate()[0] for p in ps]
        el = time.monotonic() - t0
        hwm2 = vm_hwm_kib(mg.pid)
        self.stop(mg)
        shutil.rmtree(dd, ignore_errors=True)
        ok = codes.count("200")
        log(f"  {clients} clients × {n} MiB: {el:.1f}s, {ok} ok, VmHWM {mib(hwm2):.1f} MiB")
        self.results["memory"] = {"zip_mib": n, "cold_s": t, "cold_hwm_kib": hwm, "idle_kib": idle,
                                  "clients": clients, "clients_ok": ok, "clients_s": el, "clients_hwm_kib": hwm2}
        self.md += [f"### Memory: peak RSS (VmHWM) of modgate, {n} MiB zip\n",
                    "| phase | VmHWM MiB | note |", "|---|---:|---|",
                    f"| idle after start + `.mod` | {mib(idle):.1f} | baseline |",
                    f"| one cold fetch + verify (spooled, hashed streaming) | {mib(hwm):.1f} | {t:.2f} s |",
                    f"| {clients} clients download it at once (warm, streamed from disk) | {mib(hwm2):.1f} | "
                    f"{ok}/{clients} ok in {el:.1f} s, {clients * n / el:.0f} MiB/s total |",
                    "\nTarget < 100 MiB.\n"]

    def sec_scale(self):
        sizes = [1000, 10000] if self.quick else [1000, 10000, 100000]
        secs = 3 if self.quick else 8
        rows = []
        for n in sizes:
            dd = os.path.join(self.work, f"data-scale-{n}")
            shutil.rmtree(dd, ignore_errors=True)
            r = subprocess.run([self.helper, "populate", dd, str(n)], capture_output=True,
                               text=True, timeout=1800)
            if r.returncode != 0:
                raise RuntimeError(f"helper populate {n} failed:\n{r.stderr}")
            pop = json.loads(r.stdout)
            du = subprocess.run(["du", "-sm", dd], capture_output=True, text=True).stdout.split()[0]
            starts = []
            for i in range(3):
                mg = self.start_modgate(f"modgate-scale-{n}", dd, offline=True)
                starts.append(mg.startup_s)
                if i < 2:
                    self.stop(mg)
            step = max(1, n // 2000)
            paths = [f"/example.com/scale/m{i:07d}/@v/v1.0.0.mod" for i in range(0, n, step)]
            self.wrk(mg.url + "/", 4, 1, paths)
            r = self.wrk(mg.url + "/", 16, secs, paths)
            rss = vm_hwm_kib(mg.pid)
            self.stop(mg)
            shutil.rmtree(dd, ignore_errors=True)
            st = statistics.median(starts)
            log(f"  scale {n}: start {st * 1000:.0f} ms, {r['rps']:.0f} req/s p99 {r['p99_ms']:.2f} ms, "
                f"store {du} MiB, populate {pop['populate_s']:.1f}s")
            rows.append((n, st, r, du, rss))
        self.results["scale"] = [{"versions": n, "startup_s": st, **r, "store_mib": du, "hwm_kib": rss}
                                 for n, st, r, du, rss in rows]
        b = rows[0]
        self.md += [f"### Scale: store of N module versions (3 index entries each), offline, `.mod` hits at 16 conns, {secs} s\n",
                    "| versions | store MiB | start-up ms (median of 3) | ratio | req/s | ratio | p99 ms | ratio | VmHWM MiB |",
                    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n, st, r, du, rss in rows:
            self.md.append(f"| {n} | {du} | {st * 1000:.0f} | {st / b[1]:.2f}× | {r['rps']:.0f} | "
                           f"{r['rps'] / b[2]['rps']:.2f}× | {r['p99_ms']:.2f} | {r['p99_ms'] / b[2]['p99_ms']:.2f}× | {mib(rss):.0f} |")
        self.md.append("\nTarget: start-up and hit latency flat in store size (ratios vs the smallest store).\n")

    # ---------- main ----------

    def machine(self):
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.split("\n")[1].split()[1]
        load = open("/proc/loadavg").read().split()[:3]
        return f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, load average at start {' '.join(load)}"

    def run(self):
        sections = set(self.a.only.split(",")) if self.a.only else \
            {"hits", "client", "miss", "memory", "scale"} | (set() if self.quick else {"replicas"})
        if "replicas" in sections and not self.a.only and \
                not shutil.which(os.environ.get("MODGATE_MOTO_SERVER") or "moto_server"):
            log("no moto_server (scripts/test.sh installs it): the replicas section is skipped")
            sections.discard("replicas")
        if "memory" not in sections:
            self.big = [1, 50]  # only the memory section's full run needs the 500 MiB zip
        self.build()
        self.md += [f"## modgate benchmarks ({'quick' if self.quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M')})\n",
                    f"Machine: {self.machine()}; servers and load generator share it.\n"]
        t0 = time.monotonic()
        self.start_refupstream()
        static = os.path.join(self.work, "static")
        main_dd = os.path.join(self.work, "data-main")
        mg = self.start_modgate("modgate", main_dd)
        mods = self.warm(mg, static)
        if sections & {"hits", "client", "replicas"}:
            # Restart on the warm store so the runs see a server with only hits behind it.
            self.stop(mg)
            mg = self.start_modgate("modgate", main_dd)
            mg.label = "modgate"
            ng = self.start_nginx(static)
            ng.label = "nginx"
            servers = [ng, mg]
            if self.a.compare:
                other = self.start_modgate("modgate-compare", main_dd + "-compare", binary=self.a.compare)
                self.warm(other, os.path.join(self.work, "static-compare"))
                other.label = "before"
                servers.insert(1, other)
            if "hits" in sections:
                log("warm hits ...")
                self.sec_hits(servers, mods)
            if "client" in sections:
                log("whole client ...")
                self.sec_client(mg, ng, static)
            if "replicas" in sections:
                log("replicas on a bucket ...")
                import replicas  # bench/replicas.py (needs moto_server)
                replicas.Replicas(self, rounds=self.a.cold_rounds, latency_ms=self.a.latency_ms,
                                  trials=self.a.trials).run(mg, ng, static, mods)
            for s in servers:
                self.stop(s)
        else:
            self.stop(mg)
        if "miss" in sections:
            log("miss pipeline ...")
            self.sec_miss(static)
        if "memory" in sections:
            log("memory ...")
            self.sec_memory()
        if "scale" in sections:
            log("scale ...")
            self.sec_scale()
        self.md.append(f"_Total run time {time.monotonic() - t0:.0f} s._")
        report = "\n".join(self.md) + "\n"
        print(report)
        if self.a.json:
            with open(self.a.json, "w") as f:
                json.dump(self.results, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs, no 500 MiB case, scale up to 10k")
    ap.add_argument("--only", help="comma-separated sections: hits,client,miss,memory,scale,replicas "
                                   "(replicas: not in --quick unless named here)")
    ap.add_argument("--cases", default="small,zip1,zip50", help="warm-hit cases: small,zip1,zip50")
    ap.add_argument("--conns", default="1,16,256", help="warm-hit connection counts, comma-separated")
    ap.add_argument("--nginx-access-log", choices=("on", "off"), default="on",
                    help="nginx's access_log in the warm-hit and client runs (modgate logs at MODGATE_LOG, "
                         "default info)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating wrk runs per warm-hit case")
    ap.add_argument("--gen", type=int, default=200, help="generated modules for the whole-client run")
    ap.add_argument("--modgate", help="modgate binary to measure (default: the release build)")
    ap.add_argument("--compare", help="a second modgate binary (e.g. before a change) measured "
                                      "beside the first in the warm-hit runs")
    ap.add_argument("--latency-ms", type=int, default=50,
                    help="replicas: upstream latency of the second cold-miss and storm phases (0: skip)")
    ap.add_argument("--trials", type=int, default=5, help="replicas: new versions per storm phase")
    ap.add_argument("--cold-rounds", type=int, default=5,
                    help="replicas: rounds of fresh processes per cold-miss phase")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    b = Bench(ap.parse_args())
    try:
        b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
