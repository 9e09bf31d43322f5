//! Every failure has its true status: a full disk under the sled index is
//! 507 (like one under a blob), and an internal error in the tile/proof
//! code is 500 — not `403 SECURITY`, and not counted as a bad proof.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use common::modgate::test_config;
use common::refupstream::RefUpstream;
use modgate::config::Config;
use modgate::protocol::{Kind, ModVersion};
use modgate::store::{Blob, EmbeddedStore, Entry, Meta, Spool, Store, StoreError, StoreResult};
use modgate::sumdb::client::{Client, ClientError, ClientOps, ForkEvidence};
use modgate::sumdb::tlog::TlogError;
use modgate::trust::SumdbOps;

/// What sled returns when the disk under its files is full.
fn sled_enospc() -> StoreError {
    StoreError::from(sled::Error::Io(std::io::Error::from_raw_os_error(28)))
}

/// An `EmbeddedStore` whose index writes fail as sled fails on a full disk
/// while `full` is set.
struct SledFull {
    inner: Arc<EmbeddedStore>,
    full: AtomicBool,
}

impl SledFull {
    fn check(&self) -> StoreResult<()> {
        match self.full.load(Ordering::SeqCst) {
            true => Err(sled_enospc()),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl Store for SledFull {
    async fn spool(&self) -> StoreResult<(Spool, tokio::fs::File)> {
        self.inner.spool().await
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
        self.check()?;
        self.inner.commit(spool, entry).await
    }
    async fn commit_bytes(&self, data: &[u8], entry: Entry) -> StoreResult<Entry> {
        self.check()?;
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
        self.check()?;
        self.inner.meta_put(ns, key, value).await
    }
    async fn meta_cas(
        &self,
        ns: Meta,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> StoreResult<()> {
        self.check()?;
        self.inner.meta_cas(ns, key, old, new).await
    }
    async fn meta_remove(&self, ns: Meta, key: &str) -> StoreResult<()> {
        self.check()?;
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

/// Checksum-database I/O that, while `broken` is set, fails every tile
/// read with an internal error of the tile code.
struct BrokenTiles {
    inner: SumdbOps,
    broken: AtomicBool,
}

#[async_trait]
impl ClientOps for BrokenTiles {
    async fn read_remote(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        if path.starts_with("tile/") && self.broken.load(Ordering::SeqCst) {
            return Err(ClientError::Tlog(TlogError::Internal(
                "injected: tile index arithmetic went wrong".into(),
            )));
        }
        self.inner.read_remote(path).await
    }
    async fn read_config(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError> {
        self.inner.read_config(file).await
    }
    async fn write_config(
        &self,
        file: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), ClientError> {
        self.inner.write_config(file, old, new).await
    }
    async fn read_cache(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError> {
        if file.contains("/tile/") && self.broken.load(Ordering::SeqCst) {
            return Ok(None); // make the client go through read_remote
        }
        self.inner.read_cache(file).await
    }
    async fn write_cache(&self, file: &str, data: &[u8]) -> Result<(), ClientError> {
        self.inner.write_cache(file, data).await
    }
    async fn delete_cache(&self, file: &str) -> Result<(), ClientError> {
        self.inner.delete_cache(file).await
    }
    async fn security_error(&self, evidence: &ForkEvidence) {
        self.inner.security_error(evidence).await
    }
}

/// The router as `server::build` wires it, over the given store and sumdb I/O.
fn router(
    cfg: Config,
    store: Arc<dyn Store>,
    ops: impl FnOnce(SumdbOps) -> Arc<dyn ClientOps>,
) -> (axum::Router, Arc<modgate::metrics::Metrics>) {
    let cfg = Arc::new(cfg);
    let spec = cfg.sumdb_spec().unwrap();
    let upstream = modgate::upstream::Upstream::new(&cfg).unwrap();
    let sumdb_ops = SumdbOps {
        name: spec.name.clone(),
        base_url: spec.url.clone(),
        upstream: upstream.clone(),
        store: store.clone(),
        evidence_dir: cfg.data_dir.join("evidence"),
        max_bytes: cfg.limits.max_meta_bytes,
        offline: false,
    };
    let client = Client::new(ops(sumdb_ops), &spec.vkey).unwrap();
    let metrics = upstream.metrics().clone();
    let pipeline = modgate::pipeline::Pipeline::new(store, upstream, Arc::new(client), cfg);
    let app = modgate::http::app(modgate::http::AppState {
        pipeline,
        auth: Default::default(),
        audit: None,
        admin: None,
    });
    (app, metrics)
}

async fn call(app: &axum::Router, path: &str) -> (u16, String) {
    use tower::ServiceExt;
    let req = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn full_disk_under_sled_is_507_and_recovers() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let store = Arc::new(SledFull {
        inner: Arc::new(EmbeddedStore::open(data.path()).unwrap()),
        full: AtomicBool::new(true),
    });
    let cfg = test_config(data.path(), &up.url, &up.gosumdb());
    let (app, _) = router(cfg, store.clone(), |o| Arc::new(o));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The first verification must persist the trusted tree head: the
        // index cannot take it.
        let (s, body) = call(&app, "/example.com/hello/@v/v1.0.0.mod").await;
        eprintln!("trust state on a full index: {s} {body}");
        assert_eq!(s, 507, "{body}");
        assert!(!body.contains("unavailable"), "{body}");

        // With trust persisted, the artifact's own index write fails: 507.
        store.full.store(false, Ordering::SeqCst);
        let (s, _) = call(&app, "/example.com/hello/@v/v1.0.0.mod").await;
        assert_eq!(s, 200);
        store.full.store(true, Ordering::SeqCst);
        let (s, body) = call(&app, "/example.com/hello/@v/v1.0.0.info").await;
        eprintln!("artifact on a full index: {s} {body}");
        assert_eq!(s, 507, "{body}");

        store.full.store(false, Ordering::SeqCst);
        let (s, body) = call(&app, "/example.com/hello/@v/v1.0.0.info").await;
        assert_eq!(s, 200, "served once space returns: {body}");
    });
}

#[test]
fn internal_tile_error_is_500_not_security() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(data.path()).unwrap());
    let cfg = test_config(data.path(), &up.url, &up.gosumdb());
    // The real I/O (its URL, store, upstream) with only tile reads broken.
    let (app, metrics) = router(cfg, store, |real| {
        Arc::new(BrokenTiles {
            inner: real,
            broken: AtomicBool::new(true),
        })
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (s, body) = call(&app, "/example.com/hello/@v/v1.0.0.mod").await;
        eprintln!("internal tile error: {s} {body}");
        assert_eq!(s, 500, "{body}");
        assert!(!body.contains("SECURITY"), "{body}");
    });
    let text = metrics.render();
    assert!(
        !text.contains("reason=\"bad_proof\""),
        "an internal error was counted as a bad proof:\n{text}"
    );
    assert!(
        text.contains("modgate_verifications_total{outcome=\"error\",reason=\"internal\"} 1"),
        "{text}"
    );
}
