//! Private modules (`private`, `private_upstream`): served from a second reference
//! upstream to the real `go` client, never mentioned to the public upstream or the
//! checksum database, and pinned on first sight — a later fetch of other bytes is
//! 403 while the cached bytes are still served, and pins survive a restart.

mod common;

use std::path::Path;
use std::process::Command;

use common::goclient::GoClient;
use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;

const PRIVATE: &str = "git.corp.example/lib";
const PRIVATE_VERSION: &str = "v1.2.0";

/// The public reference upstream (proxy + the checksum database modgate trusts) and a
/// private one (its own sumdb, which modgate must not use either).
fn upstreams() -> (RefUpstream, RefUpstream) {
    let public = RefUpstream::start(&[]);
    let private = RefUpstream::start(&["-name", "corpsum.test"]);
    private.add(PRIVATE, PRIVATE_VERSION);
    private.add(PRIVATE, "v1.3.0");
    (public, private)
}

fn start(public: &RefUpstream, private: &RefUpstream, data: &Path) -> Modgate {
    let mut cfg = test_config(data, &public.url, &public.gosumdb());
    cfg.private = "git.corp.example".into();
    cfg.private_upstream = private.url.clone();
    Modgate::start(cfg)
}

/// Every request path either upstream saw that names the private module.
fn mentions(up: &RefUpstream) -> Vec<String> {
    up.counters()
        .into_keys()
        .filter(|k| k.contains("git.corp.example"))
        .collect()
}

/// Runs the modgate binary on `data` (through a running server's admin socket,
/// else on the data dir); (success, stdout, stderr).
fn admin(data: &Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(args)
        .args(["--data-dir", &data.to_string_lossy()])
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .env("MODGATE_LOG", "warn")
        .output()
        .expect("modgate runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn admin_ok(data: &Path, args: &[&str]) -> String {
    let (ok, out, err) = admin(data, args);
    assert!(ok, "{args:?}: {err}\n{out}");
    out
}

fn cache_rm(data: &Path, target: &str) -> String {
    admin_ok(data, &["cache", "rm", target])
}

#[test]
fn private_module_through_go_never_reaches_the_public_side() {
    let (public, private) = upstreams();
    let data = tempfile::tempdir().unwrap();
    let mg = start(&public, &private, data.path());
    let go = GoClient::new();
    // The client asks modgate for everything, verifies public modules through
    // modgate's sumdb endpoint and private ones not at all (GONOSUMDB).
    let env = [
        ("GOPROXY", mg.url.as_str()),
        ("GOSUMDB", public.vkey.as_str()),
        ("GONOSUMDB", "git.corp.example"),
    ];
    let target = format!("{PRIVATE}@{PRIVATE_VERSION}");
    let results = go.mod_download_json_env(&["example.com/hello@v1.0.0", &target], &env);
    for r in &results {
        assert!(r.error.is_empty(), "{}@{}: {}", r.path, r.version, r.error);
    }
    let honest = private
        .modules()
        .into_iter()
        .find(|m| m.path == PRIVATE && m.version == PRIVATE_VERSION)
        .expect("private module listed");
    let got = results
        .iter()
        .find(|r| r.path == PRIVATE)
        .expect("private result");
    assert_eq!(got.sum, honest.sum);
    assert_eq!(got.go_mod_sum, honest.gomodsum);
    assert!(private.hits(&format!("/{PRIVATE}/@v/{PRIVATE_VERSION}.zip")) >= 1);

    // list and @latest through the real client, and the metadata endpoints directly.
    let out = go.run(&["list", "-m", "-versions", "-json", PRIVATE], &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("v1.2.0") && text.contains("v1.3.0"), "{text}");
    let (s, _, body) = mg.get(&format!("/{PRIVATE}/@latest"));
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("v1.3.0"));
    let (s, _, _) = mg.get(&format!("/{PRIVATE}/@v/v1.3.0.info"));
    assert_eq!(s, 200);
    let (s, _, _) = mg.get(&format!("/{PRIVATE}/@v/master.info"));
    assert_ne!(s, 200);
    // A lookup of a private path is 404 from modgate itself.
    let (s, _, body) = mg.get(&format!(
        "/sumdb/{}/lookup/{PRIVATE}@{PRIVATE_VERSION}",
        public.sumdb_name
    ));
    let body = String::from_utf8_lossy(&body);
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("private module"), "{body}");

    // Nothing of it reached the public upstream or its checksum database...
    assert!(public.hits("/example.com/hello/@v/v1.0.0.zip") >= 1);
    assert_eq!(mentions(&public), Vec::<String>::new());
    assert!(!public.log().contains("git.corp.example"));
    // ...nor the private upstream's own checksum database.
    let private_sumdb: Vec<String> = mentions(&private)
        .into_iter()
        .filter(|k| k.starts_with("/sumdb/"))
        .collect();
    assert_eq!(private_sumdb, Vec::<String>::new());

    // `origin check` of a public version whose origin changed; a private one is
    // not sent to a proxy unless its pattern is given.
    public.tamper("example.com/hello", "v1.0.0", "zip");
    let (ok, out, err) = admin(data.path(), &["origin", "check", "--origin", &public.url]);
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains("TAG REWRITE: example.com/hello@v1.0.0 zip")
            && out.contains("(checksum_database)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{PRIVATE}@{PRIVATE_VERSION} zip: not checked: private"
        )),
        "{out}"
    );
    assert_eq!(mentions(&public), Vec::<String>::new());
}

