//! The embedded store: a sled index plus content-addressed blob files under the data dir.
//!
//! ```text
//! <data-dir>/index/              sled database (artifact entries, metadata trees)
//! <data-dir>/blobs/sha256/ab/ab12…   immutable blobs, named by their SHA-256
//! <data-dir>/tmp/                spool files of downloads in progress
//! ```
//!
//! A blob becomes visible only by `rename` after `fsync`, and its index entry
//! is written after the rename: a crash at any point leaves either nothing or
//! a complete verified blob (at worst an unreferenced one). Spool files left
//! by a crash are deleted at start-up.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWriteExt};

use super::{Blob, Entry, Meta, Spool, Store, StoreError, StoreResult, artifact_key};
use crate::protocol::{Kind, ModVersion};

pub struct EmbeddedStore {
    root: PathBuf,
    db: sled::Db,
    index: sled::Tree,
    /// Small blobs (`.info`, `.mod`) already read, by digest: a hit on one needs no disk
    /// I/O and no blocking-pool trip. Content-addressed, so never stale.
    small: quick_cache::sync::Cache<String, bytes::Bytes, BlobWeight>,
}

/// Bounds the small-blob cache by bytes held, not by count.
#[derive(Clone)]
struct BlobWeight;

impl quick_cache::Weighter<String, bytes::Bytes> for BlobWeight {
    fn weight(&self, key: &String, val: &bytes::Bytes) -> u64 {
        (key.len() + val.len() + 64) as u64
    }
}

