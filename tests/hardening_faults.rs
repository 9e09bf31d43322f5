//! Faults: a crash mid-download, a full or unusable data dir, slow clients,
//! many clients at once, and blobs corrupted on disk after they were stored.
//! In each, nothing partial or unverified is served, the store stays intact,
//! and modgate recovers.

mod common;
mod hardening_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::modgate::{Modgate, test_config};
use common::refupstream::{RefUpstream, http_request};
use hardening_support::*;
use modgate::protocol::{Kind, ModVersion};
use modgate::store::{Blob, EmbeddedStore, Entry, Meta, Spool, Store, StoreError, StoreResult};

// ------------------------------------------------------------- crash

/// The real binary, run as a child process.
struct Proc {
    child: Child,
    url: String,
}

impl Proc {
    fn start(up: &RefUpstream, data: &Path) -> Proc {
        let gosumdb = up.gosumdb();
        let (child, url) = common::binary::serve(
            &[
                "--data-dir".as_ref(),
                data.as_os_str(),
                "--upstream".as_ref(),
                up.url.as_ref(),
                "--sumdb".as_ref(),
                gosumdb.as_ref(),
            ],
            "info",
            true,
        );
        Proc { child, url }
    }

    fn get(&self, path: &str) -> common::refupstream::HttpResponse {
        http_request("GET", &format!("{}{path}", self.url), &[], None).expect("request")
    }