#[test]
fn private_module_without_private_upstream_is_not_found() {
    let (public, _private) = upstreams();
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &public.url, &public.gosumdb());
    cfg.private = "git.corp.example".into();
    let mg = Modgate::start(cfg);
    for path in [
        format!("/{PRIVATE}/@v/{PRIVATE_VERSION}.zip"),
        format!("/{PRIVATE}/@v/{PRIVATE_VERSION}.info"),
        format!("/{PRIVATE}/@v/list"),
        format!("/{PRIVATE}/@latest"),
    ] {
        let (s, _, body) = mg.get(&path);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(s, 404, "{path}: {body}");
        assert!(body.contains("no private_upstream"), "{path}: {body}");
    }
    assert_eq!(mentions(&public), Vec::<String>::new());
}

#[test]
fn pin_mismatch_is_refused_and_the_cached_bytes_stay_served() {
    let (public, private) = upstreams();
    let data = tempfile::tempdir().unwrap();
    let mut mg = start(&public, &private, data.path());
    let zip = format!("/{PRIVATE}/@v/{PRIVATE_VERSION}.zip");
    let (s, _, first) = mg.get(&zip);
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&first));

    // The private upstream now serves other bytes for the same version.
    private.tamper(PRIVATE, PRIVATE_VERSION, "zip");
    let (s, _, cached) = mg.get(&zip);
    assert_eq!(s, 200);
    assert_eq!(cached, first, "the cached, pinned bytes are served");

    // `origin check` against the private upstream reports it, naming who fetched it.
    let (ok, out, err) = admin(
        data.path(),
        &[
            "origin",
            "check",
            "git.corp.example",
            "--origin",
            &private.url,
        ],
    );
    assert!(!ok, "a rewrite exits 1: {out}{err}");
    assert!(
        out.contains(&format!(
            "TAG REWRITE: {PRIVATE}@{PRIVATE_VERSION} zip: recorded h1:"
        )),
        "{out}"
    );
    assert!(out.contains("(pins)"), "{out}");
    assert!(out.contains("fetched by: client=127.0.0.1"), "{out}");
    assert!(
        out.contains(&format!("{PRIVATE}@{PRIVATE_VERSION} mod: ok")),
        "{out}"
    );
    let (s, _, metrics) = mg.get("/metrics");
    assert_eq!(s, 200);
    assert!(
        String::from_utf8_lossy(&metrics)
            .contains("modgate_origin_rewrites_total{authority=\"pins\"} 1"),
        "metric set"
    );

    // Once the cache forgets it, the refetch is held to the pin.
    let rm = cache_rm(data.path(), &format!("{PRIVATE}@{PRIVATE_VERSION}"));
    assert!(rm.contains("removed"), "{rm}");
    let (s, _, body) = mg.get(&zip);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(s, 403, "{body}");
    assert!(
        body.contains(&format!(
            "SECURITY: {PRIVATE}@{PRIVATE_VERSION}: content changed since first seen"
        )),
        "{body}"
    );
    let honest = private
        .modules()
        .into_iter()
        .find(|m| m.path == PRIVATE && m.version == PRIVATE_VERSION)
        .unwrap();
    assert!(body.contains(&honest.sum), "names the pinned hash: {body}");
    assert_eq!(body.matches("h1:").count(), 2, "names both hashes: {body}");

    // Pins survive a restart; the untampered .mod still matches its pin.
    mg.stop();
    drop(mg);
    let mut mg = start(&public, &private, data.path());
    let (s, _, body) = mg.get(&zip);
    assert_eq!(s, 403, "{}", String::from_utf8_lossy(&body));
    let (s, _, _) = mg.get(&format!("/{PRIVATE}/@v/{PRIVATE_VERSION}.mod"));
    assert_eq!(s, 200);

    // The honest bytes again: they match the pin and are served.
    private.reset();
    let (s, _, again) = mg.get(&zip);
    assert_eq!(s, 200);
    assert_eq!(again, first);
    assert_eq!(mentions(&public), Vec::<String>::new());

    // `pins ls` through the running server's socket.
    let ls = admin_ok(data.path(), &["pins", "ls", "git.corp.example"]);
    assert!(
        ls.contains(&format!("{PRIVATE}@{PRIVATE_VERSION} zip {}", honest.sum)),
        "{ls}"
    );
    assert!(
        ls.contains(&format!(
            "{PRIVATE}@{PRIVATE_VERSION} mod {}",
            honest.gomodsum
        )),
        "{ls}"
    );
    assert_eq!(
        admin_ok(data.path(), &["pins", "ls", "other.example"]).trim(),
        "no pins"
    );

    // `pins rm` needs a reason, is audited, and the next fetch pins anew.
    let target = format!("{PRIVATE}@{PRIVATE_VERSION}");
    let (ok, _, err) = admin(data.path(), &["pins", "rm", &target, "--reason", " "]);
    assert!(!ok && err.contains("--reason"), "{err}");
    let rm = admin_ok(
        data.path(),
        &[
            "pins",
            "rm",
            &target,
            "--reason",
            "tag moved on purpose, INC-42",
        ],
    );
    assert!(rm.contains("removed the pin"), "{rm}");
    let who = admin_ok(data.path(), &["audit", "who", &target]);
    assert!(who.contains("zip miss status=200"), "{who}");
    assert!(
        !who.contains("tree_size="),
        "a pinned version has no tree: {who}"
    );
    assert!(
        who.contains("pins rm: tag moved on purpose, INC-42"),
        "{who}"
    );
    private.tamper(PRIVATE, PRIVATE_VERSION, "zip");
    cache_rm(data.path(), &target);
    let (s, _, tampered) = mg.get(&zip);
    assert_eq!(s, 200);
    assert_ne!(tampered, first);

    // Stopped: the same commands on the data dir.
    mg.stop();
    drop(mg);
    let ls = admin_ok(data.path(), &["pins", "ls"]);
    assert!(
        ls.contains(&format!("{PRIVATE}@{PRIVATE_VERSION} zip")),
        "{ls}"
    );
    assert!(!ls.contains(&honest.sum), "the old pin is gone: {ls}");
}

