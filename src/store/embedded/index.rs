//! The sled index of artifact entries: one key per module version, with the artifacts' count and bytes kept in the same transactions.
//!
//! ```text
//! tree "versions"         <module>@<version>  →  the version's stored kinds (binary: see [`super::value`])
//! tree "artifact_totals"  "totals"            →  count (u64 BE) ‖ bytes (u64 BE) of the artifacts
//! tree "artifacts"        <module>@<version>/<kind> → one entry (JSON): the layout before,
//!                                                  rebuilt once by [`super::migrate`]
//! ```
//!
//! Why one key per version and not per artifact: sled keeps an in-memory
//! page-table slot for every leaf (a leaf holds at most 16 keys) for the life
//! of the process, whether or not the leaf is cached, so the index's resident
//! size follows the number of keys, not the bytes of the values. Measured on
//! this machine with sled 0.34: an index of 3M keys (1M versions × 3 kinds)
//! holds ~120 MB just opened, with values of 130 bytes or of 350; 1M keys
//! holding the same three entries hold ~40 MB.

use std::path::PathBuf;

use super::value::{Slot, Slots};
use crate::protocol::{Kind, ModVersion};
use crate::store::{Entry, StoreError, StoreResult};

/// Bytes of decoded index entries kept in memory (~20k entries).
pub(super) const ENTRY_CACHE_BYTES: u64 = 8 << 20;

/// Name of the index tree (one key per module version).
pub(super) const VERSIONS_TREE: &str = "versions";

/// Name of the tree of the layout before (one key per artifact).
pub(super) const LEGACY_TREE: &str = "artifacts";

/// Weighs the entry cache by the bytes an entry holds, roughly.
#[derive(Clone)]
pub(super) struct EntryWeight;

impl quick_cache::Weighter<String, std::sync::Arc<Entry>> for EntryWeight {
    fn weight(&self, key: &String, e: &std::sync::Arc<Entry>) -> u64 {
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

/// How long opening waits for a lock that this process's own sled handles,
/// just dropped, have not let go of yet (sled's background threads hold the
/// database a moment after the last handle goes).
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the sled database at `path` with a page cache of `cache_bytes`.
pub(super) fn open_db(path: &std::path::Path, cache_bytes: u64) -> StoreResult<sled::Db> {
    let deadline = std::time::Instant::now() + REOPEN_WAIT;
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r.map_err(index_err),
        }
    }
}

/// The index key of a module version.
pub(super) fn version_key(mv: &ModVersion) -> String {
    format!("{}@{}", mv.path(), mv.version())
}

/// A version's value, or an index error if it is damaged.
pub(super) fn decode(value: &[u8]) -> StoreResult<Slots> {
    Slots::decode(value).map_err(|e| StoreError::Index(e.to_string()))
}

/// The entries stored under one index key (`module@version`), in kind order.
pub(super) fn decode_entries(key: &[u8], value: &[u8]) -> StoreResult<Vec<Entry>> {
    let key =
        std::str::from_utf8(key).map_err(|_| StoreError::Index("index key is not UTF-8".into()))?;
    let (module, version) = key
        .rsplit_once('@')
        .ok_or_else(|| StoreError::Index(format!("index key {key:?} has no @")))?;
    let slots = decode(value)?;
    Ok(slots
        .each()
        .map(|(k, s)| s.entry(module, version, k))
        .collect())
}

