//! The tiled log: x/mod's TestTree port (heights 2 and 8), tile authentication
//! (every tile of every read, including full tiles under partial parents),
//! and property tests for record and tree proofs.

use modgate::sumdb::tlog::*;
use proptest::prelude::*;
use std::sync::OnceLock;

/// The stored hashes and tree hashes of a log of `n` records `"leaf i"`.
struct Log {
    storage: Vec<Hash>,
    trees: Vec<Hash>, // trees[i] = hash of tree of size i
    leaves: Vec<Hash>,
}

fn build(n: i64) -> Log {
    let mut log = Log {
        storage: Vec::new(),
        trees: vec![Hash::default()],
        leaves: Vec::new(),
    };
    for i in 0..n {
        let data = format!("leaf {i}");
        let hashes = stored_hashes(i, data.as_bytes(), &log.storage).unwrap();
        log.storage.extend(hashes);
        assert_eq!(stored_hash_count(i + 1), log.storage.len() as i64);
        log.leaves.push(record_hash(data.as_bytes()));
        log.trees.push(tree_hash(i + 1, &log.storage).unwrap());
    }
    log
}

fn big_log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| build(70_000))
}

/// Every tile a server of size `n` would serve (all partial widths too).
fn server_tiles(log: &Log, h: u32, n: i64) -> MemTiles {
    let mut m = MemTiles::new(h);
    for t in new_tiles(h, 0, n) {
        m.insert(t, read_tile_data(&t, &log.storage).unwrap());
    }
    m
}

/// Only the tiles a read needs, at their exact widths.
fn exact_tiles(log: &Log, h: u32, tree: Tree, indexes: &[i64]) -> MemTiles {
    let mut m = MemTiles::new(h);
    for t in tiles_for_hashes(tree, h, indexes).unwrap() {
        m.insert(t, read_tile_data(&t, &log.storage).unwrap());
    }
    m
}

fn tree(log: &Log, n: i64) -> Tree {
    Tree {
        n,
        hash: log.trees[n as usize],
    }
}

#[test]
fn x_mod_test_tree_port() {
    for h in [2u32, 8] {
        let log = build(100);
        for i in 0..100i64 {
            let t = tree(&log, i + 1);
            // New tiles extend the earlier ones.
            for tile in new_tiles(h, i, i + 1) {
                let data = read_tile_data(&tile, &log.storage).unwrap();
                if tile.w > 1 {
                    let old = Tile {
                        w: tile.w - 1,
                        ..tile
                    };
                    let old_data = read_tile_data(&old, &log.storage).unwrap();
                    assert_eq!(&data[..old_data.len()], &old_data[..]);
                }
            }
            let tiles = server_tiles(&log, h, i + 1);
            let thr = TileHashReader::new(t, &tiles);
            for j in 0..=i {
                let p = prove_record(i + 1, j, &log.storage).unwrap();
                check_record(&p, i + 1, t.hash, j, log.leaves[j as usize]).unwrap();
                for k in 0..p.len() {
                    let mut bad = p.clone();
                    bad[k].0[0] ^= 1;
                    assert!(check_record(&bad, i + 1, t.hash, j, log.leaves[j as usize]).is_err());
                }
                let got = thr.read_hashes(&[stored_hash_index(0, j)]).unwrap();
                assert_eq!(got[0], log.leaves[j as usize]);
                let p2 = prove_record(i + 1, j, &thr).unwrap();
                assert_eq!(p, p2);
            }
            assert!(thr.read_hashes(&[stored_hash_index(0, i + 1)]).is_err());
            for j in 1..=i + 1 {
                assert_eq!(tree_hash(j, &thr).unwrap(), log.trees[j as usize]);
                let p = prove_tree(i + 1, j, &thr).unwrap();
                check_tree(&p, i + 1, t.hash, j, log.trees[j as usize]).unwrap();
                for k in 0..p.len() {
                    let mut bad = p.clone();
                    bad[k].0[0] ^= 1;
                    assert!(check_tree(&bad, i + 1, t.hash, j, log.trees[j as usize]).is_err());
                }
            }
        }
    }
}

