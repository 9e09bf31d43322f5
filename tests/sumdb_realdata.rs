//! Real sum.golang.org data (2020): every lookup's signature, record
//! inclusion through the real tiles, consistency between every pair of signed
//! trees, and forged tiles/records rejected.

mod sumdb_support;

use modgate::sumdb::client::{Client, ClientError};
use modgate::sumdb::lookup::parse_lookup;
use modgate::sumdb::note::{self, Verifier, VerifierList};
use modgate::sumdb::tlog::*;
use std::path::PathBuf;
use std::sync::Arc;
use sumdb_support::{DirOps, block_on, files_under};

const VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/realdata/sum.golang.org-2020/sumdb")
}

struct Entry {
    path: String,
    version: String,
    data: Vec<u8>,
}

fn lookups() -> Vec<Entry> {
    let r = root();
    let files = files_under(&r, "lookup");
    assert_eq!(files.len(), 53);
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix("lookup/").unwrap();
            let (p, v) = rel.rsplit_once('@').unwrap();
            Entry {
                path: modgate::module::unescape_path(p).expect("escaped path"),
                version: modgate::module::unescape_version(v).expect("escaped version"),
                data: std::fs::read(r.join(&f)).unwrap(),
            }
        })
        .collect()
}

fn client(ops: &Arc<DirOps>) -> Client {
    Client::new(ops.clone(), VKEY).unwrap()
}

#[test]
fn every_lookup_signature_verifies() {
    let v = VerifierList(vec![Verifier::new(VKEY).unwrap()]);
    for e in lookups() {
        let l = parse_lookup(&e.data).unwrap();
        let n = note::open(&l.note, &v).unwrap();
        parse_tree(n.text.as_bytes()).unwrap();
        // Any flipped byte of the note fails.
        for i in (0..l.note.len()).step_by(3) {
            let mut bad = l.note.clone();
            bad[i] ^= 0x01;
            assert!(note::open(&bad, &v).is_err());
        }
    }
    let latest = std::fs::read(root().join("latest")).unwrap();
    note::open(&latest, &v).unwrap();
}

#[test]
fn every_lookup_proven_at_its_own_size_and_at_latest() {
    let latest = std::fs::read(root().join("latest")).unwrap();
    let shared_ops = Arc::new(DirOps::new(root()));
    let shared = client(&shared_ops);
    for e in lookups() {
        // A fresh client trusting only this lookup's note.
        let ops = Arc::new(DirOps::new(root()));
        let c = client(&ops);
        let v = block_on(c.lookup(&e.path, &e.version))
            .unwrap_or_else(|err| panic!("{}@{}: {err}", e.path, e.version));
        let l = parse_lookup(&e.data).unwrap();
        assert_eq!(v.id, l.id);
        assert_eq!(v.note, l.note);
        assert!(v.zip_h1.is_some());
        assert_eq!(v.tree, c.latest());
        // The trusted note was persisted.
        assert_eq!(
            ops.config.lock().unwrap().get("sum.golang.org/latest"),
            Some(&l.note)
        );
        // A client trusting the newest tree first proves it there.
        let ops2 = Arc::new(DirOps::new(root()));
        let c2 = client(&ops2);
        block_on(c2.verify_note(&latest)).unwrap();
        let v2 = block_on(c2.lookup(&e.path, &e.version)).unwrap();
        assert_eq!(v2.tree.n, 740257);
        assert_eq!(v2.zip_h1, v.zip_h1);
        // One client through all of them, in directory order.
        block_on(shared.lookup(&e.path, &e.version)).unwrap();
        assert!(ops2.security.lock().unwrap().is_empty());
    }
    assert_eq!(shared.latest().n, 740257);
    // Full tiles were cached, partial ones not.
    let cache = shared_ops.cache.lock().unwrap();
    assert!(!cache.is_empty());
    for k in cache.keys() {
        let t = parse_tile_path(k.strip_prefix("sum.golang.org/").unwrap()).unwrap();
        assert!(t.is_full(), "{k}");
    }
}

#[test]
fn pkg_errors_hash() {
    let ops = Arc::new(DirOps::new(root()));
    let c = client(&ops);
    let v = block_on(c.lookup("github.com/pkg/errors", "v0.9.1")).unwrap();
    assert_eq!(
        v.zip_h1.as_deref(),
        Some("h1:FEBLx1zS214owpjy7qsBeixbURkuhQAwrK5UwLGTwt4=")
    );
    assert!(v.mod_h1.starts_with("h1:"));
    let v = block_on(c.lookup("github.com/BurntSushi/toml", "v0.3.1")).unwrap();
    assert!(v.zip_h1.is_some());
}

#[test]
fn consistency_between_every_pair_of_trees() {
    let mut notes: Vec<Vec<u8>> = lookups()
        .into_iter()
        .map(|e| parse_lookup(&e.data).unwrap().note)
        .collect();
    notes.push(std::fs::read(root().join("latest")).unwrap());
    notes.sort();
    notes.dedup();
    let v = VerifierList(vec![Verifier::new(VKEY).unwrap()]);
    let size = |n: &[u8]| {
        parse_tree(note::open(n, &v).unwrap().text.as_bytes())
            .unwrap()
            .n
    };
    notes.sort_by_key(|n| size(n));
    assert_eq!(notes.len(), 11);
    for a in &notes {
        for b in &notes {
            let ops = Arc::new(DirOps::new(root()));
            let c = client(&ops);
            block_on(c.verify_note(a)).unwrap();
            block_on(c.verify_note(b))
                .unwrap_or_else(|e| panic!("{} then {}: {e}", size(a), size(b)));
            assert_eq!(c.latest().n, size(a).max(size(b)));
            assert!(!c.is_forked());
        }
    }
}

