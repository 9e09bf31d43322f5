//! A tile: `tile/H/L/NNN[.p/W]` (N split into `x`-prefixed 3-digit segments, e.g. `tile/8/0/x002/891.p/161`; level `data` for record data) holding W consecutive hashes of level L·H.

use super::TlogError;
use super::hash::{HASH_SIZE, Hash, node_hash};
use super::reader::HashReader;
use super::tree::{split_stored_hash_index, stored_hash_index};
use std::fmt;

/// A tile of height `h` at tiling level `l` (−1 for record data), number `n`
/// within its level, holding `w` hashes (`w == 2^h` is a full tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub h: u32,
    pub l: i32,
    pub n: i64,
    pub w: u32,
}

const PATH_BASE: i64 = 1000;

impl Tile {
    /// The width of a full tile of this height.
    pub fn full_width(&self) -> u32 {
        1u32.checked_shl(self.h).unwrap_or(0)
    }

    /// Reports whether this is a full tile.
    pub fn is_full(&self) -> bool {
        self.w == self.full_width()
    }

    /// The full tile with the same coordinates.
    pub fn full(&self) -> Tile {
        Tile {
            w: self.full_width(),
            ..*self
        }
    }

    /// The tile's path, e.g. `tile/8/0/x002/891.p/161`.
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut s = format!("{:03}", n % PATH_BASE);
        while n >= PATH_BASE {
            n /= PATH_BASE;
            s = format!("x{:03}/{s}", n % PATH_BASE);
        }
        let level = if self.l == -1 {
            "data".to_string()
        } else {
            self.l.to_string()
        };
        let partial = if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.w)
        };
        format!("tile/{}/{level}/{s}{partial}", self.h)
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Parses a tile path (x/mod `tlog.ParseTilePath`); only the canonical form is accepted.
pub fn parse_tile_path(path: &str) -> Result<Tile, TlogError> {
    let bad = || TlogError::MalformedTilePath(path.to_string());
    let mut f: Vec<&str> = path.split('/').collect();
    if f.len() < 4 || f[0] != "tile" {
        return Err(bad());
    }
    let h: u32 = f[1].parse().map_err(|_| bad())?;
    let is_data = f[2] == "data";
    let l: i32 = if is_data {
        -1
    } else {
        f[2].parse().map_err(|_| bad())?
    };
    if !(1..=30).contains(&h) || l < -1 {
        return Err(bad());
    }
    let mut w = 1u32 << h;
    let last2 = f.len() - 2;
    if let Some(stem) = f[last2].strip_suffix(".p") {
        let ww: u32 = f[last2 + 1].parse().map_err(|_| bad())?;
        if ww == 0 || ww >= w {
            return Err(bad());
        }
        w = ww;
        f[last2] = stem;
        f.pop();
    }
    let mut n: i64 = 0;
    for seg in &f[3..] {
        let nn: i64 = seg
            .strip_prefix('x')
            .unwrap_or(seg)
            .parse()
            .map_err(|_| bad())?;
        if !(0..PATH_BASE).contains(&nn) {
            return Err(bad());
        }
        n = n
            .checked_mul(PATH_BASE)
            .and_then(|n| n.checked_add(nn))
            .ok_or_else(bad)?;
    }
    let t = Tile { h, l, n, w };
    if t.path() != path {
        return Err(bad());
    }
    Ok(t)
}

/// The smallest tile of height `h` holding stored hash `index`, and the byte
/// range within that tile's data from which the hash is computed.
pub(crate) fn tile_for_index_range(h: u32, index: i64) -> (Tile, usize, usize) {
    let (level, n) = split_stored_hash_index(index);
    let l = level / h;
    let level = level - l * h; // level within the tile
    let tn = (n << level) >> h;
    let n = n - ((tn << h) >> level); // n within the tile, at `level`
    let t = Tile {
        h,
        l: l as i32,
        n: tn,
        w: ((n + 1) << level) as u32,
    };
    let start = (n << level) as usize * HASH_SIZE;
    let end = ((n + 1) << level) as usize * HASH_SIZE;
    (t, start, end)
}

/// The smallest tile of height `h` from which stored hash `index` can be read.
pub fn tile_for_index(h: u32, index: i64) -> Result<Tile, TlogError> {
    if !(1..=30).contains(&h) || index < 0 {
        return Err(TlogError::InvalidInputs("TileForIndex"));
    }
    Ok(tile_for_index_range(h, index).0)
}

/// The hash of the subtree spanning `data` (a power-of-two number of hashes).
pub(crate) fn tile_hash(data: &[u8]) -> Hash {
    if data.len() <= HASH_SIZE {
        let mut h = Hash::default();
        h.0[..data.len()].copy_from_slice(data);
        return h;
    }
    let (l, r) = data.split_at(data.len() / 2);
    node_hash(tile_hash(l), tile_hash(r))
}

