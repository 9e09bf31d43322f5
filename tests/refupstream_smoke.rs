//! Smoke tests of the reference upstream itself, driven by the real `go`
//! command pointed directly at it (no modgate involved): it serves a valid
//! proxy + checksum database, and each misbehaviour switch makes `go`
//! itself fail the way it should.

mod common;

use std::time::Duration;

use common::goclient::{GoClient, output_text};
use common::refupstream::{RefUpstream, http_request_timeout};

fn direct_env(up: &RefUpstream) -> (String, String) {
    (up.url.clone(), up.gosumdb())
}

fn spec(m: &common::refupstream::ModuleInfo) -> String {
    format!("{}@{}", m.path, m.version)
}

#[test]
fn builtin_modules_download_and_match_sumdb() {
    let up = RefUpstream::start(&[]);
    let mods = up.modules();
    for want in [
        "example.com/hello@v1.0.0",
        "example.com/hello@v1.1.0",
        "example.com/Upper/Case@v1.0.0",
        "example.com/multi/v2@v2.0.0",
        "example.com/incompat@v2.0.1+incompatible",
        "example.com/pseudo@v0.0.0-20200101000000-abcdefabcdef",
        "example.com/nested@v1.0.0",
        "example.com/app@v1.0.0",
    ] {
        assert!(
            mods.iter().any(|m| spec(m) == want),
            "{want} missing from {mods:?}"
        );
    }
    let specs: Vec<String> = mods.iter().map(spec).collect();
    let args: Vec<&str> = specs.iter().map(String::as_str).collect();
    let go = GoClient::new();
    let (proxy, sumdb) = direct_env(&up);
    let results = go.mod_download_json(&proxy, &sumdb, &args);
    assert_eq!(results.len(), mods.len(), "{results:?}");
    for m in &mods {
        let r = results
            .iter()
            .find(|r| r.path == m.path && r.version == m.version)
            .unwrap_or_else(|| panic!("no result for {}", spec(m)));
        assert_eq!(r.error, "", "{}", spec(m));
        assert_eq!(r.sum, m.sum, "{}", spec(m));
        assert_eq!(r.go_mod_sum, m.gomodsum, "{}", spec(m));
        assert!(
            std::path::Path::new(&r.dir).join("LICENSE").exists() || m.path != "example.com/nested"
        );
    }
    // The checksum database was really consulted.
    assert!(
        up.hits(&format!(
            "/sumdb/{}/lookup/example.com/!upper/!case@v1.0.0",
            up.sumdb_name
        )) == 1
    );
}

#[test]
fn proxy_protocol_basics() {
    let up = RefUpstream::start(&[]);
    let list = up.get("/example.com/hello/@v/list");
    assert_eq!(list.status, 200);
    assert_eq!(list.text(), "v1.0.0\nv1.1.0\n");
    let latest = up.get("/example.com/hello/@latest");
    assert!(latest.text().contains("\"v1.1.0\""), "{}", latest.text());
    assert_eq!(
        up.get("/example.com/!upper/!case/@v/v1.0.0.mod").status,
        200
    );
    assert_eq!(up.get("/example.com/Upper/Case/@v/v1.0.0.mod").status, 404);
    assert_eq!(up.get("/example.com/nope/@v/list").status, 404);
    assert_eq!(up.get("/example.com/hello/@v/v9.9.9.info").status, 404);
    // Pseudo-versions are not listed but are served, and are @latest when alone.
    assert_eq!(up.get("/example.com/pseudo/@v/list").text(), "");
    assert!(
        up.get("/example.com/pseudo/@latest")
            .text()
            .contains("abcdefabcdef")
    );
    let z = up.get("/example.com/incompat/@v/v2.0.1+incompatible.zip");
    assert_eq!(z.status, 200);
    assert_eq!(&z.body[..2], b"PK");
    let supported = up.get(&format!("/sumdb/{}/supported", up.sumdb_name));
    assert_eq!(supported.status, 200);
}

