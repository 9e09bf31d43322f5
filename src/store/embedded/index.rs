//! The sled index of artifact entries, with their count and bytes kept in the same transactions.

use std::path::PathBuf;

use crate::store::{Entry, StoreError, StoreResult};

/// Bytes of decoded index entries kept in memory (~20k entries).
pub(super) const ENTRY_CACHE_BYTES: u64 = 8 << 20;

/// Weighs the entry cache by the bytes an entry holds, roughly.
#[derive(Clone)]
pub(super) struct EntryWeight;

impl quick_cache::Weighter<String, Entry> for EntryWeight {
    fn weight(&self, key: &String, e: &Entry) -> u64 {
        let v = &e.verification;
        (key.len()
            + e.module.len()
            + e.version.len()
            + e.kind.len()
            + e.digest.len()
            + v.h1.len()
            + v.sumdb.len()
            + v.tree_hash.len()
            + 256) as u64
    }
}

pub(super) fn index_err(e: sled::Error) -> StoreError {
    StoreError::from(e)
}

/// A sled failure keeps its I/O error, so a full disk under the index is a
/// full disk (507), like one under a blob; anything else is an index error.
impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        match e {
            sled::Error::Io(source) => StoreError::Io {
                path: PathBuf::from("index (sled)"),
                source,
            },
            e => StoreError::Index(e.to_string()),
        }
    }
}

/// Key of the one value in the `artifact_totals` tree.
pub(super) const TOTALS_KEY: &[u8] = b"totals";

pub(super) fn encode_totals(n: u64, bytes: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&n.to_be_bytes());
    out[8..].copy_from_slice(&bytes.to_be_bytes());
    out
}

pub(super) fn decode_totals(v: &[u8]) -> Option<(u64, u64)> {
    let n = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let bytes = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
    Some((n, bytes))
}

/// The size an encoded index entry names (0 if it cannot be read).
fn entry_size(v: &[u8]) -> u64 {
    /// The one field needed of an entry (serde skips the rest).
    #[derive(serde::Deserialize)]
    struct Size {
        size: u64,
    }
    serde_json::from_slice::<Size>(v).map_or(0, |s| s.size)
}

/// Counts the index entries and their bytes by reading every one.
pub(super) fn walk_totals(index: &sled::Tree) -> StoreResult<(u64, u64)> {
    let (mut n, mut bytes) = (0u64, 0u64);
    for item in index.iter() {
        let (_, v) = item.map_err(index_err)?;
        n += 1;
        bytes += entry_size(&v);
    }
    Ok((n, bytes))
}

/// One change to the index, applied with the matching change to the totals
/// in a single sled transaction; returns the entry it replaced or removed.
pub(super) enum IndexWrite {
    Put(Vec<u8>),
    Remove,
    /// Remove only if the current value is exactly this one.
    RemoveIf(Vec<u8>),
}

pub(super) fn transact(
    index: &sled::Tree,
    totals: &sled::Tree,
    key: &[u8],
    change: &IndexWrite,
) -> StoreResult<Option<sled::IVec>> {
    use sled::Transactional;
    use sled::transaction::ConflictableTransactionError as Abort;
    (index, totals)
        .transaction(|(idx, tot)| {
            let old = match change {
                IndexWrite::Put(v) => idx.insert(key, v.as_slice())?,
                IndexWrite::Remove => idx.remove(key)?,
                IndexWrite::RemoveIf(want) => match idx.get(key)? {
                    Some(cur) if cur.as_ref() == want.as_slice() => idx.remove(key)?,
                    _ => return Ok(None),
                },
            };
            let (n, bytes) = tot
                .get(TOTALS_KEY)?
                .and_then(|v| decode_totals(&v))
                .ok_or(Abort::Abort("the store totals are missing or malformed"))?;
            let (old_n, old_bytes) = old.as_ref().map_or((0, 0), |v| (1, entry_size(v)));
            let (new_n, new_bytes) = match change {
                IndexWrite::Put(v) => (1, entry_size(v)),
                _ => (0, 0),
            };
            let n = (n + new_n).saturating_sub(old_n);
            let bytes = (bytes + new_bytes).saturating_sub(old_bytes);
            tot.insert(TOTALS_KEY, encode_totals(n, bytes).to_vec())?;
            Ok(old)
        })
        .map_err(|e| match e {
            // A storage failure (a full disk) keeps its kind.
            sled::transaction::TransactionError::Storage(e) => StoreError::from(e),
            e => StoreError::Index(format!("index write: {e:?}")),
        })
}
