//! End to end: the real `go` command → modgate → the Go reference upstream
//! (module proxy + checksum database built from golang.org/x/mod).

mod common;

use std::path::Path;

use common::goclient::{GoClient, output_text};
use common::modgate::Modgate;
use common::refupstream::{BUILTIN_MODULES, RefUpstream};
use modgate::protocol::{Kind, ModVersion};
use modgate::store::{EmbeddedStore, Store};

/// Opens the store of a stopped server to look at what it holds.
fn stored(data: &Path, module: &str, version: &str, kind: Kind) -> bool {
    let store = EmbeddedStore::open(data).expect("store opens");
    let mv = ModVersion::new(module, version).expect("valid");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(store.entry(&mv, kind))
        .expect("index")
        .is_some()
}

#[test]
fn go_mod_download_through_modgate_matches_reference_sums() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::against(&up, data.path());
    downloads_match_reference_sums(&up, &mg);
    // Small zips are checked in memory (`limits.zip_in_memory_bytes`).
    let zips = BUILTIN_MODULES.len() as u64;
    assert_eq!(zip_landings(&mg), (zips, 0));
}

/// `modgate_zip_landings_total` for `memory` and `spool`.
fn zip_landings(mg: &Modgate) -> (u64, u64) {
    let (_, _, body) = mg.get("/metrics");
    let text = String::from_utf8_lossy(&body).into_owned();
    let count = |w: &str| {
        let key = format!("modgate_zip_landings_total{{where=\"{w}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .map_or(0, |n| n.trim().parse().expect("a count"))
    };
    (count("memory"), count("spool"))
}

/// The same with every zip spooled to disk (`zip_in_memory_bytes = 0`)
/// instead of checked in memory, and with one byte of memory (every zip
/// moves to the spool part way through its download).
#[test]
fn zips_spooled_to_disk_match_reference_sums() {
    for in_memory in [0, 1] {
        let up = RefUpstream::start(&[]);
        let data = tempfile::tempdir().unwrap();
        let mut cfg = common::modgate::test_config(data.path(), &up.url, &up.gosumdb());
        cfg.limits.zip_in_memory_bytes = in_memory;
        let mut mg = Modgate::start(cfg);
        downloads_match_reference_sums(&up, &mg);
        assert_eq!(zip_landings(&mg), (0, BUILTIN_MODULES.len() as u64));
        mg.stop();
        // Every spool file was committed or removed.
        let tmp: Vec<_> = std::fs::read_dir(data.path().join("tmp"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(tmp.is_empty(), "{tmp:?}");
    }
}

fn downloads_match_reference_sums(up: &RefUpstream, mg: &Modgate) {
    let go = GoClient::new();
    // The client verifies too, straight against the reference checksum database.
    let results = go.mod_download_json(&mg.url, &up.gosumdb(), BUILTIN_MODULES);
    let reference = up.modules();
    assert_eq!(results.len(), BUILTIN_MODULES.len());
    for r in &results {
        assert_eq!(r.error, "", "{r:?}");
        let m = reference
            .iter()
            .find(|m| m.path == r.path && m.version == r.version)
            .unwrap_or_else(|| panic!("{} {} not in reference", r.path, r.version));
        assert_eq!(r.sum, m.sum, "{}", r.path);
        assert_eq!(r.go_mod_sum, m.gomodsum, "{}", r.path);
    }
    // Each zip was fetched from upstream exactly once.
    assert_eq!(up.hits_suffix(".zip"), BUILTIN_MODULES.len() as u64);

    // A second client is served from modgate's cache: upstream sees no new zip fetch.
    let go2 = GoClient::new();
    let again = go2.mod_download_json(&mg.url, "off", BUILTIN_MODULES);
    assert!(again.iter().all(|r| r.error.is_empty()), "{again:?}");
    assert_eq!(up.hits_suffix(".zip"), BUILTIN_MODULES.len() as u64);
}

#[test]
fn go_build_of_a_module_graph_through_modgate() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::against(&up, data.path());
    let go = GoClient::new();
    let gosumdb = up.gosumdb();
    let env = [("GOPROXY", mg.url.as_str()), ("GOSUMDB", gosumdb.as_str())];
    let (_dir, out) = go.build_main(
        "example.com/main",
        &[
            ("example.com/app", "v1.0.0"),
            ("example.com/nested", "v1.0.0"),
        ],
        &["example.com/app", "example.com/nested"],
        &env,
    );
    assert!(out.status.success(), "{}", output_text(&out));
}

fn refuses_tampered(what: &str, client_env: &[(&str, &str)]) {
    let up = RefUpstream::start(&[]);
    let gosumdb = up.gosumdb();
    let client_env: Vec<(&str, &str)> = client_env
        .iter()
        .map(|&(k, v)| {
            if v == "REF" {
                (k, gosumdb.as_str())
            } else {
                (k, v)
            }
        })
        .collect();
    let data = tempfile::tempdir().unwrap();
    let mut mg = Modgate::against(&up, data.path());
    up.tamper("example.com/hello", "v1.1.0", what);

    // The module proxy protocol: 403 with a SECURITY line, never 404/410.
    let path = if what == "zip" {
        "/example.com/hello/@v/v1.1.0.zip"
    } else {
        "/example.com/hello/@v/v1.1.0.mod"
    };
    let (status, ct, body) = mg.get(path);
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 403, "{body}");
    assert_eq!(ct, "text/plain; charset=utf-8");
    assert!(
        body.starts_with("SECURITY: example.com/hello@v1.1.0: "),
        "{body}"
    );
    assert!(body.contains("checksum mismatch"), "{body}");

    // The go command, even one that verifies nothing itself, is refused and
    // shows the user why.
    let go = GoClient::new();
    let mut env = vec![("GOPROXY", mg.url.as_str())];
    env.extend_from_slice(&client_env);
    let out = go.run(
        &["mod", "download", "-json", "example.com/hello@v1.1.0"],
        &env,
    );
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("403"), "{text}");
    assert!(
        text.contains("SECURITY: example.com/hello@v1.1.0"),
        "{text}"
    );

    // Nothing unverified reached the store; honest neighbours still work.
    let ok = go.mod_download_json_env(&["example.com/hello@v1.0.0"], &env);
    assert_eq!(ok[0].error, "", "{ok:?}");
    mg.stop();
    let kind = if what == "zip" { Kind::Zip } else { Kind::Mod };
    assert!(!stored(data.path(), "example.com/hello", "v1.1.0", kind));
    assert!(stored(
        data.path(),
        "example.com/hello",
        "v1.0.0",
        Kind::Zip
    ));
}

