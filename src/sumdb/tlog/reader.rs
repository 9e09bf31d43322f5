//! Reading stored hashes through tiles: every tile read is authenticated, either against the signed tree hash or against its already-authenticated parent tile.
//!
//! The tiles a read needs are planned by a pure function ([`tiles_for_hashes`])
//! so async callers can fetch them first into a [`MemTiles`] and then run the
//! synchronous [`TileHashReader`] over it.

use super::TlogError;
use super::hash::{HASH_SIZE, Hash, node_hash};
use super::tile::{Tile, hash_from_tile, tile_for_index_range, tile_hash};
use super::tree::{MAX_TREE_SIZE, Tree, stored_hash_index, tree_hash_indexes};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Mutex;

/// Reads stored hashes by index.
pub trait HashReader {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError>;
}

/// A plain in-memory stored-hash sequence (index = position).
impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        indexes
            .iter()
            .map(|&x| {
                usize::try_from(x)
                    .ok()
                    .and_then(|i| self.get(i))
                    .copied()
                    .ok_or(TlogError::IndexNotInTree {
                        index: x,
                        size: self.len() as i64,
                    })
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        self.as_slice().read_hashes(indexes)
    }
}

/// Reads tiles (x/mod `tlog.TileReader`).
pub trait TileReader {
    /// The tile height (8 for the Go checksum database).
    fn height(&self) -> u32;
    /// The data of each tile, in order; a partial tile may be answered with
    /// the data of a wider tile of the same coordinates (it is truncated).
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError>;
    /// Called with tiles that have been authenticated, for caching.
    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]);
}

/// `t`'s ancestor `k` tiling levels up in a tree of `n` records, at the
/// widest width the tree allows; `None` if it lies beyond the tree.
pub fn tile_parent(t: Tile, k: u32, n: i64) -> Option<Tile> {
    let l = t.l.checked_add(i32::try_from(k).ok()?)?;
    let up = k.checked_mul(t.h)?;
    let pn = t.n.checked_shr(up).unwrap_or(0);
    let full = t.full_width();
    let shift = u32::try_from(l).ok()?.checked_mul(t.h)?;
    let max = n.checked_shr(shift).unwrap_or(0);
    let start = pn.checked_shl(t.h)?;
    let mut w = full;
    if start + i64::from(full) >= max {
        if start >= max {
            return None;
        }
        w = u32::try_from(max - start).ok()?;
    }
    Some(Tile { l, n: pn, w, ..t })
}

/// Which tiles a read of `indexes` in `tree` needs, and what each is for.
struct Plan {
    tiles: Vec<Tile>,
    /// The stored-hash indexes whose hashes combine into the tree hash.
    stx: Vec<i64>,
    /// For each `stx` entry, its tile's position in `tiles`.
    stx_tile: Vec<usize>,
    /// For each requested index, its tile's position in `tiles`.
    index_tile: Vec<usize>,
    order: HashMap<Tile, usize>,
}

fn plan(tree: Tree, h: u32, indexes: &[i64]) -> Result<Plan, TlogError> {
    if !(1..=30).contains(&h) {
        return Err(TlogError::InvalidInputs("TileHashReader (height)"));
    }
    if !(0..=MAX_TREE_SIZE).contains(&tree.n) {
        return Err(TlogError::InvalidInputs("TileHashReader (tree size)"));
    }
    let end = stored_hash_index(0, tree.n);
    let mut plan = Plan {
        tiles: Vec::new(),
        stx: tree_hash_indexes(tree.n),
        stx_tile: Vec::new(),
        index_tile: Vec::new(),
        order: HashMap::new(),
    };
    let lost = |what: &str| TlogError::Internal(format!("tile plan for tree {}: {what}", tree.n));
    for &x in &plan.stx {
        let t = tile_for_index_range(h, x).0;
        let t = tile_parent(t, 0, tree.n).ok_or_else(|| lost("subtree tile"))?;
        let j = *plan.order.entry(t).or_insert_with(|| {
            plan.tiles.push(t);
            plan.tiles.len() - 1
        });
        plan.stx_tile.push(j);
    }
    for &x in indexes {
        if !(0..end).contains(&x) {
            return Err(TlogError::IndexNotInTree {
                index: x,
                size: tree.n,
            });
        }
        let t = tile_for_index_range(h, x).0;
        // Find the nearest ancestor already planned, then add the chain of
        // (necessarily full) tiles below it down to the one holding x.
        let mut k = 0u32;
        loop {
            let p = tile_parent(t, k, tree.n).ok_or_else(|| lost("no planned ancestor"))?;
            if plan.order.contains_key(&p) {
                break;
            }
            k += 1;
        }
        for kk in (0..k).rev() {
            let p = tile_parent(t, kk, tree.n).ok_or_else(|| lost("ancestor"))?;
            if !p.is_full() {
                return Err(lost("partial tile off the right edge"));
            }
            plan.order.insert(p, plan.tiles.len());
            plan.tiles.push(p);
        }
        let t0 = tile_parent(t, 0, tree.n).ok_or_else(|| lost("tile"))?;
        plan.index_tile.push(plan.order[&t0]);
    }
    Ok(plan)
}

/// Exactly the tiles [`TileHashReader::read_hashes`] reads for `indexes` in
/// `tree` with tiles of height `height` (empty if `indexes` is).
pub fn tiles_for_hashes(tree: Tree, height: u32, indexes: &[i64]) -> Result<Vec<Tile>, TlogError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(plan(tree, height, indexes)?.tiles)
}