/// The entry of one kind stored under a version's key, if any.
pub(super) fn decode_entry(
    mv: &ModVersion,
    kind: Kind,
    value: &[u8],
) -> StoreResult<Option<Entry>> {
    Ok(decode(value)?
        .get(kind)
        .map(|s| s.entry(mv.path(), mv.version(), kind)))
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

/// Counts the stored artifacts and their bytes by reading every index value
/// (a value that cannot be read counts as nothing).
pub(super) fn walk_totals(index: &sled::Tree) -> StoreResult<(u64, u64)> {
    let (mut n, mut bytes) = (0u64, 0u64);
    for item in index.iter() {
        let (_, v) = item.map_err(index_err)?;
        let (vn, vb) = Slots::decode(&v).map_or((0, 0), |s| s.totals());
        n += vn;
        bytes += vb;
    }
    Ok((n, bytes))
}

/// One change to one kind of a version's value, applied with the matching
/// change to the totals in a single sled transaction.
pub(super) enum IndexWrite {
    Put(Slot),
    Remove,
    /// Remove only if the stored entry has exactly this digest.
    RemoveIf(String),
}

/// Applies `change` to `kind` under the version key `key`; returns whether an
/// entry was replaced or removed.
pub(super) fn transact(
    index: &sled::Tree,
    totals: &sled::Tree,
    key: &[u8],
    kind: Kind,
    change: &IndexWrite,
) -> StoreResult<bool> {
    use sled::Transactional;
    use sled::transaction::ConflictableTransactionError as Abort;
    (index, totals)
        .transaction(|(idx, tot)| {
            // A damaged value (its entries already unreadable, so fetched and
            // verified again when asked for) is replaced by a write and removed
            // by a remove, rather than failing every write of the version.
            let (mut slots, damaged) = match idx.get(key)? {
                Some(v) => match Slots::decode(&v) {
                    Ok(s) => (s, false),
                    Err(_) if matches!(change, IndexWrite::RemoveIf(_)) => return Ok(false),
                    Err(_) => (Slots::default(), true),
                },
                None => (Slots::default(), false),
            };
            let (before_n, before_bytes) = slots.totals();
            let slot = slots.slot(kind);
            let had = slot.is_some() || damaged;
            match change {
                IndexWrite::Put(s) => *slot = Some(s.clone()),
                IndexWrite::Remove => *slot = None,
                IndexWrite::RemoveIf(digest) => match slot {
                    Some(s) if &s.digest == digest => *slot = None,
                    _ => return Ok(false),
                },
            }
            if slots.is_empty() {
                idx.remove(key)?;
            } else {
                idx.insert(key, slots.encode())?;
            }
            let (after_n, after_bytes) = slots.totals();
            let (n, bytes) = tot
                .get(TOTALS_KEY)?
                .and_then(|v| decode_totals(&v))
                .ok_or(Abort::Abort("the store totals are missing or malformed"))?;
            let n = (n + after_n).saturating_sub(before_n);
            let bytes = (bytes + after_bytes).saturating_sub(before_bytes);
            tot.insert(TOTALS_KEY, encode_totals(n, bytes).to_vec())?;
            Ok(had)
        })
        .map_err(|e| match e {
            // A storage failure (a full disk) keeps its kind.
            sled::transaction::TransactionError::Storage(e) => StoreError::from(e),
            e => StoreError::Index(format!("index write: {e:?}")),
        })
}

/// Writes entries straight into an index (`bench/`'s `helper populate`
/// builds million-version stores with it); `legacy` writes the layout before.
#[doc(hidden)]
pub fn bulk_put(db: &sled::Db, entries: &[Entry], legacy: bool) -> StoreResult<()> {
    let mut batch = sled::Batch::default();
    if legacy {
        let tree = db.open_tree(LEGACY_TREE).map_err(index_err)?;
        for e in entries {
            let value = serde_json::to_vec(e).map_err(|e| StoreError::Index(e.to_string()))?;
            batch.insert(
                format!("{}@{}/{}", e.module, e.version, e.kind).as_bytes(),
                value,
            );
        }
        return tree.apply_batch(batch).map_err(index_err);
    }
    let tree = db.open_tree(VERSIONS_TREE).map_err(index_err)?;
    let mut by_version: Vec<(String, Slots)> = Vec::new();
    for e in entries {
        let key = format!("{}@{}", e.module, e.version);
        let kind = Kind::parse(&e.kind)
            .ok_or_else(|| StoreError::Index(format!("bad kind {}", e.kind)))?;
        if by_version.last().is_none_or(|(k, _)| *k != key) {
            by_version.push((key, Slots::default()));
        }
        if let Some((_, slots)) = by_version.last_mut() {
            *slots.slot(kind) = Some(Slot::of(e));
        }
    }
    for (k, s) in by_version {
        batch.insert(k.as_bytes(), s.encode());
    }
    tree.apply_batch(batch).map_err(index_err)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::Verification;

    /// An entry with made-up verification (also for `migrate`'s tests).
    pub(in crate::store::embedded) fn entry(
        module: &str,
        version: &str,
        kind: &str,
        size: u64,
    ) -> Entry {
        Entry {
            module: module.into(),
            version: version.into(),
            kind: kind.into(),
            digest: format!("{:064x}", size),
            size,
            verification: Verification {
                h1: "h1:abc".into(),
                sumdb: "sum.golang.org".into(),
                record_id: 7,
                tree_size: 9,
                tree_hash: "xyz".into(),
                verified_at: 1,
                authority: Default::default(),
            },
        }
    }

    #[test]
    fn writes_keep_totals_drop_empty_versions_and_mend_damaged_ones() {
        let d = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(d.path()).open().unwrap();
        let (idx, tot) = (
            db.open_tree(VERSIONS_TREE).unwrap(),
            db.open_tree("t").unwrap(),
        );
        tot.insert(TOTALS_KEY, encode_totals(0, 0).to_vec())
            .unwrap();
        let totals = || decode_totals(&tot.get(TOTALS_KEY).unwrap().unwrap()).unwrap();
        let e = entry("example.com/a", "v1.0.0", "mod", 10);
        let key = b"example.com/a@v1.0.0";
        assert!(!transact(&idx, &tot, key, Kind::Mod, &IndexWrite::Put(Slot::of(&e))).unwrap());
        assert!(!transact(&idx, &tot, key, Kind::Zip, &IndexWrite::Put(Slot::of(&e))).unwrap());
        assert_eq!(totals(), (2, 20));
        // Replaced: the count stays.
        let e2 = entry("example.com/a", "v1.0.0", "mod", 30);
        assert!(transact(&idx, &tot, key, Kind::Mod, &IndexWrite::Put(Slot::of(&e2))).unwrap());
        assert_eq!(totals(), (2, 40));
        // RemoveIf with another digest leaves it.
        let other = IndexWrite::RemoveIf(e.digest.clone());
        assert!(!transact(&idx, &tot, key, Kind::Mod, &other).unwrap());
        let same = IndexWrite::RemoveIf(e2.digest.clone());
        assert!(transact(&idx, &tot, key, Kind::Mod, &same).unwrap());
        assert_eq!(totals(), (1, 10));
        assert!(transact(&idx, &tot, key, Kind::Zip, &IndexWrite::Remove).unwrap());
        assert_eq!(totals(), (0, 0));
        assert!(idx.is_empty(), "a version with nothing stored has no key");
        assert_eq!(walk_totals(&idx).unwrap(), (0, 0));

        // A damaged value: a write replaces it, a remove takes it away.
        idx.insert(key, b"\x01\x07garbage".to_vec()).unwrap();
        assert!(decode(&idx.get(key).unwrap().unwrap()).is_err());
        assert!(
            !transact(
                &idx,
                &tot,
                key,
                Kind::Mod,
                &IndexWrite::RemoveIf(e.digest.clone())
            )
            .unwrap()
        );
        assert!(transact(&idx, &tot, key, Kind::Mod, &IndexWrite::Put(Slot::of(&e))).unwrap());
        assert_eq!(
            decode(&idx.get(key).unwrap().unwrap())
                .unwrap()
                .get(Kind::Mod),
            Some(&Slot::of(&e))
        );
        idx.insert(key, b"\x01\x07garbage".to_vec()).unwrap();
        assert!(transact(&idx, &tot, key, Kind::Zip, &IndexWrite::Remove).unwrap());
        assert!(idx.is_empty());
    }
}