/// Reads stored hash `index` from tile `t` with contents `data`.
pub fn hash_from_tile(t: &Tile, data: &[u8], index: i64) -> Result<Hash, TlogError> {
    if !(1..=30).contains(&t.h) || !(0..64).contains(&t.l) || t.w < 1 || t.w > t.full_width() {
        return Err(TlogError::InvalidTile(t.path()));
    }
    let want = t.w as usize * HASH_SIZE;
    if data.len() < want {
        return Err(TlogError::BadTileData {
            tile: t.path(),
            len: data.len(),
            want,
        });
    }
    if index < 0 {
        return Err(TlogError::InvalidInputs("HashFromTile"));
    }
    let (t1, start, end) = tile_for_index_range(t.h, index);
    if t.l != t1.l || t.n != t1.n || t.w < t1.w {
        return Err(TlogError::IndexNotInTile {
            index,
            tile: t.path(),
        });
    }
    Ok(tile_hash(&data[start..end]))
}

/// The tiles of height `h` that a log growing from `old` to `new` records
/// publishes anew (every full tile completed and every partial width reached).
pub fn new_tiles(h: u32, old: i64, new: i64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    if !(1..=30).contains(&h) || old < 0 || new < 0 {
        return tiles;
    }
    for level in 0u32.. {
        let shift = h * level;
        if shift >= 63 {
            break;
        }
        let new_n = new >> shift;
        if new_n == 0 {
            break;
        }
        let old_n = old >> shift;
        for n in (old_n >> h)..(new_n >> h) {
            tiles.push(Tile {
                h,
                l: level as i32,
                n,
                w: 1 << h,
            });
        }
        let n = new_n >> h;
        let max_w = (new_n - (n << h)) as u32;
        let min_w = if old_n > n << h {
            (old_n - (n << h)) as u32
        } else {
            1
        };
        for w in min_w..=max_w {
            tiles.push(Tile {
                h,
                l: level as i32,
                n,
                w,
            });
        }
    }
    tiles
}

/// Builds the contents of tile `t` from stored hashes.
pub fn read_tile_data(t: &Tile, r: &dyn HashReader) -> Result<Vec<u8>, TlogError> {
    if !(1..=30).contains(&t.h) || t.l < 0 || t.w > t.full_width() {
        return Err(TlogError::InvalidTile(t.path()));
    }
    let size = if t.w == 0 { t.full_width() } else { t.w } as i64;
    let start = t.n << t.h;
    let level = t.h * t.l as u32;
    let indexes: Vec<i64> = (0..size)
        .map(|i| stored_hash_index(level, start + i))
        .collect();
    let hashes = r.read_hashes(&indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::ShortRead {
            want: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes.iter().flat_map(|h| h.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_path_vectors() {
        let t = |h, l, n, w| Tile { h, l, n, w };
        let cases: &[(&str, Option<Tile>)] = &[
            ("tile/4/0/001", Some(t(4, 0, 1, 16))),
            ("tile/4/0/001.p/5", Some(t(4, 0, 1, 5))),
            ("tile/3/5/x123/x456/078", Some(t(3, 5, 123456078, 8))),
            ("tile/3/5/x123/x456/078.p/2", Some(t(3, 5, 123456078, 2))),
            ("tile/1/0/x003/x057/500", Some(t(1, 0, 3057500, 2))),
            ("tile/3/5/123/456/078", None),
            ("tile/3/-1/123/456/078", None),
            ("tile/1/data/x003/x057/500", Some(t(1, -1, 3057500, 2))),
            ("tile/8/0/x002/891.p/161", Some(t(8, 0, 2891, 161))),
            ("tile/8/2/000.p/11", Some(t(8, 2, 0, 11))),
            ("tile/8/0/000.p/256", None),
            ("tile/8/0/000.p/0", None),
            ("tile/8/0/00", None),
            ("tile/8/0/0000", None),
            ("tile/8/0/x000/001", None),
            ("tile/0/0/000", None),
            ("tile/31/0/000", None),
            ("tile/8/+0/000", None),
            ("tile/8/0/x999/x999/x999/x999/x999/x999/x999/999", None),
        ];
        for (path, want) in cases {
            match (parse_tile_path(path), want) {
                (Ok(got), Some(want)) => {
                    assert_eq!(got, *want, "{path}");
                    assert_eq!(want.path(), *path);
                }
                (Err(_), None) => {}
                (got, want) => panic!("{path}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn tile_for_index_matches_levels() {
        // Leaf 2891*256+160 of a tree is in level-0 tile 2891.
        let x = stored_hash_index(0, 2891 * 256 + 160);
        assert_eq!(
            tile_for_index(8, x).unwrap(),
            Tile {
                h: 8,
                l: 0,
                n: 2891,
                w: 161
            }
        );
        // The level-8 hash of records 0..256 is entry 0 of level-1 tile 0.
        let x = stored_hash_index(8, 0);
        assert_eq!(
            tile_for_index(8, x).unwrap(),
            Tile {
                h: 8,
                l: 1,
                n: 0,
                w: 1
            }
        );
    }
}
