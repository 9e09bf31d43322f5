//! The client against logs built here with modgate's own tlog and a test
//! signer: forks (with a checkable proof), forged tiles at many tree sizes,
//! compare-and-swap of the persisted tree, cache behaviour.

mod sumdb_support;

use modgate::sumdb::client::{Client, ClientError};
use modgate::sumdb::note::{self, Signer, key_pair_from_seed};
use modgate::sumdb::tlog::*;
use std::sync::Arc;
use sumdb_support::{DirOps, block_on};

/// A served log: records `m<i>`, its tiles at `size`, lookups and notes.
struct TestLog {
    records: Vec<String>,
    storage: Vec<Hash>,
}

fn record(prefix: &str, i: usize) -> String {
    let h = record_hash(format!("{prefix}{i}").as_bytes());
    format!("example.com/{prefix}{i} v1.0.0 h1:{h}\nexample.com/{prefix}{i} v1.0.0/go.mod h1:{h}\n")
}

impl TestLog {
    fn new(records: Vec<String>) -> Self {
        let mut storage = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let hs = stored_hashes(i as i64, r.as_bytes(), &storage).unwrap();
            storage.extend(hs);
        }
        TestLog { records, storage }
    }
    fn tree(&self, n: i64) -> Tree {
        Tree {
            n,
            hash: tree_hash(n, &self.storage).unwrap(),
        }
    }
    fn note(&self, n: i64, s: &Signer) -> Vec<u8> {
        note::sign(
            std::str::from_utf8(&format_tree(&self.tree(n))).unwrap(),
            &[s],
        )
        .unwrap()
    }
    /// Serves the log as a server of size `n` would.
    fn serve(&self, ops: &DirOps, n: i64, s: &Signer) {
        for t in new_tiles(8, 0, n) {
            ops.set(&t.path(), read_tile_data(&t, &self.storage).unwrap());
        }
        let note = self.note(n, s);
        for id in 0..n as usize {
            let mut resp = format!("{id}\n{}\n", self.records[id]).into_bytes();
            resp.extend_from_slice(&note);
            let name = self.records[id].split(' ').next().unwrap();
            ops.set(&format!("lookup/{name}@v1.0.0"), resp);
        }
        ops.set("latest", note);
    }
}

fn keys() -> (Signer, String) {
    let (skey, vkey) = key_pair_from_seed("test.sumdb", &[7u8; 32]);
    (Signer::new(&skey).unwrap(), vkey)
}

fn ops() -> Arc<DirOps> {
    Arc::new(DirOps::new("/nonexistent"))
}

#[test]
fn fork_is_detected_with_a_checkable_proof_and_sticks() {
    let (s, vkey) = keys();
    let common: Vec<String> = (0..300).map(|i| record("m", i)).collect();
    let mut a = common.clone();
    a.extend((0..200).map(|i| record("a", i)));
    let mut b = common;
    b.extend((0..400).map(|i| record("b", i)));
    let (la, lb) = (TestLog::new(a), TestLog::new(b));

    let o = ops();
    la.serve(&o, 500, &s);
    let c = Client::new(o.clone(), &vkey).unwrap();
    block_on(c.lookup("example.com/a7", "v1.0.0")).unwrap();
    assert_eq!(c.latest(), la.tree(500));

    // The server switches to the other branch.
    lb.serve(&o, 700, &s);
    let err = block_on(c.lookup("example.com/b7", "v1.0.0")).unwrap_err();
    let ClientError::Fork(ev) = &err else {
        panic!("{err}")
    };
    assert!(err.is_security());
    assert_eq!(ev.old_tree, la.tree(500));
    assert_eq!(ev.new_tree, lb.tree(700));
    let h = ev.old_hash_in_new.unwrap();
    assert_eq!(h, lb.tree(500).hash);
    assert_ne!(h, ev.old_tree.hash);
    check_tree(&ev.proof, 700, ev.new_tree.hash, 500, h).unwrap();
    assert!(ev.to_string().contains("SECURITY ERROR"));
    assert_eq!(o.security.lock().unwrap().len(), 1);
    assert!(c.is_forked());
    assert!(matches!(
        block_on(c.lookup("example.com/m1", "v1.0.0")),
        Err(ClientError::Forked)
    ));
    // Trust did not move to the forked branch.
    assert_eq!(c.latest(), la.tree(500));

    // Same size, different hash: fork without tiles.
    let o = ops();
    let c = Client::new(o.clone(), &vkey).unwrap();
    block_on(c.verify_note(&la.note(400, &s))).unwrap();
    let err = block_on(c.verify_note(&lb.note(400, &s))).unwrap_err();
    assert!(matches!(err, ClientError::Fork(_)), "{err}");
    assert!(c.is_forked());
}