/// A [`HashReader`] over a [`TileReader`] that authenticates every tile it
/// reads against the signed hash of `tree` (x/mod `tlog.TileHashReader`).
///
/// The tiles holding the tree's complete subtrees (the partial tiles on the
/// right edge) must hash to the tree hash; every other tile is full and must
/// hash to its entry in its parent tile, which is itself authenticated first.
/// No tile is ever used or saved without one of these checks.
pub struct TileHashReader<'a, R: TileReader + ?Sized> {
    tree: Tree,
    tr: &'a R,
}

impl<'a, R: TileReader + ?Sized> TileHashReader<'a, R> {
    pub fn new(tree: Tree, tr: &'a R) -> Self {
        TileHashReader { tree, tr }
    }
}

impl<R: TileReader + ?Sized> HashReader for TileHashReader<'_, R> {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let h = self.tr.height();
        let plan = plan(self.tree, h, indexes)?;
        let tiles = &plan.tiles;
        let mut data = self.tr.read_tiles(tiles)?;
        if data.len() != tiles.len() {
            return Err(TlogError::ShortRead {
                want: tiles.len(),
                got: data.len(),
            });
        }
        for (t, d) in tiles.iter().zip(data.iter_mut()) {
            let want = t.w as usize * HASH_SIZE;
            let max = t.full_width() as usize * HASH_SIZE;
            // A wider tile may stand in for a partial one: keep its prefix.
            if d.len() < want || d.len() > max || d.len() % HASH_SIZE != 0 {
                return Err(TlogError::BadTileData {
                    tile: t.path(),
                    len: d.len(),
                    want,
                });
            }
            d.truncate(want);
        }

        // 1. The right-edge tiles against the signed tree hash. Each of
        //    these tiles is covered entirely by the subtrees read from it.
        let mut authenticated = vec![false; tiles.len()];
        let mut root: Option<Hash> = None;
        for (&x, &j) in plan.stx.iter().zip(&plan.stx_tile).rev() {
            let sub = hash_from_tile(&tiles[j], &data[j], x)?;
            root = Some(match root {
                None => sub,
                Some(right) => node_hash(sub, right),
            });
        }
        if root != Some(self.tree.hash) {
            return Err(TlogError::InconsistentTile(format!(
                "(tree {} hash)",
                self.tree.n
            )));
        }
        for &j in &plan.stx_tile {
            authenticated[j] = true;
        }

        // 2. Every other tile against its parent, parents first.
        let mut rest: Vec<usize> = (0..tiles.len()).filter(|&i| !authenticated[i]).collect();
        rest.sort_by_key(|&i| Reverse(tiles[i].l));
        for i in rest {
            let t = tiles[i];
            let p = tile_parent(t, 1, self.tree.n)
                .filter(|_| t.is_full())
                .ok_or_else(|| TlogError::Internal(format!("no parent for {t}")))?;
            let j = *plan
                .order
                .get(&p)
                .ok_or_else(|| TlogError::Internal(format!("lost parent of {t}")))?;
            if !authenticated[j] {
                return Err(TlogError::Internal(format!(
                    "parent of {t} not authenticated"
                )));
            }
            let want = hash_from_tile(&p, &data[j], stored_hash_index(p.l as u32 * p.h, t.n))?;
            if tile_hash(&data[i]) != want {
                return Err(TlogError::InconsistentTile(t.path()));
            }
            authenticated[i] = true;
        }
        if authenticated.iter().any(|a| !a) {
            return Err(TlogError::Internal("unauthenticated tile".into()));
        }

        self.tr.save_tiles(tiles, &data);

        indexes
            .iter()
            .zip(&plan.index_tile)
            .map(|(&x, &j)| hash_from_tile(&tiles[j], &data[j], x))
            .collect()
    }
}

/// An in-memory [`TileReader`]: tiles fetched ahead of a synchronous proof.
/// A partial tile missing from the map is answered from the narrowest wider
/// tile present (truncated). Tiles authenticated by a [`TileHashReader`] are
/// recorded and can be taken with [`MemTiles::take_saved`].
#[derive(Debug, Default)]
pub struct MemTiles {
    height: u32,
    tiles: HashMap<Tile, Vec<u8>>,
    saved: Mutex<Vec<(Tile, Vec<u8>)>>,
}

impl MemTiles {
    pub fn new(height: u32) -> Self {
        MemTiles {
            height,
            ..MemTiles::default()
        }
    }

    pub fn insert(&mut self, tile: Tile, data: Vec<u8>) {
        self.tiles.insert(tile, data);
    }

    pub fn contains(&self, tile: &Tile) -> bool {
        self.lookup(tile).is_some()
    }

    fn lookup(&self, t: &Tile) -> Option<&[u8]> {
        if let Some(d) = self.tiles.get(t) {
            return Some(d);
        }
        ((t.w + 1)..=t.full_width()).find_map(|w| {
            self.tiles
                .get(&Tile { w, ..*t })
                .filter(|d| d.len() >= t.w as usize * HASH_SIZE)
                .map(|d| &d[..t.w as usize * HASH_SIZE])
        })
    }

    /// The tiles (and their data) authenticated so far, emptying the list.
    pub fn take_saved(&self) -> Vec<(Tile, Vec<u8>)> {
        match self.saved.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl TileReader for MemTiles {
    fn height(&self) -> u32 {
        self.height
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles
            .iter()
            .map(|t| {
                self.lookup(t)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| TlogError::MissingTile(t.path()))
            })
            .collect()
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        let mut s = match self.saved.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        s.extend(tiles.iter().copied().zip(data.iter().cloned()));
    }
}
