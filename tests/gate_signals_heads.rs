//! The trusted-head history that dates checksum-database records: kept by the
//! client as its trusted head advances, persisted, reloaded; and kept current
//! by the server's head watcher against the reference upstream's live log.

mod common;
mod sumdb_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::modgate::{Modgate, test_config};
use common::refupstream::RefUpstream;
use modgate::gate::cooldown::{self, Cooldown, Subject};
use modgate::store::{EmbeddedStore, Meta, Store, now_secs};
use modgate::sumdb::client::Client;
use modgate::sumdb::heads::{HeadHistory, RecordDate, heads_file};
use modgate::sumdb::note::{self, Signer, key_pair_from_seed};
use modgate::sumdb::tlog::*;
use modgate::trust::stored_head_history;
use sumdb_support::{DirOps, block_on};

/// A log of records `m<i>`, served at a chosen size (as in sumdb_client.rs).
struct TestLog {
    records: Vec<String>,
    storage: Vec<Hash>,
}

impl TestLog {
    fn new(n: usize) -> Self {
        let records: Vec<String> = (0..n)
            .map(|i| {
                let h = record_hash(format!("m{i}").as_bytes());
                format!("example.com/m{i} v1.0.0 h1:{h}\nexample.com/m{i} v1.0.0/go.mod h1:{h}\n")
            })
            .collect();
        let mut storage = Vec::new();
        for (i, r) in records.iter().enumerate() {
            storage.extend(stored_hashes(i as i64, r.as_bytes(), &storage).unwrap());
        }
        TestLog { records, storage }
    }
    fn note(&self, n: i64, s: &Signer) -> Vec<u8> {
        let tree = Tree {
            n,
            hash: tree_hash(n, &self.storage).unwrap(),
        };
        note::sign(std::str::from_utf8(&format_tree(&tree)).unwrap(), &[s]).unwrap()
    }
    fn serve(&self, ops: &DirOps, n: i64, s: &Signer) {
        for t in new_tiles(8, 0, n) {
            ops.set(&t.path(), read_tile_data(&t, &self.storage).unwrap());
        }
        let note = self.note(n, s);
        for id in 0..n as usize {
            let mut resp = format!("{id}\n{}\n", self.records[id]).into_bytes();
            resp.extend_from_slice(&note);
            ops.set(&format!("lookup/example.com/m{id}@v1.0.0"), resp);
        }
        ops.set("latest", note);
    }
}

