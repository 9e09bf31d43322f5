//! The embedded store: a sled index plus content-addressed blob files under the data dir.
//!
//! ```text
//! <data-dir>/index/              sled database (artifact entries by version, metadata trees)
//! <data-dir>/blobs/sha256/ab/ab12…   immutable blobs, named by their SHA-256
//! <data-dir>/tmp/                spool files of downloads in progress
//! <data-dir>/index.lock          held while the index is opened (and, once, rebuilt: see `migrate`)
//! ```
//!
//! A blob becomes visible only by `rename` after `fsync`, and its index entry
//! is written after the rename: a crash at any point leaves either nothing or
//! a complete verified blob (at worst an unreferenced one). Spool files left
//! by a crash are deleted at start-up.
//!
//! Blobs are checked when read: a blob whose SHA-256 no longer matches its
//! name (bit rot, an operator's mistake, a hostile edit) is moved to
//! `<data-dir>/quarantine/`, its index entry dropped, and the read fails with
//! [`StoreError::Corrupt`] so the pipeline fetches and verifies it again.
//! What is served is always bytes that were proven, and hits stay cheap:
//! - a small blob (`.info`, `.mod`) is read whole and hashed, and those very
//!   bytes are kept in a bounded memory cache; later hits are served from it
//!   with no disk I/O (so damage to its file is found when it next leaves the
//!   cache, at the next start, or by `modgate cache verify`);
//! - a large blob is hashed on its first read per process, through the same
//!   open file that is then streamed, and again whenever its file identity
//!   (size, mtime, inode) changes; concurrent first readers share one hash.

mod blobs;
mod index;
mod migrate;
mod value;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use self::blobs::{BlobFault, FileStamp, Opened, open_blob, prove_file};
pub use self::index::bulk_put;
use self::index::{
    ENTRY_CACHE_BYTES, EntryWeight, IndexWrite, TOTALS_KEY, VERSIONS_TREE, decode_entries,
    decode_entry, decode_totals, encode_totals, index_err, transact, version_key, walk_totals,
};
use self::value::Slot;
pub use self::value::fuzz_round_trip as fuzz_index_value;
use super::{
    Blob, BlobBody, Entry, Meta, Spool, Staged, Store, StoreError, StoreResult, artifact_key,
};
use crate::protocol::{Kind, ModVersion};

pub struct EmbeddedStore {
    root: PathBuf,
    db: sled::Db,
    /// Artifact entries, one key per module version (see [`index`]).
    index: sled::Tree,
    /// The number of stored artifacts and the bytes they name, kept under
    /// [`TOTALS_KEY`] and changed in the same sled transaction as every index
    /// write, so start-up reads two numbers instead of walking the index.
    totals: sled::Tree,
    /// Large blobs this process hashed and found intact, with the file
    /// identity they had then (digest → stamp).
    verified: Arc<Mutex<HashMap<String, FileStamp>>>,
    /// Small blobs whose bytes were hashed and matched their digest, by
    /// digest: content-addressed, so never stale; bounded by bytes held.
    small: quick_cache::sync::Cache<String, Bytes, BlobWeight>,
    /// One lock per large blob being hashed on a first read, so concurrent
    /// first readers wait for one hash instead of each doing their own.
    proving: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Decoded index entries by artifact key, so a hit skips sled and the decode.
    entries: Arc<quick_cache::sync::Cache<String, Arc<Entry>, EntryWeight>>,
    /// Bumped (under this lock) with every index write, which also drops the
    /// key from `entries`: a reader caches what it read only if no write came
    /// in between, so the cache never keeps an entry the index no longer has.
    index_gen: Arc<Mutex<u64>>,
}

/// Blobs smaller than this are read whole, hashed, and kept in memory.
pub const SMALL_BLOB: u64 = 64 * 1024;

/// Bytes of index pages sled keeps in memory.
const INDEX_CACHE_BYTES: u64 = 32 << 20;

/// Default bytes of small blobs kept in memory (`[cache] memory_mib`).
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;

/// Weighs the small-blob cache by bytes held, not by count.
#[derive(Clone)]
struct BlobWeight;

