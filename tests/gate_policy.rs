//! The policy file end to end with the real `go` client: deny rules with
//! version ranges, warn mode, allow exceptions with expiry, `@latest` resolving
//! to the newest allowed version; a broken policy at start and at reload; a
//! broken or unreachable advisory source; a vulndb served over HTTP.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::goclient::GoClient;
use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;

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

fn metric(mg: &Modgate, prefix: &str) -> f64 {
    let (_, _, body) = mg.get("/metrics");
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn start(up: &RefUpstream, work: &Path, policy: &str) -> (Modgate, PathBuf) {
    let file = work.join("policy.toml");
    std::fs::write(&file, policy).unwrap();
    let mut cfg = test_config(&work.join("data"), &up.url, &up.gosumdb());
    cfg.policy = Some(file.clone());
    (Modgate::start(cfg), file)
}

const RULES: &str = r#"
[[deny]]
module = "example.com/hello"
versions = [">=v1.1.0"]
reason = "hello v1.1 is under review, SEC-7"

[[deny]]
module = "example.com/multi/*"
reason = "multi is being phased out"
mode = "warn"

[[deny]]
module = "example.com/nested"
reason = "nested is banned"

[[allow]]
module = "example.com/nested"
versions = ["v1.0.0"]
reason = "accepted risk, SEC-9"
expires = "2099-12-31"

[[deny]]
module = "example.com/Upper"
reason = "Upper is retired"

[[allow]]
module = "example.com/Upper/Case"
reason = "exception that ran out"
expires = "2020-01-01"
"#;

#[test]
fn deny_allow_warn_ranges_and_latest() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let (mg, _) = start(&up, work.path(), RULES);
    let go = GoClient::new();
    let sumdb = up.gosumdb();

    // @latest resolves to the newest allowed version, for the real client too.
    let r = go.mod_download_json(&mg.url, &sumdb, &["example.com/hello@latest"]);
    assert_eq!(
        (r[0].version.as_str(), r[0].error.as_str()),
        ("v1.0.0", ""),
        "{r:?}"
    );
    let (status, _, body) = mg.get("/example.com/hello/@latest");
    assert_eq!(status, 200);
    assert!(text(&body).contains("\"v1.0.0\""), "{}", text(&body));
    assert_eq!(text(&mg.get("/example.com/hello/@v/list").2), "v1.0.0\n");
    // The denied range, with the rule's reason in the client's error.
    let r = go.mod_download_json(&mg.url, &sumdb, &["example.com/hello@v1.1.0"]);
    assert!(
        r[0].error.contains("hello v1.1 is under review, SEC-7"),
        "{r:?}"
    );
    // A version added upstream later falls in the range too.
    up.add("example.com/hello", "v1.2.0");
    assert_eq!(mg.get("/example.com/hello/@v/v1.2.0.mod").0, 403);

    // warn: served, counted.
    let r = go.mod_download_json(&mg.url, &sumdb, &["example.com/multi/v2@v2.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
    assert!(
        metric(
            &mg,
            "modgate_gate_verdicts_total{kind=\"deny\",outcome=\"warn\"}"
        ) >= 1.0
    );

    // An unexpired allow rule is an exception to the deny rule...
    let r = go.mod_download_json(&mg.url, &sumdb, &["example.com/nested@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
    assert!(
        metric(
            &mg,
            "modgate_gate_verdicts_total{kind=\"allow\",outcome=\"excepted\"}"
        ) >= 1.0
    );
    // ...an expired one is not.
    let r = go.mod_download_json(&mg.url, &sumdb, &["example.com/Upper/Case@v1.0.0"]);
    assert!(r[0].error.contains("Upper is retired"), "{r:?}");
    // Nothing allowed: @latest is refused, saying why.
    let (status, _, body) = mg.get("/example.com/!upper/!case/@latest");
    let body = text(&body);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.starts_with("SECURITY: example.com/Upper/Case@latest"),
        "{body}"
    );
    assert!(body.contains("Upper is retired"), "{body}");
    // Untouched modules are served as before.
    let r = go.mod_download_json(&mg.url, &sumdb, &["example.com/app@v1.0.0"]);
    assert_eq!(r[0].error, "", "{r:?}");
}

#[test]
fn broken_policy_at_start_names_file_line_and_problem() {
    let work = tempfile::tempdir().unwrap();
    for (policy, line, problem) in [
        (
            "[[deny]]\nmodule = \"example.com/x\"\nreasn = \"typo\"\n",
            3,
            "reasn",
        ),
        (
            "\n[[deny]]\nmodule = \"example.com/[x\"\nreason = \"r\"\n",
            3,
            "unclosed",
        ),
        (
            "[[deny]]\nmodule = \"example.com/x\"\nversions = [\"v1\"]\nreason = \"r\"\n",
            3,
            "\"v1\"",
        ),
        ("[advisories\n", 1, ""),
    ] {
        let file = work.path().join("broken.toml");
        std::fs::write(&file, policy).unwrap();
        let mut cfg = test_config(&work.path().join("data"), "off", "sum.golang.org");
        cfg.policy = Some(file.clone());
        let e = modgate::server::build(cfg)
            .err()
            .unwrap_or_else(|| panic!("{policy:?} accepted"));
        let e = e.to_string();
        assert!(e.contains("broken.toml"), "{e}");
        assert!(e.contains(&format!("line {line}")), "{e}");
        assert!(e.contains(problem), "{e}");
    }
    // A missing file too.
    let mut cfg = test_config(&work.path().join("data"), "off", "sum.golang.org");
    cfg.policy = Some(work.path().join("missing.toml"));
    let e = modgate::server::build(cfg)
        .err()
        .expect("missing policy")
        .to_string();
    assert!(e.contains("missing.toml"), "{e}");
}

#[test]
fn broken_policy_at_reload_keeps_the_one_in_force() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let deny =
        "[[deny]]\nmodule = \"example.com/hello\"\nversions = [\"v1.1.0\"]\nreason = \"held\"\n";
    let (mg, file) = start(&up, work.path(), deny);
    assert_eq!(mg.get("/example.com/hello/@v/v1.1.0.info").0, 403);

    std::fs::write(&file, format!("{deny}mode = \"sometimes\"\n")).unwrap();
    wait_until("the failed reload to be counted", || {
        metric(&mg, "modgate_gate_policy_loads_total{outcome=\"error\"}") >= 1.0
    });
    assert_eq!(mg.get("/example.com/hello/@v/v1.1.0.info").0, 403);
    let (status, _, body) = mg.get("/readyz");
    let body = text(&body);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("policy.toml, line 5"), "{body}");

    // A good file again takes effect; the error is cleared.
    std::fs::write(&file, "# nothing denied\n").unwrap();
    wait_until("the new policy", || {
        mg.get("/example.com/hello/@v/v1.1.0.info").0 == 200
    });
    assert!(text(&mg.get("/readyz").2).contains("\"policy_error\":null"));
}

#[test]
fn advisory_sources_failing_keep_the_last_good_set() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let adv = work.path().join("adv");
    std::fs::create_dir_all(&adv).unwrap();
    std::fs::write(
        adv.join("MAL-0000-0001.json"),
        r#"{"id":"MAL-0000-0001","summary":"test entry","affected":[{"package":{"ecosystem":"Go","name":"example.com/hello"},"versions":["v1.0.0"]}]}"#,
    )
    .unwrap();
    // An unreachable vulnerability URL next to a good directory.
    let policy = format!(
        "[advisories]\nmalicious = [{:?}]\nvulnerabilities = [\"http://127.0.0.1:9/vulndb\"]\nrefresh = \"1s\"\n",
        adv.display().to_string()
    );
    let (mg, _) = start(&up, work.path(), &policy);
    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.info").0, 403);
    assert_eq!(mg.get("/example.com/hello/@v/v1.1.0.info").0, 200);
    assert!(
        metric(
            &mg,
            "modgate_gate_advisory_reads_total{class=\"vulnerabilities\",outcome=\"error\"}"
        ) >= 1.0
    );

    // The directory breaks: its last good set stays in force.
    std::fs::write(adv.join("broken.json"), "{\"id\": ").unwrap();
    wait_until("the failed read", || {
        metric(
            &mg,
            "modgate_gate_advisory_reads_total{class=\"malicious\",outcome=\"error\"}",
        ) >= 1.0
    });
    assert_eq!(mg.get("/example.com/hello/@v/v1.0.0.info").0, 403);
    let (status, _, body) = mg.get("/readyz");
    assert_eq!(status, 200);
    assert!(text(&body).contains("broken.json"), "{}", text(&body));
}