    /// SIGTERM, then wait (graceful shutdown).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn spool_sizes(data: &Path) -> Vec<u64> {
    std::fs::read_dir(data.join("tmp"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill_9_mid_download_leaves_nothing_partial() {
    let up = RefUpstream::start(&[]);
    let m = "example.com/faults/big";
    let path = format!("/{m}/@v/v1.0.0.zip");
    add_module(&up, m, "v1.0.0", 8 << 20);
    let honest = up.get(&path).body;
    // About 6 s for the whole zip: 64 KiB every 50 ms.
    hostile(&up, m, "v1.0.0", "trickle", "&chunk=65536&ms=50");
    let data = tempfile::tempdir().unwrap();

    let mut first = Proc::start(&up, data.path());
    let url = format!("{}{path}", first.url);
    let client = std::thread::spawn(move || http_request("GET", &url, &[], None));
    // Wait until a good part of the zip is spooled, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sizes = spool_sizes(data.path());
        if sizes.iter().any(|&s| s > 1 << 20) {
            eprintln!("spool files at kill time: {sizes:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no spool file grew: {sizes:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    // The client got no complete zip.
    match client.join().unwrap() {
        Ok(r) => assert!(
            r.status != 200 || r.body.len() < honest.len(),
            "{}",
            r.status
        ),
        Err(e) => eprintln!("client after the kill: {e}"),
    }
    assert!(
        !spool_sizes(data.path()).is_empty(),
        "the partial spool is on disk"
    );

    // Restart: the leftover spool is gone, nothing partial is indexed, and
    // the zip is fetched and verified again.
    up.control(&format!("hostile?module={m}&version=v1.0.0&what=off"));
    up.reset_counters();
    let second = Proc::start(&up, data.path());
    assert_eq!(tmp_files(data.path()), Vec::<String>::new());
    let r = second.get(&path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == honest, "served zip differs from the honest one");
    assert_eq!(up.hits(&path), 1, "fetched again after the crash");
    second.stop();
    assert!(stored(data.path(), m, "v1.0.0").contains(&Kind::Zip));
    verify_store(data.path());
}

// ------------------------------------------------------------- full disk

/// An `EmbeddedStore` that, while `full` is set, fails every write with
/// ENOSPC: spool files write to /dev/full, commits and metadata writes fail.
struct FullStore {
    inner: Arc<EmbeddedStore>,
    full: AtomicBool,
    /// Spool files vanish once made: reading one back fails (the disk, not the zip).
    unreadable: AtomicBool,
}

fn enospc(what: &str) -> StoreError {
    StoreError::Io {
        path: PathBuf::from(what),
        source: std::io::Error::from_raw_os_error(28),
    }
}

impl FullStore {
    /// A store over `inner` that is neither full nor losing its spool files yet.
    fn over(inner: Arc<EmbeddedStore>) -> Arc<FullStore> {
        Arc::new(FullStore {
            inner,
            full: AtomicBool::new(false),
            unreadable: AtomicBool::new(false),
        })
    }

    fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for FullStore {
    async fn spool(&self) -> StoreResult<(Spool, tokio::fs::File)> {
        let (spool, file) = self.inner.spool().await?;
        if self.unreadable.load(Ordering::SeqCst) {
            // Written through the open handle, gone by name.
            let _ = std::fs::remove_file(&spool.path);
        }
        if !self.is_full() {
            return Ok((spool, file));
        }
        let full = tokio::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .await
            .map_err(|source| StoreError::Io {
                path: "/dev/full".into(),
                source,
            })?;
        Ok((spool, full))
    }
    async fn entry(
        &self,
        mv: &ModVersion,
        kind: Kind,
    ) -> StoreResult<Option<std::sync::Arc<Entry>>> {
        self.inner.entry(mv, kind).await
    }
    async fn open(&self, entry: &Entry) -> StoreResult<Blob> {
        self.inner.open(entry).await
    }
    async fn commit(&self, spool: Spool, entry: Entry) -> StoreResult<Entry> {
        if self.is_full() {
            return Err(enospc(&spool.path.to_string_lossy()));
        }
        self.inner.commit(spool, entry).await
    }
    async fn commit_bytes(&self, data: &[u8], entry: Entry) -> StoreResult<Entry> {
        if self.is_full() {
            return Err(enospc("blob"));
        }
        self.inner.commit_bytes(data, entry).await
    }
    async fn remove(&self, mv: &ModVersion, kind: Kind) -> StoreResult<bool> {
        self.inner.remove(mv, kind).await
    }
    async fn entries(&self, prefix: &str) -> StoreResult<Vec<Entry>> {
        self.inner.entries(prefix).await
    }
    async fn totals(&self) -> StoreResult<(u64, u64)> {
        self.inner.totals().await
    }
    async fn meta_get(&self, ns: Meta, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.inner.meta_get(ns, key).await
    }
    async fn meta_put(&self, ns: Meta, key: &str, value: &[u8]) -> StoreResult<()> {
        if self.is_full() {
            return Err(enospc("index"));
        }
        self.inner.meta_put(ns, key, value).await
    }
    async fn meta_cas(
        &self,
        ns: Meta,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> StoreResult<()> {
        if self.is_full() {
            return Err(enospc("index"));
        }
        self.inner.meta_cas(ns, key, old, new).await
    }
    async fn meta_remove(&self, ns: Meta, key: &str) -> StoreResult<()> {
        self.inner.meta_remove(ns, key).await
    }
    async fn meta_scan(&self, ns: Meta, prefix: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        self.inner.meta_scan(ns, prefix).await
    }
    async fn meta_count(&self, ns: Meta, prefix: &str) -> StoreResult<usize> {
        self.inner.meta_count(ns, prefix).await
    }
    async fn stage_blob(&self, digest: &str) -> StoreResult<Option<modgate::store::Staged>> {
        self.inner.stage_blob(digest).await
    }
    async fn quarantine_blob(&self, digest: &str, reason: &str) -> StoreResult<String> {
        self.inner.quarantine_blob(digest, reason).await
    }
    async fn flush(&self) -> StoreResult<()> {
        self.inner.flush().await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn evictable(self: Arc<Self>) -> Arc<dyn Store> {
        self
    }
}

/// The router over a given store, as `server::build` wires it.
fn router_with(cfg: modgate::config::Config, store: Arc<dyn Store>) -> axum::Router {
    use modgate::sumdb::client::Client;
    use modgate::trust::SumdbOps;
    let cfg = Arc::new(cfg);
    let spec = cfg.sumdb_spec().unwrap();
    let upstream = modgate::upstream::Upstream::new(&cfg).unwrap();
    let ops = SumdbOps {
        name: spec.name.clone(),
        base_url: spec.url.clone(),
        upstream: upstream.clone(),
        store: store.clone(),
        evidence_dir: cfg.data_dir.join("evidence"),
        max_bytes: cfg.limits.max_meta_bytes,
        offline: false,
    };
    let client = Client::new(Arc::new(ops), &spec.vkey).unwrap();
    let pipeline = modgate::pipeline::Pipeline::new(store, upstream, Arc::new(client), cfg);
    modgate::http::app(modgate::http::AppState {
        pipeline,
        auth: Default::default(),
        audit: None,
        admin: None,
    })
}

async fn call(app: &axum::Router, path: &str) -> (u16, Vec<u8>) {
    use tower::ServiceExt;
    let req = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body.to_vec())
}

/// Both ways a zip lands: checked in memory, and spooled to disk
/// (`zip_in_memory_bytes = 0`), so a full disk is met by the spool's write.
#[test]
fn full_disk_is_507_and_recovers() {
    for in_memory in [None, Some(0)] {
        full_disk_is_507_and_recovers_with(in_memory);
    }
}

fn full_disk_is_507_and_recovers_with(zip_in_memory_bytes: Option<u64>) {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let inner = Arc::new(EmbeddedStore::open(data.path()).unwrap());
    let store = FullStore::over(inner.clone());
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    if let Some(n) = zip_in_memory_bytes {
        cfg.limits.zip_in_memory_bytes = n;
    }
    let app = router_with(cfg, store.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (s, _) = call(&app, "/example.com/hello/@v/v1.0.0.mod").await;
        assert_eq!(s, 200);

        store.full.store(true, Ordering::SeqCst);
        // The zip streams into a spool on a full disk: 507, says so.
        let (s, body) = call(&app, "/example.com/hello/@v/v1.0.0.zip").await;
        let body = String::from_utf8_lossy(&body).into_owned();
        eprintln!("zip on a full disk: {s} {body}");
        assert_eq!(s, 507, "{body}");
        assert!(body.contains("example.com/hello@v1.0.0"), "{body}");
        assert!(body.contains("No space left on device"), "{body}");
        // A small verified file cannot be committed either: 507.
        let (s, body) = call(&app, "/example.com/hello/@v/v1.0.0.info").await;
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(s, 507, "{body}");
        assert!(body.starts_with("insufficient storage: "), "{body}");
        // A new version needs the checksum database state written: a clear 5xx.
        let (s, body) = call(&app, "/example.com/hello/@v/v1.1.0.mod").await;
        let body = String::from_utf8_lossy(&body).into_owned();
        eprintln!("new version on a full disk: {s} {body}");
        assert!(s == 507 || s == 500, "{s} {body}");
        assert!(body.contains("No space left on device"), "{body}");
        // What is cached is still served.
        let (s, _) = call(&app, "/example.com/hello/@v/v1.0.0.mod").await;
        assert_eq!(s, 200);
        assert!(
            tmp_files(data.path()).is_empty(),
            "{:?}",
            tmp_files(data.path())
        );

        // Space returns: everything works, nothing corrupt was kept.
        store.full.store(false, Ordering::SeqCst);
        for p in [
            "/example.com/hello/@v/v1.0.0.zip",
            "/example.com/hello/@v/v1.0.0.info",
            "/example.com/hello/@v/v1.1.0.mod",
            "/example.com/hello/@v/v1.1.0.zip",
        ] {
            let (s, body) = call(&app, p).await;
            assert_eq!(s, 200, "{p}: {}", String::from_utf8_lossy(&body));
            assert_eq!(body, up.get(p).body, "{p}");
        }
    });
    drop(app);
    drop(store);
    drop(inner);
    drop(rt);
    assert!(tmp_files(data.path()).is_empty());
    assert_eq!(verify_store(data.path()), 5);
}

/// A spool file that cannot be read back is our disk's failure: a 5xx that
/// says so, never a 403 for the module (nothing about its zip was proven).
#[test]
fn unreadable_spool_is_a_storage_error_not_a_refusal() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let inner = Arc::new(EmbeddedStore::open(data.path()).unwrap());
    let store = FullStore::over(inner.clone());
    store.unreadable.store(true, Ordering::SeqCst);
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    cfg.limits.zip_in_memory_bytes = 0;
    let app = router_with(cfg, store.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (s, body) = call(&app, "/example.com/hello/@v/v1.0.0.zip").await;
        let body = String::from_utf8_lossy(&body).into_owned();
        eprintln!("unreadable spool: {s} {body}");
        assert_eq!(s, 500, "{body}");
        assert!(body.starts_with("storage error: "), "{body}");
        assert!(body.contains("example.com/hello@v1.0.0"), "{body}");
        let (s, body) = call(&app, "/metrics").await;
        let metrics = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(s, 200);
        assert!(
            !metrics.contains("outcome=\"refused\""),
            "a refusal was counted:\n{metrics}"
        );

        store.unreadable.store(false, Ordering::SeqCst);
        let p = "/example.com/hello/@v/v1.0.0.zip";
        let (s, body) = call(&app, p).await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, up.get(p).body);
    });
}

#[test]
fn unusable_data_dir_is_a_clear_5xx_and_recovers() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let (data, mut mg) = fresh(&up, |_| {});
    assert_eq!(
        raw(&mg, "GET", "/example.com/hello/@v/v1.0.0.mod").status,
        200
    );
    // Root ignores permissions, so break the spool directory instead: a file
    // where the directory should be.
    let tmp = data.path().join("tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let r = raw(&mg, "GET", "/example.com/hello/@v/v1.0.0.zip");
    let body = r.text();
    eprintln!("unusable data dir: {} {body}", r.status);
    assert_eq!(r.status, 500, "{body}");
    assert!(body.starts_with("storage error: "), "{body}");
    assert!(body.contains("Not a directory"), "{body}");
    // Cached artifacts are still served.
    assert_eq!(
        raw(&mg, "GET", "/example.com/hello/@v/v1.0.0.mod").status,
        200
    );

    std::fs::remove_file(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    let r = raw(&mg, "GET", "/example.com/hello/@v/v1.0.0.zip");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, up.get("/example.com/hello/@v/v1.0.0.zip").body);
    mg.stop();
    assert!(stored(data.path(), "example.com/hello", "v1.0.0").contains(&Kind::Zip));
    verify_store(data.path());
}

// ------------------------------------------------------------- slow clients

/// Connects with a tiny receive buffer, so a client that does not read
/// stalls the server quickly (loopback autotuning would buffer tens of MiB).
fn small_window_connect(url: &str) -> TcpStream {
    let addr: std::net::SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let s = sock.connect(addr).await.unwrap();
        s.into_std().unwrap()
    })
}

#[test]
fn slow_clients_are_cut_off_and_others_are_served() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let m = "example.com/faults/large";
    add_module(&up, m, "v1.0.0", 12 << 20);
    let (data, mut mg) = fresh(&up, |c| {
        c.timeouts.client_header_secs = 2;
        c.timeouts.client_stall_secs = 2;
    });
    let zip = format!("/{m}/@v/v1.0.0.zip");
    let honest_len = up.get(&zip).body.len();
    assert_eq!(raw(&mg, "GET", &zip).status, 200); // cached