impl quick_cache::Weighter<String, Bytes> for BlobWeight {
    fn weight(&self, key: &String, val: &Bytes) -> u64 {
        // The digest key, the bytes, and roughly the cache's own bookkeeping.
        (key.len() + val.len() + 64) as u64
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store under `root`, removing any spool
    /// files a previous process left behind.
    pub fn open(root: &Path) -> StoreResult<EmbeddedStore> {
        Self::open_with_memory(root, DEFAULT_MEMORY_BYTES)
    }

    /// [`EmbeddedStore::open`] keeping up to `memory_bytes` of small blobs in memory.
    pub fn open_with_memory(root: &Path, memory_bytes: u64) -> StoreResult<EmbeddedStore> {
        for dir in ["blobs/sha256", "tmp"] {
            let p = root.join(dir);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let tmp = root.join("tmp");
        for entry in std::fs::read_dir(&tmp).map_err(io_err(&tmp))?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        // Held while the index may be rebuilt or swapped (see `migrate`), so a
        // second process never takes a half-built copy for debris.
        let lock_path = root.join("index.lock");
        let Some(_rebuilding) =
            crate::admin::lock::acquire(&lock_path).map_err(io_err(&lock_path))?
        else {
            return Err(StoreError::Index(format!(
                "another process is opening or rebuilding the index under {}",
                root.display()
            )));
        };
        migrate::recover(root)?;
        // sled's default page cache is 1 GiB: bound it, so walking a large
        // index (totals, `cache ls`) cannot grow the process that far.
        let open_db = || index::open_db(&root.join("index"), INDEX_CACHE_BYTES);
        let mut db = open_db()?;
        if migrate::needed(&db) {
            // A store written with one key per artifact: rebuilt once.
            drop(db);
            migrate::rebuild(root, INDEX_CACHE_BYTES)?;
            db = open_db()?;
        }
        let index = db.open_tree(VERSIONS_TREE).map_err(index_err)?;
        let totals = db.open_tree("artifact_totals").map_err(index_err)?;
        if totals.get(TOTALS_KEY).map_err(index_err)?.is_none() {
            // A new store, or one written before the totals were kept: count
            // once (nothing else writes yet: sled holds the directory lock).
            let (n, bytes) = walk_totals(&index)?;
            totals
                .insert(TOTALS_KEY, encode_totals(n, bytes).to_vec())
                .map_err(index_err)?;
        }
        Ok(EmbeddedStore {
            root: root.to_owned(),
            db,
            index,
            totals,
            verified: Arc::default(),
            // quick_cache wants an estimate of the item count: ~2 KiB per `.mod`/`.info`.
            small: quick_cache::sync::Cache::with_weighter(
                (memory_bytes / 2048).max(16) as usize,
                memory_bytes,
                BlobWeight,
            ),
            proving: Mutex::default(),
            entries: Arc::new(quick_cache::sync::Cache::with_weighter(
                (ENTRY_CACHE_BYTES / 400) as usize,
                ENTRY_CACHE_BYTES,
                EntryWeight,
            )),
            index_gen: Arc::default(),
        })
    }

    /// Changes the index entry of `kind` of `mv` (and the totals with it), then
    /// drops it from the entry cache and bumps the generation, so no reader
    /// caches what it read before the write (also when the write failed);
    /// returns whether an entry was replaced or removed.
    ///
    /// All of it runs on the blocking pool (a sled transaction can wait on
    /// the disk), as one closure: a caller cancelled meanwhile cannot leave
    /// the write done and the cache not invalidated. With `flush`, the
    /// flush that makes the write durable runs in the same closure.
    async fn write_index(
        &self,
        mv: &ModVersion,
        kind: Kind,
        change: IndexWrite,
        flush: bool,
    ) -> StoreResult<bool> {
        let (index, totals) = (self.index.clone(), self.totals.clone());
        let (entries, index_gen) = (self.entries.clone(), self.index_gen.clone());
        let (vkey, cache_key) = (version_key(mv), artifact_key(mv, kind));
        let db = self.db.clone();
        blocking(move || {
            let written = transact(&index, &totals, vkey.as_bytes(), kind, &change);
            let mut generation = index_gen.lock().unwrap_or_else(|e| e.into_inner());
            *generation += 1;
            entries.remove(&cache_key);
            drop(generation);
            let written = written?;
            if flush {
                db.flush().map_err(index_err)?;
            }
            Ok(written)
        })
        .await?
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &str) -> StoreResult<PathBuf> {
        // Digests come from our own hashing, but the index could be damaged:
        // never build a path from anything but 64 lower-case hex digits.
        super::check_digest(digest)?;
        Ok(self
            .root
            .join("blobs/sha256")
            .join(&digest[..2])
            .join(digest))
    }

    /// A fresh name for a file being written, in `tmp/` (same file system
    /// as the blobs, so installing it is a rename).
    fn spool_path(&self) -> PathBuf {
        let name = format!("{}-{:016x}.part", std::process::id(), rand_u64());
        self.root.join("tmp").join(name)
    }

    fn tree(&self, ns: Meta) -> StoreResult<sled::Tree> {
        self.db.open_tree(ns.tree_name()).map_err(index_err)
    }

    async fn put_entry(&self, entry: &Entry) -> StoreResult<()> {
        let mv = ModVersion::new(&entry.module, &entry.version)
            .map_err(|e| StoreError::Index(e.to_string()))?;
        let kind = Kind::parse(&entry.kind)
            .ok_or_else(|| StoreError::Index(format!("bad kind {}", entry.kind)))?;
        // The write and the flush that makes it durable in one hop.
        self.write_index(&mv, kind, IndexWrite::Put(Slot::of(entry)), true)
            .await?;
        Ok(())
    }

    /// Moves a finished file to its content address, durably (one hop to
    /// the blocking pool: see [`blobs::install`]).
    async fn install_blob(&self, from: &Path, digest: &str) -> StoreResult<()> {
        let dest = self.blob_path(digest)?;
        let (f, d) = (from.to_owned(), dest.clone());
        let stamp = blocking(move || blobs::install(&f, &d))
            .await?
            .map_err(io_err(&dest))?;
        self.proven(digest, stamp);
        Ok(())
    }

    /// The digest was computed over exactly the bytes written and synced,
    /// so the installed file counts as proven: its first hit need not hash
    /// it again (a rename keeps the inode and mtime the stamp holds).
    fn proven(&self, digest: &str, stamp: FileStamp) {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.to_string(), stamp);
    }
}

/// Runs blocking file work on the blocking pool.
/// Runs blocking file or index work on the blocking pool. (Point reads of
/// the index — `entry`, `meta_get`, `totals` — stay inline: they are
/// answered from sled's page cache, and a hop per hit would cost more.)
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Index(format!("blocking store task: {e}")))
}