#[test]
fn the_client_records_each_new_head_and_persists_the_history() {
    let (skey, vkey) = key_pair_from_seed("test.sumdb", &[7u8; 32]);
    let s = Signer::new(&skey).unwrap();
    let log = TestLog::new(600);
    let ops = Arc::new(DirOps::new("/nonexistent"));
    let file = heads_file("test.sumdb");

    log.serve(&ops, 300, &s);
    let c = Client::new(ops.clone(), &vkey).unwrap();
    assert_eq!(c.head_history().first(), None, "nothing watched yet");
    let before = now_secs();
    let tree = block_on(c.watch_head()).unwrap();
    assert_eq!(tree.n, 300);
    let h = c.head_history();
    let first = h.first().expect("first head recorded");
    assert_eq!(first.size, 300);
    assert!(first.seen >= before && first.seen <= now_secs());
    // The first head is written at once: it is the boundary of the watch.
    let stored = ops.config.lock().unwrap().get(&file).cloned();
    assert_eq!(
        HeadHistory::decode(&stored.expect("persisted")).unwrap(),
        *h
    );

    // A lookup that brings a newer note advances the history too.
    log.serve(&ops, 450, &s);
    let v = block_on(c.lookup("example.com/m400", "v1.0.0")).unwrap();
    assert_eq!(v.id, 400);
    let h = c.head_history();
    assert!(matches!(h.date(120), RecordDate::BeforeWatch { .. }));
    match h.date(v.id) {
        RecordDate::FirstSeen { head } => {
            assert_eq!(head.size, 450);
            assert!(head.seen >= first.seen && head.seen <= now_secs());
        }
        other => panic!("record 400 dated {other:?}"),
    }
    // A past note (an older lookup answer) changes nothing.
    log.serve(&ops, 350, &s);
    block_on(c.lookup("example.com/m320", "v1.0.0")).unwrap();
    assert_eq!(c.head_history().newest().map(|n| n.size), Some(450));

    // The second head waits for the next write; a flush writes it, and a
    // client started afterwards (a restart) carries on from the stored one.
    block_on(c.flush_head_history());
    let c2 = Client::new(ops.clone(), &vkey).unwrap();
    block_on(c2.load()).unwrap();
    assert_eq!(*c2.head_history(), *c.head_history());

    // Heads trusted after the last write (lost in a crash) are dated at the
    // next start: later than they were seen, never earlier.
    log.serve(&ops, 480, &s);
    block_on(c.lookup("example.com/m470", "v1.0.0")).unwrap();
    let written = HeadHistory::decode(&ops.config.lock().unwrap()[&file]).unwrap();
    assert_eq!(written.newest().map(|n| n.size), Some(450), "not due yet");
    let restart = now_secs();
    let c4 = Client::new(ops.clone(), &vkey).unwrap();
    block_on(c4.load()).unwrap();
    match c4.head_history().date(470) {
        RecordDate::FirstSeen { head } => {
            assert_eq!(head.size, 480);
            assert!(head.seen >= restart);
        }
        other => panic!("record 470 dated {other:?}"),
    }

    // A damaged stored history is replaced, not fatal: the watch restarts.
    ops.config
        .lock()
        .unwrap()
        .insert(file.clone(), b"{not json".to_vec());
    let c3 = Client::new(ops.clone(), &vkey).unwrap();
    block_on(c3.load()).unwrap();
    assert_eq!(c3.head_history().first(), None);
    log.serve(&ops, 500, &s);
    block_on(c3.lookup("example.com/m490", "v1.0.0")).unwrap();
    assert_eq!(c3.head_history().first().map(|f| f.size), Some(500));
    let stored = ops.config.lock().unwrap().get(&file).cloned().unwrap();
    assert_eq!(
        HeadHistory::decode(&stored)
            .unwrap()
            .first()
            .map(|f| f.size),
        Some(500)
    );
}

