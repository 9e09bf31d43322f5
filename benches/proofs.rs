//! Checksum-database proof costs on a log of ~1M records (the size class of sum.golang.org
//! tiles per lookup): checking a record (inclusion) proof and a tree (consistency) proof
//! from plain hashes, and the client's real path — reading the proof hashes through
//! tiles, each authenticated against the signed tree hash or its parent tile, then checking.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use modgate::sumdb::tlog::{
    Hash, HashReader, Tile, TileHashReader, TileReader, TlogError, Tree, check_record, check_tree,
    new_tiles, prove_record, prove_tree, read_tile_data, record_hash, record_proof_indexes,
    stored_hashes, tree_hash,
};

/// Records in the benchmark log: not a power of two, so the right edge has partial tiles.
const N: i64 = (1 << 20) + 12_345;
const HEIGHT: u32 = 8;

fn record(i: i64) -> Vec<u8> {
    format!("example.com/m{i} v1.0.0 h1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=\n")
        .into_bytes()
}

/// Every tile of the log; never saves (a benchmark must not grow while it runs).
struct Tiles(HashMap<Tile, Vec<u8>>);

impl TileReader for Tiles {
    fn height(&self) -> u32 {
        HEIGHT
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles
            .iter()
            .map(|t| {
                self.0
                    .get(t)
                    .cloned()
                    .ok_or_else(|| TlogError::MissingTile(t.path()))
            })
            .collect()
    }
    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

fn build_log() -> (Vec<Hash>, Tiles) {
    let mut hashes: Vec<Hash> = Vec::with_capacity(2 * N as usize);
    for i in 0..N {
        let add = stored_hashes(i, &record(i), &hashes).expect("stored hashes");
        hashes.extend(add);
    }
    let tiles = new_tiles(HEIGHT, 0, N)
        .into_iter()
        .map(|t| {
            let d = read_tile_data(&t, &hashes).expect("tile data");
            (t, d)
        })
        .collect();
    (hashes, Tiles(tiles))
}

fn bench(c: &mut Criterion) {
    let (hashes, tiles) = build_log();
    let th = tree_hash(N, &hashes).expect("tree hash");
    let tree = Tree { n: N, hash: th };
    let old = N / 3 + 7;
    let old_hash = tree_hash(old, &hashes).expect("old tree hash");
    let rec = N / 2 + 3;
    let rec_hash = record_hash(&record(rec));

    let mut g = c.benchmark_group("proofs_1M");
    let rp = prove_record(N, rec, &hashes).expect("record proof");
    g.bench_function("check_record", |b| {
        b.iter(|| check_record(black_box(&rp), N, th, rec, rec_hash).expect("valid"))
    });
    let tp = prove_tree(N, old, &hashes).expect("tree proof");
    g.bench_function("check_tree", |b| {
        b.iter(|| check_tree(black_box(&tp), N, th, old, old_hash).expect("valid"))
    });
    // The client's lookup path: proof hashes through authenticated tiles, then the check.
    g.bench_function("tiles_record_proof", |b| {
        b.iter(|| {
            let r = TileHashReader::new(tree, &tiles);
            let p = prove_record(N, rec, &r).expect("record proof via tiles");
            check_record(&p, N, th, rec, rec_hash).expect("valid")
        })
    });
    g.bench_function("tiles_tree_proof", |b| {
        b.iter(|| {
            let r = TileHashReader::new(tree, &tiles);
            let p = prove_tree(N, old, &r).expect("tree proof via tiles");
            check_tree(&p, N, th, old, old_hash).expect("valid")
        })
    });
    // Tile authentication alone: the hashes a record proof needs, read through tiles.
    let idx = record_proof_indexes(N, rec).expect("indexes");
    g.bench_function("tiles_authenticate", |b| {
        b.iter(|| {
            TileHashReader::new(tree, &tiles)
                .read_hashes(black_box(&idx))
                .expect("authentic")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
