//! `modgate trust show|reset`: inspect and, after a fork, reset the trust state of a data dir.
//!
//! Both work on the sled index directly, and only while no server holds the
//! data dir: sled takes an exclusive lock on its database file, so while
//! `modgate serve` runs, opening fails and the command refuses (it never
//! waits, and never touches anything). Opening the [`EmbeddedStore`] is
//! avoided on purpose: it cleans up spool files, which belong to a server.
//!
//! [`EmbeddedStore`]: crate::store::EmbeddedStore

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::store::Meta;
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
    #[error("index of {}: {msg}", .dir.display())]
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

fn open(data_dir: &Path) -> Result<sled::Db, TrustAdminError> {
    let index = data_dir.join("index");
    if !index.is_dir() {
        return Err(TrustAdminError::NoData(data_dir.to_owned()));
    }
    // A typed check of sled's lock first (sled itself says so only in text).
    if super::lock::held(&index) {
        return Err(TrustAdminError::Locked(data_dir.to_owned()));
    }
    sled::Config::new()
        .path(&index)
        .open()
        .map_err(|e| TrustAdminError::Index {
            dir: data_dir.to_owned(),
            msg: e.to_string(),
        })
}

fn index_err(data_dir: &Path) -> impl Fn(sled::Error) -> TrustAdminError + '_ {
    move |e| TrustAdminError::Index {
        dir: data_dir.to_owned(),
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

/// The trust state of every database in `data_dir` (or only `only`).
pub fn show(data_dir: &Path, only: Option<&str>) -> Result<Vec<SumdbTrust>, TrustAdminError> {
    show_in(&open(data_dir)?, data_dir, only)
}

/// [`show`] on an index already open (a running server's, through the admin API).
pub fn show_in(
    db: &sled::Db,
    data_dir: &Path,
    only: Option<&str>,
) -> Result<Vec<SumdbTrust>, TrustAdminError> {
    let err = index_err(data_dir);
    let trust = db.open_tree(Meta::Trust.tree_name()).map_err(&err)?;
    let tiles = db.open_tree(Meta::Tile.tree_name()).map_err(&err)?;
    let mut names = BTreeSet::new();
    for item in trust.iter() {
        let (k, _) = item.map_err(&err)?;
        if let Some((name, _)) = String::from_utf8_lossy(&k).rsplit_once('/') {
            names.insert(name.to_string());
        }
    }
    if let Some(n) = only {
        names.retain(|x| x == sumdb_name(n));
        names.insert(sumdb_name(n).to_string());
    }
    let mut out = Vec::new();
    for name in names {
        let note = trust.get(latest_file(&name)).map_err(&err)?;
        let fork = trust.get(fork_file(&name)).map_err(&err)?;
        let heads = trust.get(heads_file(&name)).map_err(&err)?;
        out.push(SumdbTrust {
            tree: note.as_deref().and_then(note_tree),
            note: note.map(|n| String::from_utf8_lossy(&n).into_owned()),
            fork: fork.map(|f| ForkMarker::parse(&f)),
            evidence: evidence_dirs(data_dir, &name),
            cached_tiles: tiles.scan_prefix(format!("{name}/")).count(),
            heads: heads
                .and_then(|h| HeadHistory::decode(&h).ok())
                .unwrap_or_default(),
            name,
        });
    }
    Ok(out)
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
pub fn reset(data_dir: &Path, name: &str) -> Result<ResetReport, TrustAdminError> {
    let name = sumdb_name(name);
    let db = open(data_dir)?;
    let err = index_err(data_dir);
    let trust = db.open_tree(Meta::Trust.tree_name()).map_err(&err)?;
    let tiles = db.open_tree(Meta::Tile.tree_name()).map_err(&err)?;
    let cleared_fork = trust.remove(fork_file(name)).map_err(&err)?.is_some();
    let cleared_tree = trust
        .remove(latest_file(name))
        .map_err(&err)?
        .and_then(|n| note_tree(&n));
    let keys: Vec<sled::IVec> = tiles
        .scan_prefix(format!("{name}/"))
        .keys()
        .collect::<Result<_, _>>()
        .map_err(&err)?;
    for k in &keys {
        tiles.remove(k).map_err(&err)?;
    }
    db.flush().map_err(&err)?;
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