#[test]
fn forged_level0_tiles_rejected_at_many_sizes() {
    let (s, vkey) = keys();
    let log = TestLog::new((0..66_000).map(|i| record("m", i)).collect());
    let forged_text = "example.com/m0 v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    let mut full_under_partial = 0;
    for n in [
        257i64, 513, 767, 1023, 4097, 65535, 65536, 65537, 65791, 66000,
    ] {
        for id in [0i64, 255, 256, n / 2, n - 1] {
            let o = ops();
            log.serve(&o, n, &s);
            let name = format!("example.com/m{id}");
            let forged = forged_text.replace("m0", &format!("m{id}"));
            let mut resp = format!("{id}\n{forged}\n").into_bytes();
            resp.extend_from_slice(&log.note(n, &s));
            o.set(&format!("lookup/{name}@v1.0.0"), resp);
            let t0 =
                tile_parent(tile_for_index(8, stored_hash_index(0, id)).unwrap(), 0, n).unwrap();
            if t0.is_full() && !tile_parent(t0, 1, n).unwrap().is_full() {
                full_under_partial += 1;
            }
            // Without a patched tile the record does not match.
            let c = Client::new(o.clone(), &vkey).unwrap();
            let err = block_on(c.lookup(&name, "v1.0.0")).unwrap_err();
            assert!(matches!(err, ClientError::RecordMismatch), "{err}");
            // With the tile patched to match, the tile fails to authenticate.
            let mut d = o.serve(&t0.path()).unwrap();
            let off = (id - (t0.n << 8)) as usize * HASH_SIZE;
            d[off..off + HASH_SIZE].copy_from_slice(&record_hash(forged.as_bytes()).0);
            o.set(&t0.path(), d);
            o.cache.lock().unwrap().clear(); // the honest tile was cached above
            let c = Client::new(o.clone(), &vkey).unwrap();
            let err = block_on(c.lookup(&name, "v1.0.0")).unwrap_err();
            assert!(
                matches!(err, ClientError::Tlog(TlogError::InconsistentTile(_))),
                "n={n} id={id}: {err}"
            );
        }
    }
    assert!(full_under_partial >= 8, "{full_under_partial}");
}

