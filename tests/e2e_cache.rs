//! Caching behaviour against the Go reference upstream: request coalescing,
//! list/@latest TTL and staleness, offline mode, GOPROXY-list fallback, and
//! golang.org/toolchain modules.

mod common;

use common::goclient::GoClient;
use common::modgate::{Modgate, http_get, test_config};
use common::refupstream::RefUpstream;

const REALDATA_PROXY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/realdata/sum.golang.org-2020/proxy"
);

#[test]
fn fifty_concurrent_misses_fetch_once() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::start(test_config(data.path(), &up.url, &up.gosumdb()));
    let url = format!("{}/example.com/nested/@v/v1.0.0.zip", mg.url);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || http_get(&url))
        })
        .collect();
    let bodies: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (status, ct, body) in &bodies {
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
        assert_eq!(ct, "application/zip");
        assert_eq!(body, &bodies[0].2);
    }
    assert_eq!(up.hits("/example.com/nested/@v/v1.0.0.zip"), 1);
    assert_eq!(up.hits("/example.com/nested/@v/v1.0.0.mod"), 1);
    assert_eq!(
        up.hits("/sumdb/refsum.test/lookup/example.com/nested@v1.0.0"),
        1
    );
}

#[test]
fn list_and_latest_are_served_stale_when_upstream_fails() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    cfg.cache.list_ttl_secs = 0; // every request asks upstream first
    let mg = Modgate::start(cfg);

    let (s, _, list) = mg.get("/example.com/hello/@v/list");
    assert_eq!(s, 200);
    let (s, _, latest) = mg.get("/example.com/hello/@latest");
    assert_eq!(s, 200);
    assert_eq!(up.hits("/example.com/hello/@v/list"), 1);

    up.down("proxy", "503");
    let (s, _, stale) = mg.get("/example.com/hello/@v/list");
    assert_eq!(s, 200);
    assert_eq!(stale, list);
    let (s, _, stale) = mg.get("/example.com/hello/@latest");
    assert_eq!(s, 200);
    assert_eq!(stale, latest);
    // Never seen before, upstream down: an upstream error, not a made-up answer.
    let (s, _, _) = mg.get("/example.com/multi/v2/@v/list");
    assert_eq!(s, 502);
}

#[test]
fn list_is_cached_for_its_ttl_and_merged_with_cached_versions() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::start(test_config(data.path(), &up.url, &up.gosumdb()));
    // The pseudo-version is not in upstream's list, but once cached it is listed.
    let (s, _, _) = mg.get("/example.com/pseudo/@v/v0.0.0-20200101000000-abcdefabcdef.mod");
    assert_eq!(s, 200);
    let (s, _, list) = mg.get("/example.com/pseudo/@v/list");
    assert_eq!(s, 200);
    assert_eq!(
        String::from_utf8_lossy(&list),
        "v0.0.0-20200101000000-abcdefabcdef\n"
    );
    let (_, _, _) = mg.get("/example.com/hello/@v/list");
    let (_, _, _) = mg.get("/example.com/hello/@v/list");
    assert_eq!(
        up.hits("/example.com/hello/@v/list"),
        1,
        "second list from cache"
    );
}

#[test]
fn offline_serves_only_the_cache() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut mg = Modgate::start(test_config(data.path(), &up.url, &up.gosumdb()));
    let go = GoClient::new();
    let r = go.mod_download_json(&mg.url, "off", &["example.com/hello@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
    mg.stop();

    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    cfg.offline = true;
    let mg = Modgate::start(cfg);
    up.reset_counters();
    for p in [
        "/example.com/hello/@v/v1.0.0.info",
        "/example.com/hello/@v/v1.0.0.mod",
        "/example.com/hello/@v/v1.0.0.zip",
    ] {
        assert_eq!(mg.get(p).0, 200, "{p}");
    }
    let (s, _, list) = mg.get("/example.com/hello/@v/list");
    assert_eq!(s, 200);
    assert_eq!(String::from_utf8_lossy(&list), "v1.0.0\n");
    let (s, _, latest) = mg.get("/example.com/hello/@latest");
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&latest).contains("\"v1.0.0\""));
    let (s, _, body) = mg.get("/example.com/hello/@v/v1.1.0.zip");
    assert_eq!(s, 404);
    assert!(String::from_utf8_lossy(&body).contains("offline"));
    assert_eq!(mg.get("/example.com/multi/v2/@v/list").0, 404);
    assert!(
        up.counters().values().all(|&n| n == 0),
        "offline modgate contacted upstream: {:?}",
        up.counters()
    );
}

#[test]
fn comma_falls_through_on_not_found_only() {
    // A knows none of the reference modules (it serves the 2020 fixtures).
    let a = RefUpstream::start(&["-static-proxy", REALDATA_PROXY]);
    let b = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let list = format!("{},{}", a.url, b.url);
    let mg = Modgate::start(test_config(data.path(), &list, &b.gosumdb()));
    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.zip").0, 200);
    assert!(
        a.hits("/example.com/hello/@v/v1.0.0.mod") >= 1,
        "A was asked first"
    );
    assert_eq!(b.hits("/example.com/hello/@v/v1.0.0.zip"), 1);

    // A failing with 503 does not fall through a comma.
    a.down("proxy", "503");
    let (s, _, body) = mg.get("/example.com/hello/@v/v1.1.0.mod");
    assert_eq!(s, 502, "{}", String::from_utf8_lossy(&body));
    assert_eq!(b.hits("/example.com/hello/@v/v1.1.0.mod"), 0);
}

#[test]
fn pipe_falls_through_on_any_error() {
    let a = RefUpstream::start(&[]);
    let b = RefUpstream::start(&[]);
    a.down("proxy", "close");
    let data = tempfile::tempdir().unwrap();
    let list = format!("{}|{}", a.url, b.url);
    let mg = Modgate::start(test_config(data.path(), &list, &b.gosumdb()));
    let go = GoClient::new();
    let r = go.mod_download_json(&mg.url, &b.gosumdb(), &["example.com/app@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
    assert_eq!(b.hits("/example.com/app/@v/v1.0.0.zip"), 1);
}

#[test]
fn toolchain_modules_are_verified_like_any_other() {
    let up = RefUpstream::start(&[]);
    up.add("golang.org/toolchain", "v0.0.1-go1.21.0.linux-amd64");
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::start(test_config(data.path(), &up.url, &up.gosumdb()));
    let go = GoClient::new();
    let r = go.mod_download_json(
        &mg.url,
        &up.gosumdb(),
        &["golang.org/toolchain@v0.0.1-go1.21.0.linux-amd64"],
    );
    assert_eq!(r[0].error, "", "{r:?}");
    up.tamper("golang.org/toolchain", "v0.0.1-go1.21.0.linux-amd64", "zip");
    let data2 = tempfile::tempdir().unwrap();
    let mg2 = Modgate::start(test_config(data2.path(), &up.url, &up.gosumdb()));
    let (s, _, body) = mg2.get("/golang.org/toolchain/@v/v0.0.1-go1.21.0.linux-amd64.zip");
    assert_eq!(s, 403, "{}", String::from_utf8_lossy(&body));
}