/// Bytes of small blobs kept in memory.
const SMALL_CACHE_BYTES: u64 = 32 << 20;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn index_err(e: sled::Error) -> StoreError {
    StoreError::Index(e.to_string())
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store under `root`, removing any spool
    /// files a previous process left behind.
    pub fn open(root: &Path) -> StoreResult<EmbeddedStore> {
        for dir in ["blobs/sha256", "tmp"] {
            let p = root.join(dir);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        let tmp = root.join("tmp");
        for entry in std::fs::read_dir(&tmp).map_err(io_err(&tmp))?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        let db = sled::Config::new()
            .path(root.join("index"))
            .open()
            .map_err(index_err)?;
        let index = db.open_tree("artifacts").map_err(index_err)?;
        Ok(EmbeddedStore {
            root: root.to_owned(),
            db,
            index,
            small: quick_cache::sync::Cache::with_weighter(
                (SMALL_CACHE_BYTES / 1024) as usize,
                SMALL_CACHE_BYTES,
                BlobWeight,
            ),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &str) -> StoreResult<PathBuf> {
        // Digests come from our own hashing, but the index could be damaged:
        // never build a path from anything but 64 lower-case hex digits.
        if digest.len() != 64
            || !digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(StoreError::Corrupt {
                digest: digest.to_string(),
                reason: "not a SHA-256 hex digest".into(),
            });
        }
        Ok(self
            .root
            .join("blobs/sha256")
            .join(&digest[..2])
            .join(digest))
    }

    fn tree(&self, ns: Meta) -> StoreResult<sled::Tree> {
        self.db.open_tree(ns.tree_name()).map_err(index_err)
    }

    async fn put_entry(&self, entry: &Entry) -> StoreResult<()> {
        let mv = ModVersion::new(&entry.module, &entry.version)
            .map_err(|e| StoreError::Index(e.to_string()))?;
        let kind = Kind::parse(&entry.kind)
            .ok_or_else(|| StoreError::Index(format!("bad kind {}", entry.kind)))?;
        let value = serde_json::to_vec(entry).map_err(|e| StoreError::Index(e.to_string()))?;
        self.index
            .insert(artifact_key(&mv, kind), value)
            .map_err(index_err)?;
        self.db.flush_async().await.map_err(index_err)?;
        Ok(())
    }

    /// Moves a finished file to its content address, durably.
    async fn install_blob(&self, from: &Path, digest: &str) -> StoreResult<()> {
        let dest = self.blob_path(digest)?;
        let dir = dest.parent().unwrap_or(&self.root).to_owned();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_err(&dir))?;
        tokio::fs::rename(from, &dest)
            .await
            .map_err(io_err(&dest))?;
        // fsync the directory so the rename itself survives a power cut.
        let d = dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
            .await
            .map_err(|e| StoreError::Index(e.to_string()))?
            .map_err(io_err(&dir))?;
        Ok(())
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn spool_file(&self) -> StoreResult<(PathBuf, tokio::fs::File)> {
        let name = format!("{}-{:016x}.part", std::process::id(), rand_u64());
        let path = self.root.join("tmp").join(name);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(io_err(&path))?;
        Ok((path, file))
    }

    async fn entry(&self, mv: &ModVersion, kind: Kind) -> StoreResult<Option<Entry>> {
        match self.index.get(artifact_key(mv, kind)).map_err(index_err)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Index(format!("entry for {mv} {}: {e}", kind.ext()))),
        }
    }

    async fn open(&self, entry: &Entry) -> StoreResult<Blob> {
        let size = entry.size;
        if let Some(b) = self.small.get(entry.digest.as_str()) {
            return Ok(Blob {
                size,
                reader: Box::pin(std::io::Cursor::new(b)),
            });
        }
        let path = self.blob_path(&entry.digest)?;
        let digest = entry.digest.clone();
        // One trip to the blocking pool for open + stat (+ the whole read of a small blob):
        // each trip is a thread wake-up, and they were most of a hit's cost (BENCHMARKS.md).
        let opened = tokio::task::spawn_blocking(move || open_blob(&path, digest, size))
            .await
            .map_err(|e| StoreError::Index(format!("blob open task: {e}")))??;
        let reader: Pin<Box<dyn AsyncRead + Send>> = match opened {
            Opened::Small(b) => {
                self.small.insert(entry.digest.clone(), b.clone());
                Box::pin(std::io::Cursor::new(b))
            }
            Opened::File(f) => Box::pin(tokio::fs::File::from_std(f)),
        };
        Ok(Blob { size, reader })
    }

    async fn commit(&self, mut spool: Spool, entry: Entry) -> StoreResult<Entry> {
        self.install_blob(&spool.path, &spool.digest).await?;
        spool.mark_committed();
        self.put_entry(&entry).await?;
        Ok(entry)
    }

    async fn commit_bytes(&self, data: &[u8], entry: Entry) -> StoreResult<Entry> {
        let (path, mut file) = self.spool_file().await?;
        let spool = Spool::new(path.clone(), entry.digest.clone(), data.len() as u64);
        file.write_all(data).await.map_err(io_err(&path))?;
        file.sync_all().await.map_err(io_err(&path))?;
        drop(file);
        self.commit(spool, entry).await
    }

    async fn remove(&self, mv: &ModVersion, kind: Kind) -> StoreResult<bool> {
        let old = self
            .index
            .remove(artifact_key(mv, kind))
            .map_err(index_err)?;
        self.db.flush_async().await.map_err(index_err)?;
        Ok(old.is_some())
    }

    async fn entries(&self, prefix: &str) -> StoreResult<Vec<Entry>> {
        let mut out = Vec::new();
        for item in self.index.scan_prefix(prefix.as_bytes()) {
            let (_, v) = item.map_err(index_err)?;
            out.push(serde_json::from_slice(&v).map_err(|e| StoreError::Index(e.to_string()))?);
        }
        Ok(out)
    }

    async fn meta_get(&self, ns: Meta, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .tree(ns)?
            .get(key)
            .map_err(index_err)?
            .map(|v| v.to_vec()))
    }

    async fn meta_put(&self, ns: Meta, key: &str, value: &[u8]) -> StoreResult<()> {
        self.tree(ns)?.insert(key, value).map_err(index_err)?;
        self.db.flush_async().await.map_err(index_err)?;
        Ok(())
    }

    async fn meta_cas(
        &self,
        ns: Meta,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> StoreResult<()> {
        self.tree(ns)?
            .compare_and_swap(key, old, Some(new))
            .map_err(index_err)?
            .map_err(|_| StoreError::Conflict(key.to_string()))?;
        self.db.flush_async().await.map_err(index_err)?;
        Ok(())
    }

    async fn meta_remove(&self, ns: Meta, key: &str) -> StoreResult<()> {
        self.tree(ns)?.remove(key).map_err(index_err)?;
        self.db.flush_async().await.map_err(index_err)?;
        Ok(())
    }
}

/// Blobs up to this size (every `.info`, nearly every `.mod`) are read whole when opened and
/// served from memory; larger ones stream from the file.
const SMALL_BLOB: u64 = 64 << 10;

/// A blob opened by [`open_blob`].
enum Opened {
    Small(bytes::Bytes),
    File(std::fs::File),
}

/// Opens a blob and checks its size against the index; reads it whole if small. Blocking.
fn open_blob(path: &Path, digest: String, size: u64) -> StoreResult<Opened> {
    use std::io::Read;
    let corrupt = |digest: String, reason: String| StoreError::Corrupt { digest, reason };
    let mut file = std::fs::File::open(path).map_err(|e| corrupt(digest.clone(), e.to_string()))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len != size {
        return Err(corrupt(digest, format!("size {len} but index says {size}")));
    }
    if size > SMALL_BLOB {
        return Ok(Opened::File(file));
    }
    let mut buf = Vec::with_capacity(size as usize);
    (&mut file)
        .take(size + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    if buf.len() as u64 != size {
        return Err(corrupt(
            digest,
            format!("read {} bytes but index says {size}", buf.len()),
        ));
    }
    Ok(Opened::Small(buf.into()))
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