#[test]
fn tiles_hold_the_stored_hashes() {
    let log = build(300);
    for h in [1u32, 2, 3, 8] {
        let tiles = server_tiles(&log, h, 300);
        for x in 0..stored_hash_count(300) {
            let t = tile_for_index(h, x).unwrap();
            let d = tiles.read_tiles(&[t]).unwrap();
            assert_eq!(
                hash_from_tile(&t, &d[0], x).unwrap(),
                log.storage[x as usize]
            );
        }
    }
}

#[test]
fn plan_is_exactly_what_is_read() {
    let log = big_log();
    for &n in &[
        1i64, 255, 256, 257, 511, 65535, 65536, 65537, 66000, 69999, 70000,
    ] {
        let t = tree(log, n);
        for &rec in &[0i64, n / 2, n - 1] {
            let idx = [stored_hash_index(0, rec)];
            let tiles = exact_tiles(log, 8, t, &idx);
            let thr = TileHashReader::new(t, &tiles);
            assert_eq!(thr.read_hashes(&idx).unwrap()[0], log.leaves[rec as usize]);
            let mut saved: Vec<Tile> = tiles.take_saved().into_iter().map(|(t, _)| t).collect();
            let mut planned = tiles_for_hashes(t, 8, &idx).unwrap();
            saved.sort();
            planned.sort();
            assert_eq!(saved, planned);
        }
        for &old in &[1i64, n / 3, n - 1, n] {
            if old < 1 {
                continue;
            }
            let idx = tree_hash_indexes(old);
            let tiles = exact_tiles(log, 8, t, &idx);
            let thr = TileHashReader::new(t, &tiles);
            assert_eq!(tree_hash(old, &thr).unwrap(), log.trees[old as usize]);
            let pidx = tree_proof_indexes(n, old).unwrap();
            let tiles = exact_tiles(log, 8, t, &pidx);
            let thr = TileHashReader::new(t, &tiles);
            let p = prove_tree(n, old, &thr).unwrap();
            check_tree(&p, n, t.hash, old, log.trees[old as usize]).unwrap();
            let ridx = record_proof_indexes(n, old - 1).unwrap();
            let tiles = exact_tiles(log, 8, t, &ridx);
            let thr = TileHashReader::new(t, &tiles);
            let p = prove_record(n, old - 1, &thr).unwrap();
            check_record(&p, n, t.hash, old - 1, log.leaves[old as usize - 1]).unwrap();
        }
    }
}

/// Flips bytes in each tile of a read in turn: every flip must be caught.
fn assert_every_tile_authenticated(log: &Log, h: u32, n: i64, indexes: &[i64]) {
    let t = tree(log, n);
    let planned = tiles_for_hashes(t, h, indexes).unwrap();
    for victim in &planned {
        let data = read_tile_data(victim, &log.storage).unwrap();
        let step = (data.len() / 7).max(1);
        for pos in (0..data.len()).step_by(step).chain([data.len() - 1]) {
            let mut m = MemTiles::new(h);
            for tile in &planned {
                let mut d = read_tile_data(tile, &log.storage).unwrap();
                if tile == victim {
                    d[pos] ^= 0x40;
                }
                m.insert(*tile, d);
            }
            let r = TileHashReader::new(t, &m).read_hashes(indexes);
            assert!(
                matches!(r, Err(TlogError::InconsistentTile(_))),
                "n={n} tile {victim} byte {pos} accepted: {r:?}"
            );
            assert!(m.take_saved().is_empty(), "unauthenticated tile saved");
        }
    }
}

#[test]
fn every_tile_of_a_read_is_authenticated() {
    let log = big_log();
    for &n in &[
        1i64, 2, 255, 256, 257, 300, 512, 513, 65536, 65537, 65792, 66000, 70000,
    ] {
        for &rec in &[0i64, 1, 255, 256, n / 2, n - 1] {
            if rec < n {
                assert_every_tile_authenticated(log, 8, n, &[stored_hash_index(0, rec)]);
            }
        }
        assert_every_tile_authenticated(log, 8, n, &tree_hash_indexes((n / 2).max(1)));
    }
    let small = build(100);
    for n in 1..100 {
        for rec in 0..n {
            assert_every_tile_authenticated(&small, 2, n, &[stored_hash_index(0, rec)]);
        }
    }
}