#[test]
fn tampered_zip_is_refused_with_gosumdb_off() {
    refuses_tampered("zip", &[("GOSUMDB", "off")]);
}

#[test]
fn tampered_zip_is_refused_with_gonosumdb() {
    refuses_tampered("zip", &[("GOSUMDB", "REF"), ("GONOSUMDB", "example.com")]);
}

#[test]
fn tampered_go_mod_is_refused_with_gosumdb_off() {
    refuses_tampered("mod", &[("GOSUMDB", "off")]);
}

#[test]
fn tampered_go_mod_is_refused_with_goprivate() {
    refuses_tampered(
        "mod",
        // GONOPROXY=none: private, but still fetched through the proxy (and
        // never directly from version control: tests reach only 127.0.0.1).
        &[
            ("GOSUMDB", "REF"),
            ("GOPRIVATE", "example.com/*"),
            ("GONOPROXY", "none"),
        ],
    );
}

#[test]
fn cache_survives_restart_with_upstream_down() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut mg = Modgate::against(&up, data.path());
    let go = GoClient::new();
    let first = go.mod_download_json(&mg.url, &up.gosumdb(), BUILTIN_MODULES);
    assert!(first.iter().all(|r| r.error.is_empty()), "{first:?}");
    mg.stop();

    up.down("all", "503");
    let mg = Modgate::against(&up, data.path());
    let go2 = GoClient::new();
    let again = go2.mod_download_json(&mg.url, "off", BUILTIN_MODULES);
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(b.error, "", "{b:?}");
        assert_eq!(a.sum, b.sum);
        assert_eq!(a.go_mod_sum, b.go_mod_sum);
    }

    // Something never cached cannot be verified now: 502/504, not 404.
    let (status, _, body) = mg.get("/example.com/hello/@v/v1.9.9.mod");
    assert!(
        status == 502 || status == 504,
        "{status} {}",
        String::from_utf8_lossy(&body)
    );
}

