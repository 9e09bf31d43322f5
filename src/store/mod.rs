//! Storage of verified artifacts and of small metadata, behind one trait.
//!
//! Two kinds of things are stored:
//! - **artifacts** (`.info`, `.mod`, `.zip` of a module version): immutable
//!   blobs, addressed by their SHA-256, with an index entry that records how
//!   they were verified. Only the pipeline writes them, and only after a proof.
//! - **metadata**: small values under typed keys — trusted tree heads (with
//!   compare-and-swap), verified lookups, cached tiles, list/@latest answers.
//!
//! Keys are built by the constructors below from already-validated values,
//! never from request text.

pub mod embedded;
pub mod s3;
pub mod stream;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

use crate::protocol::{Kind, ModVersion};

pub use embedded::EmbeddedStore;
pub use s3::{S3Options, S3Store};

/// How a stored artifact was proven, kept next to it for audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The `h1:` hash the checksum database holds (empty for `.info`).
    pub h1: String,
    /// The checksum database that proved it.
    pub sumdb: String,
    /// Record id of the module version in that log.
    pub record_id: i64,
    /// Size and root hash of the signed tree the record was proven in.
    pub tree_size: i64,
    pub tree_hash: String,
    /// Seconds since the Unix epoch when it was verified.
    pub verified_at: u64,
    /// Who vouched for it (entries from before routes: the checksum database).
    #[serde(default)]
    pub authority: crate::routes::Authority,
}

/// The index entry of a stored artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub module: String,
    pub version: String,
    pub kind: String,
    /// Lower-case hex SHA-256 of the blob.
    pub digest: String,
    pub size: u64,
    pub verification: Verification,
}

/// A local staging file a download is streamed into, not yet committed:
/// every backend stages on local disk first (so the bytes can be checked
/// before anything is published), and `commit` installs or uploads it.
/// Dropping it deletes the file, so an unverified spool never lingers.
#[derive(Debug)]
pub struct Spool {
    pub path: PathBuf,
    pub digest: String,
    pub size: u64,
    committed: bool,
}

impl Spool {
    pub fn new(path: PathBuf, digest: String, size: u64) -> Spool {
        Spool {
            path,
            digest,
            size,
            committed: false,
        }
    }

    /// Flushes the file's bytes to stable storage (before it may be committed).
    pub async fn sync(&self) -> StoreResult<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&path)?.sync_all())
            .await
            .map_err(|e| StoreError::Index(format!("spool sync task: {e}")))?
            .map_err(|source| StoreError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// The file's SHA-256 (lower-case hex): its content address.
    pub async fn sha256(&self) -> StoreResult<String> {
        use sha2::Digest;
        use std::io::Read;
        let path = self.path.clone();
        let hashed = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::File::open(&path)?;
            let mut h = sha2::Sha256::new();
            let mut buf = vec![0u8; 256 << 10];
            loop {
                match f.read(&mut buf)? {
                    0 => return Ok(hex::encode(h.finalize())),
                    n => h.update(&buf[..n]),
                }
            }
        })
        .await
        .map_err(|e| StoreError::Index(format!("spool hash task: {e}")))?;
        hashed.map_err(|source: std::io::Error| StoreError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Marks the file as moved away, so drop leaves it alone.
    pub fn mark_committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a leftover is also removed at the next start-up.
            // On the blocking pool when in a runtime: unlinking a large file
            // can block, and a cancelled miss drops its spool on an async worker.
            let path = std::mem::take(&mut self.path);
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(move || std::fs::remove_file(path))),
                Err(_) => drop(std::fs::remove_file(path)),
            }
        }
    }
}

/// A stored blob, proven intact and ready to serve.
pub struct Blob {
    pub size: u64,
    pub body: BlobBody,
}

/// Where a blob's bytes come from.
pub enum BlobBody {
    /// Already in memory (small blobs): served with no further I/O.
    Memory(bytes::Bytes),
    /// An open file positioned at its start (streamed by [`Blob::into_stream`]).
    File(std::fs::File),
}

impl Blob {
    /// The blob as an async reader (for callers that parse it, not stream it).
    pub fn into_reader(self) -> Pin<Box<dyn AsyncRead + Send>> {
        match self.body {
            BlobBody::Memory(b) => Box::pin(std::io::Cursor::new(b)),
            BlobBody::File(f) => Box::pin(tokio::fs::File::from_std(f)),
        }
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("index error: {0}")]
    Index(String),
    #[error("stored blob {digest} is missing or corrupt: {reason}")]
    Corrupt { digest: String, reason: String },
    #[error("compare-and-swap conflict on {0}")]
    Conflict(String),
    /// The shared bucket failed or did not answer in time.
    #[error("shared store: {msg}")]
    Shared { msg: String, timed_out: bool },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Metadata namespaces; each key is built by a typed constructor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// Trust state of a checksum database (latest verified note, fork evidence).
    Trust,
    /// Tiles of a checksum database's log, keyed by tile path.
    Tile,
    /// Verified lookup responses, keyed by module@version.
    Lookup,
    /// list and @latest answers with their fetch time.
    List,
    /// Private versions' hashes pinned on first sight, keyed by artifact key
    /// (`module@version/mod`); append-only: written once, removed only by an
    /// audited `pins rm` (see `pipeline::authority`).
    Pin,
}

