//! The boltdb-go case replayed: a typosquat that verifies fine is fetched and
//! cached; then a malicious-package advisory (ossf layout) arrives, and from the
//! next refresh on the cached version is refused to the real `go` client with
//! the advisory id, left out of `list` and `@latest`, while the real module is
//! still served.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::goclient::GoClient;
use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;

const SQUAT: &str = "github.com/boltdb-go/bolt";
const REAL: &str = "github.com/boltdb/bolt";

/// The advisory, modelled on the real ossf sample (MAL-2026-17454) in
/// tests/fixtures/gate/malicious-sample; MAL-2025-2545 is the id the real
/// ossf database gives this module.
const MAL_2025_2545: &str = r#"{
  "modified": "2025-03-05T00:00:00Z",
  "published": "2025-03-05T00:00:00Z",
  "schema_version": "1.7.4",
  "id": "MAL-2025-2545",
  "summary": "Malicious code in github.com/boltdb-go/bolt (Go)",
  "details": "A typosquat of github.com/boltdb/bolt with a remote-access backdoor; the repository's tag was later rewritten to look clean.",
  "affected": [
    {
      "package": {"ecosystem": "Go", "name": "github.com/boltdb-go/bolt"},
      "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]
    }
  ]
}
"#;

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn metric(mg: &Modgate, name: &str) -> f64 {
    let (_, _, body) = mg.get("/metrics");
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn write_policy(path: &Path, advisories: &Path, comment: &str) {
    std::fs::write(
        path,
        format!(
            "# {comment}\n[advisories]\nmalicious = [{:?}]\nrefresh = \"1s\"\n",
            advisories.display().to_string()
        ),
    )
    .unwrap();
}

#[test]
fn boltdb_go_typosquat_is_refused_once_the_advisory_arrives() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let advisories = work.path().join("malicious-packages");
    std::fs::create_dir_all(advisories.join("osv/malicious/go")).unwrap();
    let policy = work.path().join("policy.toml");
    write_policy(&policy, &advisories, "no advisory about bolt yet");
    let mut cfg = test_config(&work.path().join("data"), &up.url, &up.gosumdb());
    cfg.policy = Some(policy.clone());
    let mg = Modgate::start(cfg);

    // Two clients fetch the typosquat: it verifies fine, so it is served.
    let target = format!("{SQUAT}@v1.3.1");
    for _ in 0..2 {
        let go = GoClient::new();
        let r = go.mod_download_json(
            &mg.url,
            &up.gosumdb(),
            &[&target, &format!("{REAL}@v1.3.1")],
        );
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|r| r.error.is_empty()), "{r:?}");
    }
    assert_eq!(metric(&mg, "modgate_gate_blocked_cached_versions"), 0.0);

    // The advisory arrives in the ossf layout, and the policy file is touched.
    let dir = advisories.join("osv/malicious/go").join(SQUAT);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("MAL-2025-2545.json"), MAL_2025_2545).unwrap();
    write_policy(&policy, &advisories, "advisories from the ossf checkout");
    wait_until("the cached typosquat to be refused", || {
        mg.get(&format!("/{SQUAT}/@v/v1.3.1.info")).0 == 403
    });

    // Every artifact, cached as it is, is refused with why.
    for kind in ["info", "mod", "zip"] {
        let (status, ct, body) = mg.get(&format!("/{SQUAT}/@v/v1.3.1.{kind}"));
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 403, "{kind}: {body}");
        assert!(ct.starts_with("text/plain"), "{ct}");
        let first = body.lines().next().unwrap_or("");
        assert!(first.starts_with("SECURITY:"), "{body}");
        for want in [SQUAT, "v1.3.1", "MAL-2025-2545"] {
            assert!(first.contains(want), "{want} missing from {first}");
        }
    }
    // The go client shows the advisory id.
    let go = GoClient::new();
    let r = go.mod_download_json(&mg.url, &up.gosumdb(), &[&target]);
    assert!(r[0].error.contains("MAL-2025-2545"), "{r:?}");
    assert!(r[0].error.contains("403"), "{r:?}");
    // The real module is still served.
    let r = go.mod_download_json(&mg.url, &up.gosumdb(), &[&format!("{REAL}@v1.3.1")]);
    assert_eq!(r[0].error, "", "{r:?}");
    // list and @latest leave it out.
    let (status, _, body) = mg.get(&format!("/{SQUAT}/@v/list"));
    assert_eq!((status, body.as_slice()), (200, &b""[..]));
    let (status, _, body) = mg.get(&format!("/{SQUAT}/@latest"));
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 403, "{body}");
    assert!(
        body.starts_with("SECURITY:") && body.contains("MAL-2025-2545"),
        "{body}"
    );
    let (status, _, body) = mg.get(&format!("/{REAL}/@v/list"));
    assert_eq!((status, body.as_slice()), (200, &b"v1.3.1\n"[..]));

    // The re-check found the cached version; nothing was deleted.
    wait_until("the blocked gauge", || {
        metric(&mg, "modgate_gate_blocked_cached_versions") == 1.0
    });
    assert!(metric(&mg, "modgate_gate_verdicts_total{kind=\"malicious\"") >= 4.0);
    let (_, _, ready) = mg.get("/readyz");
    let ready = String::from_utf8_lossy(&ready).into_owned();
    assert!(ready.contains("\"entries\":1"), "{ready}");

    // The dashboard lists the blocked cached version with who fetched it
    // (both clients came from 127.0.0.1), from the re-check and the audit trail.
    let (status, _, page) = mg.get("/");
    let page = String::from_utf8_lossy(&page).into_owned();
    assert_eq!(status, 200);
    let blocked = page
        .split("<h2>Cached versions now blocked</h2>")
        .nth(1)
        .and_then(|s| s.split("<h2>").next())
        .unwrap_or_default();
    let version = format!("{SQUAT}@v1.3.1");
    for want in [version.as_str(), "MAL-2025-2545", "127.0.0.1"] {
        assert!(blocked.contains(want), "{want} missing from {blocked}");
    }
}
