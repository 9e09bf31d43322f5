//! `modgate cache ls | verify | rm`: inspect, re-check and prune a stopped server's store.
//!
//! With a server running, the CLI sends these to it ([`super::api`], the
//! admin socket) and the server runs them on its own open store. Without one,
//! they open the sled index directly; [`open_store`] refuses
//! ([`AdminError::Locked`]) when another process holds it, so they never
//! touch a store another process is writing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::modzip;
use crate::protocol::{Kind, ModPath, ModVersion};
use crate::store::{EmbeddedStore, Entry, Meta, Store, StoreError};

/// Why an admin command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("modgate serve is running on {0}; stop it first")]
    Locked(PathBuf),
    #[error("{0} holds no modgate data (no index directory)")]
    NoData(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Start(String),
}

/// Whether a running modgate holds the data dir's index (a typed check of
/// sled's file lock, see [`super::lock`]).
pub fn is_locked(data_dir: &Path) -> bool {
    super::lock::held(&data_dir.join("index"))
}

/// Opens the store of a data dir that is not being served.
pub fn open_store(data_dir: &Path) -> Result<Arc<dyn Store>, AdminError> {
    if !data_dir.join("index").is_dir() {
        return Err(AdminError::NoData(data_dir.to_owned()));
    }
    if is_locked(data_dir) {
        return Err(AdminError::Locked(data_dir.to_owned()));
    }
    Ok(Arc::new(
        EmbeddedStore::open(data_dir).map_err(AdminError::Store)?,
    ))
}

/// Selects module versions by a glob (`*`, `?`, `[...]`) matched against the
/// module path or `module@version`, or else by a prefix of `module@version`.
pub struct Selector(Option<Sel>);

enum Sel {
    Glob(glob::Pattern),
    Prefix(String),
}

impl Selector {
    pub fn new(pattern: Option<&str>) -> Result<Selector, AdminError> {
        Ok(Selector(match pattern {
            None | Some("") => None,
            Some(p) if p.contains(['*', '?', '[']) => {
                Some(Sel::Glob(glob::Pattern::new(p).map_err(|e| {
                    AdminError::Usage(format!("bad pattern {p:?}: {e}"))
                })?))
            }
            Some(p) => Some(Sel::Prefix(p.to_string())),
        }))
    }

    /// What every index key it matches starts with (keys are
    /// `module@version`): a pattern's literal head, so `cache ls` reads
    /// only that part of the index, not the whole store.
    pub fn key_prefix(&self) -> &str {
        match &self.0 {
            None => "",
            Some(Sel::Prefix(p)) => p,
            Some(Sel::Glob(g)) => {
                let p = g.as_str();
                &p[..p.find(['*', '?', '[', '\\']).unwrap_or(p.len())]
            }
        }
    }

    pub fn matches(&self, module: &str, version: &str) -> bool {
        let mv = format!("{module}@{version}");
        match &self.0 {
            None => true,
            Some(Sel::Prefix(p)) => mv.starts_with(p.as_str()),
            Some(Sel::Glob(g)) => g.matches(module) || g.matches(&mv),
        }
    }
}

