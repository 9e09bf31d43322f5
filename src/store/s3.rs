//! Replicas on one S3-compatible bucket: the shared tier (untrusted, checked on every read) behind a bounded local tier.
//!
//! ```text
//! <prefix>/blobs/sha256/<hex>                          content-addressed blobs
//! <prefix>/versions/<module>/@v/<version>.<kind>.json  a version's index entry, create-only,
//!                                                      written after its blob: present = complete
//! <prefix>/trust/<sumdb>/latest                        trusted signed tree head (compare-and-swap on ETag)
//! <prefix>/trust/<sumdb>/fork                          fork marker with its evidence (create-only)
//! <prefix>/trust/<sumdb>/heads                         when each tree size was first seen
//! <prefix>/pins/<module>@<version>/<kind>              private modules' first-sight pins (create-only)
//! <prefix>/quarantine/<hex>-<unix seconds>             blobs `cache verify` found damaged
//! <prefix>/tombstones/<unix seconds>-<random>.json     removals (`cache rm`) every replica applies
//!                                                      to its local tier (kept 7 days)
//! <prefix>/shared/audit/<replica>/seg-….{log,idx}       each replica's audit trail (`audit::shared`)
//! <prefix>/probe/<random>                              the start-up check of conditional writes
//! ```
//!
//! What a replica serves comes only from its **local tier** (an [`EmbeddedStore`]
//! in its data dir, bounded by `[store] local_max_bytes`), holding bytes this
//! replica verified itself. The bucket is where replicas *share* work: a local
//! miss asks [`Store::fetch_shared`] first, which stages the published blob after
//! checking its SHA-256 against the published entry, and the pipeline then
//! verifies those bytes exactly as it would an upstream answer (the `h1:` against
//! the checksum database's proven record, the zip rules) before adopting them.
//! So anyone who can write the bucket can deny service, but cannot make a replica
//! serve bytes it did not verify.
//!
//! Writes: a verified artifact's blob is uploaded first (overwriting: it is
//! content-addressed, and an overwrite repairs a damaged copy), then its entry,
//! create-only. An entry already there that differs from what was just verified
//! (a lying or stale object) is replaced by a conditional update on its ETag.
//! The trusted head moves by compare-and-swap on its ETag, after the sumdb
//! client proved consistency with its own last trusted head
//! (`sumdb::client::Client::merge_latest`), so it never moves backwards.
//!
//! Every bucket call is bounded by `[store] timeout_secs` (a stalled endpoint is
//! a 504, an unreachable one a 503; hits from the local tier carry on).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{
    Blob, EmbeddedStore, Entry, Meta, Spool, Staged, Store, StoreError, StoreResult, check_digest,
    now_secs,
};
use crate::protocol::{Kind, ModVersion};

/// Largest index entry or metadata value read from the bucket.
const MAX_META_BYTES: u64 = 1 << 20;

/// How long the bucket's totals (a listing) are reused for `/metrics`.
const TOTALS_TTL: Duration = Duration::from_secs(10);

/// How a bucket call ended, when not with a value.
enum Fail {
    NotFound,
    Exists,
    Precondition,
    Store(StoreError),
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> StoreError {
        match f {
            Fail::NotFound => StoreError::Shared {
                msg: "object not found".into(),
                timed_out: false,
            },
            Fail::Exists => StoreError::Shared {
                msg: "object already exists".into(),
                timed_out: false,
            },
            Fail::Precondition => StoreError::Shared {
                msg: "precondition failed".into(),
                timed_out: false,
            },
            Fail::Store(e) => e,
        }
    }
}

