//! A cached hit through the whole router, in process: `GET .../@v/v1.0.0.mod`
//! from a 1,000-version store, with the access log's formatting and the audit
//! trail on, as `modgate serve` runs them (log lines go to a sink). No sockets:
//! this is the user-space share of a hit (middleware, routing, store lookup,
//! response), which wrk on a shared 2-core VM cannot resolve below ±10%.
//! `bench/run.sh`'s `hits` section measures the whole thing against nginx.

use std::hint::black_box;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use modgate::protocol::Kind;
use modgate::store::{Entry, Store, Verification, embedded::EmbeddedStore};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const VERSIONS: usize = 1000;

fn module(i: usize) -> String {
    format!("example.com/bench/m{i:04}")
}

/// Commits `VERSIONS` `.mod` files through the store the server opens.
async fn populate(dir: &std::path::Path) {
    let store = EmbeddedStore::open(dir).expect("open store");
    for i in 0..VERSIONS {
        let path = module(i);
        let data = format!("module {path}\n\ngo 1.16\n");
        let entry = Entry {
            module: path.clone(),
            version: "v1.0.0".into(),
            kind: Kind::Mod.ext().into(),
            digest: hex::encode(Sha256::digest(data.as_bytes())),
            size: data.len() as u64,
            verification: Verification {
                h1: "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
                sumdb: "bench.test".into(),
                record_id: i as i64,
                tree_size: VERSIONS as i64,
                tree_hash: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
                verified_at: 1_700_000_000,
                authority: Default::default(),
            },
        };
        store
            .commit_bytes(data.as_bytes(), entry)
            .await
            .expect("commit");
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(populate(dir.path()));
    // The access log formats its line as in `serve`; it is written nowhere.
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::INFO)
            .event_format(modgate::logfmt::Line)
            .finish(),
    );
    let cfg = modgate::config::Config {
        data_dir: dir.path().to_path_buf(),
        upstream: "http://127.0.0.1:9".into(),
        offline: true,
        ..Default::default()
    };
    let state = modgate::server::build(cfg).expect("build");
    let audit = state.audit.clone();
    let app = rt.block_on(async {
        if let Some(a) = &audit {
            a.spawn();
        }
        modgate::http::app(state)
    });
    let paths: Vec<String> = (0..VERSIONS)
        .map(|i| format!("/{}/@v/v1.0.0.mod", module(i)))
        .collect();
    let peer = modgate::http::ClientAddr(([127, 0, 0, 1], 40000).into());
    let mut i = 0;
    c.bench_function("hit/mod_1k_store", |b| {
        b.iter(|| {
            i = (i + 1) % VERSIONS;
            let mut req = Request::get(paths[i].as_str())
                .body(Body::empty())
                .expect("request");
            req.extensions_mut().insert(peer);
            let resp = rt.block_on(app.clone().oneshot(req)).expect("infallible");
            assert_eq!(resp.status(), 200);
            black_box(resp);
        })
    });
    if let Some(a) = audit {
        rt.block_on(a.stop());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