/// Entries grouped by module version, in index order.
fn group(entries: Vec<Entry>) -> BTreeMap<(String, String), Vec<Entry>> {
    let mut g: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
    for e in entries {
        g.entry((e.module.clone(), e.version.clone()))
            .or_default()
            .push(e);
    }
    g
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// `cache ls`: one line per module version (or, with `json`, one JSON index
/// entry per line). Returns how many module versions matched.
pub async fn ls(
    store: &dyn Store,
    pattern: Option<&str>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<usize, AdminError> {
    let sel = Selector::new(pattern)?;
    let entries: Vec<Entry> = store
        .entries(sel.key_prefix())
        .await?
        .into_iter()
        .filter(|e| sel.matches(&e.module, &e.version))
        .collect();
    let groups = group(entries);
    if json {
        for e in groups.values().flatten() {
            writeln!(
                out,
                "{}",
                serde_json::to_string(e).map_err(|e| AdminError::Start(e.to_string()))?
            )?;
        }
        return Ok(groups.len());
    }
    let mut rows = vec![[
        "MODULE".to_string(),
        "VERSION".into(),
        "KINDS".into(),
        "SIZE".into(),
        "VERIFIED".into(),
        "AGAINST TREE".into(),
    ]];
    for ((module, version), es) in &groups {
        let kinds: Vec<&str> = es.iter().map(|e| e.kind.as_str()).collect();
        let size: u64 = es.iter().map(|e| e.size).sum();
        // The newest proof among the kinds says when and against what it was last verified.
        let v = es
            .iter()
            .map(|e| &e.verification)
            .max_by_key(|v| (v.verified_at, v.tree_size))
            .expect("a group has at least one entry");
        let hash: String = v.tree_hash.chars().take(12).collect();
        rows.push([
            module.clone(),
            version.clone(),
            kinds.join(","),
            indicatif::HumanBytes(size).to_string(),
            rfc3339(v.verified_at),
            format!("{} size {} hash {hash}…", v.sumdb, v.tree_size),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 < r.len() {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(groups.len())
}

/// What `cache verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Blobs checked (one per distinct digest).
    pub blobs: usize,
    pub entries: usize,
    /// `module@version kind: reason` for each entry dropped.
    pub bad: Vec<String>,
}

/// Re-hashes one blob file: its SHA-256 and size, plus the `h1:` of every
/// zip or go.mod entry recorded for it. `Err(reason)` if anything differs.
fn check_blob(path: &Path, digest: &str, es: &[Entry]) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open blob: {e}"))?;
    let mut h = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    // go.mod files are small: keep their bytes for the h1 check.
    let keep = es.iter().any(|e| e.kind == Kind::Mod.ext());
    let mut kept = Vec::new();
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot read blob: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
        if keep && kept.len() as u64 <= modzip::MAX_GO_MOD {
            kept.extend_from_slice(&buf[..n]);
        }
    }
    let got = hex::encode(h.finalize());
    if got != digest {
        return Err(format!("content hash is {got}, index says {digest}"));
    }
    for e in es {
        if e.size != size {
            return Err(format!("size is {size}, index says {}", e.size));
        }
        let h1 = match Kind::parse(&e.kind) {
            Some(Kind::Mod) => modzip::hash_go_mod(&kept),
            Some(Kind::Zip) => {
                modzip::check_zip(path, &e.module, &e.version, None)
                    .map_err(|err| format!("no longer a valid module zip: {err}"))?
                    .h1
            }
            _ => continue,
        };
        if h1 != e.verification.h1 {
            return Err(format!(
                "{} is {h1}, verified as {}",
                e.kind, e.verification.h1
            ));
        }
    }
    Ok(())
}

/// `cache verify`: re-hashes every stored blob against its recorded digest
/// and, for zips and go.mods, its recorded `h1:`. A blob that no longer
/// matches is moved to `<data-dir>/quarantine/` and every index entry naming
/// it is dropped, so the next request fetches and verifies it again.
pub async fn verify(
    store: &dyn Store,
    out: &mut (dyn Write + Send),
) -> Result<VerifyReport, AdminError> {
    let mut by_digest: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut report = VerifyReport::default();
    for e in store.entries("").await? {
        report.entries += 1;
        by_digest.entry(e.digest.clone()).or_default().push(e);
    }
    for (digest, es) in &by_digest {
        report.blobs += 1;
        let verdict = match store.stage_blob(digest).await {
            Ok(Some(staged)) => {
                let (d, list) = (digest.clone(), es.clone());
                tokio::task::spawn_blocking(move || check_blob(&staged.path, &d, &list))
                    .await
                    .map_err(|e| AdminError::Start(e.to_string()))?
                    .map_err(|r| (true, r))
            }
            Ok(None) => Err((false, "the blob is missing".to_string())),
            Err(e) => Err((false, e.to_string())),
        };
        let (present, reason) = match verdict {
            Ok(()) => continue,
            Err(x) => x,
        };
        let moved = match present {
            true => format!("; {}", store.quarantine_blob(digest, &reason).await?),
            false => String::new(),
        };
        for e in es {
            let line = format!("{}@{} {}: {reason}", e.module, e.version, e.kind);
            writeln!(out, "BAD {line}{moved}")?;
            if let (Ok(mv), Some(kind)) =
                (ModVersion::new(&e.module, &e.version), Kind::parse(&e.kind))
            {
                store.remove(&mv, kind).await?;
            }
            report.bad.push(line);
        }
    }
    writeln!(
        out,
        "checked {} blobs ({} index entries): {}",
        report.blobs,
        report.entries,
        if report.bad.is_empty() {
            "all match what was verified".to_string()
        } else {
            format!(
                "{} entries quarantined; the next request fetches and verifies them again",
                report.bad.len()
            )
        }
    )?;
    Ok(report)
}

/// `cache rm MODULE[@VERSION]`: drops the index entries (and the proven
/// lookup) of a module or one version, and deletes blobs no other entry uses.
/// The next request fetches and verifies them again. Returns entries removed.
pub async fn rm(
    store: &dyn Store,
    target: &str,
    out: &mut (dyn Write + Send),
) -> Result<usize, AdminError> {
    let (module, version) = match target.split_once('@') {
        Some((m, v)) => {
            ModVersion::new(m, v).map_err(|e| AdminError::Usage(e.to_string()))?;
            (m, Some(v))
        }
        None => {
            ModPath::new(target).map_err(|e| AdminError::Usage(e.to_string()))?;
            (target, None)
        }
    };
    let doomed: Vec<Entry> = store
        .entries(&format!("{module}@"))
        .await?
        .into_iter()
        .filter(|e| e.module == module && version.is_none_or(|v| e.version == v))
        .collect();
    let mut lookups = BTreeSet::new();
    for e in &doomed {
        let mv =
            ModVersion::new(&e.module, &e.version).map_err(|e| AdminError::Usage(e.to_string()))?;
        if let Some(kind) = Kind::parse(&e.kind) {
            store.remove(&mv, kind).await?;
        }
        lookups.insert(format!("{}/{mv}", e.verification.sumdb));
        writeln!(out, "removed {mv} {}", e.kind)?;
    }
    // The proof is dropped too, so the version is looked up and proven afresh.
    for key in &lookups {
        store.meta_remove(Meta::Lookup, key).await?;
    }
    let still: BTreeSet<String> = store
        .entries("")
        .await?
        .into_iter()
        .map(|e| e.digest)
        .collect();
    for d in doomed.iter().map(|e| &e.digest).collect::<BTreeSet<_>>() {
        if !still.contains(d) {
            store.delete_blob(d).await?;
        }
    }
    if doomed.is_empty() {
        writeln!(out, "nothing stored for {target}")?;
    }
    Ok(doomed.len())
}

#[cfg(test)]
mod tests {
    use super::Selector;

    #[test]
    fn selectors() {
        let all = Selector::new(None).unwrap();
        assert!(all.matches("a.com/x", "v1.0.0"));
        let pre = Selector::new(Some("example.com/hello")).unwrap();
        assert!(pre.matches("example.com/hello", "v1.0.0"));
        assert!(!pre.matches("example.com/other", "v1.0.0"));
        let at = Selector::new(Some("example.com/hello@v1.1")).unwrap();
        assert!(at.matches("example.com/hello", "v1.1.0"));
        assert!(!at.matches("example.com/hello", "v1.0.0"));
        let g = Selector::new(Some("example.com/*")).unwrap();
        assert!(g.matches("example.com/hello", "v1.0.0"));
        assert!(!g.matches("golang.org/x/mod", "v0.7.0"));
        let gv = Selector::new(Some("*@v1.0.*")).unwrap();
        assert!(gv.matches("example.com/hello", "v1.0.0"));
        assert!(!gv.matches("example.com/hello", "v1.1.0"));
        assert!(Selector::new(Some("[")).is_err());
        assert_eq!(all.key_prefix(), "");
        assert_eq!(pre.key_prefix(), "example.com/hello");
        assert_eq!(at.key_prefix(), "example.com/hello@v1.1");
        assert_eq!(g.key_prefix(), "example.com/");
        assert_eq!(gv.key_prefix(), "");
        let mid = Selector::new(Some("golang.org/x/[mn]od")).unwrap();
        assert_eq!(mid.key_prefix(), "golang.org/x/");
        assert!(mid.matches("golang.org/x/mod", "v0.7.0"));
    }
}
