//! Cross-check against the Go x/mod oracle (`tests/oracle`): a log grown by
//! x/mod's own sumdb server, with its notes, tiles and lookups, verified by
//! modgate — every record against the final tree, every pair of tree sizes,
//! every lookup through the client — and corrupted variants rejected.
//!
//! Sizes are random (seed printed; set `MODGATE_ORACLE_SEED` to replay) and
//! always include multiples and non-multiples of 256 and a final size above
//! 65 536 so level-2 tiles appear.

mod common;
mod sumdb_support;

use modgate::sumdb::client::{Client, ClientError};
use modgate::sumdb::lookup::{parse_lookup, record_hashes};
use modgate::sumdb::note::{self, Signer, Verifier, VerifierList};
use modgate::sumdb::tlog::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use sumdb_support::{DirOps, block_on, files_under};

/// A tiny deterministic generator (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
}

fn sizes(seed: u64) -> Vec<i64> {
    let mut r = Rng(seed);
    let mut s = vec![
        1,
        r.range(2, 256),
        256,
        256 * r.range(2, 40),
        256 * r.range(40, 200) + r.range(1, 256),
        65536,
        65536 + r.range(1, 256),
        65536 + 256 * r.range(2, 12),
        65536 + 256 * r.range(12, 16) + r.range(1, 256),
    ];
    s.sort();
    s.dedup();
    s
}

/// A synchronous tile reader over the oracle directory (any width a
/// server at the final size would serve).
struct DirTiles {
    ops: DirOps,
    memo: Mutex<HashMap<Tile, Vec<u8>>>,
}

impl TileReader for DirTiles {
    fn height(&self) -> u32 {
        8
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        let mut memo = self.memo.lock().unwrap();
        tiles
            .iter()
            .map(|t| {
                if let Some(d) = memo.get(t) {
                    return Ok(d.clone());
                }
                let d = self
                    .ops
                    .serve(&t.path())
                    .ok_or_else(|| TlogError::MissingTile(t.path()))?;
                memo.insert(*t, d.clone());
                Ok(d)
            })
            .collect()
    }
    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

struct Oracle {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    vkey: String,
    skey: String,
    notes: Vec<Vec<u8>>,
    trees: Vec<Tree>,
}

fn run() -> Oracle {
    let seed = std::env::var("MODGATE_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let sizes = sizes(seed);
    eprintln!("oracle seed {seed} (MODGATE_ORACLE_SEED), sizes {sizes:?}");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    common::gobuild::run_oracle(&dir, &sizes, seed, 1);
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    let vkey = read("vkey").trim().to_string();
    let skey = read("skey").trim().to_string();
    let listed: Vec<i64> = read("sizes").lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(listed, sizes);
    let v = VerifierList(vec![Verifier::new(&vkey).unwrap()]);
    let mut notes = Vec::new();
    let mut trees = Vec::new();
    for s in &sizes {
        let n = std::fs::read(dir.join(format!("note/{s}"))).unwrap();
        let t = parse_tree(note::open(&n, &v).unwrap().text.as_bytes()).unwrap();
        assert_eq!(t.n, *s);
        notes.push(n);
        trees.push(t);
    }
    Oracle {
        _tmp: tmp,
        dir,
        vkey,
        skey,
        notes,
        trees,
    }
}

fn client(o: &Oracle, ops: &Arc<DirOps>) -> Client {
    Client::new(ops.clone(), &o.vkey).unwrap()
}

fn lookup_files(dir: &Path) -> Vec<(String, String, String)> {
    files_under(dir, "lookup")
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix("lookup/").unwrap().to_string();
            let (p, v) = rel.rsplit_once('@').unwrap();
            (
                f.clone(),
                modgate::module::unescape_path(p).expect("escaped path"),
                modgate::module::unescape_version(v).expect("escaped version"),
            )
        })
        .collect()
}

