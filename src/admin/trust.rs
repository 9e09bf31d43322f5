//! `modgate trust show|reset`: inspect and, after a fork, reset the trust state of a data dir.
//!
//! Both work through the [`Store`] trait. `show` runs beside a server (over
//! the admin socket, on the server's open store); `reset` of an embedded
//! store only while no server holds the data dir: sled takes an exclusive
//! lock on its database file, so while `modgate serve` runs, opening fails
//! and the command refuses (it never waits, and never touches anything).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use crate::store::{EmbeddedStore, Meta, Store, StoreError};
use crate::sumdb::client::{ForkMarker, fork_file, latest_file};
use crate::sumdb::heads::{HeadHistory, heads_file};
use crate::sumdb::tlog::{Tree, parse_tree};
use crate::trust::evidence_dirs;

/// Why a trust command could not run.
#[derive(Debug, thiserror::Error)]
pub enum TrustAdminError {
    #[error(
        "the data dir {} is in use by a running modgate (its index is locked); \
         stop `modgate serve` on it first: trust state is changed or read only while \
         no server holds it, so nothing was touched",
        .0.display()
    )]
    Locked(PathBuf),
    #[error("no modgate data in {} (no index directory there)", .0.display())]
    NoData(PathBuf),
    #[error("trust state in {}: {msg}", .dir.display())]
    Index { dir: PathBuf, msg: String },
}

/// The trust state of one checksum database in a data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumdbTrust {
    pub name: String,
    /// The trusted tree (from the stored signed note), if any.
    pub tree: Option<Tree>,
    /// The stored signed note, as text.
    pub note: Option<String>,
    /// Set while the database is considered forked (every new verification refused).
    pub fork: Option<ForkMarker>,
    /// Fork evidence directories on disk (kept after a reset, for the record).
    pub evidence: Vec<PathBuf>,
    /// Authenticated full tiles cached for this database.
    pub cached_tiles: usize,
    /// When each trusted tree size was first seen (dates records for the
    /// release cooldown); empty if nothing was watched or it is unreadable.
    pub heads: HeadHistory,
}

/// What `reset` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetReport {
    pub name: String,
    /// A fork marker was cleared.
    pub cleared_fork: bool,
    /// The trusted tree it held (now forgotten).
    pub cleared_tree: Option<Tree>,
    pub cleared_tiles: usize,
}

/// Opens the store of a data dir no server holds.
pub fn open(data_dir: &Path) -> Result<Arc<dyn Store>, TrustAdminError> {
    let index = data_dir.join("index");
    if !index.is_dir() {
        return Err(TrustAdminError::NoData(data_dir.to_owned()));
    }
    // A typed check of sled's lock first (sled itself says so only in text).
    if super::lock::held(&index) {
        return Err(TrustAdminError::Locked(data_dir.to_owned()));
    }
    let store = EmbeddedStore::open(data_dir).map_err(|e| TrustAdminError::Index {
        dir: data_dir.to_owned(),
        msg: e.to_string(),
    })?;
    Ok(Arc::new(store))
}

fn store_err(store: &dyn Store) -> impl Fn(StoreError) -> TrustAdminError {
    let dir = PathBuf::from(store.describe());
    move |e| TrustAdminError::Index {
        dir: dir.clone(),
        msg: e.to_string(),
    }
}

/// Accepts a bare name or a GOSUMDB spec (`name+hash+key [URL]`).
fn sumdb_name(spec: &str) -> &str {
    spec.split_whitespace()
        .next()
        .unwrap_or_default()
        .split('+')
        .next()
        .unwrap_or_default()
}

/// The tree of a stored note. It was verified before it was stored; here it
/// is only read back, without the key.
fn note_tree(note: &[u8]) -> Option<Tree> {
    let text_end = note.windows(2).position(|w| w == b"\n\n")? + 1;
    parse_tree(&note[..text_end]).ok()
}

/// The trust state of every database in `store` (or only `only`); evidence
/// directories are looked for under `data_dir`.
pub async fn show_store(
    store: &dyn Store,
    data_dir: &Path,
    only: Option<&str>,
) -> Result<Vec<SumdbTrust>, TrustAdminError> {
    let err = store_err(store);
    let mut names = BTreeSet::new();
    for (k, _) in store.meta_scan(Meta::Trust, "").await.map_err(&err)? {
        if let Some((name, _)) = k.rsplit_once('/') {
            names.insert(name.to_string());
        }
    }
    if let Some(n) = only {
        names.retain(|x| x == sumdb_name(n));
        names.insert(sumdb_name(n).to_string());
    }
    let mut out = Vec::new();
    for name in names {
        let (note, fork, heads) = (latest_file(&name), fork_file(&name), heads_file(&name));
        let note = store.meta_get(Meta::Trust, &note).await.map_err(&err)?;
        let fork = store.meta_get(Meta::Trust, &fork).await.map_err(&err)?;
        let heads = store.meta_get(Meta::Trust, &heads).await.map_err(&err)?;
        let cached_tiles = store
            .meta_count(Meta::Tile, &format!("{name}/"))
            .await
            .map_err(&err)?;
        out.push(SumdbTrust {
            tree: note.as_deref().and_then(note_tree),
            note: note.map(|n| String::from_utf8_lossy(&n).into_owned()),
            fork: fork.map(|f| ForkMarker::parse(&f)),
            evidence: evidence_dirs(data_dir, &name),
            cached_tiles,
            heads: heads
                .and_then(|h| HeadHistory::decode(&h).ok())
                .unwrap_or_default(),
            name,
        });
    }
    Ok(out)
}