#[test]
fn persisted_trust_advances_with_compare_and_swap() {
    let (s, vkey) = keys();
    let log = TestLog::new((0..600).map(|i| record("m", i)).collect());
    let o = ops();
    log.serve(&o, 300, &s);
    let c = Client::new(o.clone(), &vkey).unwrap();
    block_on(c.lookup("example.com/m1", "v1.0.0")).unwrap();
    assert_eq!(
        o.config.lock().unwrap().get("test.sumdb/latest"),
        Some(&log.note(300, &s))
    );
    // Another process advanced the persisted tree meanwhile: the client
    // merges it (proving consistency) before writing, and never goes back.
    o.config
        .lock()
        .unwrap()
        .insert("test.sumdb/latest".into(), log.note(500, &s));
    // The server is at 500 (tiles) but answers this lookup with its 400 note.
    log.serve(&o, 500, &s);
    log.serve(&o, 400, &s);
    block_on(c.lookup("example.com/m2", "v1.0.0")).unwrap();
    assert_eq!(c.latest(), log.tree(500));
    assert_eq!(
        o.config.lock().unwrap().get("test.sumdb/latest"),
        Some(&log.note(500, &s))
    );
    // A fresh client starts from the persisted tree.
    let c2 = Client::new(o.clone(), &vkey).unwrap();
    block_on(c2.lookup("example.com/m3", "v1.0.0")).unwrap();
    assert_eq!(c2.latest(), log.tree(500));
    // A corrupted persisted note is a security error.
    let mut bad = log.note(500, &s);
    let k = bad.len() - 10;
    bad[k] ^= 1;
    o.config
        .lock()
        .unwrap()
        .insert("test.sumdb/latest".into(), bad);
    let c3 = Client::new(o.clone(), &vkey).unwrap();
    assert!(
        block_on(c3.lookup("example.com/m3", "v1.0.0"))
            .unwrap_err()
            .is_security()
    );
}

#[test]
fn full_tiles_cached_and_reused() {
    let (s, vkey) = keys();
    let log = TestLog::new((0..1000).map(|i| record("m", i)).collect());
    let o = ops();
    log.serve(&o, 1000, &s);
    let c = Client::new(o.clone(), &vkey).unwrap();
    block_on(c.lookup("example.com/m10", "v1.0.0")).unwrap();
    let cached: Vec<String> = o.cache.lock().unwrap().keys().cloned().collect();
    assert!(
        cached.contains(&"test.sumdb/tile/8/0/000".to_string()),
        "{cached:?}"
    );
    for k in &cached {
        assert!(!k.contains(".p/"), "{k}");
    }
    // A second client reads the full tile from the cache, not the server.
    o.remote_reads.lock().unwrap().clear();
    let c2 = Client::new(o.clone(), &vkey).unwrap();
    block_on(c2.lookup("example.com/m11", "v1.0.0")).unwrap();
    let reads = o.remote_reads.lock().unwrap().clone();
    assert!(!reads.contains(&"tile/8/0/000".to_string()), "{reads:?}");
    // A corrupted cache entry is caught, not trusted: evicted, fetched again
    // from the database and authenticated, and the good copy cached instead.
    let good = o.cache.lock().unwrap()["test.sumdb/tile/8/0/000"].clone();
    o.cache
        .lock()
        .unwrap()
        .get_mut("test.sumdb/tile/8/0/000")
        .unwrap()[3] ^= 1;
    o.remote_reads.lock().unwrap().clear();
    let c3 = Client::new(o.clone(), &vkey).unwrap();
    block_on(c3.lookup("example.com/m12", "v1.0.0")).unwrap();
    let reads = o.remote_reads.lock().unwrap().clone();
    assert!(reads.contains(&"tile/8/0/000".to_string()), "{reads:?}");
    assert_eq!(o.cache.lock().unwrap()["test.sumdb/tile/8/0/000"], good);
    // But a database that serves the damaged tile too is refused.
    let mut bad = good.clone();
    bad[3] ^= 1;
    o.set("tile/8/0/000", bad.clone());
    o.cache
        .lock()
        .unwrap()
        .insert("test.sumdb/tile/8/0/000".into(), bad);
    let c4 = Client::new(o.clone(), &vkey).unwrap();
    assert!(
        block_on(c4.lookup("example.com/m13", "v1.0.0"))
            .unwrap_err()
            .is_security()
    );
}

