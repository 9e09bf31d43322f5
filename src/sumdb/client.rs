//! The verifying checksum-database client: `GET <sumdb>/lookup/<path>@<version>`, `/latest`, `/tile/8/L/NNN[.p/W]`, checked against a persisted signed tree head (`<name>/latest`).
//!
//! All I/O goes through [`ClientOps`]. The verification itself is the pure
//! code in [`note`](super::note) and [`tlog`](super::tlog): the client plans
//! which tiles a proof needs, fetches them (cache first), and then runs the
//! synchronous proof over a [`MemTiles`].

use super::heads::{HeadHistory, HeadLog, heads_file};
use super::lookup::{LookupError, parse_lookup};
use super::note::{self, NoteError, Verifier, VerifierList};
use super::tlog::{
    Hash, HashReader, MemTiles, Tile, TileHashReader, TlogError, Tree, parse_tree, prove_tree,
    record_hash, stored_hash_index, tiles_for_hashes, tree_hash, tree_hash_indexes,
    tree_proof_indexes,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The tile height of the Go checksum database.
pub const TILE_HEIGHT: u32 = 8;

/// How long a proxied `latest` is reused: `go` clients ask for it often and
/// it changes every few seconds at most, so a short reuse spares the database
/// without serving a noticeably old head.
pub const PROXY_LATEST_TTL: Duration = Duration::from_secs(5);

/// How long a proxied partial tile is reused. Partial tiles are superseded
/// as the log grows, so they are kept in memory only, briefly.
pub const PROXY_PARTIAL_TILE_TTL: Duration = Duration::from_secs(10);

/// Most partial tiles kept in memory at once (each at most 8 KiB).
const PROXY_PARTIAL_TILE_MAX: usize = 1024;

/// The trust-store file holding the trusted signed tree note of database `name`.
pub fn latest_file(name: &str) -> String {
    format!("{name}/latest")
}

/// The trust-store file holding the fork marker of database `name`: while it
/// exists, the client refuses every new verification (see [`ForkMarker`]).
pub fn fork_file(name: &str) -> String {
    format!("{name}/fork")
}

/// Access to the outside world for a [`Client`].
#[async_trait]
pub trait ClientOps: Send + Sync {
    /// Fetches `path` from the checksum database: `lookup/<esc>@<esc>`,
    /// `latest`, `tile/8/0/000`. Unreachable or non-200 is an availability
    /// error ([`ClientError::Unavailable`] or [`ClientError::NotFound`]).
    async fn read_remote(&self, path: &str) -> Result<Vec<u8>, ClientError>;
    /// Reads persisted trust, `<name>/latest`; `None` if never written.
    async fn read_config(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError>;
    /// Replaces `file` with `new` if it currently holds `old` (`None`: absent);
    /// otherwise fails with [`ClientError::CasConflict`].
    async fn write_config(
        &self,
        file: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), ClientError>;
    /// Reads a cached file (tiles: `<name>/tile/8/0/000`); `None` if absent.
    async fn read_cache(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError>;
    /// Writes a cached file (only authenticated full tiles are written).
    async fn write_cache(&self, file: &str, data: &[u8]) -> Result<(), ClientError>;
    /// Removes a cached file that no longer authenticates (damaged locally).
    async fn delete_cache(&self, file: &str) -> Result<(), ClientError>;
    /// Records proven misbehaviour of the checksum database.
    async fn security_error(&self, evidence: &ForkEvidence);
}

/// Proof that the checksum database signed two inconsistent trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkEvidence {
    pub old_note: Vec<u8>,
    pub new_note: Vec<u8>,
    pub old_tree: Tree,
    pub new_tree: Tree,
    /// The hash of the first `old_tree.n` records according to `new_tree`'s
    /// authenticated tiles (differs from `old_tree.hash`); `None` when both
    /// trees have the same size.
    pub old_hash_in_new: Option<Hash>,
    /// A tree proof from `new_tree` down to `old_hash_in_new` (empty when the
    /// sizes are equal or the proof could not be fetched).
    pub proof: Vec<Hash>,
}

impl std::fmt::Display for ForkEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let indent = |b: &[u8]| String::from_utf8_lossy(b).replace('\n', "\n\t");
        writeln!(f, "SECURITY ERROR")?;
        writeln!(f, "go.sum database server misbehavior detected!\n")?;
        writeln!(f, "old database:\n\t{}", indent(&self.old_note))?;
        writeln!(f, "new database:\n\t{}", indent(&self.new_note))?;
        write!(f, "proof of misbehavior:")?;
        if let Some(h) = self.old_hash_in_new {
            write!(f, "\n\t{h}")?;
        }
        for h in &self.proof {
            write!(f, "\n\t{h}")?;
        }
        Ok(())
    }
}

