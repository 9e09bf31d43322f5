//! Replicas' audit trails in the shared bucket: each replica publishes its segment files; `audit who` reads them all.
//!
//! ```text
//! <bucket prefix>/shared/audit/<replica>/seg-<start µs, hex>.log   a replica's segments, as on its disk
//! <bucket prefix>/shared/audit/<replica>/seg-<start µs, hex>.idx   (sealed ones with their index)
//! <data-dir>/audit-replicas/<replica>/audit/…                      a reader's copy of the others'
//! ```
//!
//! A replica's own trail stays on its disk, written and synced as before
//! (`audit`'s durability rule is unchanged); every `[audit] publish_secs` (10) and at
//! shutdown the files that changed since the last round are uploaded. A
//! sealed segment and its index never change, so they go up once; the active
//! segment goes up again whenever it grew (at most [`trail::SEGMENT_BYTES`]).
//! So another replica's answer lags by at most one round, and a replica that
//! dies loses from the shared view only what it had not published yet (its
//! disk still holds it).
//!
//! A query copies the files that changed since its last copy (by size) into
//! `audit-replicas/`, opens each replica's copy as a [`Trail`], and merges
//! the answers with the local trail's.
//!
//! [`trail::SEGMENT_BYTES`]: super::trail::SEGMENT_BYTES

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{AuditError, Record, Trail};
use crate::store::Store;

/// The bucket area of audit trails.
const AREA: &str = "audit";

fn store_err(e: crate::store::StoreError) -> AuditError {
    AuditError::Usage(format!("shared audit trails: {e}"))
}

/// This replica's name in the bucket: `[store] replica`, else the host name
/// and a hash of the data dir (two replicas on one host stay apart).
pub fn replica_name(configured: &str, data_dir: &Path) -> String {
    if !configured.is_empty() {
        return sanitize(configured);
    }
    use sha2::Digest;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let h = sha2::Sha256::digest(dir.to_string_lossy().as_bytes());
    sanitize(&format!("{host}-{}", &hex::encode(h)[..8]))
}

/// Keeps a name to `[A-Za-z0-9._-]` (it becomes a key segment and a directory).
fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    match out.trim_matches('.') {
        "" => "replica".into(),
        t => t.to_string(),
    }
}

/// Uploads the files of `<data-dir>/audit` that changed since `sent`
/// (name → size), recording what went.
pub async fn publish(
    store: &dyn Store,
    data_dir: &Path,
    replica: &str,
    sent: &mut HashMap<String, u64>,
) -> Result<usize, AuditError> {
    let dir = data_dir.join("audit");
    let mut n = 0;
    let Ok(mut rd) = tokio::fs::read_dir(&dir).await else {
        return Ok(0);
    };
    let mut files = Vec::new();
    while let Ok(Some(e)) = rd.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("seg-") && (name.ends_with(".log") || name.ends_with(".idx"))) {
            continue;
        }
        if let Ok(m) = e.metadata().await {
            files.push((name, m.len()));
        }
    }
    // Indexes after their segments: a reader that finds an index finds its log.
    files.sort_by_key(|(name, _)| name.ends_with(".idx"));
    for (name, size) in files {
        if sent.get(&name) == Some(&size) {
            continue;
        }
        store
            .share_file(&format!("{AREA}/{replica}"), &name, &dir.join(&name))
            .await
            .map_err(store_err)?;
        sent.insert(name, size);
        n += 1;
    }
    Ok(n)
}

/// Publishes every `every` until aborted (a server's task).
pub fn start(
    store: Arc<dyn Store>,
    data_dir: PathBuf,
    replica: String,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut sent = HashMap::new();
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = publish(&*store, &data_dir, &replica, &mut sent).await {
                tracing::warn!(error = %e, "publishing the audit trail to the bucket");
            }
        }
    })
}

/// Copies the other replicas' published trails (files whose size changed)
/// under `<data-dir>/audit-replicas/`, and returns their directories (each
/// usable as a data dir by [`Trail::open`]).
pub async fn sync(
    store: &dyn Store,
    data_dir: &Path,
    except: Option<&str>,
) -> Result<Vec<PathBuf>, AuditError> {
    let mut by_replica: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for (rel, size) in store.shared_files(AREA).await.map_err(store_err)? {
        if let Some((replica, name)) = rel.split_once('/')
            && Some(replica) != except
            && sanitize(replica) == replica
            && !name.contains('/')
            && name.starts_with("seg-")
        {
            by_replica
                .entry(replica.to_string())
                .or_default()
                .push((name.to_string(), size));
        }
    }
    let root = data_dir.join("audit-replicas");
    let mut dirs = Vec::new();
    for (replica, files) in by_replica {
        let base = root.join(&replica);
        let dir = base.join("audit");
        for (name, size) in files {
            let dest = dir.join(&name);
            let have = tokio::fs::metadata(&dest).await.map(|m| m.len()).ok();
            if have == Some(size) {
                continue;
            }
            store
                .fetch_file(&format!("{AREA}/{replica}"), &name, &dest)
                .await
                .map_err(store_err)?;
        }
        dirs.push(base);
    }
    Ok(dirs)
}

