//! Verified checksum-database lookups: cached in the store, proven once
//! (coalesced) through the sumdb client, and their failures mapped to errors.

use std::sync::Arc;

use bytes::Bytes;

use super::{Cache, Lookup, Pipeline};
use crate::error::{Error, Result};
use crate::protocol::ModVersion;
use crate::store::Meta;
use crate::sumdb::client::ClientError;

impl Pipeline {
    /// The verified lookup of a module version: from the store, or proven
    /// through the sumdb client (one lookup serves `.info`, `.mod` and `.zip`).
    pub async fn lookup(self: &Arc<Self>, mv: &ModVersion) -> Result<Lookup> {
        self.lookup_unlogged(mv)
            .await
            .map_err(|e| self.answered(mv, e))
    }

    /// [`Pipeline::lookup`], leaving a "not in the checksum database" to be
    /// logged by whoever answers with it ([`Pipeline::answered`]).
    pub(super) async fn lookup_unlogged(self: &Arc<Self>, mv: &ModVersion) -> Result<Lookup> {
        if let Some(l) = self.cached_lookup(mv).await? {
            return Ok(l);
        }
        self.verify_lookup(mv).await
    }

    /// Logs and counts a lookup's refusal that is about to be answered.
    pub(super) fn answered(&self, mv: &ModVersion, e: Error) -> Error {
        if let Error::NotInSumdb(msg) = &e {
            self.metrics().verification("refused", "not_in_sumdb");
            tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                sumdb = self.sumdb.name(), error = %msg, "refused: not in the checksum database");
        }
        e
    }

    /// The lookup response for `/sumdb/<name>/lookup/<mv>`, byte for byte as
    /// the database served it and modgate verified it (signature, inclusion,
    /// consistency): from the store when verified before — even while the
    /// database is down or forked — else fetched and verified now.
    pub async fn lookup_response(self: &Arc<Self>, mv: &ModVersion) -> Result<(Bytes, Cache)> {
        if let Some(raw) = self.cached_lookup(mv).await?.and_then(|l| l.raw) {
            return Ok((Bytes::from(raw), Cache::Hit));
        }
        if self.cfg.offline {
            return Err(Error::Offline(format!("{mv} checksum database lookup")));
        }
        let l = self
            .verify_lookup(mv)
            .await
            .map_err(|e| self.answered(mv, e))?;
        let raw = l.raw.ok_or_else(|| {
            Error::Internal(format!("{mv}: verified lookup response is not UTF-8"))
        })?;
        Ok((Bytes::from(raw), Cache::Miss))
    }

    /// The fork state of the checksum database (`None` while it is trusted):
    /// for `/readyz` and metrics.
    pub fn fork_status(&self) -> Option<crate::trust::ForkStatus> {
        if !self.sumdb.is_forked() {
            return None;
        }
        let name = self.sumdb.name();
        Some(crate::trust::ForkStatus {
            sumdb: name.to_string(),
            marker: self.sumdb.fork_marker().unwrap_or_else(|| {
                crate::sumdb::client::ForkMarker::parse(b"(fork marker not loaded)")
            }),
            evidence: crate::trust::evidence_dirs(&self.cfg.data_dir, name),
        })
    }

    /// After a fork only what was proven before is served: a miss without a
    /// verified lookup is refused at once rather than fetched from upstream.
    pub(super) async fn refuse_if_forked(&self, mv: &ModVersion) -> Result<()> {
        if self.sumdb.is_forked() && self.cached_lookup(mv).await?.is_none() {
            return Err(self.sumdb_error(mv, ClientError::Forked));
        }
        Ok(())
    }

    fn lookup_key(&self, mv: &ModVersion) -> String {
        format!("{}/{mv}", self.sumdb.name())
    }

    pub(super) async fn cached_lookup(&self, mv: &ModVersion) -> Result<Option<Lookup>> {
        Ok(self
            .store
            .meta_get(Meta::Lookup, &self.lookup_key(mv))
            .await?
            .and_then(|raw| serde_json::from_slice(&raw).ok()))
    }

    /// Proves a lookup through the sumdb client and caches it (coalesced).
    async fn verify_lookup(self: &Arc<Self>, mv: &ModVersion) -> Result<Lookup> {
        let key = self.lookup_key(mv);
        let this = self.clone();
        let owned = mv.clone();
        let k = key.clone();
        self.lookups
            .run(&key, move |progress| async move {
                // Never cancelled: a lookup may be advancing the trusted tree
                // head or saving fork evidence, which must not stop halfway.
                // It is small and bounded by the request timeout.
                progress.far_along();
                let v = this
                    .sumdb
                    .lookup(owned.path(), owned.version())
                    .await
                    .map_err(|e| this.sumdb_error(&owned, e))?;
                let l = Lookup {
                    id: v.id,
                    zip_h1: v.zip_h1,
                    mod_h1: v.mod_h1,
                    tree_size: v.tree.n,
                    tree_hash: v.tree.hash.to_string(),
                    raw: String::from_utf8(v.raw).ok(),
                };
                let raw = serde_json::to_vec(&l).map_err(|e| Error::Internal(e.to_string()))?;
                this.store.meta_put(Meta::Lookup, &k, &raw).await?;
                Ok(l)
            })
            .await
    }

    fn sumdb_error(&self, mv: &ModVersion, e: ClientError) -> Error {
        let name = self.sumdb.name();
        let m = self.metrics();
        if matches!(e, ClientError::Fork(_) | ClientError::Forked) {
            m.verification("refused", "fork");
            // The evidence itself was logged and saved by the client's ops;
            // the body stays one line so the go command shows all of it.
            tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                sumdb = name, "refused: checksum database presented a forked log");
            return Error::Security(format!("{mv}: {}", forked_message(name)));
        }
        if e.is_local() {
            return self.local_sumdb_error(mv, e);
        }
        if e.is_security() {
            let label = match e {
                ClientError::Note(_) => "bad_signature",
                ClientError::Lookup(_) => "bad_lookup",
                _ => "bad_proof",
            };
            m.verification("refused", label);
            tracing::error!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                sumdb = name, error = %e, "refused: checksum database verification failed");
            return Error::Security(format!("{mv}: {name}: {e}"));
        }
        match e {
            // Logged and counted where it is answered (`answered`).
            ClientError::NotFound(_) => {
                Error::NotInSumdb(format!("{mv}: not in the checksum database {name}: {e}"))
            }
            e => {
                m.verification("error", "sumdb_unreachable");
                tracing::warn!(module = %mv.path(), version = %mv.version(), sumdb = name, error = %e,
                    "checksum database unavailable");
                let msg = format!(
                    "{mv}: cannot be verified now: checksum database {name} unavailable: {e}"
                );
                match e {
                    ClientError::Timeout { .. } => Error::Timeout(msg),
                    _ => Error::UpstreamUnavailable(msg),
                }
            }
        }
    }

    /// A failure on our side while verifying: our disk (507 when full), our
    /// own code or state (500). Never 403, never "database unavailable".
    fn local_sumdb_error(&self, mv: &ModVersion, e: ClientError) -> Error {
        let name = self.sumdb.name();
        self.metrics().verification("error", "internal");
        tracing::error!(module = %mv.path(), version = %mv.version(), sumdb = name, error = %e,
            "verifying against the checksum database failed on our side");
        match e {
            ClientError::StorageFull(m) => {
                Error::InsufficientStorage(format!("{mv}: checksum database state: {m}"))
            }
            ClientError::Storage(m) => {
                Error::Storage(format!("{mv}: checksum database state: {m}"))
            }
            e => Error::Internal(format!("{mv}: verifying against {name}: {e}")),
        }
    }
}

/// Why everything new is refused after a fork (one line: the go command shows all of it).
pub fn forked_message(sumdb: &str) -> String {
    format!(
        "checksum database {sumdb} presented a forked log (server misbehavior); \
         modgate refuses new modules until an operator runs `modgate trust reset --sumdb {sumdb}`"
    )
}