/// The attack behind the known tileHashReader bug: a full level-0 tile whose
/// parent is a partial (right-edge) tile is patched so that a forged record
/// hash appears in it. The reader must refuse it.
#[test]
fn forged_full_tile_under_partial_parent_is_rejected() {
    let log = big_log();
    let mut interesting = 0;
    // Tree sizes with many complete subtrees (many right-edge hashes deduplicated
    // into few tiles), where the record's full tile has a partial parent.
    for &n in &[513i64, 767, 1023, 4095, 65535, 65536 + 511, 69999, 70000] {
        let t = tree(log, n);
        for rec in [0i64, 256, (n / 256 - 1) * 256 + 7] {
            let leaf_tile = tile_for_index(8, stored_hash_index(0, rec)).unwrap();
            let full = leaf_tile.full();
            let parent = tile_parent(full, 1, n).unwrap();
            if full.n < n / 256 && !parent.is_full() {
                interesting += 1;
            }
            let forged = record_hash(b"example.com/m v1.0.0 h1:forged=\n");
            let idx = [stored_hash_index(0, rec)];
            let mut m = MemTiles::new(8);
            for tile in tiles_for_hashes(t, 8, &idx).unwrap() {
                let mut d = read_tile_data(&tile, &log.storage).unwrap();
                if tile == full {
                    let off = (rec % 256) as usize * HASH_SIZE;
                    d[off..off + HASH_SIZE].copy_from_slice(&forged.0);
                }
                m.insert(tile, d);
            }
            let r = TileHashReader::new(t, &m).read_hashes(&idx);
            assert!(r.is_err(), "n={n} rec={rec}: forged tile accepted: {r:?}");
        }
    }
    assert!(
        interesting >= 10,
        "only {interesting} full-under-partial cases"
    );
}

#[test]
fn partial_tiles_answered_by_wider_tiles() {
    let log = big_log();
    // A server at 70000 can answer every read for a smaller tree: its partial
    // tiles are prefixes of the wider ones it has.
    let tiles = server_tiles(log, 8, 70000);
    let only_latest = {
        let mut m = MemTiles::new(8);
        let t = tree(log, 70000);
        // Just full tiles and the widest partial tiles.
        for tile in new_tiles(8, 0, 70000) {
            let latest_width = tile.is_full() || tile_parent(tile, 0, 70000) == Some(tile);
            if latest_width {
                m.insert(tile, read_tile_data(&tile, &log.storage).unwrap());
            }
        }
        let _ = t;
        m
    };
    for &n in &[66000i64, 65537, 300, 1] {
        let t = tree(log, n);
        for reader in [&tiles, &only_latest] {
            let thr = TileHashReader::new(t, reader);
            assert_eq!(tree_hash(n, &thr).unwrap(), t.hash);
            let x = stored_hash_index(0, n - 1);
            assert_eq!(
                thr.read_hashes(&[x]).unwrap()[0],
                log.leaves[n as usize - 1]
            );
        }
    }
    // Over-long data for a partial tile is truncated by the reader itself.
    struct Wide<'a>(&'a Log);
    impl TileReader for Wide<'_> {
        fn height(&self) -> u32 {
            8
        }
        fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
            tiles
                .iter()
                .map(|t| {
                    // As wide as a server at 70000 records could make it.
                    let widest = tile_parent(*t, 0, 70000).unwrap();
                    let wide = Tile {
                        w: (t.w + 5).min(widest.w),
                        ..*t
                    };
                    Ok(read_tile_data(&wide, &self.0.storage).unwrap())
                })
                .collect()
        }
        fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
    }
    let t = tree(log, 66000 - 10);
    let w = Wide(log);
    let thr = TileHashReader::new(t, &w);
    assert_eq!(tree_hash(t.n, &thr).unwrap(), t.hash);
}

#[test]
fn wrong_tree_hash_rejects_tiles() {
    let log = build(1000);
    let tiles = server_tiles(&log, 8, 1000);
    let mut t = tree(&log, 1000);
    t.hash.0[5] ^= 1;
    let r = TileHashReader::new(t, &tiles).read_hashes(&[stored_hash_index(0, 3)]);
    assert!(matches!(r, Err(TlogError::InconsistentTile(_))));
    assert!(tiles.take_saved().is_empty());
}

