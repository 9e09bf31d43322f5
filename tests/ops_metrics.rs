//! `/metrics` scraped after real traffic through modgate and the reference
//! upstream, and `/readyz` turning unready when the store cannot be written
//! or the checksum database forked.

mod common;

use std::collections::BTreeMap;

use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;
use serde_json::Value;

/// Parses the Prometheus text format into `name{labels}` → value.
fn scrape(mg: &Modgate) -> BTreeMap<String, f64> {
    let (status, ct, body) = mg.get("/metrics");
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    String::from_utf8(body)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

const VERSIONS: &[(&str, &str)] = &[
    ("example.com/hello", "v1.0.0"),
    ("example.com/hello", "v1.1.0"),
    ("example.com/nested", "v1.0.0"),
    ("example.com/multi/v2", "v2.0.0"),
];

#[test]
fn metrics_count_real_traffic() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mg = Modgate::start(test_config(dir.path(), &up.url, &up.gosumdb()));

    // Two rounds over the same artifacts: misses, then hits.
    let mut bytes = 0u64;
    for round in 0..2 {
        for (m, v) in VERSIONS {
            for ext in ["mod", "zip", "info"] {
                let (status, _, body) = mg.get(&format!("/{m}/@v/{v}.{ext}"));
                assert_eq!(status, 200);
                if round == 0 {
                    bytes += body.len() as u64;
                }
            }
        }
    }
    let (status, _, _) = mg.get("/example.com/hello/@v/list");
    assert_eq!(status, 200);
    // A refused artifact, an unverifiable one, a malformed path.
    up.tamper("example.com/app", "v1.0.0", "mod");
    assert_eq!(mg.get("/example.com/app/@v/v1.0.0.mod").0, 403);
    up.down("sumdb", "503");
    assert_eq!(mg.get("/example.com/!upper/!case/@v/v1.0.0.mod").0, 502);
    up.up();
    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.bogus").0, 404);

    let m = scrape(&mg);
    let n = VERSIONS.len() as f64;
    for kind in ["mod", "zip", "info"] {
        assert_eq!(
            get(
                &m,
                &format!(r#"modgate_http_requests_total{{kind="{kind}",status="200"}}"#)
            ),
            2.0 * n,
            "{kind}"
        );
        assert_eq!(
            get(
                &m,
                &format!(r#"modgate_cache_requests_total{{kind="{kind}",outcome="hit"}}"#)
            ),
            n,
            "{kind} hits"
        );
    }
    // The first round missed every artifact.
    for kind in ["mod", "zip", "info"] {
        assert_eq!(
            get(
                &m,
                &format!(r#"modgate_cache_requests_total{{kind="{kind}",outcome="miss"}}"#)
            ),
            n,
            "{kind} misses"
        );
    }
    assert_eq!(
        get(
            &m,
            r#"modgate_http_requests_total{kind="mod",status="403"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"modgate_http_requests_total{kind="mod",status="502"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"modgate_http_requests_total{kind="list",status="200"}"#
        ),
        1.0
    );
    assert!(
        get(
            &m,
            r#"modgate_http_requests_total{kind="other",status="404"}"#
        ) >= 1.0
    );

    // Upstream: one download per zip, sized as served.
    assert_eq!(
        get(
            &m,
            r#"modgate_upstream_fetches_total{op="download",outcome="ok"}"#
        ),
        n
    );
    assert_eq!(
        get(
            &m,
            r#"modgate_upstream_fetch_duration_seconds_count{op="download",outcome="ok"}"#
        ),
        n
    );
    assert!(
        get(
            &m,
            r#"modgate_upstream_fetches_total{op="get",outcome="ok"}"#
        ) >= 2.0 * n
    );
    assert!(
        get(
            &m,
            r#"modgate_upstream_fetches_total{op="get",outcome="status"}"#
        ) >= 1.0
    );
    let up_bytes = get(
        &m,
        r#"modgate_upstream_bytes_total{op="download",outcome="ok"}"#,
    ) + get(&m, r#"modgate_upstream_bytes_total{op="get",outcome="ok"}"#);
    assert!(up_bytes >= bytes as f64, "{up_bytes} >= {bytes}");

    // Verifications: every stored artifact, the refusal, the outage.
    assert_eq!(
        get(
            &m,
            r#"modgate_verifications_total{outcome="ok",reason="ok"}"#
        ),
        3.0 * n
    );
    assert_eq!(
        get(
            &m,
            r#"modgate_verifications_total{outcome="refused",reason="mismatch"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            r#"modgate_verifications_total{outcome="error",reason="sumdb_unreachable"}"#
        ),
        1.0
    );

    // Store gauges follow commits; the trusted tree is the reference's.
    assert_eq!(get(&m, "modgate_store_objects"), 3.0 * n);
    assert_eq!(get(&m, "modgate_store_bytes"), bytes as f64);
    let latest = up.get("/sumdb/refsum.test/latest").text();
    let size: f64 = latest.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(
        get(&m, r#"modgate_sumdb_tree_size{sumdb="refsum.test"}"#),
        size
    );
    assert_eq!(get(&m, r#"modgate_sumdb_forked{sumdb="refsum.test"}"#), 0.0);
    assert_eq!(get(&m, "modgate_inflight_fetches"), 0.0);

    // Restarted on the same store, the gauges are counted from the index (in
    // the background, so start-up does not wait for a walk of the index).
    drop(mg);
    let mg = Modgate::start(test_config(dir.path(), &up.url, &up.gosumdb()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut m = scrape(&mg);
    while get(&m, "modgate_store_objects") != 3.0 * n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        m = scrape(&mg);
    }
    assert_eq!(get(&m, "modgate_store_objects"), 3.0 * n);
    assert_eq!(get(&m, "modgate_store_bytes"), bytes as f64);
}

fn readyz(mg: &Modgate) -> (u16, Value) {
    let (status, ct, body) = mg.get("/readyz");
    assert_eq!(ct, "application/json");
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

#[test]
fn readyz_reports_an_unwritable_store() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), &up.url, &up.gosumdb());
    cfg.limits.readyz_probe_secs = 0; // probe on every request
    let mg = Modgate::start(cfg);
    let (status, body) = readyz(&mg);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"]["store"], "ok");

    // Tests run as root, where permissions do not stop writes: make the
    // spool directory a file instead.
    let tmp = dir.path().join("tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let (status, body) = readyz(&mg);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    let problem = body["problems"][0].as_str().unwrap();
    assert!(
        problem.starts_with("store: cannot create a spool file"),
        "{problem}"
    );
    assert_eq!(body["checks"]["trust"], "ok");
    // Liveness is unaffected: restarting would not fix a disk.
    assert_eq!(mg.get("/healthz").0, 200);

    std::fs::remove_file(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    assert_eq!(readyz(&mg).0, 200);
    // The probe's spool file is removed on the blocking pool after the answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_dir(&tmp).unwrap().next().is_some() && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        std::fs::read_dir(&tmp).unwrap().next().is_none(),
        "the probe cleans up"
    );
}

#[test]
fn a_forked_checksum_database_makes_modgate_unready() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mg = Modgate::start(test_config(dir.path(), &up.url, &up.gosumdb()));
    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.mod").0, 200);
    up.fork();
    let (status, _, body) = mg.get("/example.com/hello/@v/v1.1.0.mod");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let (status, body) = readyz(&mg);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["sumdb"]["forked"], true);
    assert!(
        body["checks"]["fork"]
            .as_str()
            .unwrap()
            .contains("forked log"),
        "{body}"
    );
    let m = scrape(&mg);
    assert_eq!(get(&m, r#"modgate_sumdb_forked{sumdb="refsum.test"}"#), 1.0);
    assert_eq!(
        get(
            &m,
            r#"modgate_verifications_total{outcome="refused",reason="fork"}"#
        ),
        1.0
    );
}