/// A static file server for a directory (the vuln.go.dev layout over HTTP).
fn serve_dir(dir: PathBuf) -> (String, tokio::runtime::Runtime) {
    use axum::extract::Path as UrlPath;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::get(move |UrlPath(p): UrlPath<String>| {
            let dir = dir.clone();
            async move {
                if p.contains("..") {
                    return Err(axum::http::StatusCode::NOT_FOUND);
                }
                std::fs::read(dir.join(&p)).map_err(|_| axum::http::StatusCode::NOT_FOUND)
            }
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await });
    (url, rt)
}

#[test]
fn vulndb_over_http_reports_and_blocks_when_told() {
    let (vulndb, _rt) =
        serve_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gate/vulndb"));
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let policy = format!("[advisories]\nvulnerabilities = [\"{vulndb}\"]\n");
    let (mg, file) = start(&up, work.path(), &policy);
    // GO-2025-3451 is a vulnerability-database entry: reported, served.
    let target = "/github.com/boltdb-go/bolt/@v/v1.3.1.info";
    assert_eq!(mg.get(target).0, 200);
    assert!(
        metric(
            &mg,
            "modgate_gate_verdicts_total{kind=\"vulnerability\",outcome=\"warn\"}"
        ) >= 1.0
    );
    let ready = text(&mg.get("/readyz").2);
    assert!(ready.contains("\"entries\":8"), "{ready}");
    assert!(ready.contains("age_secs"), "{ready}");
    // block_vulnerable = true blocks it, naming the GO- id.
    std::fs::write(&file, format!("{policy}block_vulnerable = true\n")).unwrap();
    wait_until("block_vulnerable", || mg.get(target).0 == 403);
    let body = text(&mg.get(target).2);
    assert!(body.contains("GO-2025-3451"), "{body}");
}