#[test]
fn protocol_details() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::against(&up, data.path());

    let (s, ct, body) = mg.get("/example.com/hello/@v/list");
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/plain"));
    assert_eq!(String::from_utf8_lossy(&body), "v1.0.0\nv1.1.0\n");

    let (s, ct, body) = mg.get("/example.com/hello/@latest");
    assert_eq!(s, 200);
    assert_eq!(ct, "application/json");
    assert!(String::from_utf8_lossy(&body).contains("\"v1.1.0\""));

    let (s, ct, body) = mg.get("/example.com/!upper/!case/@v/v1.0.0.info");
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/json");

    // `!` percent-encoded, as the go command sends it.
    let (s, _, _) = mg.get("/example.com/%21upper/%21case/@v/v1.0.0.mod");
    assert_eq!(s, 200);

    // Unknown upstream: 404, as upstream said.
    let (s, _, _) = mg.get("/example.com/nope/@v/v1.0.0.mod");
    assert_eq!(s, 404);
    let (s, _, _) = mg.get("/example.com/nope/@v/list");
    assert_eq!(s, 404);
    // A version neither the upstream nor the checksum database has: the
    // lookup that runs beside the fetch is dropped, not answered, logged or
    // counted as a refusal (a probe for a missing version is no security event).
    for p in [
        "/example.com/hello/@v/v1.99.0.info",
        "/example.com/hello/@v/v1.99.0.mod",
    ] {
        let (s, _, body) = mg.get(p);
        assert_eq!(s, 404, "{p}: {}", String::from_utf8_lossy(&body));
        assert!(!String::from_utf8_lossy(&body).contains("SECURITY"), "{p}");
    }
    let (_, _, metrics) = mg.get("/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        !metrics
            .lines()
            .any(|l| l.contains("not_in_sumdb") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // Malformed: 400 (sent raw: an HTTP library would normalise `%2e%2e` away).
    for p in [
        "/example.com/Upper/@v/v1.0.0.mod",
        "/example.com/x/@v/v1.0.0%zz.mod",
        "/example.com/%2e%2e/@v/v1.0.0.mod",
        "/example.com/x/@v/master.zip",
    ] {
        let r = common::refupstream::http_request("GET", &format!("{}{p}", mg.url), &[], None)
            .expect("request");
        assert_eq!(r.status, 400, "{p}: {}", r.text());
    }
}

/// The 26 real modules of 2020, with sum.golang.org's real key and data.
#[test]
fn real_2020_modules_verify_with_the_real_key() {
    let base = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/realdata/sum.golang.org-2020"
    );
    let up = RefUpstream::start(&[
        "-static-proxy",
        &format!("{base}/proxy"),
        "-static-sumdb",
        &format!("{base}/sumdb"),
        "-name",
        "sum.golang.org",
        "-static-vkey",
        modgate::config::SUM_GOLANG_ORG_KEY,
    ]);
    let data = tempfile::tempdir().unwrap();
    let mg = Modgate::against(&up, data.path());

    // Every module version that has a zip in the fixture.
    let mut modules = Vec::new();
    for entry in walk(&Path::new(base).join("proxy")) {
        let Some(name) = entry.to_str().and_then(|s| s.strip_suffix(".zip")) else {
            continue;
        };
        let rel = name.strip_prefix(&format!("{base}/proxy/")).unwrap();
        let (esc_path, esc_ver) = rel.split_once("/@v/").unwrap();
        let path = modgate::module::unescape_path(esc_path).unwrap();
        let ver = modgate::module::unescape_version(esc_ver).unwrap();
        modules.push(format!("{path}@{ver}"));
    }
    assert_eq!(modules.len(), 26);
    let refs: Vec<&str> = modules.iter().map(String::as_str).collect();
    let go = GoClient::new();
    let results = go.mod_download_json(&mg.url, &up.gosumdb(), &refs);
    for r in &results {
        assert_eq!(r.error, "", "{r:?}");
        assert!(r.sum.starts_with("h1:"));
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