    // Slowloris: a header line every 500 ms, never finishing.
    let url = mg.url.clone();
    let loris = std::thread::spawn(move || {
        let mut s = TcpStream::connect(url.strip_prefix("http://").unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let start = Instant::now();
        let _ = s.write_all(b"GET /example.com/hello/@v/list HTTP/1.1\r\nHost: x\r\n");
        let mut buf = [0u8; 512];
        while start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(400));
            if s.write_all(b"X-Slow: a\r\n").is_err() {
                return start.elapsed();
            }
            match s.read(&mut buf) {
                Ok(0) => return start.elapsed(), // closed
                Ok(_) => return start.elapsed(), // answered (408) then closed
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return start.elapsed(),
            }
        }
        start.elapsed()
    });

    // A reader that never reads a large zip.
    let mut stuck = small_window_connect(&mg.url);
    stuck
        .write_all(format!("GET {zip} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();

    // Everyone else is served meanwhile, promptly.
    for _ in 0..10 {
        let t = Instant::now();
        let r = raw(&mg, "GET", "/example.com/hello/@v/v1.0.0.mod");
        assert_eq!(r.status, 200);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    let loris_cut = loris.join().unwrap();
    eprintln!("slowloris connection closed after {loris_cut:?}");
    assert!(loris_cut < Duration::from_secs(10), "{loris_cut:?}");

    // By now the stalled response was dropped: reading gives a short body, then EOF.
    std::thread::sleep(Duration::from_secs(2));
    stuck
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let _ = stuck.read_to_end(&mut got);
    eprintln!(
        "stalled reader got {} of {honest_len} zip bytes before the cut",
        got.len()
    );
    assert!(
        got.len() < honest_len,
        "the stalled response was never cut off"
    );

    assert_eq!(raw(&mg, "GET", &zip).body.len(), honest_len);
    mg.stop();
    verify_store(data.path());
}

// ------------------------------------------------------------- many clients

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn two_hundred_concurrent_clients_cached_and_uncached() {
    capture_logs();
    const MODULES: usize = 30;
    let up = RefUpstream::start(&["-gen", &MODULES.to_string()]);
    let (data, mut mg) = fresh(&up, |_| {});
    let paths: Vec<String> = (0..MODULES)
        .flat_map(|i| {
            ["info", "mod", "zip"].map(|k| format!("/example.com/gen/m{i:04}/@v/v1.0.0.{k}"))
        })
        .collect();
    let honest: Vec<Vec<u8>> = paths.iter().map(|p| up.get(p).body).collect();
    up.reset_counters();
    // Half the modules cached beforehand.
    for p in paths.iter().take(paths.len() / 2) {
        assert_eq!(raw(&mg, "GET", p).status, 200, "{p}");
    }
    let before = vm_hwm_kib();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = mg.url.clone();
    let (paths, honest) = (Arc::new(paths), Arc::new(honest));
    let start = Instant::now();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for t in 0..200usize {
            let (client, url, paths, honest) =
                (client.clone(), url.clone(), paths.clone(), honest.clone());
            tasks.push(tokio::spawn(async move {
                // Spread over cached and uncached, with many asking the same thing.
                let i = (t * 7) % paths.len();
                let r = client
                    .get(format!("{url}{}", paths[i]))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", paths[i]));
                assert_eq!(r.status(), 200, "{}", paths[i]);
                let body = r.bytes().await.unwrap();
                assert!(body[..] == honest[i][..], "{}: wrong bytes", paths[i]);
            }));
        }
        let all = futures_util::future::join_all(tasks);
        let results = tokio::time::timeout(Duration::from_secs(120), all)
            .await
            .expect("200 clients finished in bounded time (no deadlock)");
        for r in results {
            r.unwrap();
        }
    });
    let after = vm_hwm_kib();
    eprintln!(
        "200 clients in {:?}; VmHWM {before} KiB -> {after} KiB (x{:.2})",
        start.elapsed(),
        after as f64 / before.max(1) as f64
    );
    let zips = up.hits_suffix(".zip");
    assert_eq!(
        zips, MODULES as u64,
        "each zip fetched once, however many asked"
    );
    mg.stop();
    assert_eq!(verify_store(data.path()), MODULES * 3);
}