#[test]
fn oracle_cross_check() {
    let o = run();
    let last = *o.trees.last().unwrap();
    assert!(last.n > 65536);

    // 1. Tree hashes agree with our own computation from the level-0 tiles,
    //    and every record is in the final tree.
    let tiles = DirTiles {
        ops: DirOps::new(&o.dir),
        memo: Mutex::new(HashMap::new()),
    };
    let thr = TileHashReader::new(last, &tiles);
    let ids: Vec<i64> = (0..last.n).collect();
    let idx: Vec<i64> = ids.iter().map(|&i| stored_hash_index(0, i)).collect();
    let leaves = thr.read_hashes(&idx).unwrap();
    for (&id, leaf) in ids.iter().zip(&leaves) {
        let rec = std::fs::read(o.dir.join(format!("records/{id}"))).unwrap();
        assert_eq!(*leaf, record_hash(&rec), "record {id}");
    }
    let mut storage = Vec::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let hs = stored_hashes_for_record_hash(i as i64, *leaf, &storage).unwrap();
        storage.extend(hs);
    }
    for t in &o.trees {
        assert_eq!(tree_hash(t.n, &storage).unwrap(), t.hash, "tree {}", t.n);
        assert_eq!(tree_hash(t.n, &thr).unwrap(), t.hash);
        // Our tiles are byte-identical to the oracle's.
        for tile in new_tiles(8, 0, t.n) {
            let ours = read_tile_data(&tile, &storage).unwrap();
            let theirs = std::fs::read(o.dir.join(tile.path())).unwrap();
            assert_eq!(ours, theirs, "{tile}");
        }
    }
    // Spot-check record proofs through tiles at every size.
    for t in &o.trees {
        for id in [0, t.n / 2, t.n - 1] {
            let tl = DirTiles {
                ops: DirOps::new(&o.dir),
                memo: Mutex::new(HashMap::new()),
            };
            let r = TileHashReader::new(*t, &tl);
            let p = prove_record(t.n, id, &r).unwrap();
            check_record(&p, t.n, t.hash, id, leaves[id as usize]).unwrap();
        }
    }

    // 2. Every pair of tree sizes, both orders, through the client.
    for (a, na) in o.trees.iter().zip(&o.notes) {
        for (b, nb) in o.trees.iter().zip(&o.notes) {
            let ops = Arc::new(DirOps::new(&o.dir));
            let c = client(&o, &ops);
            block_on(c.verify_note(na)).unwrap();
            block_on(c.verify_note(nb)).unwrap_or_else(|e| panic!("{} then {}: {e}", a.n, b.n));
            assert_eq!(c.latest().n, a.n.max(b.n));
            if a.n < b.n {
                let p = prove_tree(b.n, a.n, &storage).unwrap();
                check_tree(&p, b.n, b.hash, a.n, a.hash).unwrap();
            }
        }
    }

    // 3. Every lookup through the client, with trust starting at each size.
    let lookups = lookup_files(&o.dir);
    assert!(lookups.len() >= 2);
    for (i, (file, path, version)) in lookups.iter().enumerate() {
        let start = &o.notes[i % o.notes.len()];
        let ops = Arc::new(DirOps::new(&o.dir));
        let c = client(&o, &ops);
        block_on(c.verify_note(start)).unwrap();
        let v = block_on(c.lookup(path, version)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(v.tree, last);
        let rec = std::fs::read(o.dir.join(format!("records/{}", v.id))).unwrap();
        let want = record_hashes(&rec, path, version).unwrap();
        assert_eq!(v.zip_h1, want.zip_h1);
        assert_eq!(v.mod_h1, want.mod_h1);
        let l = parse_lookup(&std::fs::read(o.dir.join(file)).unwrap()).unwrap();
        assert_eq!(l.record, rec);
    }

    // 4. Corrupted variants.
    let (file, path, version) = &lookups[lookups.len() / 2];
    let honest = std::fs::read(o.dir.join(file)).unwrap();
    // 4a. Each tile the lookup reads, with one byte flipped.
    let ops = Arc::new(DirOps::new(&o.dir));
    block_on(client(&o, &ops).lookup(path, version)).unwrap();
    let read: Vec<String> = ops
        .remote_reads
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.starts_with("tile/"))
        .cloned()
        .collect();
    assert!(!read.is_empty());
    for tp in &read {
        for pos in [0usize, 31, 32 * 7 + 5] {
            let ops = Arc::new(DirOps::new(&o.dir));
            let mut d = ops.serve(tp).unwrap();
            let pos = pos % d.len();
            d[pos] ^= 0x10;
            ops.set(tp, d);
            let err = block_on(client(&o, &ops).lookup(path, version)).unwrap_err();
            assert!(err.is_security(), "{tp}@{pos}: {err}");
        }
    }
    // 4b. Another record swapped in under the same id and note.
    let l = parse_lookup(&honest).unwrap();
    let other_id = (l.id + 1) % last.n;
    let other = std::fs::read(o.dir.join(format!("records/{other_id}"))).unwrap();
    let mut swapped = format!("{}\n", l.id).into_bytes();
    swapped.extend_from_slice(&other);
    swapped.push(b'\n');
    swapped.extend_from_slice(&l.note);
    let ops = Arc::new(DirOps::new(&o.dir));
    ops.set(file, swapped);
    let err = block_on(client(&o, &ops).lookup(path, version)).unwrap_err();
    assert!(matches!(err, ClientError::RecordMismatch), "{err}");
    // 4c. The record under the other record's id.
    let mut wrong_id = format!("{other_id}\n").into_bytes();
    wrong_id.extend_from_slice(&l.record);
    wrong_id.push(b'\n');
    wrong_id.extend_from_slice(&l.note);
    let ops = Arc::new(DirOps::new(&o.dir));
    ops.set(file, wrong_id);
    assert!(
        block_on(client(&o, &ops).lookup(path, version))
            .unwrap_err()
            .is_security()
    );
    // 4d. Wrong notes: signed by another key; an earlier size's note (record
    //     beyond it, or proven against the larger trusted tree); the final
    //     size with a different hash signed by the real key (a fork).
    let (skey2, _) = note::generate_key("oracle.test").unwrap();
    let other_signer = Signer::new(&skey2).unwrap();
    let forged_note = note::sign(
        &String::from_utf8_lossy(&format_tree(&last)),
        &[&other_signer],
    )
    .unwrap();
    let mut resp = format!("{}\n", l.id).into_bytes();
    resp.extend_from_slice(&l.record);
    resp.push(b'\n');
    resp.extend_from_slice(&forged_note);
    let ops = Arc::new(DirOps::new(&o.dir));
    ops.set(file, resp);
    let err = block_on(client(&o, &ops).lookup(path, version)).unwrap_err();
    assert!(matches!(err, ClientError::Note(_)), "{err}");

    let real_signer = Signer::new(&o.skey).unwrap();
    let mut bad_tree = last;
    bad_tree.hash.0[0] ^= 1;
    let fork_note = note::sign(
        &String::from_utf8_lossy(&format_tree(&bad_tree)),
        &[&real_signer],
    )
    .unwrap();
    let ops = Arc::new(DirOps::new(&o.dir));
    let c = client(&o, &ops);
    block_on(c.verify_note(o.notes.last().unwrap())).unwrap();
    let err = block_on(c.verify_note(&fork_note)).unwrap_err();
    assert!(matches!(err, ClientError::Fork(_)), "{err}");
    assert!(c.is_forked());
    assert_eq!(ops.security.lock().unwrap().len(), 1);
    assert!(matches!(
        block_on(c.lookup(path, version)),
        Err(ClientError::Forked)
    ));

    // A larger tree (whose tiles the server has) with a bogus hash: the
    // tiles cannot authenticate against it, and trust does not advance.
    let mut bigger = o.trees[o.trees.len() - 2];
    bigger.hash.0[7] ^= 4;
    let big_note = note::sign(
        &String::from_utf8_lossy(&format_tree(&bigger)),
        &[&real_signer],
    )
    .unwrap();
    let ops = Arc::new(DirOps::new(&o.dir));
    let c = client(&o, &ops);
    block_on(c.verify_note(&o.notes[0])).unwrap();
    let err = block_on(c.verify_note(&big_note)).unwrap_err();
    assert!(err.is_security(), "{err}");
    assert_eq!(c.latest(), o.trees[0]);
}