#[test]
fn origin_check_every_finds_a_changed_version_inside_the_server() {
    let (public, private) = upstreams();
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &public.url, &public.gosumdb());
    cfg.private = "git.corp.example".into();
    cfg.private_upstream = private.url.clone();
    cfg.origin.check_every = "1s".into();
    cfg.origin.list = private.url.clone();
    cfg.origin.pattern = "git.corp.example".into();
    cfg.origin.pause_ms = 0;
    let mg = Modgate::start(cfg);
    let zip = format!("/{PRIVATE}/@v/{PRIVATE_VERSION}.zip");
    let (s, _, first) = mg.get(&zip);
    assert_eq!(s, 200);
    private.tamper(PRIVATE, PRIVATE_VERSION, "zip");
    let want = "modgate_origin_rewrites_total{authority=\"pins\"}";
    let start = std::time::Instant::now();
    loop {
        let (_, _, m) = mg.get("/metrics");
        if String::from_utf8_lossy(&m).contains(want) {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "no origin check found the change"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // What is served does not change.
    let (s, _, served) = mg.get(&zip);
    assert_eq!(s, 200);
    assert_eq!(served, first);
    assert_eq!(mentions(&public), Vec::<String>::new());
}

#[test]
fn private_versions_are_dated_by_their_pin_for_the_cooldown() {
    let (public, private) = upstreams();
    let data = tempfile::tempdir().unwrap();
    let policy = data.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[cooldown]\nmin_age = \"3s\"\nexempt = [\"git.corp.example/tools\"]\n",
    )
    .unwrap();
    let mut cfg = test_config(&data.path().join("data"), &public.url, &public.gosumdb());
    cfg.private = "git.corp.example".into();
    cfg.private_upstream = private.url.clone();
    cfg.policy = Some(policy);
    private.add("git.corp.example/tools", "v0.1.0");
    let mg = Modgate::start(cfg);

    // First sight: pinned now, so held (the checksum database knows nothing of it).
    let zip = format!("/{PRIVATE}/@v/{PRIVATE_VERSION}.zip");
    let (s, _, body) = mg.get(&zip);
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(s, 403, "{body}");
    assert!(body.starts_with("SECURITY:"), "{body}");
    assert!(body.contains("first seen and pinned"), "{body}");
    // An exempt private module is served at once.
    assert_eq!(mg.get("/git.corp.example/tools/@v/v0.1.0.zip").0, 200);

    // Once the pin is min_age old, the same cached version is served; after
    // `cache rm` it comes back dated by its pin, not by the refetch.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    assert_eq!(mg.get(&zip).0, 200);
    let rm = cache_rm(
        mg.data_dir.as_path(),
        &format!("{PRIVATE}@{PRIVATE_VERSION}"),
    );
    assert!(rm.contains("removed"), "{rm}");
    assert_eq!(mg.get(&zip).0, 200);
    assert!(mentions(&public).is_empty(), "{:?}", mentions(&public));
}
