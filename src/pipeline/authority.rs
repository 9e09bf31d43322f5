//! The authority step of a miss: who vouches for the fetched bytes — the checksum
//! database (a proven lookup) or, for private modules, the pin made on first sight.
//!
//! Pins are append-only: the first fetch of a private `.mod`/`.zip` writes its h1
//! under `Meta::Pin` with compare-and-swap from nothing, so two replicas racing on
//! a first fetch agree on one pin; the pipeline never overwrites one. Every later
//! fetch (after `cache rm`, eviction, a corrupt blob, on another replica) must
//! produce the same h1, else it is refused 403 as a security event.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Lookup, Pipeline};
use crate::error::{Error, Result};
use crate::protocol::{Kind, ModVersion};
use crate::routes::{Authority, Route};
use crate::store::{Meta, StoreError, Verification, artifact_key, now_secs};

/// The hash of a private artifact as first seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub module: String,
    pub version: String,
    /// `mod` or `zip`.
    pub kind: String,
    pub h1: String,
    /// Seconds since the Unix epoch when it was pinned.
    pub pinned_at: u64,
}

impl Pin {
    /// When it was pinned, RFC 3339 in UTC.
    pub fn pinned_date(&self) -> String {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.pinned_at),
        )
        .to_string()
    }
}

impl Pipeline {
    /// The route of `module`: its upstream and its authority (a private module
    /// without a private upstream is 404, see [`crate::routes`]).
    pub fn route(&self, module: &str) -> Result<Route<'_>> {
        self.routes.route(module)
    }

    /// The routes (for the sumdb endpoint's private-path check).
    pub fn routes(&self) -> &crate::routes::Routes {
        &self.routes
    }

    /// Vouches for `kind` of `mv` whose fetched bytes hash to `got` (empty for
    /// `.info`): proven against the checksum database, or checked against (and on
    /// first sight made into) its pin. Returns how it was verified, to store.
    pub(super) async fn vouch(
        self: &Arc<Self>,
        mv: &ModVersion,
        kind: Kind,
        authority: Authority,
        got: String,
    ) -> Result<Verification> {
        match authority {
            Authority::ChecksumDatabase => self.prove(mv, kind, got).await,
            Authority::Pins => self.pin(mv, kind, got).await,
        }
    }

    /// The checksum database must hold `got` for this version (for `.info`: must
    /// know the version).
    async fn prove(
        self: &Arc<Self>,
        mv: &ModVersion,
        kind: Kind,
        got: String,
    ) -> Result<Verification> {
        let lookup = self.lookup(mv).await?;
        let name = self.sumdb.name();
        let (what, want) = match kind {
            Kind::Info => return Ok(self.verification(got, &lookup)),
            Kind::Mod => ("go.mod", lookup.mod_h1.clone()),
            Kind::Zip => match lookup.zip_h1.clone() {
                Some(h) => ("zip", h),
                None => {
                    return Err(self.refuse(
                        mv,
                        kind,
                        "no_zip_hash",
                        format!("{name} has no zip hash for this version"),
                    ));
                }
            },
        };
        if got != want {
            return Err(self.refuse(
                mv,
                kind,
                "mismatch",
                format!("{what} checksum mismatch: upstream served {got}, {name} has {want}"),
            ));
        }
        Ok(self.verification(got, &lookup))
    }

    /// `got` must equal the pin of this artifact; without one, it becomes the pin.
    async fn pin(&self, mv: &ModVersion, kind: Kind, got: String) -> Result<Verification> {
        let verification = Verification {
            h1: got.clone(),
            sumdb: String::new(),
            record_id: 0,
            tree_size: 0,
            tree_hash: String::new(),
            verified_at: now_secs(),
            authority: Authority::Pins,
        };
        // `.info` is metadata (its Time is the author's word): not pinned.
        if kind == Kind::Info {
            return Ok(Verification {
                verified_at: self.first_pinned(mv, verification.verified_at).await?,
                ..verification
            });
        }
        let key = artifact_key(mv, kind);
        let new = Pin {
            module: mv.path().to_string(),
            version: mv.version().to_string(),
            kind: kind.ext().to_string(),
            h1: got.clone(),
            pinned_at: verification.verified_at,
        };
        let raw = serde_json::to_vec(&new).map_err(|e| Error::Internal(e.to_string()))?;
        // Twice at most: a conflict means another fetch pinned it first; then
        // ours must match that one.
        for _ in 0..2 {
            if let Some(old) = self.stored_pin(&key).await? {
                if old.h1 != got {
                    return Err(self.refuse(
                        mv,
                        kind,
                        "pin_mismatch",
                        format!(
                            "content changed since first seen {}: its {} was pinned as {}, \
                             the private upstream now serves {got}",
                            old.pinned_date(),
                            kind.ext(),
                            old.h1
                        ),
                    ));
                }
                return Ok(Verification {
                    verified_at: self.first_pinned(mv, old.pinned_at).await?,
                    ..verification
                });
            }
            match self.store.meta_cas(Meta::Pin, &key, None, &raw).await {
                Ok(()) => {
                    tracing::info!(target: "modgate::security", module = %mv.path(), version = %mv.version(),
                        kind = kind.ext(), h1 = %got, "private version pinned on first sight");
                    return Ok(Verification {
                        verified_at: self.first_pinned(mv, new.pinned_at).await?,
                        ..verification
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Internal(format!("{mv}: pin {key} kept changing")))
    }

    /// When `mv` was first seen: the earliest of `at` and its pins (its
    /// `.mod` is usually pinned before its `.zip`). A private entry carries
    /// this as `verified_at`: its age for the release cooldown, as the
    /// checksum log's first sight is for a public one.
    async fn first_pinned(&self, mv: &ModVersion, at: u64) -> Result<u64> {
        let mut first = at;
        for kind in [Kind::Mod, Kind::Zip] {
            if let Some(p) = self.stored_pin(&artifact_key(mv, kind)).await? {
                first = first.min(p.pinned_at);
            }
        }
        Ok(first)
    }

    async fn stored_pin(&self, key: &str) -> Result<Option<Pin>> {
        let Some(raw) = self.store.meta_get(Meta::Pin, key).await? else {
            return Ok(None);
        };
        // An unreadable pin is never replaced by whatever upstream serves now.
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| Error::Storage(format!("pin {key} is unreadable: {e}")))
    }

    pub(super) fn verification(&self, h1: String, lookup: &Lookup) -> Verification {
        Verification {
            h1,
            sumdb: self.sumdb.name().to_string(),
            record_id: lookup.id,
            tree_size: lookup.tree_size,
            tree_hash: lookup.tree_hash.clone(),
            verified_at: now_secs(),
            authority: Authority::ChecksumDatabase,
        }
    }
}
