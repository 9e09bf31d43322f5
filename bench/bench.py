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
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SUMDB_NAME = "refsum.test"
# The coldbuild section's per-request upstream delay (every proxy and sumdb answer of
# refupstream held this long): a CI runner some way from its module proxy.
UPSTREAM_DELAY_MS = 20


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


def wait_tcp(port, deadline_s=60, proc=None):
    """Waits until 127.0.0.1:port accepts a connection (for servers with no /healthz)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return time.monotonic() - t0
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"port {port} did not open within {deadline_s}s")


def escape(s):
    """GOPROXY !-escaping of a module path or version."""
    return "".join("!" + c.lower() if c.isupper() else c for c in s)


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def vm_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mib(kib):
    return kib / 1024.0


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def time_v(argv, timeout=600):
    """Runs argv under /usr/bin/time -v: (seconds, peak RSS KiB, stdout, returncode)."""
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-v"] + argv, capture_output=True, text=True, timeout=timeout)
    el = time.monotonic() - t0
    rss = 0
    for line in r.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1])
    return el, rss, r.stdout, r.returncode


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
        self.peers = args.peers == "goproxy" or (args.peers == "auto" and not self.quick)
        self.shm_dirs = []  # scratch directories on /dev/shm, removed at cleanup
        self.lock_notes = []  # timed parts run without the lock (a stale holder)
        self.reported = False

    # ---------- the machine ----------

    @contextlib.contextmanager
    def timed(self, what):
        """Around every timed part: with --lock, waits until no other `wrk` runs on the
        machine and holds an exclusive flock on the lock file (other benchmark runs
        sharing the machine do the same); preparation runs outside it. A lock still held
        after --lock-timeout seconds during which no wrk ran (a stale holder: e.g. a
        daemon that inherited a locker's descriptor) is waited for no longer: the part
        then runs once no wrk runs, without it, and the run says so."""
        if not self.a.lock:
            yield
            return
        def wrk_runs():
            return subprocess.run(["pgrep", "-x", "wrk"], capture_output=True).returncode == 0
        with open(self.a.lock, "a") as f:
            t0 = time.monotonic()
            idle_since = None
            locked = False
            while True:
                if wrk_runs():
                    idle_since = None
                    time.sleep(2)
                    continue
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    now = time.monotonic()
                    idle_since = idle_since or now
                    # Once found stale, later parts do not wait for it again.
                    if now - idle_since >= (0 if self.lock_notes else self.a.lock_timeout):
                        msg = (f"{self.a.lock} held for {now - idle_since:.0f}s with no wrk running: "
                               f"going on without it for {what}")
                        log(f"  ({msg})")
                        self.lock_notes.append(msg)
                        break
                    time.sleep(2)
                    continue
                if not wrk_runs():
                    locked = True
                    break
                fcntl.flock(f, fcntl.LOCK_UN)  # someone's wrk runs without the lock: wait again
            waited = time.monotonic() - t0
            if waited > 1:
                log(f"  (waited {waited:.0f}s for the machine before {what})")
            try:
                yield
            finally:
                if locked:
                    fcntl.flock(f, fcntl.LOCK_UN)

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
        for d in self.shm_dirs:
            shutil.rmtree(d, ignore_errors=True)
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
        self.goproxy = None
        self.peer_note = None
        if self.peers:
            r = subprocess.run([os.path.join(ROOT, "bench", "peer-goproxy.sh")], cwd=ROOT,
                               capture_output=True, text=True)
            if r.returncode == 0:
                self.goproxy = os.path.join(ROOT, r.stdout.strip().splitlines()[-1])
            else:
                self.peer_note = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "build failed"
                log(f"goproxy peer left out: {self.peer_note}")

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

    def start_goproxy(self, name, tmpfs):
        """The peer: goproxy v0.14.0 (bench/peer-goproxy.sh) with its defaults in front of
        the same upstream and checksum database, verifying as modgate does; its cache
        (DirCacher) in the scratch dir on disk. Its temp dir (one per request) is its default,
        os.TempDir() = /tmp, or with tmpfs a directory in /dev/shm."""
        port = free_port()
        d = os.path.join(self.work, name)
        os.makedirs(os.path.join(d, "home"), exist_ok=True)
        argv = [self.goproxy, "-address", f"127.0.0.1:{port}", "-cacher-dir", os.path.join(d, "caches")]
        if tmpfs:
            t = tempfile.mkdtemp(prefix=f"modgate-bench-{name}-", dir="/dev/shm")
            self.shm_dirs.append(t)
            argv += ["-temp-dir", t]
        env = {"PATH": os.environ["PATH"], "HOME": os.path.join(d, "home"),
               "GOPATH": os.path.join(d, "home", "gopath"), "GOPROXY": self.up_url,
               "GOSUMDB": self.sumdb, "GONOSUMDB": "", "GOPRIVATE": "", "GONOPROXY": "",
               "GOFLAGS": "-modcacherw", "GOENV": "off", "GOTOOLCHAIN": "local"}
        p = self.spawn(name, argv, env=env)
        wait_tcp(port, proc=p)
        p.url = f"http://127.0.0.1:{port}"
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

    def warm(self, mg, static, mods=None, skip=(), what="modgate"):
        """Fetches every artifact (of `mods`, default all but `skip`) through a server (a
        verified miss each) and writes the bytes it served into a GOPROXY tree (static=None:
        reads and drops them)."""
        mods = mods if mods is not None else [m for m in self.modules() if m[0] not in skip]
        log(f"warming {what}: {len(mods)} module versions (.info .mod .zip) ...")

        def one(pv):
            path, ver = pv
            if static:
                d = os.path.join(static, escape(path), "@v")
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "list"), "w") as f:
                    f.write(ver + "\n")
            for ext in ("mod", "info", "zip"):
                rel = f"{escape(path)}/@v/{escape(ver)}.{ext}"
                with urllib.request.urlopen(f"{mg.url}/{rel}", timeout=900) as r, \
                        open(os.path.join(static, rel) if static else os.devnull, "wb") as f:
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
            with self.timed(f"hits {label} warm-up"):
                for s in servers:  # one short warm-up per server and case
                    self.wrk(s.url + (path or "/"), 4, 1, paths)
            for c in concs:
                res = {}
                # 256 clients of a 50 MiB zip share ~1-2 GiB/s: give each time for a few answers.
                t = secs * 3 if "50 MiB" in label and c == 256 else secs
                runs = {s.label: [] for s in servers}
                with self.timed(f"hits {label} c={c}"):
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
                       f"{os.environ.get('MODGATE_LOG', 'info')}; ratio = server / nginx)\n")
        if self.goproxy:
            self.md.append("goproxy v0.14.0 (`bench/peer-goproxy.sh`: built from its source tag with "
                           "Debian's Go and golang.org/x/mod) in front of the same upstream and checksum "
                           "database, warmed the same way (every artifact fetched once through it; not "
                           "the 500 MiB zip, which no row serves); \"goproxy\" with its defaults "
                           "(a temp dir per request in /tmp, on disk here), \"goproxy tmpfs\" with "
                           "`-temp-dir` in /dev/shm. Its cache (DirCacher) is on disk, like modgate's store.\n")
        elif self.peer_note:
            self.md.append(f"(goproxy peer left out: {self.peer_note})\n")
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
        with self.timed(f"client {tag}"):
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
                    "\nTarget ≤ 1.1× `file://` (issue #16; it was ≤ 1.2×).\n"]

    # ---------- cold build: a fresh modgate against the upstream itself ----------

    def cold_env(self, proxy, gosumdb, scratch):
        """A `go` command with nothing cached anywhere: module cache, GOPATH (where `go`
        keeps the checksum database's latest tree it has seen) and HOME all fresh; the
        client verifies against GOSUMDB itself."""
        return {"PATH": os.environ["PATH"], "HOME": os.path.join(scratch, "home"),
                "GOPATH": os.path.join(scratch, "gopath"), "GOMODCACHE": os.path.join(scratch, "modcache"),
                "GOCACHE": os.path.join(self.work, "gohome", "gocache"),
                "GOFLAGS": "-modcacherw", "GOPROXY": proxy, "GOSUMDB": gosumdb,
                "GONOSUMDB": "", "GOPRIVATE": "", "GONOPROXY": "", "GOINSECURE": "", "GO111MODULE": "on",
                "GOTOOLCHAIN": "local", "GOENV": "off"}

    def cold_download(self, d, proxy, gosumdb, gosum, tag):
        """One timed `go mod download -json all` in client dir d from nothing: go.sum as
        given (None: no go.sum, so every module is looked up in the checksum database)."""
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else self.work
        scratch = tempfile.mkdtemp(prefix=f"modgate-bench-cold-{tag}-", dir=shm)
        gs = os.path.join(d, "go.sum")
        if gosum is None:
            if os.path.exists(gs):
                os.remove(gs)
        else:
            with open(gs, "w") as f:
                f.write(gosum)
        try:
            t0 = time.monotonic()
            r = subprocess.run(["go", "mod", "download", "-json", "all"], cwd=d,
                               env=self.cold_env(proxy, gosumdb, scratch), capture_output=True,
                               text=True, timeout=900)
            t = time.monotonic() - t0
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if r.returncode != 0 or '"Error"' in r.stdout:
            raise RuntimeError(f"cold go mod download via {proxy} failed:\n{r.stderr}\n{r.stdout[-2000:]}")
        return t, r.stdout.count('"Path"')

    def up_counts(self, reset=True):
        """The upstream's request counts since the last reset: (all, sumdb lookups, tiles)."""
        c = json.loads(http_get(self.up_url + "/_control/counters"))
        if reset:
            http_get(self.up_url + "/_control/counters/reset")
        look = sum(v for k, v in c.items() if "/lookup/" in k)
        tiles = sum(v for k, v in c.items() if "/tile/" in k)
        return sum(c.values()), look, tiles

    def sec_coldbuild(self):
        """Issue #16: a cold `go mod download all` of the real-sized 200-module graph
        through a fresh modgate (empty data dir) against the same download straight from
        the upstream, the client verifying with GOSUMDB both times: on loopback, and with
        every upstream answer held UPSTREAM_DELAY_MS (refupstream -delay)."""
        prefix = "example.com/genreal"
        last = f"{prefix}/m{self.gen - 1:04d}"
        d = os.path.join(self.work, "client-cold")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "go.mod"), "w") as f:
            f.write(f"module bench.example/cold\n\ngo 1.16\n\nrequire {last} v1.0.0\n")
        with open(os.path.join(d, "main.go"), "w") as f:
            f.write(f'package main\n\nimport "{last}"\n\nfunc main() {{ println({last.rsplit("/", 1)[1]}.N()) }}\n')
        up_sumdb = f"{self.vkey} {self.up_url}/sumdb/{SUMDB_NAME}"
        # Untimed, straight from the upstream: its checksum database appends a record on a
        # version's first lookup, so after this one the log holds them all and every timed
        # run sees the same tree. It also writes the go.sum of the committed-go.sum variant.
        self.cold_download(d, self.up_url, up_sumdb, None, "prep")
        with open(os.path.join(d, "go.sum")) as f:
            gosum = f.read()
        reps = 3 if self.quick else 5
        variants = [("loopback (upstream answers at once)", 0, False)]
        if not self.quick:
            variants += [(f"upstream {UPSTREAM_DELAY_MS} ms away (every proxy and sumdb answer held "
                          f"{UPSTREAM_DELAY_MS} ms)", UPSTREAM_DELAY_MS, False),
                         (f"upstream {UPSTREAM_DELAY_MS} ms away, go.sum committed (the client "
                          "verifies against go.sum, no lookups of its own)", UPSTREAM_DELAY_MS, True)]
        rows = []
        self.results["coldbuild"] = []
        spent = []
        try:
            for title, delay, with_gosum in variants:
                http_get(f"{self.up_url}/_control/delay?what=all&ms={delay}")
                times = {"upstream": [], "modgate": []}
                reqs = {"upstream": [], "modgate": []}
                count = 0
                with self.timed(f"coldbuild {delay} ms"):
                    for i in range(reps):
                        order = ["upstream", "modgate"] if i % 2 == 0 else ["modgate", "upstream"]
                        for k in order:
                            mg = dd = None
                            if k == "modgate":
                                dd = os.path.join(self.work, f"data-coldbuild-{delay}-{int(with_gosum)}-{i}")
                                shutil.rmtree(dd, ignore_errors=True)
                                mg = self.start_modgate("modgate-coldbuild", dd)
                                proxy, gosumdb = mg.url, f"{self.vkey} {mg.url}/sumdb/{SUMDB_NAME}"
                            else:
                                proxy, gosumdb = self.up_url, up_sumdb
                            self.up_counts()
                            try:
                                t, count = self.cold_download(d, proxy, gosumdb,
                                                              gosum if with_gosum else None, k)
                            finally:
                                if mg is not None:
                                    self.stop(mg)
                                    # Removed after the section, not now: deleting a
                                    # store's files just before the next run made ext4's
                                    # inode allocator scan the recently freed ones on
                                    # every file the next run created (a third of
                                    # modgate's CPU in a cold build, by perf).
                                    spent.append(dd)
                            n, look, tiles = self.up_counts()
                            times[k].append(t)
                            reqs[k].append((n, look, tiles))
                            log(f"  cold build ({delay} ms, go.sum {with_gosum}) via {k}: {t:.2f}s, "
                                f"{count} modules, upstream requests {n} ({look} lookups, {tiles} tiles)")
                u, m = statistics.median(times["upstream"]), statistics.median(times["modgate"])
                rows.append((title, delay, with_gosum, count, u, m, reqs["upstream"][-1], reqs["modgate"][-1]))
                self.results["coldbuild"].append({"variant": title, "delay_ms": delay, "gosum": with_gosum,
                                                  "modules": count, "upstream_s": times["upstream"],
                                                  "modgate_s": times["modgate"], "upstream_requests": reqs})
        finally:
            http_get(f"{self.up_url}/_control/delay?what=all&ms=0")
            for dd in spent:
                shutil.rmtree(dd, ignore_errors=True)
        self.md += [f"### Cold build: `go mod download all`, {rows[0][3]} real-sized modules, nothing cached "
                    f"(fresh GOMODCACHE and GOPATH; a fresh modgate with an empty data dir each time), client "
                    f"verifying with GOSUMDB; median of {reps} alternating runs\n",
                    "Straight from the upstream: `GOPROXY=<refupstream>`, `GOSUMDB=\"<vkey> <refupstream>/sumdb/"
                    f"{SUMDB_NAME}\"`. Through modgate: `GOPROXY=<modgate>`, `GOSUMDB=\"<vkey> <modgate>/sumdb/"
                    f"{SUMDB_NAME}\"` (the same database through modgate's sumdb proxy); modgate fetches from "
                    "refupstream and verifies every `.mod` and `.zip` against its database before answering.\n",
                    "| upstream | straight s | through modgate s | **modgate / upstream** | upstream requests (lookups, tiles): straight / via modgate |",
                    "|---|---:|---:|---:|---|"]
        for title, delay, with_gosum, count, u, m, ru, rm in rows:
            self.md.append(f"| {title} | {u:.2f} | {m:.2f} | **{m / u:.2f}×** | "
                           f"{ru[0]} ({ru[1]}, {ru[2]}) / {rm[0]} ({rm[1]}, {rm[2]}) |")
        self.md.append("\nTarget ≤ 1.1×.\n")

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
        with self.timed("miss"):
            self._sec_miss(static)

    def _sec_miss(self, static):
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
        with self.timed("memory"):
            self._sec_memory()

    def _sec_memory(self):
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

    # Bytes a populated store takes per version (blobs of 4 KiB blocks, the sled index)
    # and its trail, measured at 100k (1,010 MiB + 45 MB), with room to spare.
    SCALE_BYTES_PER_VERSION = 11 * 1024

    def scale_root(self, largest):
        """Where the scale stores go: the scratch dir if its disk has room for the largest
        with 8 GiB to spare, else /dev/shm if memory has room (every store then, so that
        all sizes are on the same medium), else None."""
        need = largest * self.SCALE_BYTES_PER_VERSION
        if shutil.disk_usage(self.work).free > need + (8 << 30):
            return self.work, "disk"
        if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > need + (1 << 30) \
                and mem_available() > need + (4 << 30):
            d = tempfile.mkdtemp(prefix="modgate-bench-scale-", dir="/dev/shm")
            self.shm_dirs.append(d)
            return d, "tmpfs (/dev/shm: not enough free disk)"
        return None, None

    def sec_scale(self):
        sizes = [1000, 10000] if self.quick else [1000, 10000, 100000, 1000000]
        secs = 3 if self.quick else 8
        root, medium = self.scale_root(max(sizes))
        while root is None and len(sizes) > 2:
            log(f"  scale: no room for {sizes[-1]} versions (disk or memory); leaving it out")
            self.md.append(f"(Scale: no room for a store of {sizes[-1]} versions on disk or in /dev/shm: left out.)\n")
            sizes.pop()
            root, medium = self.scale_root(max(sizes))
        if root is None:
            raise RuntimeError("no room for the scale stores")
        rows = []
        # A pattern with a literal head (`cache ls` reads only the index range it can
        # match) that names 100 versions in every store; one module for `audit who`.
        pattern = "example.com/scale/m00001*"
        who = "example.com/scale/m0000150"
        for n in sizes:
            dd = os.path.join(root, f"data-scale-{n}")
            shutil.rmtree(dd, ignore_errors=True)
            log(f"  scale {n}: populating ({medium}) ...")
            r = subprocess.run([self.helper, "populate", dd, str(n)], capture_output=True,
                               text=True, timeout=7200)
            if r.returncode != 0:
                raise RuntimeError(f"helper populate {n} failed:\n{r.stderr}")
            pop = json.loads(r.stdout)
            r = subprocess.run([self.helper, "trail", dd, str(n)], capture_output=True, text=True, timeout=3600)
            if r.returncode != 0:
                raise RuntimeError(f"helper trail {n} failed:\n{r.stderr}")
            tr = json.loads(r.stdout)
            du = subprocess.run(["du", "-sm", dd], capture_output=True, text=True).stdout.split()[0]
            step = max(1, n // 2000)
            paths = [f"/example.com/scale/m{i:07d}/@v/v1.0.0.mod" for i in range(0, n, step)]
            with self.timed(f"scale {n}"):
                starts = []
                for i in range(3):
                    mg = self.start_modgate(f"modgate-scale-{n}", dd, offline=True)
                    starts.append(mg.startup_s)
                    if i < 2:
                        self.stop(mg)
                idle_rss = vm_rss_kib(mg.pid)
                self.wrk(mg.url + "/", 4, 1, paths)
                # VmRSS sampled while wrk runs: what the server holds while serving.
                peak = [0]
                done = threading.Event()

                def sample():
                    while not done.is_set():
                        peak[0] = max(peak[0], vm_rss_kib(mg.pid))
                        done.wait(0.1)
                th = threading.Thread(target=sample)
                th.start()
                try:
                    res = self.wrk(mg.url + "/", 16, secs, paths)
                finally:
                    done.set()
                    th.join()
                hwm = vm_hwm_kib(mg.pid)
                # `cache ls PATTERN` through the running server (its admin socket).
                t0 = time.monotonic()
                out = subprocess.run([self.modgate, "cache", "ls", pattern, "--data-dir", dd],
                                     capture_output=True, text=True, timeout=600)
                ls_live_s = time.monotonic() - t0
                if out.returncode != 0:
                    raise RuntimeError(f"cache ls via the server failed: {out.stderr}")
                hwm_after_ls = vm_hwm_kib(mg.pid)
                self.stop(mg)
                # The admin commands on the stopped data dir: time and the command's peak RSS.
                ls_s, ls_rss, ls_out, rc = time_v([self.modgate, "cache", "ls", pattern, "--data-dir", dd])
                if rc != 0:
                    raise RuntimeError("cache ls failed")
                ls_lines = sum(1 for l in ls_out.splitlines() if l.startswith("example.com/scale/"))
                who_s, who_rss, who_out, rc = time_v([self.modgate, "audit", "who", who, "--data-dir", dd])
                if rc != 0:
                    raise RuntimeError("audit who failed")
                who_lines = sum(1 for l in who_out.splitlines() if who in l)
            shutil.rmtree(dd, ignore_errors=True)
            st = statistics.median(starts)
            log(f"  scale {n}: populate {pop['populate_s']:.0f}s, store {du} MiB, start {st * 1000:.0f} ms, "
                f"{res['rps']:.0f} req/s p99 {res['p99_ms']:.2f} ms, VmRSS under load {mib(peak[0]):.0f} MiB "
                f"(VmHWM {mib(hwm):.0f}), cache ls {ls_s:.2f}s {mib(ls_rss):.0f} MiB ({ls_lines} lines; via server "
                f"{ls_live_s:.2f}s), audit who {who_s:.2f}s {mib(who_rss):.0f} MiB ({who_lines} records)")
            rows.append(dict(versions=n, populate_s=pop["populate_s"], trail_records=tr["records"],
                             store_mib=du, startup_s=st, startups=starts, idle_rss_kib=idle_rss,
                             load_rss_kib=peak[0], hwm_kib=hwm, hwm_after_ls_kib=hwm_after_ls,
                             ls_s=ls_s, ls_rss_kib=ls_rss, ls_lines=ls_lines, ls_live_s=ls_live_s,
                             who_s=who_s, who_rss_kib=who_rss, who_lines=who_lines, **res))
        self.results["scale"] = rows
        b = rows[0]
        self.md += [f"### Scale: store of N module versions (3 index entries each; `helper populate`) "
                    f"on {medium}, offline; `.mod` hits at 16 conns, {secs} s\n",
                    "| versions | populate s | store MiB | start-up ms (median of 3) | ratio | req/s | ratio | p99 ms | ratio | "
                    "VmRSS under load MiB | VmHWM MiB |",
                    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            self.md.append(f"| {r['versions']} | {r['populate_s']:.0f} | {r['store_mib']} | {r['startup_s'] * 1000:.0f} | "
                           f"{r['startup_s'] / b['startup_s']:.2f}× | {r['rps']:.0f} | {r['rps'] / b['rps']:.2f}× | "
                           f"{r['p99_ms']:.2f} | {r['p99_ms'] / b['p99_ms']:.2f}× | {mib(r['load_rss_kib']):.0f} | "
                           f"{mib(r['hwm_kib']):.0f} |")
        self.md += ["\nTargets (issue #16): hits flat against the smallest store, start-up < 1 s, RSS < 100 MB "
                    "while serving.\n",
                    f"Admin commands: `modgate cache ls '{pattern}'` ({b['ls_lines']} versions) and "
                    f"`modgate audit who {who}` on a trail of 3 records per version (`helper trail`), "
                    "on the stopped data dir (`/usr/bin/time -v`: wall time, the command's peak RSS), and "
                    "`cache ls` through the running server's admin socket.\n",
                    "| versions | trail records | `cache ls` s | ratio | peak RSS MiB | via server s | "
                    "`audit who` s | ratio | peak RSS MiB |",
                    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            self.md.append(f"| {r['versions']} | {r['trail_records']} | {r['ls_s']:.3f} | "
                           f"{r['ls_s'] / b['ls_s']:.2f}× | {mib(r['ls_rss_kib']):.0f} | {r['ls_live_s']:.3f} | "
                           f"{r['who_s']:.3f} | {r['who_s'] / b['who_s']:.2f}× | {mib(r['who_rss_kib']):.0f} |")
        self.md.append("\nTarget: under a second each.\n")

    # ---------- main ----------

    def machine(self):
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.split("\n")[1].split()[1]
        load = open("/proc/loadavg").read().split()[:3]
        return f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, load average at start {' '.join(load)}"

    def run(self):
        all_sections = ["hits", "client", "coldbuild", "miss", "memory", "scale", "replicas"]
        sections = set(self.a.only.split(",")) if self.a.only else \
            set(all_sections) - ({"replicas"} if self.quick else set())
        unknown = sections - set(all_sections)
        if unknown:
            raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")
        if "replicas" in sections and not self.a.only and \
                not shutil.which(os.environ.get("MODGATE_MOTO_SERVER") or "moto_server"):
            log("no moto_server (scripts/test.sh installs it): the replicas section is skipped")
            sections.discard("replicas")
        if "memory" not in sections:
            self.big = [1, 50]  # only the memory section's full run needs the 500 MiB zip
        if not sections & {"hits"}:
            self.peers = False
        self.build()
        self.md += [f"## modgate benchmarks ({'quick' if self.quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M')})\n",
                    f"Machine: {self.machine()}; servers and load generator share it.\n"]
        t0 = time.monotonic()
        self.start_refupstream()
        static = os.path.join(self.work, "static")
        main_dd = os.path.join(self.work, "data-main")
        mods = []
        if sections & {"hits", "client", "miss", "replicas"}:
            mg = self.start_modgate("modgate", main_dd)
            mods = self.warm(mg, static)
            self.stop(mg)
        if sections & {"hits", "client", "replicas"}:
            # Restart on the warm store so the runs see a server with only hits behind it.
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
            if "hits" in sections and self.goproxy:
                # The peer, warmed like modgate; the 500 MiB zip (in no row) left out.
                skip = {f"example.com/big/m{n}" for n in self.big if n not in (1, 50)}
                for name, tmpfs in (("goproxy", False), ("goproxy tmpfs", True)):
                    gp = self.start_goproxy(name.replace(" ", "-"), tmpfs)
                    self.warm(gp, None, skip=skip, what=name)
                    gp.label = name
                    servers.insert(len(servers) - 1, gp)
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
        if "coldbuild" in sections:
            log("cold build ...")
            self.sec_coldbuild()
        if "miss" in sections:
            log("miss pipeline ...")
            self.sec_miss(static)
        if "memory" in sections:
            log("memory ...")
            self.sec_memory()
        if "scale" in sections:
            log("scale ...")
            self.sec_scale()
        if self.lock_notes:
            self.md.append(f"_{len(self.lock_notes)} timed parts ran without the lock (held by a process "
                           f"that ran no wrk for {self.a.lock_timeout:.0f} s), once no wrk ran._\n")
        self.md.append(f"_Total run time {time.monotonic() - t0:.0f} s._")
        self.report()

    def report(self):
        """Prints the report (also what a failed run measured before it failed)."""
        if self.reported:
            return
        self.reported = True
        print("\n".join(self.md) + "\n", flush=True)
        if self.a.json:
            with open(self.a.json, "w") as f:
                json.dump(self.results, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs, no 500 MiB case, scale up to 10k, "
                                                         "cold build on loopback only, no peers, no replicas")
    ap.add_argument("--only", help="comma-separated sections: hits,client,coldbuild,miss,memory,scale,"
                                   "replicas (replicas: not in --quick unless named here)")
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
    ap.add_argument("--peers", choices=["auto", "none", "goproxy"], default="auto",
                    help="peer proxies in the warm-hit table: goproxy v0.14.0 (bench/peer-goproxy.sh), "
                         "with its defaults and with its temp dir on tmpfs; auto = in the full run only")
    ap.add_argument("--lock", default=os.environ.get("MODGATE_BENCH_LOCK"),
                    help="around every timed part, wait until no other wrk runs and hold an flock on "
                         "this file (for a machine shared with other benchmark runs; env MODGATE_BENCH_LOCK)")
    ap.add_argument("--lock-timeout", type=float, default=300,
                    help="seconds a --lock held while no wrk runs is waited for before going on without it")
    b = Bench(ap.parse_args())
    # A TERM (e.g. a timeout) still stops every server and removes the scratch dirs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        b.run()
    except BaseException:
        b.md.append("_The run failed here (see the error on stderr): the tables above are what it measured before._")
        b.report()
        raise
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