/// What is persisted (as JSON, in [`fork_file`]) when a fork is proven, so
/// the refusal survives restarts until an operator clears it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkMarker {
    /// Seconds since the Unix epoch when the fork was detected.
    pub detected_at: u64,
    pub old_tree_size: i64,
    pub old_tree_hash: String,
    pub new_tree_size: i64,
    pub new_tree_hash: String,
    /// The evidence as the go command prints it: both signed notes and the
    /// proof hashes.
    pub evidence: String,
}

impl ForkMarker {
    fn from_evidence(ev: &ForkEvidence) -> ForkMarker {
        ForkMarker {
            detected_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            old_tree_size: ev.old_tree.n,
            old_tree_hash: ev.old_tree.hash.to_string(),
            new_tree_size: ev.new_tree.n,
            new_tree_hash: ev.new_tree.hash.to_string(),
            evidence: ev.to_string(),
        }
    }

    /// Reads a stored marker. One that does not parse still marks a fork:
    /// failing closed beats trusting a damaged trust store.
    pub fn parse(raw: &[u8]) -> ForkMarker {
        serde_json::from_slice(raw).unwrap_or_else(|e| ForkMarker {
            detected_at: 0,
            old_tree_size: 0,
            old_tree_hash: String::new(),
            new_tree_size: 0,
            new_tree_hash: String::new(),
            evidence: format!("(unreadable fork marker: {e})"),
        })
    }
}

/// Client errors: security failures (the data does not verify) versus
/// availability failures (the data could not be had); see [`ClientError::is_security`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid checksum database key: {0}")]
    BadKey(NoteError),
    #[error("invalid module path or version: {0}")]
    InvalidModule(String),
    #[error("checksum database unavailable: {path}: {msg}")]
    Unavailable { path: String, msg: String },
    /// The database did not answer in time (told apart by type, not by text).
    #[error("checksum database timed out: {path}: {msg}")]
    Timeout { path: String, msg: String },
    #[error("checksum database has no {0}")]
    NotFound(String),
    #[error("write conflict")]
    CasConflict,
    #[error("local storage: {0}")]
    Storage(String),
    /// Our own disk is full (ENOSPC, EDQUOT), wherever it happened (sled included).
    #[error("local storage full: {0}")]
    StorageFull(String),
    #[error("malformed lookup response: {0}")]
    Lookup(#[from] LookupError),
    #[error("verifying signed note: {0}")]
    Note(#[from] NoteError),
    #[error("verifying log: {0}")]
    Tlog(#[from] TlogError),
    #[error("record {id} is not in the tree of size {size}")]
    RecordNotInTree { id: i64, size: i64 },
    #[error("cannot authenticate record data in server response")]
    RecordMismatch,
    #[error("security error: checksum database fork detected\n{0}")]
    Fork(Box<ForkEvidence>),
    #[error("security error: checksum database misbehaved earlier; refusing to continue")]
    Forked,
}

impl ClientError {
    /// True for failures that mean the server (or something between us and
    /// it) served data that does not verify; false for unreachable servers,
    /// missing entries, local storage problems and bad arguments.
    pub fn is_security(&self) -> bool {
        match self {
            ClientError::BadKey(_)
            | ClientError::InvalidModule(_)
            | ClientError::Unavailable { .. }
            | ClientError::Timeout { .. }
            | ClientError::NotFound(_)
            | ClientError::CasConflict
            | ClientError::Storage(_)
            | ClientError::StorageFull(_) => false,
            // A bug of ours is not the database's misbehaviour.
            ClientError::Tlog(_) if self.is_internal() => false,
            ClientError::Lookup(_)
            | ClientError::Note(_)
            | ClientError::Tlog(_)
            | ClientError::RecordNotInTree { .. }
            | ClientError::RecordMismatch
            | ClientError::Fork(_)
            | ClientError::Forked => true,
        }
    }

    /// True for an error in our own tile/proof code or its inputs (a bug, or
    /// a condition we did not expect), which says nothing about the database.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            ClientError::Tlog(
                TlogError::Internal(_)
                    | TlogError::InvalidInputs(_)
                    | TlogError::ShortRead { .. }
                    | TlogError::MissingTile(_)
                    | TlogError::MalformedTilePath(_)
            )
        )
    }

    /// True for failures on our side — our disk, our key, our arguments, a
    /// lost compare-and-swap race, our own code — never "database unavailable".
    pub fn is_local(&self) -> bool {
        self.is_internal()
            || matches!(
                self,
                ClientError::BadKey(_)
                    | ClientError::InvalidModule(_)
                    | ClientError::CasConflict
                    | ClientError::Storage(_)
                    | ClientError::StorageFull(_)
            )
    }
}