/// The tunables of a bucket store (`[store]`).
#[derive(Clone)]
pub struct S3Options {
    /// The longest one bucket call (or one chunk of a download) may take.
    pub timeout: Duration,
    /// Bytes of small blobs kept in memory by the local tier.
    pub memory_bytes: u64,
    /// Where a limit that bites is counted (`modgate_limit_hits_total`).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

pub struct S3Store {
    local: Arc<EmbeddedStore>,
    bucket: Arc<dyn ObjectStore>,
    /// `""` or `"a/b/"`: prepended to every key.
    prefix: String,
    url: String,
    timeout: Duration,
    totals: Mutex<Option<(u64, u64, Instant)>>,
    refreshing: Arc<AtomicBool>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Tombstones (removals by `cache rm`) already applied to the local tier.
    applied: Mutex<std::collections::HashSet<String>>,
    /// Entries read by [`Store::entries`], by key, with the ETag they had.
    listed: quick_cache::sync::Cache<String, (String, Entry)>,
}

/// Entries [`Store::entries`] remembers (~400 bytes each).
const LISTED_ENTRIES: usize = 100_000;

impl S3Store {
    /// Opens `s3://bucket/prefix` with the AWS environment's endpoint and
    /// credentials, keeping its local tier in `local_dir`. Makes no request:
    /// call [`Store::startup_check`] before serving.
    pub fn open(
        bucket: &str,
        prefix: &str,
        local_dir: &Path,
        opts: &S3Options,
    ) -> StoreResult<S3Store> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
        use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};
        // Set key by key: replacing the client options would drop what the
        // environment set (AWS_ALLOW_HTTP). No whole-request timeout: a large
        // blob's body may take long; a stall is caught per read.
        let secs = |d: Duration| format!("{}ms", d.as_millis());
        let connect = secs(opts.timeout.min(Duration::from_secs(5)));
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: opts.timeout,
        };
        // A process-wide TLS provider for object_store's own HTTP client
        // (reqwest is built without one; the rest of modgate installs ring too).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                connect,
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ReadTimeout),
                secs(opts.timeout),
            )
            .with_retry(retry)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .build()
            .map_err(|e| StoreError::Shared {
                msg: format!("configuring s3://{bucket}: {e}"),
                timed_out: false,
            })?;
        let local = EmbeddedStore::open_with_memory(local_dir, opts.memory_bytes)?;
        let mut store = S3Store::with_bucket(
            Arc::new(s3),
            &format!("s3://{bucket}"),
            prefix,
            Arc::new(local),
            opts.timeout,
        );
        store.metrics = opts.metrics.clone();
        Ok(store)
    }

    /// A store on any [`ObjectStore`] (tests use the in-memory one).
    pub fn with_bucket(
        bucket: Arc<dyn ObjectStore>,
        url: &str,
        prefix: &str,
        local: Arc<EmbeddedStore>,
        timeout: Duration,
    ) -> S3Store {
        let prefix = prefix.trim_matches('/');
        S3Store {
            local,
            bucket,
            prefix: match prefix {
                "" => String::new(),
                p => format!("{p}/"),
            },
            url: match prefix {
                "" => url.to_string(),
                p => format!("{url}/{p}"),
            },
            timeout,
            totals: Mutex::new(None),
            refreshing: Arc::default(),
            listed: quick_cache::sync::Cache::new(LISTED_ENTRIES),
            metrics: None,
            applied: Mutex::default(),
        }
    }

    /// Counts a limit that bit: `store_timeout` (`[store] timeout_secs`),
    /// `store_meta_bytes` (a metadata object over [`MAX_META_BYTES`]).
    fn bit(&self, limit: &str) {
        if let Some(m) = &self.metrics {
            m.limit_hit(limit);
        }
    }

    /// A failed or stalled bucket call, naming the bucket.
    fn fail(&self, what: String, timed_out: bool) -> StoreError {
        StoreError::Shared {
            msg: format!("{} {what}", self.url),
            timed_out,
        }
    }

    /// The local tier (this replica's verified copies).
    pub fn local(&self) -> &Arc<EmbeddedStore> {
        &self.local
    }

    fn key(&self, rel: &str) -> Key {
        Key::from(format!("{}{rel}", self.prefix))
    }

    fn blob_key(&self, digest: &str) -> StoreResult<Key> {
        check_digest(digest)?;
        Ok(self.key(&format!("blobs/sha256/{digest}")))
    }

    fn version_key(&self, module: &str, version: &str, kind: &str) -> Key {
        self.key(&format!("versions/{module}/@v/{version}.{kind}.json"))
    }

    fn entry_key(&self, e: &Entry) -> Key {
        self.version_key(&e.module, &e.version, &e.kind)
    }

    /// The bucket folder of a shared metadata namespace; `None`: kept locally.
    fn shared_ns(ns: Meta) -> Option<&'static str> {
        match ns {
            Meta::Trust => Some("trust"),
            Meta::Pin => Some("pins"),
            // Tiles and lookups are authenticated on every use and lists
            // expire: each replica keeps its own.
            Meta::Tile | Meta::Lookup | Meta::List => None,
        }
    }

    /// Runs one bucket call within the timeout, sorting its outcome.
    async fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T, Fail> {
        let r = tokio::time::timeout(self.timeout, f).await;
        if r.is_err() {
            self.bit("store_timeout");
        }
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(object_store::Error::NotFound { .. })) => Err(Fail::NotFound),
            Ok(Err(object_store::Error::AlreadyExists { .. })) => Err(Fail::Exists),
            Ok(Err(object_store::Error::Precondition { .. })) => Err(Fail::Precondition),
            Ok(Err(e)) => Err(Fail::Store(self.fail(format!("{what}: {e}"), false))),
            Err(_) => Err(Fail::Store(StoreError::Shared {
                msg: format!(
                    "{} {what}: no answer within {} ([store] timeout_secs)",
                    self.url,
                    humantime::format_duration(self.timeout)
                ),
                timed_out: true,
            })),
        }
    }

    /// A small object's bytes and ETag; `None` if absent.
    async fn get_small(&self, key: &Key) -> StoreResult<Option<(Bytes, Option<String>)>> {
        let got = match self.call(&format!("GET {key}"), self.bucket.get(key)).await {
            Ok(g) => g,
            Err(Fail::NotFound) => return Ok(None),
            Err(f) => return Err(f.into()),
        };
        if got.meta.size > MAX_META_BYTES {
            self.bit("store_meta_bytes");
            return Err(StoreError::Shared {
                msg: format!(
                    "{key} is {} bytes, more than metadata may be",
                    got.meta.size
                ),
                timed_out: false,
            });
        }
        let etag = got.meta.e_tag.clone();
        let bytes = self
            .call(&format!("GET {key}"), got.bytes())
            .await
            .map_err(StoreError::from)?;
        Ok(Some((bytes, etag)))
    }

    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> Result<(), Fail> {
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        self.call(
            &format!("PUT {key}"),
            self.bucket.put_opts(key, PutPayload::from(data), opts),
        )
        .await
        .map(drop)
    }

    async fn delete(&self, key: &Key) -> StoreResult<()> {
        match self
            .call(&format!("DELETE {key}"), self.bucket.delete(key))
            .await
        {
            Ok(()) | Err(Fail::NotFound) => Ok(()),
            Err(f) => Err(f.into()),
        }
    }

    /// Every key under `rel` (a folder), relative to the store's prefix, decoded.
    async fn list(&self, rel: &str) -> StoreResult<Vec<(String, u64)>> {
        Ok(self
            .list_tagged(rel)
            .await?
            .into_iter()
            .map(|(k, size, _)| (k, size))
            .collect())
    }

    /// [`S3Store::list`] with each object's ETag.
    async fn list_tagged(&self, rel: &str) -> StoreResult<Vec<(String, u64, Option<String>)>> {
        let base = self.key(rel);
        let mut stream = self.bucket.list(Some(&base));
        let mut out = Vec::new();
        loop {
            let next = match tokio::time::timeout(self.timeout, stream.next()).await {
                Ok(n) => n,
                Err(_) => {
                    self.bit("store_timeout");
                    return Err(self.fail(format!("LIST {base}: no answer in time"), true));
                }
            };
            match next {
                None => return Ok(out),
                Some(Ok(meta)) => {
                    let full = decode(meta.location.as_ref());
                    if let Some(rel) = full.strip_prefix(&self.prefix) {
                        out.push((rel.to_string(), meta.size, meta.e_tag));
                    }
                }
                Some(Err(e)) => {
                    return Err(self.fail(format!("LIST {base}: {e}"), false));
                }
            }
        }
    }

    /// Uploads a verified blob from a local file (multipart when large).
    async fn publish_file(&self, path: &Path, digest: &str) -> StoreResult<()> {
        let key = self.blob_key(digest)?;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
        let mut w = object_store::buffered::BufWriter::new(self.bucket.clone(), key.clone());
        let copy = async {
            tokio::io::copy(&mut file, &mut w).await?;
            w.shutdown().await
        };
        // A large upload gets time in proportion; a stalled one still ends.
        let size = tokio::fs::metadata(path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let budget = self.timeout + Duration::from_secs(size / (8 << 20));
        match tokio::time::timeout(budget, copy).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.fail(format!("PUT {key}: {e}"), false)),
            Err(_) => Err({
                self.bit("store_timeout");
                self.fail(format!("PUT {key}: no answer in time"), true)
            }),
        }
    }

    /// Writes a verified entry create-only; one already there that names
    /// other bytes is replaced (conditionally on its ETag), and logged.
    async fn publish_entry(&self, e: &Entry) -> StoreResult<()> {
        let key = self.entry_key(e);
        let body =
            Bytes::from(serde_json::to_vec(e).map_err(|x| StoreError::Index(x.to_string()))?);
        match self.put(&key, body.clone(), PutMode::Create).await {
            Ok(()) => {
                // Counted afresh at the next look (this replica's view at once).
                *self.totals.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return Ok(());
            }
            Err(Fail::Exists) => {}
            Err(f) => return Err(f.into()),
        }
        let Some((cur, etag)) = self.get_small(&key).await? else {
            // Deleted meanwhile (`cache rm`): create it again.
            return match self.put(&key, body, PutMode::Create).await {
                Ok(()) | Err(Fail::Exists) => Ok(()),
                Err(f) => Err(f.into()),
            };
        };
        let same = serde_json::from_slice::<Entry>(&cur)
            .is_ok_and(|c| c.digest == e.digest && c.verification.h1 == e.verification.h1);
        if same {
            return Ok(());
        }
        tracing::error!(target: "modgate::security", module = %e.module, version = %e.version,
            kind = %e.kind, bucket = %self.url,
            "the bucket's entry for this version names other bytes than were just verified; replacing it");
        let mode = PutMode::Update(UpdateVersion {
            e_tag: etag,
            version: None,
        });
        match self.put(&key, body, mode).await {
            // Someone replaced it first: readers verify whatever is there.
            Ok(()) | Err(Fail::Precondition) | Err(Fail::Exists) => Ok(()),
            Err(f) => Err(f.into()),
        }
    }

    /// Streams a bucket blob into a new local spool, hashing it; at most
    /// `size` bytes are accepted (the entry's claim).
    async fn download(&self, digest: &str, size: u64) -> StoreResult<Option<Spool>> {
        let key = self.blob_key(digest)?;
        let got = match self
            .call(&format!("GET {key}"), self.bucket.get(&key))
            .await
        {
            Ok(g) => g,
            Err(Fail::NotFound) => return Ok(None),
            Err(f) => return Err(f.into()),
        };
        let (mut spool, mut file) = self.local.spool().await?;
        let mut stream = got.into_stream();
        let mut h = Sha256::new();
        let mut n = 0u64;
        let io = |source| StoreError::Io {
            path: PathBuf::from("spool"),
            source,
        };
        loop {
            let chunk = match tokio::time::timeout(self.timeout, stream.next()).await {
                Err(_) => {
                    self.bit("store_timeout");
                    return Err(self.fail(format!("GET {key}: stalled"), true));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(self.fail(format!("GET {key}: {e}"), false));
                }
                Ok(Some(Ok(c))) => c,
            };
            n += chunk.len() as u64;
            if n > size {
                break;
            }
            h.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        spool.size = n;
        spool.digest = hex::encode(h.finalize());
        Ok(Some(spool))
    }

    /// Keeps the bytes of a bucket object that failed a check under the data
    /// dir's `quarantine/` for inspection.
    async fn quarantine_local(&self, spool: Spool, what: &str) {
        let qdir = self.local.root().join("quarantine");
        let dest = qdir.join(format!("shared-{what}-{}", now_secs()));
        let moved = async {
            tokio::fs::create_dir_all(&qdir).await?;
            tokio::fs::rename(&spool.path, &dest).await
        }
        .await;
        if moved.is_err() {
            // The spool guard deletes it instead.
            return;
        }
        let mut spool = spool;
        spool.mark_committed();
    }

    /// Counts the bucket: entries under `versions/` and the bytes of
    /// `blobs/` (what the bucket holds, the same figure on every replica).
    async fn count(&self) -> StoreResult<(u64, u64)> {
        let entries = self.list("versions").await?.len() as u64;
        let bytes = self.list("blobs").await?.iter().map(|(_, s)| s).sum();
        Ok((entries, bytes))
    }
}