fn latest_fetches(up: &RefUpstream) -> u64 {
    up.hits("/sumdb/refsum.test/latest")
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The record id the reference database gives `module@version` (looking it
/// up adds it to the log, as sum.golang.org does on first lookup).
fn record_id(up: &RefUpstream, module: &str, version: &str) -> i64 {
    let body = up
        .get(&format!("/sumdb/refsum.test/lookup/{module}@{version}"))
        .text();
    body.lines().next().unwrap().parse().unwrap()
}

#[test]
fn the_server_watches_the_head_and_dates_a_new_record_within_seconds() {
    let up = RefUpstream::start(&[]);
    let old = record_id(&up, "example.com/hello", "v1.0.0");
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    cfg.watch.head_interval_secs = 1;
    let mut mg = Modgate::start(cfg);

    // The first round trusts the log as it is: the watch's boundary.
    wait_for("the first watch", Duration::from_secs(60), || {
        latest_fetches(&up) >= 1
    });
    // A version the database records only now, after modgate started watching.
    let t_new = now_secs();
    let new = record_id(&up, "example.com/hello", "v1.1.0");
    assert!(new > old);
    // Fetched by the watcher at its next round, which is over once the
    // round after it has begun (rounds run one after the other).
    let seen = latest_fetches(&up);
    wait_for(
        "the watcher to see the new head",
        Duration::from_secs(60),
        || latest_fetches(&up) >= seen + 2,
    );
    mg.stop();

    let store = EmbeddedStore::open(data.path()).unwrap();
    assert!(
        block_on(store.meta_get(Meta::Trust, &heads_file("refsum.test")))
            .unwrap()
            .is_some(),
        "head history persisted at shutdown"
    );
    let h = block_on(stored_head_history(&store, "refsum.test")).unwrap();
    assert!(
        matches!(h.date(old), RecordDate::BeforeWatch { .. }),
        "{:?}",
        h.date(old)
    );
    match h.date(new) {
        RecordDate::FirstSeen { head } => {
            assert!(head.size > new);
            // Dated by the watch, seconds after it entered the log (generous
            // bound: the watch interval, a slow machine).
            assert!(
                head.seen >= t_new && head.seen <= t_new + 60,
                "seen {} vs entered {t_new}",
                head.seen
            );
        }
        other => panic!("new record dated {other:?}: {:?}", h.heads()),
    }

    // The cooldown on this real history: the new version is held however
    // far back its .info Time is set; the one already in the log when the
    // watch began is served (a fresh mirror does not hold what exists).
    let three_days = Cooldown {
        min_age: Duration::from_secs(3 * 86400),
        exempt: &|_: &str| false,
    };
    let years_ago = now_secs() - 10 * 365 * 86400;
    let fresh = Subject {
        module: "example.com/hello",
        version: "v1.1.0",
        record_id: new,
        info_time: Some(years_ago),
    };
    let hold = cooldown::check(&three_days, &fresh, &h, now_secs()).expect("held");
    assert!(hold.until >= t_new + 3 * 86400, "{hold:?}");
    assert!(
        hold.reason.contains("example.com/hello@v1.1.0"),
        "{}",
        hold.reason
    );
    let existing = Subject {
        version: "v1.0.0",
        record_id: old,
        ..fresh
    };
    assert_eq!(
        cooldown::check(&three_days, &existing, &h, now_secs()),
        None
    );

    // `modgate trust show` tells an operator since when modgate has watched.
    drop(store);
    let shown =
        modgate::admin::trust::render(&modgate::admin::trust::show(data.path(), None).unwrap());
    let first = h.first().unwrap().size;
    assert!(
        shown.contains(&format!("watched since: tree size {first} at ")),
        "{shown}"
    );
    assert!(shown.contains("newest head seen: tree size "), "{shown}");
}

#[test]
fn an_offline_server_does_not_watch() {
    let up = RefUpstream::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    cfg.watch.head_interval_secs = 1;
    cfg.offline = true;
    let mg = Modgate::start(cfg);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(latest_fetches(&up), 0);
    drop(mg);
}

#[test]
fn the_watcher_rides_out_an_outage_and_catches_a_fork() {
    let up = RefUpstream::start(&[]);
    let old = record_id(&up, "example.com/hello", "v1.0.0");
    let data = tempfile::tempdir().unwrap();
    let mut cfg = test_config(data.path(), &up.url, &up.gosumdb());
    cfg.watch.head_interval_secs = 1;
    let mut mg = Modgate::start(cfg);
    wait_for("the first watch", Duration::from_secs(60), || {
        latest_fetches(&up) >= 1
    });

    // The database goes away for a few rounds, then comes back with a new record.
    up.down("sumdb", "503");
    let during = latest_fetches(&up);
    wait_for("rounds during the outage", Duration::from_secs(60), || {
        latest_fetches(&up) >= during + 2
    });
    up.up();
    let new = record_id(&up, "example.com/hello", "v1.1.0");
    let after = latest_fetches(&up);
    wait_for("a round after the outage", Duration::from_secs(60), || {
        latest_fetches(&up) >= after + 2
    });

    // A forked log is caught by the watcher alone (no client asked), with
    // evidence saved, exactly as on any other verified path.
    up.fork();
    let evidence = data.path().join("evidence");
    wait_for(
        "the watcher to catch the fork",
        Duration::from_secs(60),
        || std::fs::read_dir(&evidence).is_ok_and(|mut d| d.next().is_some()),
    );
    let (status, _, _) = mg.get("/readyz");
    assert_eq!(status, 503, "a proven fork makes the server unready");
    mg.stop();

    let store = EmbeddedStore::open(data.path()).unwrap();
    let h = block_on(stored_head_history(&store, "refsum.test")).unwrap();
    assert!(matches!(h.date(old), RecordDate::BeforeWatch { .. }));
    assert!(
        matches!(h.date(new), RecordDate::FirstSeen { head } if head.size > new),
        "{:?}",
        h.heads()
    );
}