/// A verified lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub id: i64,
    /// The zip hash; `None` only for records with just a `/go.mod` line.
    pub zip_h1: Option<String>,
    pub mod_h1: String,
    /// The trusted tree the record was proven in.
    pub tree: Tree,
    /// The signed note that came with the lookup.
    pub note: Vec<u8>,
    /// The whole lookup response as the database served it (id, record,
    /// note), for serving it on to `go` clients exactly as verified.
    pub raw: Vec<u8>,
}

/// A tile answered by [`Client::proxy_tile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedTile {
    pub data: Vec<u8>,
    /// True if it came from memory or the tile cache rather than the database.
    pub cached: bool,
}

/// A `latest` answered by [`Client::proxy_latest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedLatest {
    /// A signed tree note, verified and consistent with everything trusted.
    pub note: Vec<u8>,
    /// True if this is the last trusted note, served because the database
    /// could not be reached.
    pub stale: bool,
    /// True if it was reused from the last few seconds.
    pub cached: bool,
}

/// Short-lived in-memory answers for the sumdb-through-the-proxy endpoints.
#[derive(Default)]
struct ProxyCache {
    latest: Mutex<Option<(Instant, Vec<u8>)>>,
    partial_tiles: Mutex<HashMap<Tile, (Instant, Vec<u8>)>>,
}

/// Where a tree note stands relative to the trusted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Past,
    Now,
    Future,
}

/// The trusted tree head and its signed note.
#[derive(Debug, Clone, Default)]
struct Latest {
    tree: Tree,
    note: Vec<u8>,
}