/// A removal (`cache rm`, `cache verify`) for every replica to apply to its
/// local tier: `tombstones/<unix seconds>-<random>.json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Tombstone {
    time: u64,
    /// Artifact keys, `module@version/kind`.
    keys: Vec<String>,
}

/// How long tombstones are kept: a replica down for longer may keep serving
/// a removed version from its local tier after it restarts.
const TOMBSTONE_SECS: u64 = 7 * 86_400;

/// `module@version/kind` back into its parts (validated).
fn parse_artifact_key(key: &str) -> Option<(ModVersion, Kind)> {
    let (mv, kind) = key.rsplit_once('/')?;
    let (m, v) = mv.rsplit_once('@')?;
    Some((ModVersion::new(m, v).ok()?, Kind::parse(kind)?))
}

/// `module@version/kind` of an entry's key `versions/<module>/@v/<version>.<kind>.json`.
fn artifact_name(key: &str) -> Option<String> {
    let rest = key.strip_prefix("versions/")?;
    let (module, file) = rest.rsplit_once("/@v/")?;
    let stem = file.strip_suffix(".json")?;
    let (version, kind) = stem.rsplit_once('.')?;
    Some(format!("{module}@{version}/{kind}"))
}

/// Percent-decodes a listed key (object_store encodes what S3 advises against).
fn decode(key: &str) -> String {
    percent_encoding::percent_decode_str(key)
        .decode_utf8_lossy()
        .into_owned()
}

