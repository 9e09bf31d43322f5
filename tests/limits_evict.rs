//! `[store] max_bytes`: the store stays under its cap by evicting the
//! versions served least recently; an evicted version comes back fetched and
//! verified; a held (blocked) version is never evicted.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::modgate::test_config;
use common::refupstream::RefUpstream;
use modgate::protocol::{Kind, ModVersion};
use modgate::store::{EmbeddedStore, Store};

const M: &str = "example.com/limits/evict";
/// Incompressible bytes in each version's zip.
const ZIP_BYTES: usize = 100 << 10;

async fn get(app: &axum::Router, path: &str) -> (u16, Vec<u8>) {
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

async fn fetch_version(app: &axum::Router, v: &str) {
    for k in ["info", "mod", "zip"] {
        let (s, body) = get(app, &format!("/{M}/@v/{v}.{k}")).await;
        assert_eq!(s, 200, "{v}.{k}: {}", String::from_utf8_lossy(&body));
    }
}

async fn stored(store: &dyn Store, v: &str) -> bool {
    let mv = ModVersion::new(M, v).unwrap();
    store.entry(&mv, Kind::Zip).await.unwrap().is_some()
}

/// Waits until the store is within `cap` (eviction runs in the background).
async fn within(store: &dyn Store, cap: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, bytes) = store.totals().await.unwrap();
        if bytes <= cap {
            return bytes;
        }
        assert!(
            Instant::now() < deadline,
            "store at {bytes} bytes, cap {cap}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn store_stays_under_its_cap_and_keeps_held_versions() {
    let up = RefUpstream::start(&[]);
    let versions = ["v1.0.0", "v1.0.1", "v1.0.2", "v1.0.3"];
    for v in versions {
        up.control(&format!("add?module={M}&version={v}&size={ZIP_BYTES}"));
    }
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    // Room for two versions, not three.
    let cap = (ZIP_BYTES as u64) * 5 / 2;
    cfg.store.max_bytes = cap;
    let store: Arc<EmbeddedStore> = Arc::new(EmbeddedStore::open(data.path()).unwrap());
    let state = {
        let cfg = Arc::new(cfg);
        let spec = cfg.sumdb_spec().unwrap();
        let upstream = modgate::upstream::Upstream::new(&cfg).unwrap();
        let dyn_store: Arc<dyn Store> = store.clone();
        let ops = modgate::trust::SumdbOps {
            name: spec.name.clone(),
            base_url: spec.url.clone(),
            upstream: upstream.clone(),
            store: dyn_store.clone(),
            evidence_dir: cfg.data_dir.join("evidence"),
            max_bytes: cfg.limits.max_meta_bytes,
            offline: false,
        };
        let client = modgate::sumdb::client::Client::new(Arc::new(ops), &spec.vkey).unwrap();
        let pipeline = modgate::pipeline::Pipeline::new(dyn_store, upstream, Arc::new(client), cfg);
        modgate::http::AppState {
            pipeline,
            auth: Default::default(),
            audit: None,
            admin: None,
        }
    };
    // The gate's hook: v1.0.0 is blocked, kept as evidence.
    state
        .pipeline
        .evictor()
        .set_is_held(Arc::new(|m: &str, v: &str| m == M && v == "v1.0.0"));
    let pipeline = state.pipeline.clone();
    let app = modgate::http::app(state);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s: &dyn Store = store.as_ref();
        fetch_version(&app, "v1.0.0").await;
        fetch_version(&app, "v1.0.1").await;
        within(s, cap).await;
        assert!(stored(s, "v1.0.1").await, "two versions fit");
        // v1.0.1 is served again: now more recent than anything else.
        fetch_version(&app, "v1.0.1").await;
        fetch_version(&app, "v1.0.2").await;
        let bytes = within(s, cap).await;
        eprintln!("after 3 versions: {bytes} bytes (cap {cap})");
        assert!(stored(s, "v1.0.0").await, "the held version is kept");
        assert!(
            !stored(s, "v1.0.1").await,
            "the least recently served version that is not held goes"
        );
        fetch_version(&app, "v1.0.3").await;
        within(s, cap).await;
        assert!(stored(s, "v1.0.0").await, "the held version is kept");
        assert!(!stored(s, "v1.0.2").await);
        assert!(stored(s, "v1.0.3").await);

        // Evicted blobs are deleted from disk, not just unindexed.
        let blobs = walkdir(&data.path().join("blobs"));
        let live: usize = {
            let es = s.entries("").await.unwrap();
            es.iter()
                .map(|e| e.digest.clone())
                .collect::<std::collections::HashSet<_>>()
                .len()
        };
        assert_eq!(blobs, live, "one blob file per digest still indexed");

        // An evicted version comes back: fetched and verified again.
        let zip = format!("/{M}/@v/v1.0.1.zip");
        let before = up.hits(&zip);
        let (status, body) = get(&app, &zip).await;
        assert_eq!(status, 200);
        assert!(body == up.get(&zip).body, "the honest zip");
        assert_eq!(up.hits(&zip), before + 2, "fetched from upstream again");
        let mv = ModVersion::new(M, "v1.0.1").unwrap();
        let e = s
            .entry(&mv, Kind::Zip)
            .await
            .unwrap()
            .expect("stored again");
        assert!(e.verification.h1.starts_with("h1:"), "verified: {e:?}");
        within(s, cap).await;
        assert!(stored(s, "v1.0.0").await, "the held version is still kept");
    });
    let m = pipeline.metrics().render();
    assert!(
        m.lines()
            .any(|l| l.starts_with("modgate_limit_hits_total{limit=\"store_max_bytes\"}")),
        "evictions counted:\n{m}"
    );
}

fn walkdir(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += walkdir(&p);
        } else {
            n += 1;
        }
    }
    n
}
