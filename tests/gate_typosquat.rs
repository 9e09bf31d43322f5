//! Typosquat checks end to end, with the real `go` client and the reference
//! upstream: `github.com/boltdb-go/bolt` refused as resembling
//! `github.com/boltdb/bolt` (Debian's corpus) in enforce mode, with the way to
//! allow it; the real module served; a near-copy of a module the mirror
//! already serves refused, also after a restart (the store seeds the corpus);
//! `warn` serving and counting; an `[[allow]]` rule overriding; and no policy
//! file checking nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::goclient::GoClient;
use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;

const SQUAT: &str = "github.com/boltdb-go/bolt";
const REAL: &str = "github.com/boltdb/bolt";

fn start(up: &RefUpstream, data: &Path, policy: Option<&Path>) -> Modgate {
    let mut cfg = test_config(data, &up.url, &up.gosumdb());
    cfg.policy = policy.map(Path::to_path_buf);
    Modgate::start(cfg)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn metric(mg: &Modgate, prefix: &str) -> f64 {
    let (_, _, body) = mg.get("/metrics");
    text(&body)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn policy(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn enforce_refuses_lookalikes_and_serves_the_real_and_served_modules() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let enforce = policy(
        work.path(),
        "enforce.toml",
        "[typosquat]\nmode = \"enforce\"\n",
    );
    let data = work.path().join("data");
    let mut mg = start(&up, &data, Some(&enforce));
    let go = GoClient::new();

    // The boltdb-go case: refused before upstream is asked, naming the module
    // it resembles and how to allow it.
    let zips = up.hits_suffix(".zip");
    let r = go.mod_download_json(&mg.url, &up.gosumdb(), &[&format!("{SQUAT}@v1.3.1")]);
    assert!(r[0].error.contains("403"), "{r:?}");
    assert!(r[0].error.contains(REAL), "{r:?}");
    let (status, ct, body) = mg.get(&format!("/{SQUAT}/@v/v1.3.1.info"));
    let body = text(&body);
    assert_eq!(status, 403, "{body}");
    assert!(ct.starts_with("text/plain"), "{ct}");
    let first = body.lines().next().unwrap_or("");
    assert!(first.starts_with("SECURITY:"), "{body}");
    for want in [
        SQUAT,
        "v1.3.1",
        &format!("resembles {REAL}"),
        "`boltdb-go` is `boltdb` with `-go` added",
        "[[allow]]",
    ] {
        assert!(first.contains(want), "{want} missing from {first}");
    }
    assert_eq!(
        up.hits_suffix(".zip"),
        zips,
        "nothing fetched for a refused module"
    );
    assert_eq!(up.hits(&format!("/{SQUAT}/@v/v1.3.1.info")), 0);
    // list leaves it out; @latest is refused.
    let (status, _, body) = mg.get(&format!("/{SQUAT}/@v/list"));
    assert_eq!((status, text(&body)), (200, String::new()));
    assert_eq!(mg.get(&format!("/{SQUAT}/@latest")).0, 403);

    // Negatives: the real module, and an unrelated one.
    let r = go.mod_download_json(
        &mg.url,
        &up.gosumdb(),
        &[&format!("{REAL}@v1.3.1"), "example.com/hello@v1.0.0"],
    );
    assert!(r.iter().all(|r| r.error.is_empty()), "{r:?}");

    // A module the mirror serves joins the corpus: a near-copy is refused.
    up.add("corp.example/platform/authz", "v1.0.0");
    up.add("corp.example/platform/auth2", "v1.0.0");
    let r = go.mod_download_json(
        &mg.url,
        &up.gosumdb(),
        &["corp.example/platform/authz@v1.0.0"],
    );
    assert_eq!(r[0].error, "", "{r:?}");
    let (status, _, body) = mg.get("/corp.example/platform/auth2/@v/v1.0.0.mod");
    let body = text(&body);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("resembles corp.example/platform/authz"),
        "{body}"
    );
    // Served modules are never flagged, cached or not (hits stay served).
    assert_eq!(mg.get("/corp.example/platform/authz/@v/v1.0.0.mod").0, 200);
    assert!(
        metric(
            &mg,
            "modgate_gate_verdicts_total{kind=\"typosquat\",outcome=\"refuse\"}"
        ) >= 2.0
    );
    mg.stop();

    // After a restart the store's modules seed the corpus again.
    let mg = start(&up, &data, Some(&enforce));
    let (status, _, body) = mg.get("/corp.example/platform/auth2/@v/v1.0.0.info");
    assert_eq!(status, 403, "{}", text(&body));
    assert_eq!(mg.get("/corp.example/platform/authz/@v/v1.0.0.info").0, 200);
    drop(mg);

    // `policy check` names the module it resembles.
    let o = Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(["policy", "check", &format!("{SQUAT}@v1.3.1"), "--policy"])
        .arg(&enforce)
        .env_remove("MODGATE_POLICY")
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(out.contains("REFUSED"), "{out}");
    assert!(
        out.contains(&format!("typosquat (mode enforce): resembles {REAL}")),
        "{out}"
    );
}

#[test]
fn warn_serves_allow_overrides_and_no_policy_checks_nothing() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let target = format!("{SQUAT}@v1.3.1");

    // warn: served, counted (and logged on modgate::security).
    let warn = policy(work.path(), "warn.toml", "[typosquat]\nmode = \"warn\"\n");
    let mg = start(&up, &work.path().join("warn"), Some(&warn));
    let r = GoClient::new().mod_download_json(&mg.url, &up.gosumdb(), &[&target]);
    assert_eq!(r[0].error, "", "{r:?}");
    assert!(
        metric(
            &mg,
            "modgate_gate_verdicts_total{kind=\"typosquat\",outcome=\"warn\"}"
        ) >= 1.0
    );
    drop(mg);

    // An [[allow]] rule overrides an enforcing check.
    let allow = policy(
        work.path(),
        "allow.toml",
        &format!(
            "[typosquat]\nmode = \"enforce\"\n\n[[allow]]\nmodule = \"{SQUAT}\"\nreason = \"audited, SEC-7\"\n"
        ),
    );
    let mg = start(&up, &work.path().join("allow"), Some(&allow));
    let r = GoClient::new().mod_download_json(&mg.url, &up.gosumdb(), &[&target]);
    assert_eq!(r[0].error, "", "{r:?}");
    // Another near-copy is still refused.
    assert_eq!(
        mg.get("/github.com/golang-boltdb/bolt/@v/v1.3.1.info").0,
        403
    );
    drop(mg);

    // off, and no policy file at all: nothing is checked.
    let off = policy(work.path(), "off.toml", "[typosquat]\nmode = \"off\"\n");
    for (name, p) in [("off", Some(off.as_path())), ("none", None)] {
        let mg = start(&up, &work.path().join(name), p);
        let r = GoClient::new().mod_download_json(&mg.url, &up.gosumdb(), &[&target]);
        assert_eq!(r[0].error, "", "{name}: {r:?}");
        assert_eq!(metric(&mg, "modgate_gate_verdicts_total"), 0.0, "{name}");
    }
}
