//! The sumdb client's I/O: remote reads through the shared HTTP client, the
//! trusted tree head, fork marker and tiles in the store, fork evidence on disk.
//!
//! Trust-store layout (`Meta::Trust`): `<name>/latest` holds the newest
//! verified signed tree note; `<name>/fork` a [`ForkMarker`] once the database
//! was caught presenting a forked log; `<name>/heads` the head history (when
//! each trusted tree size was first seen, see [`crate::sumdb::heads`]).
//! Evidence directories are
//! `<data-dir>/evidence/<name>-fork-<unix seconds>/` holding `old_note`,
//! `new_note`, `proof` (the hashes proving the inconsistency) and
//! `evidence.txt` (all of it, as the go command prints it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::store::{Meta, Store, StoreError};
use crate::sumdb::client::{ClientError, ClientOps, ForkEvidence, ForkMarker};
use crate::sumdb::heads::{HeadHistory, heads_file};
use crate::upstream::{Upstream, UpstreamError};

/// [`ClientOps`] for one checksum database.
pub struct SumdbOps {
    pub name: String,
    /// Base URL, e.g. `https://sum.golang.org` (no trailing slash).
    pub base_url: String,
    pub upstream: Upstream,
    pub store: Arc<dyn Store>,
    /// Where proven misbehaviour is written: `<data-dir>/evidence`.
    pub evidence_dir: PathBuf,
    pub max_bytes: u64,
    pub offline: bool,
}

fn store_err(e: StoreError) -> ClientError {
    match e {
        StoreError::Conflict(_) => ClientError::CasConflict,
        StoreError::Io { ref source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            ClientError::StorageFull(e.to_string())
        }
        e => ClientError::Storage(e.to_string()),
    }
}

#[async_trait]
impl ClientOps for SumdbOps {
    async fn read_remote(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        if self.offline {
            return Err(ClientError::Unavailable {
                path: path.to_string(),
                msg: "offline: not contacting the checksum database".into(),
            });
        }
        let url = format!("{}/{}", self.base_url, path);
        match self.upstream.get_url(&url, self.max_bytes).await {
            Ok(b) => Ok(b.to_vec()),
            Err(e @ UpstreamError::NotFound { .. }) => Err(ClientError::NotFound(e.to_string())),
            Err(e @ UpstreamError::Timeout { .. }) => Err(ClientError::Timeout {
                path: path.to_string(),
                msg: e.to_string(),
            }),
            Err(e) => Err(ClientError::Unavailable {
                path: path.to_string(),
                msg: e.to_string(),
            }),
        }
    }

    async fn read_config(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError> {
        self.store
            .meta_get(Meta::Trust, file)
            .await
            .map_err(store_err)
    }

    async fn write_config(
        &self,
        file: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), ClientError> {
        self.store
            .meta_cas(Meta::Trust, file, old, new)
            .await
            .map_err(store_err)
    }

    async fn read_cache(&self, file: &str) -> Result<Option<Vec<u8>>, ClientError> {
        self.store
            .meta_get(Meta::Tile, file)
            .await
            .map_err(store_err)
    }

    async fn write_cache(&self, file: &str, data: &[u8]) -> Result<(), ClientError> {
        self.store
            .meta_put(Meta::Tile, file, data)
            .await
            .map_err(store_err)
    }

    async fn delete_cache(&self, file: &str) -> Result<(), ClientError> {
        self.store
            .meta_remove(Meta::Tile, file)
            .await
            .map_err(store_err)
    }

    async fn security_error(&self, evidence: &ForkEvidence) {
        let dir =
            self.evidence_dir
                .join(format!("{}-fork-{}", self.name, crate::store::now_secs()));
        let write = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::write(dir.join("old_note"), &evidence.old_note).await?;
            tokio::fs::write(dir.join("new_note"), &evidence.new_note).await?;
            let mut proof = String::new();
            if let Some(h) = evidence.old_hash_in_new {
                proof.push_str(&format!("{h}\n"));
            }
            for h in &evidence.proof {
                proof.push_str(&format!("{h}\n"));
            }
            tokio::fs::write(dir.join("proof"), proof).await?;
            tokio::fs::write(dir.join("evidence.txt"), evidence.to_string()).await?;
            std::io::Result::Ok(())
        };
        match write.await {
            Ok(()) => tracing::error!(
                target: "modgate::security",
                sumdb = %self.name,
                evidence = %dir.display(),
                old_tree_size = evidence.old_tree.n,
                new_tree_size = evidence.new_tree.n,
                "checksum database presented a forked log; evidence saved; refusing new \
                 verifications until an operator runs `modgate trust reset --sumdb {}`",
                self.name
            ),
            Err(e) => tracing::error!(
                target: "modgate::security",
                sumdb = %self.name,
                error = %e,
                "checksum database presented a forked log; saving evidence failed"
            ),
        }
    }
}

/// The head history of database `name` as the trust store holds it, for
/// commands that judge versions without a running client (e.g. a policy
/// check on a data dir). A running server writes it at most every few
/// minutes and at shutdown (see [`crate::sumdb::heads`]). A damaged one
/// reads as empty (nothing watched), as the client itself would start over.
pub async fn stored_head_history(store: &dyn Store, name: &str) -> Result<HeadHistory, StoreError> {
    let raw = store.meta_get(Meta::Trust, &heads_file(name)).await?;
    Ok(match raw.map(|r| HeadHistory::decode(&r)) {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            tracing::error!(target: "modgate::security", sumdb = name, error = %e,
                "stored checksum-database head history is damaged; reading it as empty");
            HeadHistory::new()
        }
        None => HeadHistory::new(),
    })
}

/// Where a checksum database's fork evidence directories live.
pub fn evidence_root(data_dir: &Path) -> PathBuf {
    data_dir.join("evidence")
}

/// The fork evidence directories saved for database `name`, oldest first.
pub fn evidence_dirs(data_dir: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}-fork-");
    let Ok(rd) = std::fs::read_dir(evidence_root(data_dir)) else {
        return Vec::new();
    };
    let mut dirs: Vec<(u64, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let file_name = e.file_name();
            let secs = file_name.to_str()?.strip_prefix(&prefix)?.parse().ok()?;
            e.path().is_dir().then(|| (secs, e.path()))
        })
        .collect();
    dirs.sort();
    dirs.into_iter().map(|(_, p)| p).collect()
}

/// The fork state of a checksum database, for readiness checks and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkStatus {
    pub sumdb: String,
    pub marker: ForkMarker,
    /// The evidence directories on disk (empty if saving them failed).
    pub evidence: Vec<PathBuf>,
}