/// A published entry read from the bucket (untrusted bytes): it must parse,
/// name exactly `mv` and `kind`, claim at most `max_bytes` and a well-formed
/// digest. The bytes it names are still verified before use.
pub fn parse_published(
    raw: &[u8],
    mv: &ModVersion,
    kind: Kind,
    max_bytes: u64,
) -> Result<Entry, String> {
    let e: Entry = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    entry_fits(&e, mv, kind, max_bytes)?;
    Ok(e)
}

/// Whether a published entry is the one asked for and plausible.
fn entry_fits(e: &Entry, mv: &ModVersion, kind: Kind, max_bytes: u64) -> Result<(), String> {
    if e.module != mv.path() || e.version != mv.version() || e.kind != kind.ext() {
        return Err(format!(
            "it names {}@{} {} instead",
            e.module, e.version, e.kind
        ));
    }
    if e.size > max_bytes {
        return Err(format!("it claims {} bytes, over the limit", e.size));
    }
    check_digest(&e.digest).map_err(|x| x.to_string())
}

#[async_trait]
impl Store for S3Store {
    async fn spool(&self) -> StoreResult<(Spool, tokio::fs::File)> {
        self.local.spool().await
    }

    async fn entry(&self, mv: &ModVersion, kind: Kind) -> StoreResult<Option<Arc<Entry>>> {
        self.local.entry(mv, kind).await
    }