impl EmbeddedStore {
    /// Makes the index durable. sled 0.34's `flush_async` can leave concurrent
    /// callers waiting forever (spacejam/sled#1308, fixed only after that
    /// release; it hung 200 concurrent misses here), so its blocking `flush`
    /// runs on the blocking pool instead.
    async fn flush_index(&self) -> StoreResult<()> {
        let db = self.db.clone();
        blocking(move || db.flush()).await?.map_err(index_err)?;
        Ok(())
    }

    /// The lock that first readers of one large blob share (see `proving`).
    fn proving_gate(&self, digest: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.proving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest.to_string())
            .or_default()
            .clone()
    }

    /// Drops a gate from the map once no other reader holds or awaits it.
    fn release_gate(&self, digest: &str, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.proving.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are only made under this map lock: the map's and ours means no one else.
        if Arc::strong_count(&gate) == 2 {
            map.remove(digest);
        }
    }

    /// Moves a damaged blob out of the way (kept for inspection) and drops
    /// the index entry that pointed at it, if it still does.
    async fn quarantine(&self, entry: &Entry, path: &Path, reason: &str) -> StoreResult<()> {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&entry.digest);
        let qdir = self.root.join("quarantine");
        tokio::fs::create_dir_all(&qdir)
            .await
            .map_err(io_err(&qdir))?;
        // Unique: the same blob may rot (or be tampered with) more than once.
        let dest = qdir.join(format!(
            "{}-{}-{:016x}",
            entry.digest,
            super::now_secs(),
            rand_u64()
        ));
        match tokio::fs::rename(path, &dest).await {
            Ok(()) => {}
            // Another reader quarantined it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        if let (Ok(mv), Some(kind)) = (
            ModVersion::new(&entry.module, &entry.version),
            Kind::parse(&entry.kind),
        ) {
            // Only if unchanged: a concurrent re-fetch may have replaced it.
            let change = IndexWrite::RemoveIf(entry.digest.clone());
            if self.write_index(&mv, kind, change, false).await? {
                self.flush_index().await?;
            }
        }
        tracing::error!(target: "modgate::security", module = %entry.module, version = %entry.version,
            kind = %entry.kind, digest = %entry.digest, %reason, quarantined = %dest.display(),
            "stored blob failed its integrity check; quarantined, will fetch and verify again");
        Ok(())
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn spool(&self) -> StoreResult<(Spool, tokio::fs::File)> {
        let path = self.spool_path();
        // Cancel-safe: the file is created on the blocking pool together with
        // a guard that removes it. If our caller is dropped meanwhile (a
        // cancelled miss), the guard is dropped with the unclaimed result and
        // the file goes; only a claimed file is handed on (to the caller's own guard).
        let p = path.clone();
        let (mut guard, file) = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&p)?;
            Ok::<_, std::io::Error>((Spool::new(p, String::new(), 0), file))
        })
        .await
        .map_err(|e| StoreError::Index(format!("spool create task: {e}")))?
        .map_err(io_err(&path))?;
        guard.mark_committed();
        Ok((
            Spool::new(path, String::new(), 0),
            tokio::fs::File::from_std(file),
        ))
    }

    async fn entry(&self, mv: &ModVersion, kind: Kind) -> StoreResult<Option<Arc<Entry>>> {
        let key = artifact_key(mv, kind);
        if let Some(e) = self.entries.get(&key) {
            return Ok(Some(e));
        }
        let generation = *self.index_gen.lock().unwrap_or_else(|e| e.into_inner());
        let Some(v) = self
            .index
            .get(version_key(mv).as_bytes())
            .map_err(index_err)?
        else {
            return Ok(None);
        };
        let Some(e) = decode_entry(mv, kind, &v)
            .map_err(|e| StoreError::Index(format!("entry for {mv} {}: {e}", kind.ext())))?
        else {
            return Ok(None);
        };
        let e = Arc::new(e);
        let now = self.index_gen.lock().unwrap_or_else(|e| e.into_inner());
        if *now == generation {
            self.entries.insert(key, e.clone());
        }
        Ok(Some(e))
    }

    async fn open(&self, entry: &Entry) -> StoreResult<Blob> {
        let size = entry.size;
        if size < SMALL_BLOB
            && let Some(b) = self.small.get(entry.digest.as_str())
        {
            return Ok(Blob {
                size,
                body: BlobBody::Memory(b),
            });
        }
        let path = self.blob_path(&entry.digest)?;
        let opened = {
            let (p, digest, verified) = (path.clone(), entry.digest.clone(), self.verified.clone());
            blocking(move || open_blob(&p, &digest, size, &verified)).await?
        };
        let proven = match opened {
            Ok(Opened::Small(data)) => {
                let b = Bytes::from(data);
                self.small.insert(entry.digest.clone(), b.clone());
                return Ok(Blob {
                    size,
                    body: BlobBody::Memory(b),
                });
            }
            Ok(Opened::Proven(file)) => Ok(file),
            Ok(Opened::Unproven(file, stamp)) => {
                let gate = self.proving_gate(&entry.digest);
                let held = gate.lock().await;
                let (digest, verified) = (entry.digest.clone(), self.verified.clone());
                let r = blocking(move || prove_file(file, stamp, &digest, size, &verified)).await;
                drop(held);
                self.release_gate(&entry.digest, gate);
                r?
            }
            Err(e) => Err(e),
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            digest: entry.digest.clone(),
            reason,
        };
        match proven {
            Ok(file) => Ok(Blob {
                size,
                body: BlobBody::File(file),
            }),
            Err(BlobFault::Missing(reason)) => Err(corrupt(reason)),
            Err(BlobFault::Io(e)) => Err(io_err(&path)(e)),
            Err(BlobFault::Damaged(reason)) => {
                self.quarantine(entry, &path, &reason).await?;
                Err(corrupt(reason))
            }
        }
    }

    async fn commit(&self, mut spool: Spool, entry: Entry) -> StoreResult<Entry> {
        self.install_blob(&spool.path, &spool.digest).await?;
        spool.mark_committed();
        self.put_entry(&entry).await?;
        Ok(entry)
    }

    async fn commit_bytes(&self, data: &[u8], entry: Entry) -> StoreResult<Entry> {
        let digest = hex::encode(Sha256::digest(data));
        if digest != entry.digest {
            return Err(StoreError::Corrupt {
                digest: entry.digest,
                reason: format!("bytes to commit hash to {digest}"),
            });
        }
        // Written, synced and installed in one hop to the blocking pool (it
        // used to take seven: create, write, sync, then `install_blob`'s four).
        let dest = self.blob_path(&entry.digest)?;
        let tmp = self.spool_path();
        let bytes = Bytes::copy_from_slice(data);
        let (t, d, b) = (tmp.clone(), dest.clone(), bytes.clone());
        let stamp = blocking(move || blobs::write_and_install(&t, &d, &b))
            .await?
            .map_err(io_err(&tmp))?;
        self.proven(&entry.digest, stamp);
        self.put_entry(&entry).await?;
        if (data.len() as u64) < SMALL_BLOB {
            // Just hashed above: the first hit needs no disk read.
            self.small.insert(entry.digest.clone(), bytes);
        }
        Ok(entry)
    }

    async fn remove(&self, mv: &ModVersion, kind: Kind) -> StoreResult<bool> {
        self.write_index(mv, kind, IndexWrite::Remove, true).await
    }

    async fn delete_blob(&self, digest: &str) -> StoreResult<()> {
        let path = self.blob_path(digest)?;
        self.small.remove(digest);
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest);
        let p = path.clone();
        match blocking(move || std::fs::remove_file(p)).await? {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    async fn entries(&self, prefix: &str) -> StoreResult<Vec<Entry>> {
        // A scan reads and decodes every matching entry (a whole store for
        // `cache ls`): on the blocking pool, not an async worker.
        let (index, prefix) = (self.index.clone(), prefix.to_string());
        blocking(move || {
            let mut out = Vec::new();
            for item in index.scan_prefix(prefix.as_bytes()) {
                let (k, v) = item.map_err(index_err)?;
                out.extend(decode_entries(&k, &v)?);
            }
            Ok(out)
        })
        .await?
    }

    async fn totals(&self) -> StoreResult<(u64, u64)> {
        let v = self.totals.get(TOTALS_KEY).map_err(index_err)?;
        v.and_then(|v| decode_totals(&v))
            .ok_or_else(|| StoreError::Index("the store totals are missing or malformed".into()))
    }

    async fn meta_get(&self, ns: Meta, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .tree(ns)?
            .get(key)
            .map_err(index_err)?
            .map(|v| v.to_vec()))
    }

    async fn meta_put(&self, ns: Meta, key: &str, value: &[u8]) -> StoreResult<()> {
        let (tree, key, value) = (self.tree(ns)?, key.to_string(), value.to_vec());
        blocking(move || tree.insert(key, value))
            .await?
            .map_err(index_err)?;
        self.flush_index().await?;
        Ok(())
    }

    async fn meta_cas(
        &self,
        ns: Meta,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> StoreResult<()> {
        let (tree, k) = (self.tree(ns)?, key.to_string());
        let (old, new) = (old.map(<[u8]>::to_vec), new.to_vec());
        blocking(move || tree.compare_and_swap(k, old, Some(new)))
            .await?
            .map_err(index_err)?
            .map_err(|_| StoreError::Conflict(key.to_string()))?;
        self.flush_index().await?;
        Ok(())
    }

    async fn meta_remove(&self, ns: Meta, key: &str) -> StoreResult<()> {
        let (tree, key) = (self.tree(ns)?, key.to_string());
        blocking(move || tree.remove(key))
            .await?
            .map_err(index_err)?;
        self.flush_index().await?;
        Ok(())
    }
    async fn meta_scan(&self, ns: Meta, prefix: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let (tree, prefix) = (self.tree(ns)?, prefix.to_string());
        blocking(move || {
            tree.scan_prefix(prefix.as_bytes())
                .map(|kv| {
                    let (k, v) = kv.map_err(index_err)?;
                    Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
                })
                .collect()
        })
        .await?
    }

    async fn meta_count(&self, ns: Meta, prefix: &str) -> StoreResult<usize> {
        let (tree, prefix) = (self.tree(ns)?, prefix.to_string());
        blocking(move || Ok(tree.scan_prefix(prefix.as_bytes()).keys().count())).await?
    }

    async fn stage_blob(&self, digest: &str) -> StoreResult<Option<Staged>> {
        let path = self.blob_path(digest)?;
        Ok(path.exists().then(|| Staged::in_place(path)))
    }

    async fn quarantine_blob(&self, digest: &str, _reason: &str) -> StoreResult<String> {
        let path = self.blob_path(digest)?;
        self.small.remove(digest);
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest);
        let qdir = self.root.join("quarantine");
        tokio::fs::create_dir_all(&qdir)
            .await
            .map_err(io_err(&qdir))?;
        let dest = qdir.join(format!("{digest}.{}", super::now_secs()));
        match tokio::fs::rename(&path, &dest).await {
            Ok(()) => Ok(format!("blob moved to {}", dest.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("blob was missing".into()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    async fn flush(&self) -> StoreResult<()> {
        self.flush_index().await
    }

    fn describe(&self) -> String {
        format!("embedded store in {}", self.root.display())
    }

    fn evictable(self: Arc<Self>) -> Arc<dyn Store> {
        self
    }
}

/// A random number for unique spool names (no need for a crypto RNG here).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Verification;

    fn entry(data: &[u8], version: &str, kind: Kind) -> Entry {
        Entry {
            module: "example.com/m".into(),
            version: version.into(),
            kind: kind.ext().into(),
            digest: hex::encode(Sha256::digest(data)),
            size: data.len() as u64,
            verification: Verification {
                h1: String::new(),
                sumdb: "test".into(),
                record_id: 0,
                tree_size: 1,
                tree_hash: String::new(),
                verified_at: 0,
                authority: Default::default(),
            },
        }
    }

    async fn read_all(store: &EmbeddedStore, e: &Entry) -> StoreResult<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let blob = store.open(e).await?;
        let mut out = Vec::new();
        blob.into_reader().read_to_end(&mut out).await.unwrap();
        Ok(out)
    }

    /// Flips one byte in place: same size, new mtime (and maybe not even that
    /// on a coarse clock — the small-blob path must not care).
    fn flip(path: &Path, at: u64) {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[b[0] ^ 0x55]).unwrap();
        f.sync_all().unwrap();
    }

    #[tokio::test]
    async fn cached_entries_follow_every_index_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with_memory(dir.path(), 0).unwrap();
        let mv = ModVersion::new("example.com/m", "v1.0.0").unwrap();
        let one = b"module example.com/m\n".to_vec();
        let two = b"module example.com/m\n\ngo 1.21\n".to_vec();

        // Read twice: the second answer comes from the entry cache.
        let e1 = store
            .commit_bytes(&one, entry(&one, "v1.0.0", Kind::Mod))
            .await
            .unwrap();
        for _ in 0..2 {
            assert_eq!(
                store.entry(&mv, Kind::Mod).await.unwrap().as_deref(),
                Some(&e1)
            );
        }
        // Replaced (a re-fetch): the new entry, not the cached one.
        let e2 = store
            .commit_bytes(&two, entry(&two, "v1.0.0", Kind::Mod))
            .await
            .unwrap();
        assert_ne!(e1.digest, e2.digest);
        assert_eq!(
            store.entry(&mv, Kind::Mod).await.unwrap().as_deref(),
            Some(&e2)
        );
        // Removed (`cache rm`, a corrupt blob): gone at once.
        assert!(store.remove(&mv, Kind::Mod).await.unwrap());
        assert_eq!(store.entry(&mv, Kind::Mod).await.unwrap(), None);
        // Quarantined on a failed read: gone at once too.
        let e3 = store
            .commit_bytes(&one, entry(&one, "v1.0.0", Kind::Mod))
            .await
            .unwrap();
        assert_eq!(
            store.entry(&mv, Kind::Mod).await.unwrap().as_deref(),
            Some(&e3)
        );
        flip(&store.blob_path(&e3.digest).unwrap(), 2);
        assert!(read_all(&store, &e3).await.is_err());
        assert_eq!(store.entry(&mv, Kind::Mod).await.unwrap(), None);
    }

    #[tokio::test]
    async fn totals_follow_every_index_write_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mv = ModVersion::new("example.com/m", "v1.0.0").unwrap();
        let one = b"module example.com/m\n".to_vec();
        let two = b"module example.com/m\n\ngo 1.21\n".to_vec();
        let zip = vec![7u8; 1000];
        {
            let store = EmbeddedStore::open_with_memory(dir.path(), 0).unwrap();
            assert_eq!(store.totals().await.unwrap(), (0, 0));
            store
                .commit_bytes(&one, entry(&one, "v1.0.0", Kind::Mod))
                .await
                .unwrap();
            store
                .commit_bytes(&zip, entry(&zip, "v1.0.0", Kind::Zip))
                .await
                .unwrap();
            let want = (2, (one.len() + zip.len()) as u64);
            assert_eq!(store.totals().await.unwrap(), want);
            // Replacing an entry changes bytes, not the count.
            let e = store
                .commit_bytes(&two, entry(&two, "v1.0.0", Kind::Mod))
                .await
                .unwrap();
            let want = (2, (two.len() + zip.len()) as u64);
            assert_eq!(store.totals().await.unwrap(), want);
            assert_eq!(walk_totals(&store.index).unwrap(), want);
            // Quarantine on a failed read.
            flip(&store.blob_path(&e.digest).unwrap(), 2);
            assert!(read_all(&store, &e).await.is_err());
            assert_eq!(store.totals().await.unwrap(), (1, zip.len() as u64));
            // Removing what is not there changes nothing.
            assert!(!store.remove(&mv, Kind::Mod).await.unwrap());
            assert_eq!(store.totals().await.unwrap(), (1, zip.len() as u64));
        }
        // Kept across a restart.
        let store = EmbeddedStore::open_with_memory(dir.path(), 0).unwrap();
        assert_eq!(store.totals().await.unwrap(), (1, zip.len() as u64));
        assert!(store.remove(&mv, Kind::Zip).await.unwrap());
        assert_eq!(store.totals().await.unwrap(), (0, 0));
        store
            .commit_bytes(&one, entry(&one, "v1.0.0", Kind::Mod))
            .await
            .unwrap();
        // A store from before the totals were kept is counted once at open.
        store.totals.clear().unwrap();
        store.db.flush().unwrap();
        drop(store);
        let store = EmbeddedStore::open_with_memory(dir.path(), 0).unwrap();
        assert_eq!(store.totals().await.unwrap(), (1, one.len() as u64));
    }

    #[tokio::test]
    async fn corrupt_blobs_are_quarantined_and_unindexed() {
        let dir = tempfile::tempdir().unwrap();
        // No memory cache: a small blob is then hashed on every read.
        let store = EmbeddedStore::open_with_memory(dir.path(), 0).unwrap();
        let mv = ModVersion::new("example.com/m", "v1.0.0").unwrap();

        let small = b"module example.com/m\n".to_vec();
        let e = store
            .commit_bytes(&small, entry(&small, "v1.0.0", Kind::Mod))
            .await
            .unwrap();
        assert_eq!(read_all(&store, &e).await.unwrap(), small);
        let path = store.blob_path(&e.digest).unwrap();
        flip(&path, 3);
        match read_all(&store, &e).await {
            Err(StoreError::Corrupt { reason, .. }) => {
                assert!(reason.contains("hashes to"), "{reason}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert!(!path.exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join("quarantine"))
                .unwrap()
                .count(),
            1
        );
        assert!(store.entry(&mv, Kind::Mod).await.unwrap().is_none());

        // Large blob: hashed on first read, then trusted until its stamp changes.
        let big: Vec<u8> = (0..SMALL_BLOB as usize * 2)
            .map(|i| (i * 7) as u8)
            .collect();
        let e = store
            .commit_bytes(&big, entry(&big, "v1.0.0", Kind::Zip))
            .await
            .unwrap();
        assert_eq!(read_all(&store, &e).await.unwrap(), big);
        assert_eq!(read_all(&store, &e).await.unwrap(), big);
        let path = store.blob_path(&e.digest).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        flip(&path, 1000);
        assert!(matches!(
            read_all(&store, &e).await,
            Err(StoreError::Corrupt { .. })
        ));
        assert!(store.entry(&mv, Kind::Zip).await.unwrap().is_none());

        // A truncated blob is caught by its size before any hashing.
        let e = store
            .commit_bytes(&big, entry(&big, "v1.0.0", Kind::Zip))
            .await
            .unwrap();
        let path = store.blob_path(&e.digest).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(10)
            .unwrap();
        assert!(matches!(
            read_all(&store, &e).await,
            Err(StoreError::Corrupt { .. })
        ));
    }
}