fn prop_log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| build(3000))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn record_proofs(t in 1i64..3000, frac in 0.0f64..1.0, k in 0usize..64, bit in 0u8..8) {
        let log = prop_log();
        let n = ((t as f64) * frac) as i64;
        let th = log.trees[t as usize];
        let p = prove_record(t, n, &log.storage).unwrap();
        prop_assert!(check_record(&p, t, th, n, log.leaves[n as usize]).is_ok());
        if !p.is_empty() {
            let mut bad = p.clone();
            bad[k % p.len()].0[k % 32] ^= 1 << bit;
            prop_assert!(check_record(&bad, t, th, n, log.leaves[n as usize]).is_err());
            prop_assert!(check_record(&p[1..], t, th, n, log.leaves[n as usize]).is_err());
        }
        let other = log.leaves[(n as usize + 1) % t as usize];
        if t > 1 {
            prop_assert!(check_record(&p, t, th, n, other).is_err());
        }
        prop_assert!(check_record(&p, t + 1, log.trees[t as usize + 1], n, log.leaves[n as usize]).is_err() || t + 1 == 1);
        // Through authenticated tiles the proof is the same.
        let tr = tree(log, t);
        let tiles = exact_tiles(log, 8, tr, &record_proof_indexes(t, n).unwrap());
        prop_assert_eq!(prove_record(t, n, &TileHashReader::new(tr, &tiles)).unwrap(), p);
    }

    #[test]
    fn tree_proofs(t in 1i64..3000, frac in 0.0f64..1.0, k in 0usize..64, bit in 0u8..8) {
        let log = prop_log();
        let n = (((t as f64) * frac) as i64).max(1);
        let th = log.trees[t as usize];
        let h = log.trees[n as usize];
        let p = prove_tree(t, n, &log.storage).unwrap();
        prop_assert!(check_tree(&p, t, th, n, h).is_ok());
        if !p.is_empty() {
            let mut bad = p.clone();
            bad[k % p.len()].0[k % 32] ^= 1 << bit;
            prop_assert!(check_tree(&bad, t, th, n, h).is_err());
            let mut extra = p.clone();
            extra.push(th);
            prop_assert!(check_tree(&extra, t, th, n, h).is_err());
        }
        let mut wrong = h;
        wrong.0[k % 32] ^= 1 << bit;
        prop_assert!(check_tree(&p, t, th, n, wrong).is_err());
        let tr = tree(log, t);
        let tiles = exact_tiles(log, 8, tr, &tree_proof_indexes(t, n).unwrap());
        prop_assert_eq!(prove_tree(t, n, &TileHashReader::new(tr, &tiles)).unwrap(), p);
    }
}

#[test]
fn invalid_inputs_are_errors_not_panics() {
    let s: Vec<Hash> = Vec::new();
    assert!(prove_record(0, 0, &s).is_err());
    assert!(prove_record(5, 5, &s).is_err());
    assert!(prove_record(5, -1, &s).is_err());
    assert!(prove_tree(5, 0, &s).is_err());
    assert!(prove_tree(5, 6, &s).is_err());
    assert!(check_record(&[], i64::MAX, Hash::default(), 1, Hash::default()).is_err());
    assert!(check_tree(&[], i64::MAX, Hash::default(), 1, Hash::default()).is_err());
    let t = Tree {
        n: i64::MAX,
        hash: Hash::default(),
    };
    assert!(tiles_for_hashes(t, 8, &[0]).is_err());
    assert!(
        TileHashReader::new(t, &MemTiles::new(8))
            .read_hashes(&[0])
            .is_err()
    );
    assert!(
        hash_from_tile(
            &Tile {
                h: 8,
                l: 0,
                n: 0,
                w: 256
            },
            &[0u8; 10],
            0
        )
        .is_err()
    );
    assert!(
        hash_from_tile(
            &Tile {
                h: 0,
                l: 0,
                n: 0,
                w: 1
            },
            &[0u8; 32],
            0
        )
        .is_err()
    );
}