/// Who was served `module@version` by any replica: this one's trail and the
/// others' published ones (copied again at most every `every`, so a re-check
/// naming many versions lists the bucket once).
pub struct Everywhere {
    store: Arc<dyn Store>,
    data_dir: PathBuf,
    replica: String,
    own: Trail,
    every: Duration,
    last: tokio::sync::Mutex<Option<(std::time::Instant, Vec<PathBuf>)>>,
}

impl Everywhere {
    pub fn new(
        store: Arc<dyn Store>,
        data_dir: PathBuf,
        replica: String,
        own: Trail,
        every: Duration,
    ) -> Everywhere {
        Everywhere {
            store,
            data_dir,
            replica,
            own,
            every,
            last: Default::default(),
        }
    }

    /// Every record of `module` (or `module@version`) on any replica, by
    /// version, then time.
    pub async fn records(
        &self,
        module: &str,
        version: Option<&str>,
    ) -> Result<Vec<Record>, AuditError> {
        let dirs = self.dirs().await;
        let (own, m, v) = (
            self.own.clone(),
            module.to_string(),
            version.map(String::from),
        );
        tokio::task::spawn_blocking(move || {
            let mut trails = vec![own];
            trails.extend(dirs.iter().filter_map(|d| Trail::open(d).ok()));
            who_all(&trails, &m, v.as_deref(), 0)
        })
        .await
        .map_err(|e| AuditError::Usage(format!("reading the trails: {e}")))?
    }

    /// The other replicas' copied trails, copied again at most every `every`.
    async fn dirs(&self) -> Vec<PathBuf> {
        let mut last = self.last.lock().await;
        match &*last {
            Some((at, dirs)) if at.elapsed() < self.every => dirs.clone(),
            _ => {
                let dirs = sync(&*self.store, &self.data_dir, Some(&self.replica))
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "reading the other replicas' audit trails");
                        Vec::new()
                    });
                *last = Some((std::time::Instant::now(), dirs.clone()));
                dirs
            }
        }
    }

    /// Each distinct client (with its user) served `module@version` anywhere.
    pub async fn fetchers(&self, module: &str, version: &str) -> Vec<String> {
        let dirs = self.dirs().await;
        let (own, m, v) = (self.own.clone(), module.to_string(), version.to_string());
        tokio::task::spawn_blocking(move || {
            let mut all: std::collections::BTreeSet<String> =
                super::fetchers(&own, &m, &v).into_iter().collect();
            for d in dirs {
                // A copy another query holds open right now is skipped.
                if let Ok(t) = Trail::open(&d) {
                    all.extend(super::fetchers(&t, &m, &v));
                }
            }
            all.into_iter().take(super::MAX_FETCHERS).collect()
        })
        .await
        .unwrap_or_default()
    }
}

/// `who` over several trails, merged by version, then time.
pub fn who_all(
    trails: &[Trail],
    module: &str,
    version: Option<&str>,
    since_us: u64,
) -> Result<Vec<Record>, AuditError> {
    let mut all = Vec::new();
    for t in trails {
        t.who(module, version, since_us, |r| {
            all.push(r);
            true
        })?;
    }
    all.sort_by(|a, b| (&a.version, a.time_us).cmp(&(&b.version, b.time_us)));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_names_are_safe_key_segments() {
        assert_eq!(sanitize("modgate-0"), "modgate-0");
        assert_eq!(sanitize("a/b\\c d"), "a_b_c_d");
        assert_eq!(sanitize(".."), "replica");
        let dir = tempfile::tempdir().unwrap();
        let a = replica_name("", dir.path());
        assert_eq!(a, replica_name("", dir.path()), "stable");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            a,
            replica_name("", other.path()),
            "two data dirs, two names"
        );
        assert_eq!(replica_name("pod-1", dir.path()), "pod-1");
    }
}
