//! The one-time rebuild of an index written with one key per artifact: a `kill -9`
//! in the middle of it loses nothing, and the next start finishes it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use modgate::store::embedded::bulk_put;
use modgate::store::{Entry, Verification};

const VERSIONS: usize = 20_000;

fn legacy_store(root: &std::path::Path) {
    let db = sled::Config::new().path(root.join("index")).open().unwrap();
    let mut batch = Vec::new();
    for i in 0..VERSIONS {
        for kind in ["info", "mod", "zip"] {
            batch.push(Entry {
                module: format!("example.com/m{i:06}"),
                version: "v1.0.0".into(),
                kind: kind.into(),
                digest: format!("{:064x}", i * 3 + kind.len()),
                size: 10,
                verification: Verification {
                    h1: String::new(),
                    sumdb: "test".into(),
                    record_id: i as i64,
                    tree_size: VERSIONS as i64,
                    tree_hash: String::new(),
                    verified_at: 0,
                    authority: Default::default(),
                },
            });
        }
    }
    bulk_put(&db, &batch, true).unwrap();
    db.flush().unwrap();
}

fn cache_ls(data: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modgate"));
    c.args(["cache", "ls", "--data-dir"])
        .arg(data)
        .env("MODGATE_LOG", "warn")
        .stdin(Stdio::null());
    c
}

#[test]
fn a_kill_during_the_index_rebuild_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    legacy_store(dir.path());
    let next = dir.path().join("index.next");

    // Opening the store (here `cache ls` on the stopped data dir) starts the
    // rebuild; killed as soon as the new copy is being written.
    let mut child = cache_ls(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !next.exists() && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "killed before it finished (else grow VERSIONS)"
    );
    assert!(
        dir.path().join("index").exists(),
        "the old index is untouched"
    );

    // The next open throws the half-built copy away and rebuilds.
    let out = cache_ls(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("example.com/m"))
        .collect();
    assert_eq!(lines.len(), VERSIONS, "every version listed once");
    assert!(
        lines.iter().all(|l| l.contains(" info,mod,zip ")),
        "with its three artifacts"
    );
    assert!(!next.exists() && !dir.path().join("index.prev").exists());

    // And the layout before is gone for good: a third open has nothing to do.
    let db = sled::Config::new()
        .path(dir.path().join("index"))
        .open()
        .unwrap();
    assert!(!db.tree_names().iter().any(|n| n.as_ref() == b"artifacts"));
    assert_eq!(db.open_tree("versions").unwrap().len(), VERSIONS);
}
