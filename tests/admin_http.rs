//! Remote admin over HTTP (`[admin] bearer_sha256`, `modgate --server URL
//! --token-file F ...`): an admin token runs the command, a client token is
//! refused with 403, no token 401. And the dashboard at `/`, behind `[auth]`:
//! trust state, store, recent refusals, and who fetched a module.

mod common;

use std::process::Command;

use common::modgate::{Modgate, http_get_from, test_config};
use common::refupstream::{RefUpstream, http_request};
use sha2::{Digest, Sha256};

const ADMIN: &str = "admin-token-0123456789";
const CLIENT: &str = "client-token-0123456789";

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn start(up: &RefUpstream, data: &std::path::Path) -> Modgate {
    let mut cfg = test_config(data, &up.url, &up.gosumdb());
    cfg.auth.bearer_sha256 = vec![sha(CLIENT)];
    cfg.admin.bearer_sha256 = vec![sha(ADMIN)];
    Modgate::start(cfg)
}

fn remote(url: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), format!("{token}\n")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["--server", url, "--token-file"])
        .arg(f.path())
        .args(args)
        // A data dir that does not exist: a remote command must not need one.
        .args(["--data-dir", "/nonexistent/modgate"])
        .env("MODGATE_LOG", "warn")
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn remote_admin_needs_an_admin_token() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mg = start(&up, dir.path());
    let bearer = format!("Bearer {CLIENT}");
    let auth = [("Authorization", bearer.as_str())];
    let lo = "127.0.0.2".parse().unwrap();
    let (s, _) = http_get_from(
        &format!("{}/example.com/hello/@v/v1.0.0.zip", mg.url),
        lo,
        &auth,
    );
    assert_eq!(s, 200);

    let (ok, out, err) = remote(&mg.url, ADMIN, &["cache", "ls"]);
    assert!(ok, "{err}");
    assert!(out.contains("example.com/hello"), "{out}");
    let (ok, out, err) = remote(
        &mg.url,
        ADMIN,
        &["audit", "who", "example.com/hello", "--json"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"client\":\"127.0.0.2\""), "{out}");
    assert!(out.contains("\"user\":\"bearer[0]\""), "{out}");
    let (ok, out, err) = remote(&mg.url, ADMIN, &["trust", "show"]);
    assert!(ok && out.contains("trusted tree size:"), "{err}{out}");

    // A client token is policy-refused (403), a wrong one unauthenticated (401).
    let (ok, _, err) = remote(&mg.url, CLIENT, &["cache", "ls"]);
    assert!(!ok);
    assert!(
        err.contains("403") && err.contains("admin tokens only"),
        "{err}"
    );
    let (ok, _, err) = remote(&mg.url, "nope", &["cache", "ls"]);
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    // Admin tokens are not client credentials.
    let admin_bearer = format!("Bearer {ADMIN}");
    let r = http_request(
        "GET",
        &format!("{}/example.com/hello/@v/v1.0.0.info", mg.url),
        &[("Authorization", admin_bearer.as_str())],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 401);
    // A bad body is a 400 that says what a request looks like.
    let r = http_request(
        "POST",
        &format!("{}/admin/", mg.url),
        &[("Authorization", admin_bearer.as_str())],
        Some(b"{\"cmd\":"),
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert!(r.text().contains("bad admin request"), "{}", r.text());
}

#[test]
fn dashboard_shows_trust_store_refusals_and_fetchers() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mg = start(&up, dir.path());
    let bearer = format!("Bearer {CLIENT}");
    let auth = [("Authorization", bearer.as_str())];
    let get = |path: &str, from: &str| {
        let (s, b) = http_get_from(&format!("{}{path}", mg.url), from.parse().unwrap(), &auth);
        (s, String::from_utf8_lossy(&b).into_owned())
    };
    assert_eq!(get("/example.com/hello/@v/v1.0.0.zip", "127.0.0.2").0, 200);
    assert_eq!(get("/example.com/hello/@v/v1.0.0.zip", "127.0.0.3").0, 200);
    up.tamper("example.com/hello", "v1.1.0", "zip");
    assert_eq!(get("/example.com/hello/@v/v1.1.0.zip", "127.0.0.4").0, 403);

    // Behind [auth].
    let r = http_request("GET", &format!("{}/", mg.url), &[], None).unwrap();
    assert_eq!(r.status, 401);

    let (s, page) = get("/", "127.0.0.1");
    assert_eq!(s, 200);
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.contains("trusted tree size"), "{page}");
    assert!(page.contains("<th>objects</th>"), "{page}");
    assert!(page.contains("class=\"ok\">none"), "fork state: {page}");
    // The refusal, with who and why.
    assert!(page.contains("127.0.0.4"), "{page}");
    assert!(page.contains("example.com/hello@v1.1.0"), "{page}");
    assert!(!page.contains("<script"), "{page}");

    // The search names both fetchers of v1.0.0 and only them.
    let (s, page) = get("/?who=example.com/hello%40v1.0.0", "127.0.0.1");
    assert_eq!(s, 200);
    let page = page.split("Who fetched").nth(1).expect("search section");
    assert!(page.contains("2 records"), "{page}");
    assert!(page.contains("<td>127.0.0.2</td>"), "{page}");
    assert!(page.contains("<td>127.0.0.3</td>"), "{page}");
    assert!(!page.contains("<td>127.0.0.4</td>"), "{page}");
    assert!(page.contains("bearer[0]"), "{page}");
    // Whatever is searched for is escaped.
    let (s, page) = get("/?who=%3Cscript%3Ealert(1)%3C/script%3E", "127.0.0.1");
    assert_eq!(s, 200);
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
}