/// The proof work of a lookup is a handful of tile reads, and the partial
/// tiles a lookup just authenticated (merging a newer tree) are not fetched
/// again to prove its record, nor by the next lookup at the same tree.
#[test]
fn a_lookup_fetches_each_tile_once() {
    let (s, vkey) = keys();
    let log = TestLog::new((0..1000).map(|i| record("m", i)).collect());
    let o = ops();
    log.serve(&o, 600, &s);
    let c = Client::new(o.clone(), &vkey).unwrap();
    block_on(c.lookup("example.com/m10", "v1.0.0")).unwrap();
    // A newer tree: merging it needs partial tiles of 1000, and so does the record.
    log.serve(&o, 1000, &s);
    o.remote_reads.lock().unwrap().clear();
    block_on(c.lookup("example.com/m990", "v1.0.0")).unwrap();
    let reads = o.remote_reads.lock().unwrap().clone();
    let tiles: Vec<&String> = reads.iter().filter(|r| r.starts_with("tile/")).collect();
    let mut unique = tiles.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(tiles.len(), unique.len(), "a tile fetched twice: {reads:?}");
    assert!(tiles.len() <= 4, "{reads:?}");
    // Another record at the same tree: only the lookup itself.
    o.remote_reads.lock().unwrap().clear();
    block_on(c.lookup("example.com/m991", "v1.0.0")).unwrap();
    let reads = o.remote_reads.lock().unwrap().clone();
    assert_eq!(reads, ["lookup/example.com/m991@v1.0.0"], "{reads:?}");
}

#[test]
fn wrong_key_and_bad_config() {
    let (s, _) = keys();
    let (_, other_vkey) = key_pair_from_seed("test.sumdb", &[8u8; 32]);
    let log = TestLog::new((0..10).map(|i| record("m", i)).collect());
    let o = ops();
    log.serve(&o, 10, &s);
    let c = Client::new(o.clone(), &other_vkey).unwrap();
    let err = block_on(c.lookup("example.com/m1", "v1.0.0")).unwrap_err();
    assert!(matches!(err, ClientError::Note(_)), "{err}");
    assert!(err.is_security());
    assert!(Client::new(o, "not a key").is_err());
}

/// Ops whose first `write_config` loses a race to another writer.
struct Racy {
    inner: Arc<DirOps>,
    raced: std::sync::atomic::AtomicBool,
    other: Vec<u8>,
}

#[async_trait::async_trait]
impl modgate::sumdb::client::ClientOps for Racy {
    async fn read_remote(&self, p: &str) -> Result<Vec<u8>, ClientError> {
        self.inner.read_remote(p).await
    }
    async fn read_config(&self, f: &str) -> Result<Option<Vec<u8>>, ClientError> {
        self.inner.read_config(f).await
    }
    async fn write_config(
        &self,
        f: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), ClientError> {
        if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.inner
                .config
                .lock()
                .unwrap()
                .insert(f.to_string(), self.other.clone());
        }
        self.inner.write_config(f, old, new).await
    }
    async fn read_cache(&self, f: &str) -> Result<Option<Vec<u8>>, ClientError> {
        self.inner.read_cache(f).await
    }
    async fn write_cache(&self, f: &str, d: &[u8]) -> Result<(), ClientError> {
        self.inner.write_cache(f, d).await
    }
    async fn delete_cache(&self, f: &str) -> Result<(), ClientError> {
        self.inner.delete_cache(f).await
    }
    async fn security_error(&self, e: &modgate::sumdb::client::ForkEvidence) {
        self.inner.security_error(e).await
    }
}

#[test]
fn cas_conflict_is_retried() {
    let (s, vkey) = keys();
    let log = TestLog::new((0..600).map(|i| record("m", i)).collect());
    let inner = ops();
    log.serve(&inner, 600, &s);
    log.serve(&inner, 500, &s);
    // Another writer persists an older tree (200) just before our write.
    let racy = Arc::new(Racy {
        inner: inner.clone(),
        raced: false.into(),
        other: log.note(200, &s),
    });
    let c = Client::new(racy, &vkey).unwrap();
    block_on(c.lookup("example.com/m1", "v1.0.0")).unwrap();
    assert_eq!(
        inner.config.lock().unwrap().get("test.sumdb/latest"),
        Some(&log.note(500, &s))
    );
}
