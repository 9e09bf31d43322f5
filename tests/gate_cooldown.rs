//! The release cooldown end to end, with the real `go` client and the reference
//! upstream, whose checksum database records a version on its first lookup: a
//! version the database records only after the mirror began watching is held
//! (403, with when it will be served) whatever its `.info` Time says, an exempt
//! pattern is served, a fresh mirror serves versions recorded before its watch,
//! `list` and `@latest` leave held versions out, and `modgate policy check`
//! prints the cooldown's clock.

mod common;

use std::path::Path;
use std::process::Command;

use common::goclient::GoClient;
use common::modgate::{Modgate, test_config};
use common::refupstream::{RefUpstream, query_escape};

const POLICY: &str = r#"
[cooldown]
min_age = "72h"
exempt = ["corp.example/internal/*"]

[typosquat]
mode = "off"
"#;

/// Records `module@version` in the reference checksum database now (its
/// first lookup adds it to the log, as sum.golang.org does).
fn record(up: &RefUpstream, module: &str, version: &str) -> i64 {
    let body = up
        .get(&format!("/sumdb/refsum.test/lookup/{module}@{version}"))
        .text();
    body.lines().next().unwrap().parse().unwrap()
}

/// Adds a version to the reference upstream, with `.info` Time `time`
/// (RFC 3339) if given (else 2020-01-01: backdated by years).
fn add(up: &RefUpstream, module: &str, version: &str, time: Option<&str>) {
    let mut q = format!(
        "add?module={}&version={}",
        query_escape(module),
        query_escape(version)
    );
    if let Some(t) = time {
        q.push_str(&format!("&time={}", query_escape(t)));
    }
    up.control(&q);
}

