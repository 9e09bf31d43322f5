//! The shared tier in a miss: another replica's published copy, verified here exactly as an upstream answer would be.
//!
//! ```text
//! local miss ─► store.fetch_shared (entry + blob from the bucket, SHA-256 == entry's)
//!            ─► .mod: h1(go.mod) / .zip: zip rules + h1 (its go.mod == the verified .mod)
//!               / .info: names the version asked
//!            ─► == the checksum database's proven record (or the pin) ─► adopt locally
//!   any check fails ─► security event, bytes quarantined, fetched from upstream
//!                      (whose commit replaces the published copy)
//! ```
//!
//! Nothing here trusts the bucket: it only saves the upstream round trip.

use std::sync::Arc;

use super::{Pipeline, parse_info};
use crate::error::{Error, Result};
use crate::modzip;
use crate::protocol::{Kind, ModVersion};
use crate::routes::Authority;
use crate::store::{Entry, Meta, Spool, artifact_key};

impl Pipeline {
    /// A published `.mod` or `.info`, verified and adopted; `None`: ask upstream.
    pub(super) async fn shared_small(
        self: &Arc<Self>,
        mv: &ModVersion,
        kind: Kind,
        authority: Authority,
    ) -> Result<Option<Entry>> {
        let limits = &self.cfg.limits;
        let max = match kind {
            Kind::Mod => limits.max_mod_bytes,
            _ => limits.max_meta_bytes,
        };
        let Some((claimed, spool)) = self.store.fetch_shared(mv, kind, max).await? else {
            return Ok(None);
        };
        let data = tokio::fs::read(&spool.path)
            .await
            .map_err(|e| Error::storage(e.kind(), format!("reading a staged copy: {e}")))?;
        let got = match kind {
            Kind::Mod => modzip::hash_go_mod(&data),
            _ => match parse_info(&data) {
                Ok(info) if info.version == mv.version() => String::new(),
                Ok(info) => {
                    let why = format!(".info names version {:?}", info.version);
                    return self.reject(spool, &claimed, &why).await;
                }
                Err(why) => return self.reject(spool, &claimed, &why).await,
            },
        };
        self.adopt_checked(mv, kind, authority, spool, got, &claimed)
            .await
    }

    /// A published `.zip`, checked against the verified `go_mod` and its
    /// proven hash, and adopted; `None`: ask upstream.
    pub(super) async fn shared_zip(
        self: &Arc<Self>,
        mv: &ModVersion,
        go_mod: &[u8],
        authority: Authority,
    ) -> Result<Option<Entry>> {
        let max = self.cfg.limits.max_zip_bytes;
        let Some((claimed, spool)) = self.store.fetch_shared(mv, Kind::Zip, max).await? else {
            return Ok(None);
        };
        let limits = self.cfg.limits.zip();
        let (p, m, v, g) = (
            spool.path.clone(),
            mv.path().to_string(),
            mv.version().to_string(),
            go_mod.to_vec(),
        );
        let checked = tokio::task::spawn_blocking(move || {
            modzip::check_zip_with_limits(&p, &m, &v, Some(&g), &limits)
        })
        .await
        .map_err(|e| Error::Internal(format!("zip check task: {e}")))?;
        match checked {
            Ok(c) => {
                self.adopt_checked(mv, Kind::Zip, authority, spool, c.h1, &claimed)
                    .await
            }
            // Our disk failed reading the copy back: not the bucket's fault.
            Err(modzip::ZipError::Io(e)) if super::disk_failed(&e) => Err(Error::storage(
                e.kind(),
                format!("{mv} zip: reading the bucket's copy back: {e}"),
            )),
            Err(e) => {
                let why = format!("invalid module zip: {e}");
                self.reject(spool, &claimed, &why).await
            }
        }
    }

    /// `got` (the copy's h1) must be what the authority holds; then it is
    /// vouched for as an upstream answer would be and adopted.
    async fn adopt_checked(
        self: &Arc<Self>,
        mv: &ModVersion,
        kind: Kind,
        authority: Authority,
        spool: Spool,
        got: String,
        claimed: &Entry,
    ) -> Result<Option<Entry>> {
        if kind != Kind::Info {
            let want = match authority {
                Authority::ChecksumDatabase => {
                    let lookup = self.lookup(mv).await?;
                    match kind {
                        Kind::Mod => Some(lookup.mod_h1.clone()),
                        _ => Some(lookup.zip_h1.clone().unwrap_or_default()),
                    }
                }
                Authority::Pins => self
                    .store
                    .meta_get(Meta::Pin, &artifact_key(mv, kind))
                    .await?
                    .and_then(|raw| serde_json::from_slice::<super::Pin>(&raw).ok())
                    .map(|p| p.h1),
            };
            if let Some(want) = want.filter(|w| *w != got) {
                let why = format!("{} hashes to {got}; the record holds {want}", kind.ext());
                return self.reject(spool, claimed, &why).await;
            }
        }
        let verification = self.vouch(mv, kind, authority, got).await?;
        let entry = Entry {
            module: mv.path().to_string(),
            version: mv.version().to_string(),
            kind: kind.ext().to_string(),
            digest: spool.digest.clone(),
            size: spool.size,
            verification,
        };
        self.metrics().shared_read("adopted");
        Ok(Some(self.store.adopt(spool, entry).await?))
    }

    async fn reject(&self, spool: Spool, claimed: &Entry, why: &str) -> Result<Option<Entry>> {
        self.metrics().shared_read("rejected");
        self.store.reject_shared(spool, claimed, why).await;
        Ok(None)
    }
}