#[test]
fn tampered_zip_and_mod_are_security_errors_for_go() {
    let up = RefUpstream::start(&[]);
    let (proxy, sumdb) = direct_env(&up);
    up.tamper("example.com/hello", "v1.0.0", "zip");
    up.tamper("example.com/incompat", "v2.0.1+incompatible", "mod");
    let go = GoClient::new();
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/hello@v1.0.0"]);
    assert_eq!(r.len(), 1);
    assert!(r[0].error.contains("SECURITY ERROR"), "{r:?}");
    assert!(r[0].error.contains("checksum mismatch"), "{r:?}");

    let r = go.mod_download_json(
        &proxy,
        &sumdb,
        &["example.com/incompat@v2.0.1+incompatible"],
    );
    assert!(r[0].error.contains("SECURITY ERROR"), "{r:?}");
    assert!(r[0].error.contains("go.mod"), "{r:?}");

    // An untouched module still verifies; after reset the tampered one too.
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/hello@v1.1.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
    up.reset();
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/hello@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
}

#[test]
fn tampered_zip_is_still_a_valid_module_zip() {
    let up = RefUpstream::start(&[]);
    let honest = up.get("/example.com/nested/@v/v1.0.0.zip").body;
    up.tamper("example.com/nested", "v1.0.0", "zip");
    let bad = up.get("/example.com/nested/@v/v1.0.0.zip").body;
    assert_ne!(honest, bad);
    assert_eq!(&bad[..2], b"PK");
    // With the checksum database off, go accepts the tampered zip.
    let go = GoClient::new();
    let r = go.mod_download_json(&up.url, "off", &["example.com/nested@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
    assert!(
        std::path::Path::new(&r[0].dir)
            .join("tampered.txt")
            .exists()
    );
    let m = up
        .modules()
        .into_iter()
        .find(|m| m.path == "example.com/nested")
        .unwrap();
    assert_ne!(r[0].sum, m.sum);
}

#[test]
fn counters_count_each_fetch() {
    let up = RefUpstream::start(&[]);
    let (proxy, sumdb) = direct_env(&up);
    let go = GoClient::new();
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/app@v1.0.0"]);
    assert_eq!(r[0].error, "");
    assert_eq!(
        up.hits("/example.com/app/@v/v1.0.0.zip"),
        1,
        "{}",
        up.counters_raw()
    );
    assert_eq!(up.hits("/example.com/app/@v/v1.0.0.mod"), 1);
    assert_eq!(up.hits_suffix(".zip"), 1);
    // Second download is served from go's own module cache.
    go.mod_download_json(&proxy, &sumdb, &["example.com/app@v1.0.0"]);
    assert_eq!(up.hits("/example.com/app/@v/v1.0.0.zip"), 1);
    up.reset_counters();
    assert!(up.counters().is_empty(), "{}", up.counters_raw());
}

#[test]
fn down_modes_fail_go_and_up_restores() {
    let up = RefUpstream::start(&[]);
    let (proxy, sumdb) = direct_env(&up);

    up.down("proxy", "503");
    let go = GoClient::new();
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/hello@v1.0.0"]);
    assert!(r[0].error.contains("503"), "{r:?}");

    up.down("proxy", "close");
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/hello@v1.0.0"]);
    assert!(r[0].error.contains("EOF"), "{r:?}");

    up.up();
    up.down("sumdb", "503");
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/hello@v1.0.0"]);
    assert!(r[0].error.contains("verifying"), "{r:?}");
    assert_eq!(r[0].sum, "");

    up.down("all", "hang");
    let t = std::time::Instant::now();
    let res = http_request_timeout(
        "GET",
        &format!("{}/example.com/hello/@v/list", up.url),
        &[],
        None,
        Duration::from_millis(500),
    );
    assert!(res.is_err(), "hang answered: {res:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // Control endpoints keep working while down.
    assert!(up.hits("/example.com/hello/@v/list") >= 1);

    up.up();
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/hello@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
}

#[test]
fn fork_is_detected_by_go() {
    let up = RefUpstream::start(&[]);
    let (proxy, sumdb) = direct_env(&up);
    let go = GoClient::new();
    let r = go.mod_download_json(
        &proxy,
        &sumdb,
        &["example.com/hello@v1.0.0", "example.com/nested@v1.0.0"],
    );
    assert!(r.iter().all(|r| r.error.is_empty()), "{r:?}");
    up.fork();
    // Same GOPATH: go remembers the old tree head and must detect the fork.
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/multi/v2@v2.0.0"]);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].error.contains("SECURITY ERROR"), "{r:?}");
    assert!(r[0].error.contains("server misbehavior"), "{r:?}");
    // A fresh client has nothing to compare with and accepts the fork.
    let fresh = GoClient::new();
    let r = fresh.mod_download_json(&proxy, &sumdb, &["example.com/multi/v2@v2.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
}

#[test]
fn runtime_added_version_is_served_and_logged() {
    let up = RefUpstream::start(&[]);
    let (proxy, sumdb) = direct_env(&up);
    let go = GoClient::new();
    let r = go.mod_download_json(&proxy, &sumdb, &["example.com/hello@v1.0.0"]);
    assert_eq!(r[0].error, "");
    up.add("example.com/hello", "v1.2.0");
    up.add("example.com/fresh/v3", "v3.0.0-rc.1");
    assert_eq!(
        up.get("/example.com/hello/@v/list").text(),
        "v1.0.0\nv1.1.0\nv1.2.0\n"
    );
    let r = go.mod_download_json(
        &proxy,
        &sumdb,
        &[
            "example.com/hello@v1.2.0",
            "example.com/fresh/v3@v3.0.0-rc.1",
        ],
    );
    let mods = up.modules();
    for res in &r {
        assert_eq!(res.error, "", "{r:?}");
        let m = mods
            .iter()
            .find(|m| m.path == res.path && m.version == res.version)
            .unwrap();
        assert_eq!(res.sum, m.sum);
    }
}

#[test]
fn go_builds_a_main_module_over_the_app_graph() {
    let up = RefUpstream::start(&[]);
    let (proxy, sumdb) = direct_env(&up);
    let go = GoClient::new();
    let env = [("GOPROXY", proxy.as_str()), ("GOSUMDB", sumdb.as_str())];
    let (dir, out) = go.build_main(
        "mainapp",
        &[
            ("example.com/app", "v1.0.0"),
            ("example.com/nested", "v1.0.0"),
            ("example.com/multi/v2", "v2.0.0"),
            ("example.com/incompat", "v2.0.1+incompatible"),
            ("example.com/pseudo", "v0.0.0-20200101000000-abcdefabcdef"),
        ],
        &[
            "example.com/app",
            "example.com/nested",
            "example.com/nested/a/b",
            "example.com/multi/v2",
            "example.com/incompat",
            "example.com/pseudo",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(dir.join("main").exists());
    let gosum = std::fs::read_to_string(dir.join("go.sum")).unwrap();
    // app pulled hello v1.1.0 and Upper/Case through its go.mod.
    assert!(gosum.contains("example.com/hello v1.1.0 h1:"), "{gosum}");
    assert!(
        gosum.contains("example.com/Upper/Case v1.0.0 h1:"),
        "{gosum}"
    );
}

#[test]
fn generated_graph_builds() {
    let up = RefUpstream::start(&["-gen", "12"]);
    let (proxy, sumdb) = direct_env(&up);
    let go = GoClient::new();
    let env = [("GOPROXY", proxy.as_str()), ("GOSUMDB", sumdb.as_str())];
    let (_dir, out) = go.build_main(
        "maingen",
        &[("example.com/gen/m0011", "v1.0.0")],
        &["example.com/gen/m0011"],
        &env,
    );
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(up.hits_suffix(".zip"), 12, "{}", up.counters_raw());
}

/// The real sum.golang.org key and 2020 data from tests/fixtures/realdata.
const SUM_GOLANG_ORG_VKEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

#[test]
fn static_proxy_and_sumdb_serve_real_fixtures() {
    let base = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/realdata/sum.golang.org-2020"
    );
    let proxy_dir = format!("{base}/proxy");
    let sumdb_dir = format!("{base}/sumdb");
    let up = RefUpstream::start(&[
        "-static-proxy",
        &proxy_dir,
        "-static-sumdb",
        &sumdb_dir,
        "-name",
        "sum.golang.org",
        "-static-vkey",
        SUM_GOLANG_ORG_VKEY,
    ]);
    assert_eq!(up.vkey, SUM_GOLANG_ORG_VKEY);
    let go = GoClient::new();
    let r = go.mod_download_json(
        &up.url,
        &up.gosumdb(),
        &[
            "github.com/BurntSushi/toml@v0.3.1",
            "golang.org/x/xerrors@v0.0.0-20190717185122-a985d3407aa7",
        ],
    );
    assert_eq!(r.len(), 2);
    let mods = up.modules();
    for res in &r {
        assert_eq!(res.error, "", "{r:?}");
        let m = mods
            .iter()
            .find(|m| m.path == res.path && m.version == res.version)
            .unwrap();
        assert_eq!(res.sum, m.sum);
        assert_eq!(res.go_mod_sum, m.gomodsum);
    }
}

#[test]
fn static_proxy_with_generated_sumdb() {
    let proxy_dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/realdata/sum.golang.org-2020/proxy"
    );
    let up = RefUpstream::start(&["-static-proxy", proxy_dir]);
    // The built-in modules are replaced by the directory's.
    assert!(
        !up.modules()
            .iter()
            .any(|m| m.path.starts_with("example.com/"))
    );
    assert_eq!(
        up.get("/github.com/!burnt!sushi/toml/@v/list").text(),
        "v0.3.1\n"
    );
    let go = GoClient::new();
    let r = go.mod_download_json(&up.url, &up.gosumdb(), &["github.com/pkg/errors@v0.9.1"]);
    assert_eq!(r[0].error, "", "{r:?}");
    // Real-world hash of github.com/pkg/errors v0.9.1.
    assert_eq!(r[0].sum, "h1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=");
    up.tamper("github.com/pkg/errors", "v0.9.1", "zip");
    let fresh = GoClient::new();
    let r = fresh.mod_download_json(&up.url, &up.gosumdb(), &["github.com/pkg/errors@v0.9.1"]);
    assert!(r[0].error.contains("SECURITY ERROR"), "{r:?}");
}

/// `-delay` holds every proxy and checksum-database answer (not control
/// requests), `/_control/delay?what=all` changes it, and `go` still works
/// through it. Only lower bounds are checked: a held answer cannot be faster.
#[test]
fn delay_flag_holds_every_proxy_and_sumdb_answer() {
    let up = RefUpstream::start(&["-delay", "300ms"]);
    let held = |path: &str| {
        let t = std::time::Instant::now();
        let r = up.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        t.elapsed()
    };
    for path in [
        "/example.com/hello/@v/list".to_string(),
        "/example.com/hello/@v/v1.0.0.mod".to_string(),
        "/example.com/hello/@latest".to_string(),
        format!("/sumdb/{}/latest", up.sumdb_name),
    ] {
        let d = held(&path);
        assert!(d >= Duration::from_millis(300), "{path} answered in {d:?}");
    }
    // On top of a kind's own delay.
    up.control("delay?what=zip&ms=200");
    let d = held("/example.com/hello/@v/v1.0.0.zip");
    assert!(d >= Duration::from_millis(500), ".zip answered in {d:?}");
    up.control("delay?what=zip&ms=0");
    // Changed at run time; `go` downloads and verifies through it.
    up.control("delay?what=all&ms=50");
    let d = held("/example.com/hello/@v/v1.0.0.info");
    assert!(d >= Duration::from_millis(50), ".info answered in {d:?}");
    let (proxy, sumdb) = direct_env(&up);
    let r = GoClient::new().mod_download_json(&proxy, &sumdb, &["example.com/app@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
    let bad = http_request_timeout(
        "GET",
        &format!("{}/_control/delay?what=everything&ms=5", up.url),
        &[],
        None,
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(bad.status, 400);
}