fn start(up: &RefUpstream, data: &Path, policy: &Path) -> Modgate {
    let mut cfg = test_config(data, &up.url, &up.gosumdb());
    cfg.policy = Some(policy.to_path_buf());
    Modgate::start(cfg)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[test]
fn new_records_are_held_whatever_their_info_time_and_old_ones_are_served() {
    let up = RefUpstream::start(&[]);
    // Versions the database recorded before the mirror ever watched it.
    record(&up, "example.com/hello", "v1.0.0");
    record(&up, "example.com/hello", "v1.1.0");
    let work = tempfile::tempdir().unwrap();
    let policy = work.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let data = work.path().join("data");
    let mut mg = start(&up, &data, &policy);
    let go = GoClient::new();

    // A fresh mirror serves old versions (its first head is the watch's start).
    let r = go.mod_download_json(&mg.url, &up.gosumdb(), &["example.com/hello@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");

    // A version with an .info Time backdated by years, which the database
    // records only now (after the watch began): held, by the log's clock.
    add(&up, "example.com/backdated", "v1.0.0", None);
    let r = go.mod_download_json(&mg.url, &up.gosumdb(), &["example.com/backdated@v1.0.0"]);
    assert!(r[0].error.contains("403"), "{r:?}");
    assert!(r[0].error.contains("release cooldown"), "{r:?}");
    let (status, ct, body) = mg.get("/example.com/backdated/@v/v1.0.0.info");
    let body = text(&body);
    assert_eq!(status, 403, "{body}");
    assert!(ct.starts_with("text/plain"), "{ct}");
    let first = body.lines().next().unwrap_or("");
    assert!(first.starts_with("SECURITY:"), "{body}");
    for want in [
        "example.com/backdated@v1.0.0",
        "release cooldown",
        "3days",
        "this one from",
    ] {
        assert!(first.contains(want), "{want} missing from {first}");
    }
    // Every artifact is held, cached or not.
    for kind in ["mod", "zip"] {
        let (status, _, body) = mg.get(&format!("/example.com/backdated/@v/v1.0.0.{kind}"));
        assert_eq!(status, 403, "{kind}: {}", text(&body));
    }
    // The verified bytes are kept (served once old enough), not served now:
    // `list` leaves the version out, and `@latest` has nothing to offer.
    let (status, _, body) = mg.get("/example.com/backdated/@v/list");
    assert_eq!((status, text(&body)), (200, String::new()));
    let (status, _, body) = mg.get("/example.com/backdated/@latest");
    let body = text(&body);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("release cooldown"), "{body}");

    // An honest new version (its .info Time now) is held too.
    add(&up, "example.com/hello", "v1.2.0", Some(&now_rfc3339()));
    let (status, _, body) = mg.get("/example.com/hello/@v/v1.2.0.info");
    assert_eq!(status, 403, "{}", text(&body));
    // `go get M@latest` resolves to the newest version that is served.
    let r = go.mod_download_json(&mg.url, &up.gosumdb(), &["example.com/hello@latest"]);
    assert_eq!(r[0].error, "", "{r:?}");
    assert_eq!(r[0].version, "v1.1.0", "{r:?}");
    let (status, _, body) = mg.get("/example.com/hello/@v/list");
    assert_eq!((status, text(&body)), (200, "v1.0.0\nv1.1.0\n".to_string()));

    // An exempt pattern is served however new.
    add(
        &up,
        "corp.example/internal/lib",
        "v1.0.0",
        Some(&now_rfc3339()),
    );
    let r = go.mod_download_json(
        &mg.url,
        &up.gosumdb(),
        &["corp.example/internal/lib@v1.0.0"],
    );
    assert_eq!(r[0].error, "", "{r:?}");
    mg.stop();

    // `policy check` on the data dir shows the clock.
    let o = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args([
            "policy",
            "check",
            "example.com/backdated@v1.0.0",
            "--policy",
        ])
        .arg(&policy)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("MODGATE_POLICY")
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(out.contains("REFUSED"), "{out}");
    assert!(out.contains("cooldown: HELD"), "{out}");
    assert!(out.contains("entered the log by"), "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["policy", "check", "example.com/hello@v1.0.0", "--policy"])
        .arg(&policy)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("MODGATE_POLICY")
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("cooldown: old enough"), "{out}");
    assert!(out.contains("predates the watch"), "{out}");

    // `policy exposure` lists the cached versions the cooldown holds.
    let o = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["policy", "exposure", "--policy"])
        .arg(&policy)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("MODGATE_POLICY")
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.lines().any(
            |l| l.starts_with("example.com/backdated@v1.0.0") && l.contains("release cooldown")
        ),
        "{out}"
    );
    assert!(!out.contains("example.com/hello@v1.0.0"), "{out}");
    assert!(!out.contains("corp.example/internal/lib"), "{out}");

    // Another mirror started now never watched the backdated version enter
    // the log: to it, the version is older than its watch, and served.
    let fresh = start(&up, &work.path().join("fresh"), &policy);
    let go = GoClient::new();
    let r = go.mod_download_json(&fresh.url, &up.gosumdb(), &["example.com/backdated@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
}

#[test]
fn without_a_cooldown_new_versions_are_served() {
    let up = RefUpstream::start(&[]);
    record(&up, "example.com/hello", "v1.0.0");
    let work = tempfile::tempdir().unwrap();
    let policy = work.path().join("policy.toml");
    std::fs::write(&policy, "[typosquat]\nmode = \"off\"\n").unwrap();
    let mg = start(&up, &work.path().join("data"), &policy);
    let go = GoClient::new();
    let r = go.mod_download_json(&mg.url, &up.gosumdb(), &["example.com/hello@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
    add(&up, "example.com/fresh", "v1.0.0", Some(&now_rfc3339()));
    let r = go.mod_download_json(&mg.url, &up.gosumdb(), &["example.com/fresh@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
}

#[test]
fn a_record_older_than_the_watch_is_held_by_its_own_recent_info_time() {
    let up = RefUpstream::start(&[]);
    // Published an hour ago and recorded before the mirror watched the log:
    // there, and only there, its own .info Time can hold it.
    let hour_ago = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() - std::time::Duration::from_secs(3600),
    )
    .to_string();
    add(&up, "example.com/recent", "v1.0.0", Some(&hour_ago));
    record(&up, "example.com/recent", "v1.0.0");
    record(&up, "example.com/hello", "v1.0.0");
    let work = tempfile::tempdir().unwrap();
    let policy = work.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let mg = start(&up, &work.path().join("data"), &policy);

    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.info").0, 200);
    for kind in ["info", "mod", "info"] {
        let (status, _, body) = mg.get(&format!("/example.com/recent/@v/v1.0.0.{kind}"));
        let body = text(&body);
        assert_eq!(status, 403, "{kind}: {body}");
        assert!(body.contains("predates the watch"), "{body}");
        assert!(body.contains(".info Time"), "{body}");
    }
}