/// [`show_store`] on a data dir no server holds (blocking).
pub fn show(data_dir: &Path, only: Option<&str>) -> Result<Vec<SumdbTrust>, TrustAdminError> {
    let store = open(data_dir)?;
    block_on(show_store(&*store, data_dir, only))
}

/// [`reset_store`] on a data dir no server holds (blocking).
pub fn reset(data_dir: &Path, name: &str) -> Result<ResetReport, TrustAdminError> {
    let store = open(data_dir)?;
    block_on(reset_store(&*store, name))
}

/// Runs `f` to completion on a runtime of its own, on a thread of its own
/// (so this works whether or not the caller is inside a runtime).
fn block_on<T: Send>(f: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(f))
        })
        .join()
    })
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
    .unwrap_or_else(|e| panic!("starting a runtime for a trust command: {e}"))
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// Human-readable `show` output.
pub fn render(states: &[SumdbTrust]) -> String {
    let mut s = String::new();
    if states.is_empty() {
        s.push_str("no checksum database trusted yet\n");
    }
    for t in states {
        let _ = writeln!(s, "checksum database {}", t.name);
        match &t.tree {
            Some(tree) => {
                let _ = writeln!(s, "  trusted tree size: {}", tree.n);
                let _ = writeln!(s, "  trusted tree hash: {}", tree.hash);
            }
            None => {
                s.push_str("  trusted tree: none (the next verification trusts the current head)\n")
            }
        }
        if let Some(note) = &t.note {
            s.push_str("  signed note:\n");
            for line in note.lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
        let _ = writeln!(s, "  cached tiles: {}", t.cached_tiles);
        match (t.heads.first(), t.heads.newest()) {
            (Some(first), Some(newest)) => {
                let _ = writeln!(
                    s,
                    "  watched since: tree size {} at {} (records below it predate the watch)",
                    first.size,
                    rfc3339(first.seen)
                );
                let _ = writeln!(
                    s,
                    "  newest head seen: tree size {} at {} ({} entries in the head history)",
                    newest.size,
                    rfc3339(newest.seen),
                    t.heads.heads().len()
                );
            }
            _ => s.push_str("  watched since: never (no head history yet)\n"),
        }
        match &t.fork {
            Some(f) => {
                let _ = writeln!(
                    s,
                    "  FORKED: detected at {} (unix time): trusted tree {} {} vs presented tree {} {}",
                    f.detected_at,
                    f.old_tree_size,
                    f.old_tree_hash,
                    f.new_tree_size,
                    f.new_tree_hash
                );
                let _ = writeln!(
                    s,
                    "  every new verification is refused until `modgate trust reset --sumdb {}`",
                    t.name
                );
                s.push_str("  evidence:\n");
                for line in f.evidence.lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
            None => s.push_str("  fork: none\n"),
        }
        for d in &t.evidence {
            let _ = writeln!(s, "  evidence directory: {}", d.display());
        }
    }
    s
}

/// Clears the fork marker, the trusted tree note and the cached tiles of
/// database `name`, so the next verification trusts its current head afresh
/// (see the `trust reset` help in `main.rs` for why all three go). Evidence
/// directories and verified artifacts and lookups are kept.
pub async fn reset_store(store: &dyn Store, name: &str) -> Result<ResetReport, TrustAdminError> {
    let name = sumdb_name(name);
    let err = store_err(store);
    let cleared_fork = store
        .meta_get(Meta::Trust, &fork_file(name))
        .await
        .map_err(&err)?
        .is_some();
    let cleared_tree = store
        .meta_get(Meta::Trust, &latest_file(name))
        .await
        .map_err(&err)?
        .and_then(|n| note_tree(&n));
    // The trusted head goes before the fork marker: a replica that sees the
    // marker gone must not find the forked head still trusted.
    store
        .meta_remove(Meta::Trust, &latest_file(name))
        .await
        .map_err(&err)?;
    store
        .meta_remove(Meta::Trust, &fork_file(name))
        .await
        .map_err(&err)?;
    let keys = store
        .meta_scan(Meta::Tile, &format!("{name}/"))
        .await
        .map_err(&err)?;
    for (k, _) in &keys {
        store.meta_remove(Meta::Tile, k).await.map_err(&err)?;
    }
    store.flush().await.map_err(&err)?;
    tracing::warn!(target: "modgate::security", sumdb = name, cleared_fork,
        cleared_tree_size = cleared_tree.map(|t| t.n), cleared_tiles = keys.len(),
        "trust reset by operator: the next verification trusts the database's current head");
    Ok(ResetReport {
        name: name.to_string(),
        cleared_fork,
        cleared_tree,
        cleared_tiles: keys.len(),
    })
}