// ------------------------------------------------------------- bit rot

fn blob_path(data: &Path, module: &str, version: &str, kind: Kind) -> PathBuf {
    let store = EmbeddedStore::open(data).unwrap();
    let mv = ModVersion::new(module, version).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let e = rt.block_on(store.entry(&mv, kind)).unwrap().unwrap();
    data.join("blobs/sha256")
        .join(&e.digest[..2])
        .join(&e.digest)
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x01]).unwrap();
    f.sync_all().unwrap();
}

fn quarantined(data: &Path) -> usize {
    std::fs::read_dir(data.join("quarantine"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn blobs_corrupted_on_disk_are_refetched_not_served() {
    capture_logs();
    let up = RefUpstream::start(&[]);
    let m = "example.com/faults/rot";
    add_module(&up, m, "v1.0.0", 256 << 10); // above the always-hash size
    let zip = format!("/{m}/@v/v1.0.0.zip");
    let modp = format!("/{m}/@v/v1.0.0.mod");
    let honest_zip = up.get(&zip).body;
    let honest_mod = up.get(&modp).body;
    let data = tempfile::tempdir().unwrap();
    let cfg = || test_config(data.path(), &up.url, &up.gosumdb());

    let mut mg = Modgate::start(cfg());
    assert_eq!(raw(&mg, "GET", &zip).status, 200);
    mg.stop();

    // Corrupted while modgate was down: caught on the first read.
    let blob = blob_path(data.path(), m, "v1.0.0", Kind::Zip);
    flip_byte(&blob, 5000);
    up.reset_counters();
    let mut mg = Modgate::start(cfg());
    let r = raw(&mg, "GET", &zip);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == honest_zip, "corrupt zip served");
    assert_eq!(up.hits(&zip), 1, "re-fetched and re-verified");
    assert_eq!(quarantined(data.path()), 1);
    assert_logged(m, "v1.0.0", "quarantined");

    // A verified hit is cheap: served again without re-fetching.
    assert!(raw(&mg, "GET", &zip).body == honest_zip);
    assert_eq!(up.hits(&zip), 1);

    // Corrupted while running (after it was verified): the changed file is
    // noticed and re-verified.
    std::thread::sleep(Duration::from_millis(20));
    let blob = data
        .path()
        .join("blobs/sha256")
        .join(&blob.file_name().unwrap().to_string_lossy()[..2])
        .join(blob.file_name().unwrap());
    flip_byte(&blob, 7000);
    let r = raw(&mg, "GET", &zip);
    assert_eq!(r.status, 200);
    assert!(r.body == honest_zip, "corrupt zip served");
    assert_eq!(up.hits(&zip), 2);
    assert_eq!(quarantined(data.path()), 2);

    // A small blob (.mod) is proven when first read from disk and then served
    // from those proven bytes in memory: damage to its file is never served...
    mg.stop();
    let mod_blob = blob_path(data.path(), m, "v1.0.0", Kind::Mod);
    let mut mg = Modgate::start(cfg());
    assert!(raw(&mg, "GET", &modp).body == honest_mod);
    flip_byte(&mod_blob, 2);
    let r = raw(&mg, "GET", &modp);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == honest_mod, "corrupt .mod served");
    assert_eq!(up.hits(&modp), 0);
    // ...and is caught (quarantined, re-fetched, re-verified) when the file is
    // next read: here at the next start.
    mg.stop();
    let mut mg = Modgate::start(cfg());
    let r = raw(&mg, "GET", &modp);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == honest_mod, "corrupt .mod served");
    assert_eq!(up.hits(&modp), 1);
    assert_eq!(quarantined(data.path()), 3);
    mg.stop();
    verify_store(data.path());
}