/// A verifying client for one checksum database.
pub struct Client {
    ops: Arc<dyn ClientOps>,
    verifiers: VerifierList,
    name: String,
    // A std Mutex, not an async one: it guards a small value, is held only to
    // copy or swap it, and is never held across an await.
    latest: Mutex<Latest>,
    loaded: AtomicBool,
    forked: AtomicBool,
    // The persisted fork marker, once known (loaded or just written).
    fork_marker: Mutex<Option<ForkMarker>>,
    // Full tiles already written to the cache (or read from it).
    tile_saved: Mutex<HashSet<Tile>>,
    proxy: ProxyCache,
    // When each trusted head was first seen: dates the records it added.
    heads: HeadLog,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Client {
    /// A client trusting the verifier key `vkey` (e.g.
    /// `sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8`).
    pub fn new(ops: Arc<dyn ClientOps>, vkey: &str) -> Result<Client, ClientError> {
        let v = Verifier::new(vkey.trim()).map_err(ClientError::BadKey)?;
        Ok(Client {
            ops,
            name: v.name().to_string(),
            verifiers: VerifierList(vec![v]),
            latest: Mutex::new(Latest::default()),
            loaded: AtomicBool::new(false),
            forked: AtomicBool::new(false),
            fork_marker: Mutex::new(None),
            tile_saved: Mutex::new(HashSet::new()),
            proxy: ProxyCache::default(),
            heads: HeadLog::default(),
        })
    }

    /// The checksum database's name, e.g. `sum.golang.org`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once the client has proven the database inconsistent; it then
    /// refuses every request.
    pub fn is_forked(&self) -> bool {
        self.forked.load(Ordering::SeqCst)
    }

    /// Sets or clears the refusing state in memory only. A persisted fork
    /// marker is loaded by [`Client::load`]; clearing it is the operator's
    /// `modgate trust reset`.
    pub fn set_forked(&self, forked: bool) {
        self.forked.store(forked, Ordering::SeqCst);
    }

    /// Re-reads the trust state that other processes sharing the store may
    /// have changed (replicas on one bucket): a fork marker one of them wrote
    /// stops this client too; `modgate trust reset` (marker and trusted head
    /// removed) lets it trust afresh from what is stored now. Returns whether
    /// anything changed.
    pub async fn resync(&self) -> Result<bool, ClientError> {
        self.ensure_loaded().await?;
        let marker = self.ops.read_config(&fork_file(&self.name)).await?;
        let known = lock(&self.fork_marker).is_some();
        match (marker, self.is_forked()) {
            (Some(raw), false) => {
                let marker = ForkMarker::parse(&raw);
                tracing::error!(target: "modgate::security", sumdb = %self.name,
                    detected_at = marker.detected_at,
                    "a checksum database fork was recorded by another replica sharing this \
                     store; refusing new verifications until `modgate trust reset --sumdb {}`",
                    self.name);
                *lock(&self.fork_marker) = Some(marker);
                self.forked.store(true, Ordering::SeqCst);
                Ok(true)
            }
            (None, true) if known => {
                let stored = self.ops.read_config(&self.config_file()).await?;
                let latest = match stored.filter(|m| !m.is_empty()) {
                    Some(msg) => Latest {
                        tree: self.open_tree(&msg)?,
                        note: msg,
                    },
                    None => Latest::default(),
                };
                let size = latest.tree.n;
                *lock(&self.latest) = latest;
                *lock(&self.proxy.latest) = None;
                *lock(&self.fork_marker) = None;
                self.forked.store(false, Ordering::SeqCst);
                tracing::warn!(target: "modgate::security", sumdb = %self.name, trusted_size = size,
                    "the fork marker was cleared (`modgate trust reset`); verifying again from the stored trust state");
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The fork marker, if a fork was detected (now, or before a restart
    /// and loaded by [`Client::load`]).
    pub fn fork_marker(&self) -> Option<ForkMarker> {
        lock(&self.fork_marker).clone()
    }

    /// The trusted tree head (size 0 before anything is known).
    pub fn latest(&self) -> Tree {
        lock(&self.latest).tree
    }

    /// When each trusted head was first seen (dates records; see [`super::heads`]).
    pub fn head_history(&self) -> Arc<HeadHistory> {
        self.heads.snapshot()
    }

    /// Writes the head history now if it changed (at shutdown, say).
    pub async fn flush_head_history(&self) {
        self.heads
            .persist(&*self.ops, &heads_file(&self.name), true)
            .await;
    }

    /// Fetches, verifies and trusts the database's current head, so that
    /// records are dated soon after they enter the log (the head watcher's
    /// round). The same path as [`Client::proxy_latest`] — merged with a
    /// consistency proof, a fork caught here too, the note then reused for
    /// `go` clients — but always asking the database, and failing when it
    /// cannot be reached rather than falling back to the last trusted note
    /// (the watcher logs an outage once, not every round).
    pub async fn watch_head(&self) -> Result<Tree, ClientError> {
        self.ensure_loaded().await?;
        self.check_not_forked()?;
        let msg = self.ops.read_remote("latest").await?;
        let tree = self.merge_latest(&msg).await?;
        *lock(&self.proxy.latest) = Some((Instant::now(), msg));
        self.heads
            .persist(&*self.ops, &heads_file(&self.name), false)
            .await;
        Ok(tree)
    }

    /// The signed note of the trusted tree head (empty before anything is known).
    pub fn latest_note(&self) -> Vec<u8> {
        lock(&self.latest).note.clone()
    }

    /// Loads the persisted trust state: the trusted tree head and any fork
    /// marker (which puts the client in the refusing state). Done lazily
    /// before the first verification; servers call it at start-up so
    /// [`Client::is_forked`] is right from the first request.
    pub async fn load(&self) -> Result<(), ClientError> {
        self.ensure_loaded().await
    }

    fn config_file(&self) -> String {
        latest_file(&self.name)
    }

    /// Looks up `path@version` (unescaped), proves the record is in the log
    /// and the log consistent with everything trusted so far.
    pub async fn lookup(&self, path: &str, version: &str) -> Result<Verified, ClientError> {
        self.ensure_loaded().await?;
        self.check_not_forked()?;
        let epath = crate::module::escape_path(path)
            .map_err(|e| ClientError::InvalidModule(format!("{path}: {e}")))?;
        let evers = crate::module::escape_version(version)
            .map_err(|e| ClientError::InvalidModule(format!("{version}: {e}")))?;
        let remote = format!("lookup/{epath}@{evers}");
        let data = self.ops.read_remote(&remote).await?;
        let lookup = parse_lookup(&data)?;
        self.merge_latest(&lookup.note).await?;
        let tree = self.check_record(lookup.id, &lookup.record).await?;
        let hashes = lookup.hashes(path, version)?;
        Ok(Verified {
            id: lookup.id,
            zip_h1: hashes.zip_h1,
            mod_h1: hashes.mod_h1,
            tree,
            note: lookup.note,
            raw: data,
        })
    }

    /// Verifies a signed tree note (e.g. a `latest` being proxied) and merges
    /// it into the trusted state; returns the note's tree.
    pub async fn verify_note(&self, msg: &[u8]) -> Result<Tree, ClientError> {
        self.ensure_loaded().await?;
        self.check_not_forked()?;
        self.merge_latest(msg).await
    }

    fn check_not_forked(&self) -> Result<(), ClientError> {
        if self.is_forked() {
            Err(ClientError::Forked)
        } else {
            Ok(())
        }
    }

    fn open_tree(&self, msg: &[u8]) -> Result<Tree, ClientError> {
        let n = note::open(msg, &self.verifiers)?;
        Ok(parse_tree(n.text.as_bytes())?)
    }

    /// Loads the persisted trusted tree the first time it is needed.
    async fn ensure_loaded(&self) -> Result<(), ClientError> {
        if self.loaded.load(Ordering::SeqCst) {
            return Ok(());
        }
        // The trusted head first: with a fork marker set, merging it would
        // be refused.
        let stored = self.ops.read_config(&self.config_file()).await?;
        if let Some(msg) = stored.filter(|m| !m.is_empty()) {
            let tree = self.open_tree(&msg)?;
            self.merge_latest_mem(tree, &msg).await?;
        }
        if let Some(raw) = self.ops.read_config(&fork_file(&self.name)).await? {
            let marker = ForkMarker::parse(&raw);
            tracing::error!(target: "modgate::security", sumdb = %self.name,
                detected_at = marker.detected_at,
                "checksum database fork recorded earlier; refusing new verifications \
                 until `modgate trust reset --sumdb {}`", self.name);
            *lock(&self.fork_marker) = Some(marker);
            self.forked.store(true, Ordering::SeqCst);
        }
        self.heads.load(&*self.ops, &heads_file(&self.name)).await?;
        // A head trusted after the history was last written (it is written
        // every few minutes; a crash loses the rest) is dated now: later than
        // it was seen, never earlier. An empty history stays empty: the
        // first head seen from now on starts the watch.
        let trusted = self.latest().n;
        if self
            .heads
            .snapshot()
            .newest()
            .is_some_and(|h| h.size < trusted)
        {
            self.heads.seen(trusted, now_secs());
        }
        self.loaded.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Merges a signed tree note into the trusted state, persisting it if it
    /// is newer (x/mod `Client.mergeLatest`). Returns the note's tree.
    async fn merge_latest(&self, msg: &[u8]) -> Result<Tree, ClientError> {
        self.ensure_loaded().await?;
        let tree = self.open_tree(msg)?;
        if self.merge_latest_mem(tree, msg).await? != When::Future {
            return Ok(tree);
        }
        // A newer head than any trusted before: now is when it was first
        // seen, which dates every record it added (see `heads`).
        self.heads.seen(tree.n, now_secs());
        self.heads
            .persist(&*self.ops, &heads_file(&self.name), false)
            .await;
        // The note is newer than what we had: persist the in-memory latest,
        // after merging whatever another process may have persisted.
        let file = self.config_file();
        loop {
            let stored = self.ops.read_config(&file).await?;
            let when = match stored.as_deref() {
                Some(m) if !m.is_empty() => {
                    let t = self.open_tree(m)?;
                    self.merge_latest_mem(t, m).await?
                }
                _ => When::Past,
            };
            if when != When::Past {
                return Ok(tree);
            }
            let latest = lock(&self.latest).note.clone();
            match self
                .ops
                .write_config(&file, stored.as_deref(), &latest)
                .await
            {
                // Read back after a write too: a store whose compare-and-swap
                // is not atomic (moto's is not) may let an older head land
                // after ours; the next round finds it and writes ours again.
                Err(ClientError::CasConflict) | Ok(()) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Merges `tree` into the in-memory trusted tree, proving consistency.
    async fn merge_latest_mem(&self, tree: Tree, msg: &[u8]) -> Result<When, ClientError> {
        let mut latest = lock(&self.latest).clone();
        loop {
            if tree.n <= latest.tree.n {
                self.check_trees(tree, msg, latest.tree, &latest.note)
                    .await?;
                return Ok(if tree.n < latest.tree.n {
                    When::Past
                } else {
                    When::Now
                });
            }
            self.check_trees(latest.tree, &latest.note, tree, msg)
                .await?;
            let mut cur = lock(&self.latest);
            if cur.tree == latest.tree {
                *cur = Latest {
                    tree,
                    note: msg.to_vec(),
                };
                return Ok(When::Future);
            }
            // Someone else advanced it meanwhile: check against theirs.
            latest = cur.clone();
        }
    }

    /// Proves `older` is a prefix of `newer`, using tiles authenticated
    /// against `newer`'s signed hash; on failure records a fork.
    async fn check_trees(
        &self,
        older: Tree,
        older_note: &[u8],
        newer: Tree,
        newer_note: &[u8],
    ) -> Result<(), ClientError> {
        self.check_not_forked()?;
        if older.n == newer.n {
            if older.hash == newer.hash {
                return Ok(());
            }
            return Err(self
                .fork(older, older_note, newer, newer_note, None, Vec::new())
                .await);
        }
        let (h, tiles) = if older.n == 0 {
            (Hash::default(), None)
        } else {
            let indexes = tree_hash_indexes(older.n);
            let (h, tiles) = self
                .read_tiles(newer, &indexes, |r| tree_hash(older.n, r))
                .await?;
            (h, Some(tiles))
        };
        if h == older.hash {
            // Saved only now: tiles that authenticate against a forked
            // `newer` must never reach the cache (or be served from it).
            if let Some(tiles) = tiles {
                self.save_tiles(&tiles).await;
            }
            return Ok(());
        }
        // The tiles authenticate against `newer` but disagree with `older`:
        // both notes are signed, so this is proof of a fork.
        let proof = match tree_proof_indexes(newer.n, older.n) {
            Ok(indexes) => self
                .read_tiles(newer, &indexes, |r| prove_tree(newer.n, older.n, r))
                .await
                .map(|(proof, _)| proof)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        Err(self
            .fork(older, older_note, newer, newer_note, Some(h), proof)
            .await)
    }

    async fn fork(
        &self,
        old_tree: Tree,
        old_note: &[u8],
        new_tree: Tree,
        new_note: &[u8],
        old_hash_in_new: Option<Hash>,
        proof: Vec<Hash>,
    ) -> ClientError {
        self.forked.store(true, Ordering::SeqCst);
        let ev = ForkEvidence {
            old_note: old_note.to_vec(),
            new_note: new_note.to_vec(),
            old_tree,
            new_tree,
            old_hash_in_new,
            proof,
        };
        self.ops.security_error(&ev).await;
        self.persist_fork(&ev).await;
        ClientError::Fork(Box::new(ev))
    }

    /// Writes the fork marker so the refusal survives a restart. A marker
    /// already there (another detection won the race) is kept.
    async fn persist_fork(&self, ev: &ForkEvidence) {
        let marker = ForkMarker::from_evidence(ev);
        *lock(&self.fork_marker) = Some(marker.clone());
        let raw = match serde_json::to_vec(&marker) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(target: "modgate::security", sumdb = %self.name, error = %e,
                    "encoding the fork marker failed; the refusal will not survive a restart");
                return;
            }
        };
        match self
            .ops
            .write_config(&fork_file(&self.name), None, &raw)
            .await
        {
            Ok(()) | Err(ClientError::CasConflict) => {}
            Err(e) => tracing::error!(target: "modgate::security", sumdb = %self.name, error = %e,
                "persisting the fork marker failed; the refusal will not survive a restart"),
        }
    }

    /// Proves record `id` with text `record` is in the trusted tree.
    async fn check_record(&self, id: i64, record: &[u8]) -> Result<Tree, ClientError> {
        let tree = lock(&self.latest).tree;
        if id >= tree.n {
            return Err(ClientError::RecordNotInTree { id, size: tree.n });
        }
        let index = [stored_hash_index(0, id)];
        let (got, tiles) = self
            .read_tiles(tree, &index, |r| r.read_hashes(&index))
            .await?;
        self.save_tiles(&tiles).await;
        if got.first() != Some(&record_hash(record)) {
            return Err(ClientError::RecordMismatch);
        }
        Ok(tree)
    }

    /// Runs `read` (which authenticates every tile it touches against `tree`)
    /// over the tiles that reading `indexes` needs. Tiles come from the local
    /// caches where possible; if the read fails with any of those among them
    /// (a tile damaged on disk, say), they are evicted and the read runs once
    /// more on tiles fetched from the database, so a bad local copy is
    /// replaced rather than refused forever. A failure on fetched tiles is
    /// the database's.
    async fn read_tiles<T>(
        &self,
        tree: Tree,
        indexes: &[i64],
        read: impl Fn(&TileHashReader<'_, MemTiles>) -> Result<T, TlogError>,
    ) -> Result<(T, MemTiles), ClientError> {
        let (tiles, local) = self.fetch_tiles(tree, indexes, true).await?;
        let err = match read(&TileHashReader::new(tree, &tiles)) {
            Ok(v) => return Ok((v, tiles)),
            Err(e) if local.is_empty() => return Err(e.into()),
            Err(e) => e,
        };
        tracing::warn!(target: "modgate::security", sumdb = %self.name, error = %err,
            tiles = ?local.iter().map(|t| t.path()).collect::<Vec<_>>(),
            "locally cached tiles failed authentication; evicted, fetching them again");
        for t in &local {
            self.evict_tile(*t).await;
        }
        let (tiles, _) = self.fetch_tiles(tree, indexes, false).await?;
        let v = read(&TileHashReader::new(tree, &tiles))?;
        Ok((v, tiles))
    }

    /// Fetches every tile a read of `indexes` in `tree` needs: from the
    /// caches first if `cached` (a full tile, or a wider partial one, stands
    /// in for a partial one), then the server (the full tile again standing
    /// in if the partial one is not served). Also returns the tiles that came
    /// from a cache.
    async fn fetch_tiles(
        &self,
        tree: Tree,
        indexes: &[i64],
        cached: bool,
    ) -> Result<(MemTiles, Vec<Tile>), ClientError> {
        let mut tiles = MemTiles::new(TILE_HEIGHT);
        let mut local = Vec::new();
        for t in tiles_for_hashes(tree, TILE_HEIGHT, indexes)? {
            if tiles.contains(&t) {
                continue;
            }
            let (tile, data, from_cache) = self.read_tile(t, cached).await?;
            if from_cache {
                local.push(tile);
            }
            tiles.insert(tile, data);
        }
        Ok((tiles, local))
    }

    /// Drops a tile from the cache it came from.
    async fn evict_tile(&self, t: Tile) {
        if t.is_full() {
            lock(&self.tile_saved).remove(&t);
            let key = format!("{}/{}", self.name, t.path());
            if let Err(e) = self.ops.delete_cache(&key).await {
                tracing::warn!(sumdb = %self.name, tile = %key, error = %e, "evicting a cached tile");
            }
        } else {
            lock(&self.proxy.partial_tiles).remove(&t.full());
        }
    }

    /// One tile, and whether it came from a cache.
    async fn read_tile(&self, t: Tile, cached: bool) -> Result<(Tile, Vec<u8>, bool), ClientError> {
        let full = t.full();
        if cached {
            // Full tiles are cached in the store; one stands in for a partial tile.
            let key = format!("{}/{}", self.name, full.path());
            if let Some(data) = self.ops.read_cache(&key).await? {
                lock(&self.tile_saved).insert(full);
                return Ok((full, data, true));
            }
            // Partial tiles authenticated in the last few seconds, in memory: a
            // lookup proves its record against the tree whose note it just
            // merged, which needed the same partial tiles a moment earlier.
            if !t.is_full()
                && let Some(data) = self.cached_partial_tile(t)
            {
                return Ok((t, data, true));
            }
        }
        let fetched = match self.ops.read_remote(&t.path()).await {
            Ok(data) => Ok((t, data)),
            Err(e) if t.is_full() => Err(e),
            Err(e) => match self.ops.read_remote(&full.path()).await {
                Ok(data) => Ok((full, data)),
                Err(_) => Err(e),
            },
        };
        fetched.map(|(tile, data)| (tile, data, false))
    }

    /// Writes the authenticated full tiles to the cache (partial tiles are
    /// superseded as the log grows, so they are not cached). Failures to
    /// cache are not errors.
    async fn save_tiles(&self, tiles: &MemTiles) {
        self.save_tile_list(tiles.take_saved()).await
    }

    async fn save_tile_list(&self, saved: Vec<(Tile, Vec<u8>)>) {
        for (t, data) in saved {
            if !t.is_full() {
                // Partial tiles only briefly, in memory, for `go` clients
                // that ask for them right after a lookup (see `proxy_tile`).
                self.cache_partial_tile(t, &data);
                continue;
            }
            if !lock(&self.tile_saved).insert(t) {
                continue;
            }
            let key = format!("{}/{}", self.name, t.path());
            if self.ops.write_cache(&key, &data).await.is_err() {
                lock(&self.tile_saved).remove(&t);
            }
        }
    }
}

impl Client {
    // ---- the checksum database through the proxy (`/sumdb/<name>/...`) ----

    /// `latest` for a `go` client that uses modgate as its checksum-database
    /// proxy: fetched, verified and merged (so it advances trust, and a fork
    /// is caught here too), reused for [`PROXY_LATEST_TTL`]. When the
    /// database cannot be reached, the last trusted note is served instead:
    /// it is signed and consistent, only older.
    pub async fn proxy_latest(&self) -> Result<ProxiedLatest, ClientError> {
        self.ensure_loaded().await?;
        self.check_not_forked()?;
        let cached = lock(&self.proxy.latest).clone();
        if let Some((at, note)) = cached
            && at.elapsed() < PROXY_LATEST_TTL
        {
            return Ok(ProxiedLatest {
                note,
                stale: false,
                cached: true,
            });
        }
        match self.ops.read_remote("latest").await {
            Ok(msg) => {
                self.merge_latest(&msg).await?;
                *lock(&self.proxy.latest) = Some((Instant::now(), msg.clone()));
                Ok(ProxiedLatest {
                    note: msg,
                    stale: false,
                    cached: false,
                })
            }
            Err(e) if !e.is_security() => {
                let note = self.latest_note();
                if note.is_empty() {
                    return Err(e);
                }
                tracing::warn!(sumdb = %self.name, error = %e,
                    "checksum database unreachable; serving the last trusted tree note");
                Ok(ProxiedLatest {
                    note,
                    stale: true,
                    cached: false,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// A hash tile for a `go` client, never unauthenticated: a full tile from
    /// the tile cache (it was authenticated when cached), a partial one from
    /// the last few seconds, or else fetched and authenticated against the
    /// trusted tree (advanced to the database's `latest` first if the tile
    /// lies beyond it), then cached. `None`: not a tile this proxy serves
    /// (record-data tiles, another height) or beyond the database's tree.
    pub async fn proxy_tile(&self, t: Tile) -> Result<Option<ProxiedTile>, ClientError> {
        if t.h != TILE_HEIGHT || t.l < 0 {
            return Ok(None);
        }
        self.ensure_loaded().await?;
        if t.is_full() {
            let key = format!("{}/{}", self.name, t.path());
            if let Some(data) = self.ops.read_cache(&key).await? {
                return Ok(Some(ProxiedTile { data, cached: true }));
            }
        } else if let Some(data) = self.cached_partial_tile(t) {
            return Ok(Some(ProxiedTile { data, cached: true }));
        }
        // Whatever follows proves against the trusted tree: refused after a fork.
        self.check_not_forked()?;
        let mut tree = self.latest();
        if !tile_in_tree(t, tree.n) {
            // The client knows a newer tree than we trust (from elsewhere:
            // everything we serve is within our trusted tree). Advance to the
            // database's latest, through the short-lived cache so requests
            // for tiles beyond its tree cannot make us hammer the database.
            self.proxy_latest().await?;
            tree = self.latest();
            if !tile_in_tree(t, tree.n) {
                return Ok(None);
            }
        }
        // Reading the tile's last hash makes the reader fetch and
        // authenticate the tile (at the width the tree gives it, at least
        // t.w) and its parents up to the signed tree hash.
        let level = u32::try_from(t.l).unwrap_or(0) * t.h;
        let index = stored_hash_index(level, (t.n << t.h) + i64::from(t.w) - 1);
        let (_, tiles) = self
            .read_tiles(tree, &[index], |r| r.read_hashes(&[index]))
            .await?;
        let saved = tiles.take_saved();
        let want = t.w as usize * super::tlog::HASH_SIZE;
        let data = saved
            .iter()
            .find(|(s, d)| s.l == t.l && s.n == t.n && s.w >= t.w && d.len() >= want)
            .map(|(_, d)| d.clone())
            .ok_or_else(|| TlogError::Internal(format!("{t} not among the authenticated tiles")))?;
        self.save_tile_list(saved).await;
        Ok(Some(ProxiedTile {
            data: data[..want].to_vec(),
            cached: false,
        }))
    }

    /// A partial tile from memory. The log is append-only, so the widest
    /// authenticated tile seen at a position answers every narrower request
    /// (its prefix); the map is keyed by position (the full tile).
    fn cached_partial_tile(&self, t: Tile) -> Option<Vec<u8>> {
        let want = t.w as usize * super::tlog::HASH_SIZE;
        let cache = lock(&self.proxy.partial_tiles);
        cache
            .get(&t.full())
            .filter(|(at, d)| at.elapsed() < PROXY_PARTIAL_TILE_TTL && d.len() >= want)
            .map(|(_, d)| d[..want].to_vec())
    }

    fn cache_partial_tile(&self, t: Tile, data: &[u8]) {
        let mut cache = lock(&self.proxy.partial_tiles);
        cache.retain(|_, (at, _)| at.elapsed() < PROXY_PARTIAL_TILE_TTL);
        if cache
            .get(&t.full())
            .is_some_and(|(_, d)| d.len() > data.len())
        {
            return; // a wider one (of a later tree) answers more
        }
        if cache.len() < PROXY_PARTIAL_TILE_MAX {
            cache.insert(t.full(), (Instant::now(), data.to_vec()));
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether hash tile `t` lies wholly inside a tree of `n` records.
fn tile_in_tree(t: Tile, n: i64) -> bool {
    let Some(level) = u32::try_from(t.l).ok().and_then(|l| l.checked_mul(t.h)) else {
        return false;
    };
    let count = if level >= 63 { 0 } else { n >> level };
    let Some(start) = t.n.checked_mul(1i64 << t.h.min(62)) else {
        return false;
    };
    start
        .checked_add(i64::from(t.w))
        .is_some_and(|end| end <= count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_classify() {
        assert!(ClientError::RecordMismatch.is_security());
        assert!(ClientError::Forked.is_security());
        assert!(ClientError::Tlog(TlogError::ProofFailed).is_security());
        assert!(
            !ClientError::Unavailable {
                path: "latest".into(),
                msg: "timeout".into()
            }
            .is_security()
        );
        assert!(!ClientError::NotFound("x".into()).is_security());
        let internal = ClientError::Tlog(TlogError::Internal("bug".into()));
        assert!(!internal.is_security() && internal.is_internal() && internal.is_local());
        assert!(!ClientError::CasConflict.is_security() && ClientError::CasConflict.is_local());
        assert!(!ClientError::StorageFull("x".into()).is_security());
        assert!(!ClientError::Tlog(TlogError::InconsistentTile("t".into())).is_internal());
    }

    #[test]
    fn tiles_in_tree() {
        let t = |l, n, w| Tile { h: 8, l, n, w };
        assert!(tile_in_tree(t(0, 0, 5), 5));
        assert!(!tile_in_tree(t(0, 0, 6), 5));
        assert!(tile_in_tree(t(0, 0, 256), 256));
        assert!(tile_in_tree(t(0, 1, 3), 259));
        assert!(!tile_in_tree(t(1, 0, 1), 255));
        assert!(tile_in_tree(t(1, 0, 1), 256));
        assert!(!tile_in_tree(t(9, 0, 1), i64::MAX));
        assert!(!tile_in_tree(t(0, i64::MAX, 1), i64::MAX));
    }
}
