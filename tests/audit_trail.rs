//! The audit trail end to end: two clients on different loopback addresses
//! fetch a module; `modgate audit who` names both and no other, while the
//! server runs (through its admin socket) and after it stops; a refusal is
//! recorded with its reason; a miss answered just before a `kill -9` is in
//! the trail after a restart.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::modgate::{Modgate, http_get_from};
use common::refupstream::{RefUpstream, http_request};
use serde_json::Value;

fn modgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modgate"))
        .args(args)
        .env_remove("MODGATE_CONFIG")
        .env_remove("MODGATE_DATA_DIR")
        .env("MODGATE_LOG", "warn")
        .output()
        .expect("modgate runs")
}

fn ok_stdout(args: &[&str]) -> String {
    let o = modgate(args);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "{args:?}: {err}\n{out}");
    out
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn who_json(data: &str, target: &str) -> Vec<Value> {
    ok_stdout(&["audit", "who", "--data-dir", data, "--json", target])
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// What `audit who` must say about example.com/hello@v1.0.0 after the traffic below.
fn check_who(data: &str) {
    let recs = who_json(data, "example.com/hello@v1.0.0");
    let clients: std::collections::BTreeSet<&str> =
        recs.iter().filter_map(|r| r["client"].as_str()).collect();
    assert_eq!(
        clients,
        ["127.0.0.2", "127.0.0.3"].into_iter().collect(),
        "{recs:#?}"
    );
    // Client 2 fetched the three artifacts (misses), client 3 the zip (a hit).
    assert_eq!(recs.len(), 4, "{recs:#?}");
    for r in &recs {
        assert_eq!(r["module"], "example.com/hello");
        assert_eq!(r["version"], "v1.0.0");
        assert_eq!(r["status"], 200);
        assert_eq!(r["verdict"], "served");
        assert!(r["tree_size"].as_i64().unwrap() > 0, "{r}");
        assert!(r["time"].as_str().unwrap().ends_with('Z'), "{r}");
    }
    let hit = recs
        .iter()
        .find(|r| r["client"] == "127.0.0.3")
        .expect("client 3");
    assert_eq!(hit["kind"], "zip");
    assert_eq!(hit["cache"], "hit");
    assert_eq!(hit["forwarded_for"], "203.0.113.7, 10.0.0.1");
    let kinds: Vec<&str> = recs
        .iter()
        .filter(|r| r["client"] == "127.0.0.2")
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(
        recs.iter()
            .filter(|r| r["client"] == "127.0.0.2")
            .all(|r| r["cache"] == "miss")
    );

    // Text: one line per record, naming the clients, and nobody else.
    let text = ok_stdout(&["audit", "who", "--data-dir", data, "example.com/hello"]);
    assert!(text.contains("client=127.0.0.2"), "{text}");
    assert!(text.contains("client=127.0.0.3"), "{text}");
    assert!(!text.contains("127.0.0.4"), "{text}");
    assert!(
        text.contains("example.com/hello@v1.0.0 zip hit status=200 served tree_size="),
        "{text}"
    );
    // The whole module includes the refused version, with its reason.
    let refused = text
        .lines()
        .find(|l| l.contains("@v1.1.0") && l.contains("status=403"))
        .unwrap_or_else(|| panic!("no refusal in {text}"));
    assert!(
        refused.contains("refused") && refused.contains("reason="),
        "{refused}"
    );
    // Another module's fetcher is not named, and it has its own record.
    let other = who_json(data, "example.com/nested");
    assert!(
        other.iter().all(|r| r["client"] == "127.0.0.4"),
        "{other:?}"
    );
    assert!(!other.is_empty());
    // --since in the future: nothing. export: every record, time-ordered.
    assert_eq!(
        ok_stdout(&[
            "audit",
            "who",
            "--data-dir",
            data,
            "--since",
            "2999-01-01",
            "example.com/hello"
        ]),
        ""
    );
    let all: Vec<Value> = ok_stdout(&["audit", "export", "--data-dir", data, "--since", "1h"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(all.len() >= 6, "{all:?}");
    let times: Vec<u64> = all.iter().map(|r| r["time_us"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn two_clients_are_named_while_serving_and_after_stop() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let mut mg = Modgate::against(&up, dir.path());
    let hello = |v: &str, ext: &str| format!("{}/example.com/hello/@v/{v}.{ext}", mg.url);
    for ext in ["info", "mod", "zip"] {
        let (s, body) = http_get_from(&hello("v1.0.0", ext), ip("127.0.0.2"), &[]);
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    }
    let (s, _) = http_get_from(
        &hello("v1.0.0", "zip"),
        ip("127.0.0.3"),
        &[("X-Forwarded-For", "203.0.113.7, 10.0.0.1")],
    );
    assert_eq!(s, 200);
    let (s, _) = http_get_from(
        &format!("{}/example.com/nested/@v/v1.0.0.mod", mg.url),
        ip("127.0.0.4"),
        &[],
    );
    assert_eq!(s, 200);
    up.tamper("example.com/hello", "v1.1.0", "zip");
    let (s, _) = http_get_from(&hello("v1.1.0", "zip"), ip("127.0.0.5"), &[]);
    assert_eq!(s, 403);

    // While serving: the CLI asks the server through its admin socket (the
    // trail's database is locked by the server). The hit may still be in
    // the writer's queue for a moment: it is written within a second.
    assert!(dir.path().join("admin.sock").exists());
    let deadline = Instant::now() + Duration::from_secs(5);
    while who_json(&data, "example.com/hello@v1.0.0").len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    check_who(&data);

    // Stopped: the CLI reads the data dir itself; the same answers.
    mg.stop();
    drop(mg);
    assert!(!dir.path().join("admin.sock").exists());
    check_who(&data);
}

/// The real binary, run as a child process (as in tests/hardening_faults.rs).
struct Proc {
    child: Child,
    url: String,
}

impl Proc {
    fn start(up: &RefUpstream, data: &Path) -> Proc {
        let gosumdb = up.gosumdb();
        let (child, url) = common::binary::serve(
            &[
                "--data-dir".as_ref(),
                data.as_os_str(),
                "--upstream".as_ref(),
                up.url.as_ref(),
                "--sumdb".as_ref(),
                gosumdb.as_ref(),
            ],
            "info",
            false,
        );
        Proc { child, url }
    }
}

#[test]
fn kill_9_after_a_miss_keeps_its_record() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let mut p = Proc::start(&up, dir.path());
    let r = http_request(
        "GET",
        &format!("{}/example.com/hello/@v/v1.0.0.mod", p.url),
        &[("X-Forwarded-For", "198.51.100.9")],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    // SIGKILL as soon as the answer is in: no shutdown, no final flush.
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    // The stale socket is left behind; the CLI sees nobody answers it.
    assert!(dir.path().join("admin.sock").exists());
    let recs = who_json(&data, "example.com/hello@v1.0.0");
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["cache"], "miss");
    assert_eq!(recs[0]["forwarded_for"], "198.51.100.9");

    // A restart replaces the stale socket and reads the trail back whole.
    let mut p = Proc::start(&up, dir.path());
    let r = http_request(
        "GET",
        &format!("{}/example.com/hello/@v/v1.0.0.mod", p.url),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut recs = who_json(&data, "example.com/hello@v1.0.0");
    while recs.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        recs = who_json(&data, "example.com/hello@v1.0.0");
    }
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[1]["cache"], "hit");
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
    let _ = p.child.wait();
}

#[test]
fn hits_are_durable_within_a_second() {
    let up = RefUpstream::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let mut p = Proc::start(&up, dir.path());
    let url = format!("{}/example.com/hello/@v/v1.0.0.info", p.url);
    for _ in 0..20 {
        assert_eq!(http_request("GET", &url, &[], None).unwrap().status, 200);
    }
    // Batched hits reach the disk within flush_ms (500 ms by default); wait
    // a generous second and a half, then SIGKILL.
    std::thread::sleep(Duration::from_millis(1500));
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let recs = who_json(&data, "example.com/hello@v1.0.0");
    assert_eq!(recs.len(), 20, "{recs:?}");
    assert_eq!(recs.iter().filter(|r| r["cache"] == "hit").count(), 19);
}