impl Meta {
    pub(crate) fn tree_name(self) -> &'static str {
        match self {
            Meta::Trust => "trust",
            Meta::Tile => "tiles",
            Meta::Lookup => "lookups",
            Meta::List => "lists",
            Meta::Pin => "pins",
        }
    }
}

/// A blob copied or found on local disk for re-checking (`cache verify`);
/// a staged copy is deleted when this is dropped.
pub struct Staged {
    pub path: PathBuf,
    /// The staging file's guard, when the blob had to be copied here.
    _spool: Option<Spool>,
}

impl Staged {
    /// A blob that already lives at `path` (nothing to delete afterwards).
    pub fn in_place(path: PathBuf) -> Staged {
        Staged { path, _spool: None }
    }

    /// A blob copied into `spool` (deleted when this is dropped).
    pub fn copied(spool: Spool) -> Staged {
        Staged {
            path: spool.path.clone(),
            _spool: Some(spool),
        }
    }
}

/// The storage backend. Implementations must make `commit` atomic: after a
/// crash either the whole verified blob and its entry exist, or neither does.
///
/// The trait speaks in typed keys, entries and streams; only the local
/// staging of downloads ([`Spool`], [`Staged`]) is a file, because every
/// backend checks bytes on local disk before publishing or serving them.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates an empty local spool to stream a download into; the returned
    /// [`Spool`] guard deletes the file unless it is committed.
    async fn spool(&self) -> StoreResult<(Spool, tokio::fs::File)>;

    /// The index entry of an artifact, if stored; shared, so a hit answered
    /// from a backend's entry cache copies no strings.
    async fn entry(&self, mv: &ModVersion, kind: Kind) -> StoreResult<Option<Arc<Entry>>>;

    /// Opens a stored artifact's blob for streaming.
    async fn open(&self, entry: &Entry) -> StoreResult<Blob>;

    /// Moves a verified spool into the store and records its entry.
    async fn commit(&self, spool: Spool, entry: Entry) -> StoreResult<Entry>;

    /// Stores small verified bytes (`.info`, `.mod`) directly.
    async fn commit_bytes(&self, data: &[u8], entry: Entry) -> StoreResult<Entry>;

    /// Removes an artifact's entry (the blob is left for garbage collection).
    async fn remove(&self, mv: &ModVersion, kind: Kind) -> StoreResult<bool>;

    /// Deletes a blob no entry names any more (eviction). The caller
    /// checked that; a backend may keep the blob (the default does).
    async fn delete_blob(&self, _digest: &str) -> StoreResult<()> {
        Ok(())
    }

    /// All entries whose module path starts with `prefix`.
    async fn entries(&self, prefix: &str) -> StoreResult<Vec<Entry>>;

    /// How many artifacts are stored and their total bytes (kept by the store
    /// as it writes, so this is cheap).
    async fn totals(&self) -> StoreResult<(u64, u64)>;

    async fn meta_get(&self, ns: Meta, key: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn meta_put(&self, ns: Meta, key: &str, value: &[u8]) -> StoreResult<()>;
    /// Replaces `old` with `new` atomically; `Err(Conflict)` if the value is not `old`.
    async fn meta_cas(
        &self,
        ns: Meta,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> StoreResult<()>;
    async fn meta_remove(&self, ns: Meta, key: &str) -> StoreResult<()>;
    /// Every key of `ns` starting with `prefix`, with its value, in key order.
    async fn meta_scan(&self, ns: Meta, prefix: &str) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// How many keys of `ns` start with `prefix`.
    async fn meta_count(&self, ns: Meta, prefix: &str) -> StoreResult<usize>;

    /// The stored bytes of blob `digest` on local disk, *unchecked*, for a
    /// re-check (`cache verify`); `None` if the blob is missing.
    async fn stage_blob(&self, digest: &str) -> StoreResult<Option<Staged>>;
    /// Moves a blob that failed a re-check out of service (kept for
    /// inspection where the backend can); says where it went.
    async fn quarantine_blob(&self, digest: &str, reason: &str) -> StoreResult<String>;

    /// Makes every write so far durable (the readiness probe's write check).
    async fn flush(&self) -> StoreResult<()>;

    /// Another replica's published copy of an artifact, staged on local disk
    /// with its SHA-256 and size checked against the published entry. Both
    /// came from storage others can write: the caller verifies the bytes
    /// against the proven record before [`Store::adopt`]ing them. `None`: not
    /// published (always, for a store that is not shared).
    async fn fetch_shared(
        &self,
        _mv: &ModVersion,
        _kind: Kind,
        _max_bytes: u64,
    ) -> StoreResult<Option<(Entry, Spool)>> {
        Ok(None)
    }

    /// Stores a verified copy from [`Store::fetch_shared`] where this
    /// process serves from (it is already published).
    async fn adopt(&self, spool: Spool, entry: Entry) -> StoreResult<Entry> {
        self.commit(spool, entry).await
    }

    /// A copy from [`Store::fetch_shared`] failed verification: logged as a
    /// security event and kept aside; the caller fetches from upstream, and
    /// its commit replaces the published copy.
    async fn reject_shared(&self, _spool: Spool, _entry: &Entry, _reason: &str) {}

    /// Publishes a local file for the other replicas under `<area>/<name>`
    /// (each replica's audit segments, see `audit::shared`); nothing for a
    /// store that is not shared. Overwrites: the file is this replica's own.
    async fn share_file(
        &self,
        _area: &str,
        _name: &str,
        _path: &std::path::Path,
    ) -> StoreResult<()> {
        Ok(())
    }

    /// Every file shared under `area` (`name` relative to it, with its size).
    async fn shared_files(&self, _area: &str) -> StoreResult<Vec<(String, u64)>> {
        Ok(Vec::new())
    }

    /// Copies the shared file `<area>/<name>` to `dest`; `false` if absent.
    async fn fetch_file(
        &self,
        _area: &str,
        _name: &str,
        _dest: &std::path::Path,
    ) -> StoreResult<bool> {
        Ok(false)
    }

    /// Drops this process's own copy of an artifact found damaged where it
    /// serves from; a shared copy, if any, stays (it is checked when read).
    async fn forget_local(&self, mv: &ModVersion, kind: Kind) -> StoreResult<bool> {
        self.remove(mv, kind).await
    }

    /// Applies removals that others sharing this store made (`cache rm`
    /// against a bucket) to this process's local copies; how many went.
    async fn sync_removals(&self) -> StoreResult<usize> {
        Ok(0)
    }

    /// Whether other processes share this store (replicas on a bucket).
    fn is_shared(&self) -> bool {
        false
    }

    /// Checks, before serving, that the backend keeps the promises this
    /// trait makes (a bucket: conditional writes are enforced).
    async fn startup_check(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Whether the backend answers now (`/readyz`).
    async fn ready(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Where the data lives, for messages (`embedded store in /var/lib/modgate`).
    fn describe(&self) -> String;

    /// The part of the store that eviction (`[store] max_bytes`) bounds: the
    /// whole store when it is local, a replica's local tier when it is shared.
    fn evictable(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn Store>;
}

/// Where artifacts are kept: `--store` / `MODGATE_STORE` / `store = "…"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Location {
    /// sled and blob files in the data dir (the default).
    #[default]
    Embedded,
    /// An S3-compatible bucket shared by replicas: `s3://BUCKET[/PREFIX]`.
    S3 { bucket: String, prefix: String },
}

impl std::str::FromStr for Location {
    type Err = String;
    fn from_str(s: &str) -> Result<Location, String> {
        let s = s.trim();
        if s.is_empty() || s == "embedded" {
            return Ok(Location::Embedded);
        }
        let Some(rest) = s.strip_prefix("s3://") else {
            return Err(format!(
                "store {s:?}: expected `embedded` or `s3://BUCKET[/PREFIX]`"
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
            return Err(format!("store {s:?}: {bucket:?} is not an S3 bucket name"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..")
            || prefix.contains("//")
            || prefix.chars().any(|c| c.is_control())
        {
            return Err(format!("store {s:?}: bad prefix {prefix:?}"));
        }
        Ok(Location::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// Opens the store at `location`, keeping local data (the embedded store, or
/// a replica's local tier) in `data_dir`. A bucket is not contacted yet:
/// servers run [`Store::startup_check`] before they listen.
pub fn open(
    location: &Location,
    data_dir: &std::path::Path,
    memory_bytes: u64,
    timeout: std::time::Duration,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    Ok(match location {
        Location::Embedded => {
            std::sync::Arc::new(EmbeddedStore::open_with_memory(data_dir, memory_bytes)?)
        }
        Location::S3 { bucket, prefix } => std::sync::Arc::new(S3Store::open(
            bucket,
            prefix,
            data_dir,
            &S3Options {
                timeout,
                memory_bytes,
                metrics,
            },
        )?),
    })
}

/// The index key of an artifact: `<module>@<version>/<kind>`. Module paths
/// and versions contain neither `@`-ambiguity nor `/` in versions, so the key
/// is unambiguous; sled orders it so a module's entries are contiguous.
pub fn artifact_key(mv: &ModVersion, kind: Kind) -> String {
    format!("{}@{}/{}", mv.path(), mv.version(), kind.ext())
}

/// A digest read back from an index or a bucket must be 64 lower-case hex
/// digits before it names a file or a key (the index could be damaged, the
/// bucket written by others).
pub(crate) fn check_digest(digest: &str) -> StoreResult<()> {
    if digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            digest: digest.to_string(),
            reason: "not a SHA-256 hex digest".into(),
        })
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