    async fn open(&self, entry: &Entry) -> StoreResult<Blob> {
        self.local.open(entry).await
    }

    async fn commit(&self, spool: Spool, entry: Entry) -> StoreResult<Entry> {
        // Blob, then entry (present = complete), then the local tier.
        self.publish_file(&spool.path, &entry.digest).await?;
        self.publish_entry(&entry).await?;
        self.local.commit(spool, entry).await
    }

    async fn commit_bytes(&self, data: &[u8], entry: Entry) -> StoreResult<Entry> {
        let digest = hex::encode(Sha256::digest(data));
        if digest != entry.digest {
            return Err(StoreError::Corrupt {
                digest: entry.digest,
                reason: format!("bytes to commit hash to {digest}"),
            });
        }
        let key = self.blob_key(&digest)?;
        self.put(&key, Bytes::copy_from_slice(data), PutMode::Overwrite)
            .await?;
        self.publish_entry(&entry).await?;
        self.local.commit_bytes(data, entry).await
    }

    async fn fetch_shared(
        &self,
        mv: &ModVersion,
        kind: Kind,
        max_bytes: u64,
    ) -> StoreResult<Option<(Entry, Spool)>> {
        let key = self.version_key(mv.path(), mv.version(), kind.ext());
        let Some((raw, _)) = self.get_small(&key).await? else {
            return Ok(None);
        };
        let claimed = match parse_published(&raw, mv, kind, max_bytes) {
            Ok(e) => e,
            Err(reason) => {
                tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                    kind = kind.ext(), bucket = %self.url, %reason,
                    "the bucket's entry for this version is not usable; fetching from upstream");
                return Ok(None);
            }
        };
        let Some(spool) = self.download(&claimed.digest, claimed.size).await? else {
            tracing::warn!(module = %mv.path(), version = %mv.version(), kind = kind.ext(),
                "the bucket has this version's entry but not its blob; fetching from upstream");
            return Ok(None);
        };
        if spool.digest != claimed.digest || spool.size != claimed.size {
            tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                kind = kind.ext(), bucket = %self.url, claimed = %claimed.digest, got = %spool.digest,
                "a blob read from the bucket does not match its entry; quarantined, fetching from upstream");
            self.quarantine_local(spool, &claimed.digest).await;
            return Ok(None);
        }
        Ok(Some((claimed, spool)))
    }

    async fn adopt(&self, spool: Spool, entry: Entry) -> StoreResult<Entry> {
        self.local.commit(spool, entry).await
    }

    async fn reject_shared(&self, spool: Spool, entry: &Entry, reason: &str) {
        tracing::error!(target: "modgate::security", module = %entry.module, version = %entry.version,
            kind = %entry.kind, bucket = %self.url, %reason,
            "a copy read from the bucket failed verification; quarantined, fetching from upstream");
        self.quarantine_local(spool, &entry.digest).await;
    }

    async fn remove(&self, mv: &ModVersion, kind: Kind) -> StoreResult<bool> {
        let key = self.version_key(mv.path(), mv.version(), kind.ext());
        let shared = self.get_small(&key).await?.is_some();
        self.delete(&key).await?;
        // Every replica drops its local copy too (see `sync_removals`).
        let stone = Tombstone {
            time: now_secs(),
            keys: vec![super::artifact_key(mv, kind)],
        };
        let body = serde_json::to_vec(&stone).map_err(|e| StoreError::Index(e.to_string()))?;
        let name = format!("tombstones/{:012}-{:016x}.json", stone.time, rand());
        self.put(&self.key(&name), Bytes::from(body), PutMode::Create)
            .await?;
        *self.totals.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(self.local.remove(mv, kind).await? || shared)
    }

    async fn delete_blob(&self, digest: &str) -> StoreResult<()> {
        self.delete(&self.blob_key(digest)?).await?;
        self.local.delete_blob(digest).await
    }

    async fn forget_local(&self, mv: &ModVersion, kind: Kind) -> StoreResult<bool> {
        self.local.remove(mv, kind).await
    }

    async fn sync_removals(&self) -> StoreResult<usize> {
        let mut removed = 0;
        let now = now_secs();
        for (k, _) in self.list("tombstones").await? {
            let Some(name) = k.strip_prefix("tombstones/") else {
                continue;
            };
            if self
                .applied
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(name)
            {
                continue;
            }
            let written = name
                .split('-')
                .next()
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0);
            if now.saturating_sub(written) > TOMBSTONE_SECS {
                // Old enough that every running replica has applied it.
                self.delete(&self.key(&k)).await?;
                continue;
            }
            let Some((raw, _)) = self.get_small(&self.key(&k)).await? else {
                continue;
            };
            // Anyone who can write the bucket can write a tombstone: at worst
            // it drops local copies, which are then read and verified again.
            if let Ok(stone) = serde_json::from_slice::<Tombstone>(&raw) {
                for key in &stone.keys {
                    let Some((mv, kind)) = parse_artifact_key(key) else {
                        continue;
                    };
                    // Only a copy verified before the removal goes.
                    if let Some(e) = self.local.entry(&mv, kind).await?
                        && e.verification.verified_at <= stone.time
                        && self.local.remove(&mv, kind).await?
                    {
                        removed += 1;
                    }
                }
            }
            self.applied
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string());
        }
        Ok(removed)
    }

    async fn entries(&self, prefix: &str) -> StoreResult<Vec<Entry>> {
        // Listing is by folder: the deepest one every matching key is under
        // (a module's versions share `versions/<module>/@v`).
        let folder = match prefix.split_once('@') {
            Some((m, _)) if !m.is_empty() => format!("versions/{m}/@v"),
            _ => match prefix.rfind('/') {
                Some(i) => format!("versions/{}", &prefix[..i]),
                None => "versions".to_string(),
            },
        };
        // Only the keys that can match are read (their names say module,
        // version and kind; what is read back must then agree with its name).
        let keys: Vec<(String, u64, Option<String>)> = self
            .list_tagged(&folder)
            .await?
            .into_iter()
            .filter(|(k, _, _)| artifact_name(k).is_some_and(|n| n.starts_with(prefix)))
            .collect();
        // An entry read before under the same ETag is the same object: only
        // new or changed ones are fetched (a re-check of the whole bucket
        // costs a listing, not a GET per version).
        let mut out = Vec::new();
        let mut fetch = Vec::new();
        for (k, _, etag) in keys {
            match (&etag, self.listed.get(&k)) {
                (Some(t), Some((seen, e))) if *t == seen => out.push(e),
                _ => fetch.push(k),
            }
        }
        let reads = futures_util::stream::iter(fetch)
            .map(|k| async move { (self.get_small(&self.key(&k)).await, k) })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        for (got, k) in reads {
            let Some((raw, etag)) = got? else { continue };
            match serde_json::from_slice::<Entry>(&raw) {
                Ok(e) if self.key(&k) == self.entry_key(&e) => {
                    if let Some(t) = etag {
                        self.listed.insert(k.clone(), (t, e.clone()));
                    }
                    if format!("{}@{}/{}", e.module, e.version, e.kind).starts_with(prefix) {
                        out.push(e);
                    }
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(target: "modgate::security", key = %k, bucket = %self.url,
                        "an entry in the bucket does not match its key; ignored")
                }
            }
        }
        out.sort_by(|a, b| (&a.module, &a.version, &a.kind).cmp(&(&b.module, &b.version, &b.kind)));
        Ok(out)
    }

    async fn totals(&self) -> StoreResult<(u64, u64)> {
        let cached = *self.totals.lock().unwrap_or_else(|e| e.into_inner());
        match cached {
            Some((n, b, at)) if at.elapsed() < TOTALS_TTL => Ok((n, b)),
            Some((n, b, _)) => {
                // Stale: answer with it and count again in the background.
                if !self.refreshing.swap(true, Ordering::SeqCst) {
                    let t = self.count().await;
                    self.refreshing.store(false, Ordering::SeqCst);
                    if let Ok((n, b)) = t {
                        *self.totals.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some((n, b, Instant::now()));
                        return Ok((n, b));
                    }
                }
                Ok((n, b))
            }
            None => {
                let (n, b) = self.count().await?;
                *self.totals.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((n, b, Instant::now()));
                Ok((n, b))
            }
        }
    }

    async fn meta_get(&self, ns: Meta, key: &str) -> StoreResult<Option<Vec<u8>>> {
        match Self::shared_ns(ns) {
            None => self.local.meta_get(ns, key).await,
            Some(dir) => Ok(self
                .get_small(&self.key(&format!("{dir}/{key}")))
                .await?
                .map(|(b, _)| b.to_vec())),
        }
    }

    async fn meta_put(&self, ns: Meta, key: &str, value: &[u8]) -> StoreResult<()> {
        match Self::shared_ns(ns) {
            None => self.local.meta_put(ns, key, value).await,
            Some(dir) => Ok(self
                .put(
                    &self.key(&format!("{dir}/{key}")),
                    Bytes::copy_from_slice(value),
                    PutMode::Overwrite,
                )
                .await?),
        }
    }

    async fn meta_cas(
        &self,
        ns: Meta,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> StoreResult<()> {
        let Some(dir) = Self::shared_ns(ns) else {
            return self.local.meta_cas(ns, key, old, new).await;
        };
        let k = self.key(&format!("{dir}/{key}"));
        let conflict = || StoreError::Conflict(format!("{}/{dir}/{key}", self.url));
        let mode = match old {
            None => PutMode::Create,
            Some(old) => match self.get_small(&k).await? {
                Some((cur, etag)) if cur.as_ref() == old && etag.is_some() => {
                    PutMode::Update(UpdateVersion {
                        e_tag: etag,
                        version: None,
                    })
                }
                _ => return Err(conflict()),
            },
        };
        match self.put(&k, Bytes::copy_from_slice(new), mode).await {
            Ok(()) => Ok(()),
            Err(Fail::Exists | Fail::Precondition | Fail::NotFound) => Err(conflict()),
            Err(f) => Err(f.into()),
        }
    }

    async fn meta_remove(&self, ns: Meta, key: &str) -> StoreResult<()> {
        match Self::shared_ns(ns) {
            None => self.local.meta_remove(ns, key).await,
            Some(dir) => self.delete(&self.key(&format!("{dir}/{key}"))).await,
        }
    }

    async fn meta_scan(&self, ns: Meta, prefix: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let Some(dir) = Self::shared_ns(ns) else {
            return self.local.meta_scan(ns, prefix).await;
        };
        let mut out = Vec::new();
        for (k, _) in self.list(dir).await? {
            let Some(key) = k.strip_prefix(&format!("{dir}/")) else {
                continue;
            };
            if key.starts_with(prefix)
                && let Some((v, _)) = self.get_small(&self.key(&k)).await?
            {
                out.push((key.to_string(), v.to_vec()));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn meta_count(&self, ns: Meta, prefix: &str) -> StoreResult<usize> {
        let Some(dir) = Self::shared_ns(ns) else {
            return self.local.meta_count(ns, prefix).await;
        };
        let want = format!("{dir}/{prefix}");
        Ok(self
            .list(dir)
            .await?
            .iter()
            .filter(|(k, _)| k.starts_with(&want))
            .count())
    }

    async fn stage_blob(&self, digest: &str) -> StoreResult<Option<Staged>> {
        // The bucket's copy is what is checked (the local tier is re-checked
        // whenever it is read).
        let key = self.blob_key(digest)?;
        let size = match self
            .call(&format!("HEAD {key}"), self.bucket.head(&key))
            .await
        {
            Ok(m) => m.size,
            Err(Fail::NotFound) => return Ok(None),
            Err(f) => return Err(f.into()),
        };
        Ok(self.download(digest, size).await?.map(Staged::copied))
    }

    async fn quarantine_blob(&self, digest: &str, reason: &str) -> StoreResult<String> {
        let from = self.blob_key(digest)?;
        let to = self.key(&format!("quarantine/{digest}-{}", now_secs()));
        match self
            .call(&format!("COPY {from}"), self.bucket.copy(&from, &to))
            .await
        {
            Ok(()) | Err(Fail::NotFound) => {}
            Err(f) => return Err(f.into()),
        }
        self.delete(&from).await?;
        let _ = self.local.quarantine_blob(digest, reason).await;
        Ok(format!(
            "blob moved to {}/{}",
            self.url,
            decode(to.as_ref())
        ))
    }

    async fn flush(&self) -> StoreResult<()> {
        self.local.flush().await
    }

    fn describe(&self) -> String {
        format!(
            "bucket {} (local tier in {})",
            self.url,
            self.local.root().display()
        )
    }

    fn evictable(self: Arc<Self>) -> Arc<dyn Store> {
        self.local.clone()
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn share_file(&self, area: &str, name: &str, path: &Path) -> StoreResult<()> {
        let data = tokio::fs::read(path)
            .await
            .map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
        let key = self.key(&format!("shared/{area}/{name}"));
        Ok(self
            .put(&key, Bytes::from(data), PutMode::Overwrite)
            .await?)
    }

    async fn shared_files(&self, area: &str) -> StoreResult<Vec<(String, u64)>> {
        let dir = format!("shared/{area}/");
        Ok(self
            .list(&format!("shared/{area}"))
            .await?
            .into_iter()
            .filter_map(|(k, size)| k.strip_prefix(&dir).map(|n| (n.to_string(), size)))
            .collect())
    }

    async fn fetch_file(&self, area: &str, name: &str, dest: &Path) -> StoreResult<bool> {
        let key = self.key(&format!("shared/{area}/{name}"));
        let got = match self
            .call(&format!("GET {key}"), self.bucket.get(&key))
            .await
        {
            Ok(g) => g,
            Err(Fail::NotFound) => return Ok(false),
            Err(f) => return Err(f.into()),
        };
        let bytes = self
            .call(&format!("GET {key}"), got.bytes())
            .await
            .map_err(StoreError::from)?;
        let tmp = dest.with_extension("part");
        let io = |source| StoreError::Io {
            path: dest.to_owned(),
            source,
        };
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        tokio::fs::write(&tmp, &bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, dest).await.map_err(io)?;
        Ok(true)
    }

    async fn startup_check(&self) -> StoreResult<()> {
        let k = self.key(&format!("probe/{:016x}{:016x}", rand(), rand()));
        let refuse = |what: &str| StoreError::Shared {
            msg: format!(
                "{} does not enforce conditional writes ({what}): replicas could overwrite \
                 each other's trusted head and half-written versions; refusing to start",
                self.url
            ),
            timed_out: false,
        };
        self.put(&k, Bytes::from_static(b"1"), PutMode::Create)
            .await?;
        let second = self
            .put(&k, Bytes::from_static(b"2"), PutMode::Create)
            .await;
        let stale = PutMode::Update(UpdateVersion {
            e_tag: Some("\"modgate-stale-etag\"".into()),
            version: None,
        });
        let third = self.put(&k, Bytes::from_static(b"3"), stale).await;
        self.delete(&k).await?;
        match second {
            Err(Fail::Exists) => {}
            Ok(()) => {
                return Err(refuse(
                    "a create-only PUT with If-None-Match: * overwrote an object",
                ));
            }
            Err(f) => return Err(f.into()),
        }
        match third {
            Err(Fail::Precondition) => Ok(()),
            Ok(()) => Err(refuse(
                "a PUT with If-Match and a stale ETag overwrote an object",
            )),
            Err(f) => Err(f.into()),
        }
    }

    async fn ready(&self) -> StoreResult<()> {
        let k = self.key("probe/readyz");
        match self.call("HEAD probe", self.bucket.head(&k)).await {
            Ok(_) | Err(Fail::NotFound) => Ok(()),
            Err(f) => Err(f.into()),
        }
    }
}

fn rand() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b) ^ now_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Verification;

    fn store(dir: &Path) -> S3Store {
        let local = Arc::new(EmbeddedStore::open(dir).unwrap());
        let mem = Arc::new(object_store::memory::InMemory::new());
        S3Store::with_bucket(mem, "s3://test", "pre", local, Duration::from_secs(5))
    }

    fn entry(data: &[u8], kind: Kind) -> Entry {
        Entry {
            module: "example.com/m".into(),
            version: "v1.0.0".into(),
            kind: kind.ext().into(),
            digest: hex::encode(Sha256::digest(data)),
            size: data.len() as u64,
            verification: Verification {
                h1: "h1:x".into(),
                sumdb: "s".into(),
                record_id: 1,
                tree_size: 2,
                tree_hash: "t".into(),
                verified_at: 1,
                authority: Default::default(),
            },
        }
    }

    #[tokio::test]
    async fn commits_publish_entries_counted_once_in_the_totals() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        assert_eq!(s.totals().await.unwrap(), (0, 0));
        let data = b"module example.com/m\n";
        s.commit_bytes(data, entry(data, Kind::Mod)).await.unwrap();
        assert_eq!(s.totals().await.unwrap(), (1, data.len() as u64));
        let all = s.entries("").await.unwrap();
        assert_eq!(all.len(), 1);
        let mine = s.entries("example.com/m@").await.unwrap();
        assert_eq!(mine.len(), 1);
        assert!(s.entries("example.com/other@").await.unwrap().is_empty());
        assert_eq!(s.entries("example.com/").await.unwrap().len(), 1);
        assert_eq!(s.entries("example.com/m@v1.0").await.unwrap().len(), 1);
        assert!(s.entries("example.com/m@v1.1").await.unwrap().is_empty());
        assert_eq!(s.entries("exa").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn trust_moves_by_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.meta_cas(Meta::Trust, "db/latest", None, b"one")
            .await
            .unwrap();
        assert!(matches!(
            s.meta_cas(Meta::Trust, "db/latest", None, b"two").await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.meta_cas(Meta::Trust, "db/latest", Some(b"zero"), b"two")
                .await,
            Err(StoreError::Conflict(_))
        ));
        s.meta_cas(Meta::Trust, "db/latest", Some(b"one"), b"two")
            .await
            .unwrap();
        assert_eq!(
            s.meta_get(Meta::Trust, "db/latest")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"two"[..])
        );
        let scanned = s.meta_scan(Meta::Trust, "db/").await.unwrap();
        assert_eq!(scanned, vec![("db/latest".to_string(), b"two".to_vec())]);
        assert_eq!(s.meta_count(Meta::Trust, "db/").await.unwrap(), 1);
    }
}