/// The hash of a full tile's subtree.
fn tile_root(data: &[u8]) -> Hash {
    if data.len() == HASH_SIZE {
        return Hash::from_slice(data).unwrap();
    }
    let (l, r) = data.split_at(data.len() / 2);
    node_hash(tile_root(l), tile_root(r))
}

/// Serves `forged_record` for the lookup and patches the level-0 tile (and
/// then, `depth` levels up, each parent) so the forged record hash appears
/// consistent as far up as possible. The honest signed note is kept.
fn forge(e: &Entry, depth: u32, trusted: &[u8]) -> (Arc<DirOps>, ClientError) {
    let l = parse_lookup(&e.data).unwrap();
    let ops = Arc::new(DirOps::new(root()));
    let v = VerifierList(vec![Verifier::new(VKEY).unwrap()]);
    let tree = parse_tree(note::open(trusted, &v).unwrap().text.as_bytes()).unwrap();
    let record = String::from_utf8(l.record.clone()).unwrap();
    let zip = record.lines().next().unwrap().rsplit_once(' ').unwrap().1;
    let forged_record = record.replace(zip, "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    assert_ne!(forged_record, record);
    let mut resp = format!("{}\n{}\n", l.id, forged_record).into_bytes();
    resp.extend_from_slice(&l.note);
    let rel = format!("lookup/{}", {
        let r = root();
        let all = files_under(&r, "lookup");
        all.into_iter()
            .find(|f| std::fs::read(r.join(f)).unwrap() == e.data)
            .unwrap()
            .strip_prefix("lookup/")
            .unwrap()
            .to_string()
    });
    ops.set(&rel, resp);

    // Patch the tile chain.
    let mut t = tile_parent(
        tile_for_index(8, stored_hash_index(0, l.id)).unwrap(),
        0,
        tree.n,
    )
    .unwrap();
    let mut pos = (l.id - (t.n << 8)) as usize;
    let mut new_hash = record_hash(forged_record.as_bytes());
    for _ in 0..=depth {
        let mut d = ops.serve(&t.path()).unwrap();
        d[pos * HASH_SIZE..(pos + 1) * HASH_SIZE].copy_from_slice(&new_hash.0);
        ops.set(&t.path(), d.clone());
        if !t.is_full() {
            break; // a partial tile's parent is the signed tree hash
        }
        new_hash = tile_root(&d);
        let p = tile_parent(t, 1, tree.n).unwrap();
        pos = (t.n - (p.n << 8)) as usize;
        t = p;
    }
    let c = client(&ops);
    block_on(c.verify_note(trusted)).unwrap();
    let err = block_on(c.lookup(&e.path, &e.version)).unwrap_err();
    (ops, err)
}

#[test]
fn forged_records_and_tiles_are_rejected() {
    let latest = std::fs::read(root().join("latest")).unwrap();
    let mut full_under_partial = 0;
    let mut under_full = 0;
    for e in lookups() {
        let l = parse_lookup(&e.data).unwrap();
        for trusted in [&l.note, &latest] {
            let v = VerifierList(vec![Verifier::new(VKEY).unwrap()]);
            let n = parse_tree(note::open(trusted, &v).unwrap().text.as_bytes())
                .unwrap()
                .n;
            let t0 =
                tile_parent(tile_for_index(8, stored_hash_index(0, l.id)).unwrap(), 0, n).unwrap();
            if t0.is_full() {
                let p = tile_parent(t0, 1, n).unwrap();
                if p.is_full() {
                    under_full += 1;
                } else {
                    full_under_partial += 1;
                }
            }
            for depth in 0..3 {
                let (ops, err) = forge(&e, depth, trusted);
                assert!(err.is_security(), "{}: {err}", e.path);
                assert!(
                    matches!(err, ClientError::Tlog(TlogError::InconsistentTile(_))),
                    "{} depth {depth}: {err}",
                    e.path
                );
                assert!(ops.security.lock().unwrap().is_empty());
                // Nothing forged was cached.
                for (k, d) in ops.cache.lock().unwrap().iter() {
                    let path = k.strip_prefix("sum.golang.org/").unwrap();
                    assert_eq!(
                        Some(d.clone()),
                        std::fs::read(root().join(path)).ok(),
                        "{k}"
                    );
                }
            }
        }
    }
    assert!(full_under_partial >= 2, "{full_under_partial}");
    assert!(under_full >= 5, "{under_full}");
}

#[test]
fn record_swap_without_tile_patch_is_rejected() {
    let all = lookups();
    let (a, b) = (&all[0], &all[1]);
    let la = parse_lookup(&a.data).unwrap();
    let lb = parse_lookup(&b.data).unwrap();
    let ops = Arc::new(DirOps::new(root()));
    // b's record under a's id with a's note.
    let mut resp = format!("{}\n", la.id).into_bytes();
    resp.extend_from_slice(&lb.record);
    resp.push(b'\n');
    resp.extend_from_slice(&la.note);
    let rel = files_under(&root(), "lookup")
        .into_iter()
        .find(|f| std::fs::read(root().join(f)).unwrap() == a.data)
        .unwrap();
    ops.set(&rel, resp);
    let c = client(&ops);
    let err = block_on(c.lookup(&a.path, &a.version)).unwrap_err();
    assert!(matches!(err, ClientError::RecordMismatch), "{err}");
    assert!(err.is_security());
}

#[test]
fn unreachable_is_availability() {
    let ops = Arc::new(DirOps::new(root()));
    let c = client(&ops);
    let err = block_on(c.lookup("example.com/nothere", "v1.0.0")).unwrap_err();
    assert!(!err.is_security(), "{err}");
}
