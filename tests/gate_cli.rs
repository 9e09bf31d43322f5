//! `modgate policy check` and `modgate policy exposure` as an operator runs them:
//! known vulnerable versions of real modules reported with their GO- ids from
//! the real Go vulnerability database (a subset in tests/fixtures/gate/vulndb),
//! exit codes, and the cached versions a new advisory exposes.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;

fn modgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(args)
        .env_remove("MODGATE_POLICY")
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .output()
        .expect("running modgate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fixture(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gate")
        .join(p)
        .display()
        .to_string()
}

#[test]
fn check_reports_real_vulnerabilities_with_their_go_ids() {
    let work = tempfile::tempdir().unwrap();
    let policy = work.path().join("policy.toml");
    let base = format!(
        "[advisories]\nvulnerabilities = [{:?}]\n",
        fixture("vulndb")
    );
    std::fs::write(&policy, &base).unwrap();
    let p = policy.to_str().unwrap();

    // Reported, still served: exit 0.
    let o = modgate(&["policy", "check", "golang.org/x/text@v0.3.2", "--policy", p]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.starts_with("golang.org/x/text@v0.3.2: served, with warnings"),
        "{out}"
    );
    for id in [
        "GO-2020-0015",
        "GO-2021-0113",
        "GO-2022-1059",
        "GO-2026-5970",
    ] {
        assert!(out.contains(id), "{id} missing: {out}");
    }
    // A fixed version has fewer; the newest none.
    let out = stdout(&modgate(&[
        "policy",
        "check",
        "golang.org/x/text@v0.3.7",
        "--policy",
        p,
    ]));
    assert!(
        !out.contains("GO-2021-0113") && out.contains("GO-2022-1059"),
        "{out}"
    );
    let o = modgate(&[
        "policy",
        "check",
        "golang.org/x/text@v0.39.0",
        "--policy",
        p,
    ]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("nothing against it"), "{}", stdout(&o));
    let out = stdout(&modgate(&[
        "policy",
        "check",
        "github.com/gin-gonic/gin@v1.5.0",
        "--policy",
        p,
    ]));
    assert!(
        out.contains("GO-2020-0001") && out.contains("GO-2021-0052"),
        "{out}"
    );
    // A withdrawn entry (GO-2024-2730) does not apply.
    let out = stdout(&modgate(&[
        "policy",
        "check",
        "github.com/gorilla/sessions@v1.2.0",
        "--policy",
        p,
    ]));
    assert!(!out.contains("GO-2024-2730"), "{out}");

    // block_vulnerable: refused, exit 1.
    std::fs::write(&policy, format!("{base}block_vulnerable = true\n")).unwrap();
    let o = modgate(&[
        "policy",
        "check",
        "github.com/boltdb-go/bolt@v1.3.1",
        "--policy",
        p,
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("REFUSED") && out.contains("GO-2025-3451"),
        "{out}"
    );

    // Rules: the deny reason, and an allow rule overriding it.
    std::fs::write(
        &policy,
        format!(
            "{base}block_vulnerable = true\n[[deny]]\nmodule = \"golang.org/x/*\"\nversions = [\"<v0.3.8\"]\n\
             reason = \"old x/ modules\"\n[[allow]]\nmodule = \"golang.org/x/text\"\nversions = [\"v0.3.7\"]\n\
             reason = \"pinned by vendor, SEC-3\"\n"
        ),
    )
    .unwrap();
    let o = modgate(&["policy", "check", "golang.org/x/net@v0.0.1", "--policy", p]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("old x/ modules"), "{}", stdout(&o));
    let o = modgate(&["policy", "check", "golang.org/x/text@v0.3.7", "--policy", p]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("pinned by vendor, SEC-3") && out.contains("overridden"),
        "{out}"
    );

    // Bad use is said clearly.
    let o = modgate(&["policy", "check", "golang.org/x/text"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--policy"));
    let o = modgate(&["policy", "check", "golang.org/x/text", "--policy", p]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("MODULE@VERSION"));
}

#[test]
fn exposure_lists_cached_versions_a_new_advisory_refuses() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // Cache a few versions through a server with no policy, then stop it.
    let mut mg = Modgate::against(&up, &data);
    for path in [
        "/github.com/boltdb-go/bolt/@v/v1.3.1.zip",
        "/github.com/boltdb-go/bolt/@v/v1.3.1.info",
        "/github.com/boltdb/bolt/@v/v1.3.1.zip",
        "/example.com/hello/@v/v1.1.0.mod",
    ] {
        assert_eq!(mg.get(path).0, 200, "{path}");
    }
    mg.stop();

    let adv = work
        .path()
        .join("ossf/osv/malicious/go/github.com/boltdb-go/bolt");
    std::fs::create_dir_all(&adv).unwrap();
    std::fs::write(
        adv.join("MAL-2025-2545.json"),
        r#"{"id":"MAL-2025-2545","summary":"Malicious code in github.com/boltdb-go/bolt (Go)",
           "affected":[{"package":{"ecosystem":"Go","name":"github.com/boltdb-go/bolt"},
           "ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}"#,
    )
    .unwrap();
    let policy = work.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[advisories]\nmalicious = [{:?}]\n[[deny]]\nmodule = \"example.com/hello\"\nversions = [\"v1.1.0\"]\nreason = \"held for review\"\n",
            work.path().join("ossf").display().to_string()
        ),
    )
    .unwrap();
    let (p, d) = (policy.to_str().unwrap(), data.to_str().unwrap());
    let o = modgate(&["policy", "exposure", "--policy", p, "--data-dir", d]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Each exposed version with who fetched it (the audit trail of the
    // server that cached them: the test client on 127.0.0.1).
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[0].starts_with("example.com/hello@v1.1.0 (mod): deny policy line 4: held for review"),
        "{out}"
    );
    assert_eq!(lines[1], "  fetched by: 127.0.0.1", "{out}");
    assert!(
        lines[2].starts_with("github.com/boltdb-go/bolt@v1.3.1 ("),
        "{out}"
    );
    assert!(lines[2].contains("MAL-2025-2545"), "{out}");
    assert_eq!(lines[3], "  fetched by: 127.0.0.1", "{out}");
    assert_eq!(lines[4], "2 cached version(s) refused by the policy");

    let o = modgate(&[
        "policy",
        "check",
        "github.com/boltdb-go/bolt@v1.3.1",
        "--policy",
        p,
        "--data-dir",
        d,
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("cached: "), "{out}");
    assert!(
        out.contains("malicious") && out.contains("MAL-2025-2545"),
        "{out}"
    );
}

#[test]
fn policy_commands_ask_a_running_server() {
    let up = RefUpstream::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let policy = work.path().join("policy.toml");
    std::fs::write(&policy, "# nothing denied yet\n").unwrap();
    let mut cfg = test_config(&data, &up.url, &up.gosumdb());
    cfg.policy = Some(policy.clone());
    let mut mg = Modgate::start(cfg);
    assert_eq!(mg.get("/example.com/hello/@v/v1.1.0.mod").0, 200);
    std::fs::write(
        &policy,
        "[[deny]]\nmodule = \"example.com/hello\"\nreason = \"held for review\"\n",
    )
    .unwrap();

    // No --policy: the server's own policy file, judged beside the running
    // server (its store is not opened twice) with who fetched each version.
    let d = data.to_str().unwrap();
    let o = modgate(&["policy", "exposure", "--data-dir", d]);
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("example.com/hello@v1.1.0 (mod): deny"),
        "{out}"
    );
    assert!(out.contains("  fetched by: 127.0.0.1"), "{out}");
    let o = modgate(&[
        "policy",
        "check",
        "example.com/hello@v1.1.0",
        "--data-dir",
        d,
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("REFUSED") && out.contains("cached: mod"),
        "{out}"
    );
    mg.stop();

    // Stopped: the same commands open the data dir; without --policy they say what is missing.
    let o = modgate(&["policy", "exposure", "--data-dir", d]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--policy"));
    let p = policy.to_str().unwrap();
    let o = modgate(&["policy", "exposure", "--data-dir", d, "--policy", p]);
    assert!(
        stdout(&o).contains("  fetched by: 127.0.0.1"),
        "{}",
        stdout(&o)
    );
}
