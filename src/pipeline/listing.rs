//! `list`, `@latest` and non-canonical `.info` queries: mutable metadata,
//! cached for a TTL, served stale when upstream fails, never verified
//! artifacts (those go through the miss in `mod.rs`).
//!
//! The supply-chain gate applies here too: `list` leaves out versions a fetch
//! would refuse, and `@latest` is chosen again from that filtered list when
//! upstream's answer is refused (403 when no version is left).

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Cache, Pipeline, parse_info, upstream_to_error};
use crate::error::{Error, Result};
use crate::module::semver;
use crate::protocol::{Kind, ModPath, ModVersion};
use crate::store::{Meta, now_secs};
use crate::upstream::UpstreamError;

/// Versions `@latest` judges (each may need a checksum-database lookup)
/// before it gives up on finding one that is served.
const MAX_LATEST_CANDIDATES: usize = 16;

impl Pipeline {
    /// `list`: upstream's versions merged with the cached ones, reused for
    /// `list_ttl_secs`, served stale when upstream fails.
    pub async fn list(self: &Arc<Self>, m: &ModPath) -> Result<(Bytes, Cache)> {
        let local = self.cached_versions(m).await?;
        let (upstream, cache) = self
            .cached_meta(
                m,
                "list",
                &format!("{}/@v/list", m.escaped()),
                !local.is_empty(),
            )
            .await?;
        let mut versions: Vec<String> = upstream
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|v| semver::is_valid(v))
            .map(str::to_string)
            .chain(local)
            .collect();
        versions.sort_by(|a, b| semver::compare(a, b));
        versions.dedup();
        // Versions a fetch would refuse are not offered; the cooldown judges
        // the records the mirror knows (`gated.rs`), the fetch the others.
        let versions = self.served_versions(m, versions).await?;
        let mut body = versions.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        Ok((Bytes::from(body), cache))
    }

    /// `@latest`: upstream's answer, reused and served stale like `list`;
    /// offline, the newest cached version's `.info`.
    pub async fn latest(self: &Arc<Self>, m: &ModPath) -> Result<(Bytes, Cache)> {
        if self.cfg.offline {
            let mut versions = self.cached_versions(m).await?;
            versions.sort_by(|a, b| semver::compare(a, b));
            let versions = self.served_versions(m, versions).await?;
            for v in versions.iter().rev() {
                let Ok(mv) = ModVersion::new(m.as_str(), v) else {
                    continue;
                };
                if let Some(e) = self.store.entry(&mv, Kind::Info).await? {
                    return Ok((Bytes::from(self.read_small(&e).await?), Cache::Hit));
                }
            }
            return Err(Error::Offline(format!("{m}@latest")));
        }
        let (body, cache) = self
            .cached_meta(m, "latest", &format!("{}/@latest", m.escaped()), false)
            .await?;
        let info = parse_info(body.as_bytes()).map_err(|r| {
            Error::UpstreamUnavailable(format!("{m}: upstream served an invalid @latest: {r}"))
        })?;
        let verdict = match ModVersion::new(m.as_str(), &info.version) {
            Ok(mv) => self.latest_verdict(&mv).await,
            Err(_) => self.gate.check(m.as_str(), &info.version),
        };
        if verdict.served() {
            return Ok((Bytes::from(body), cache));
        }
        self.latest_allowed(m, &info.version, &verdict.why()).await
    }

    /// `@latest` when upstream's latest is refused: the newest version of the
    /// filtered `list` (a release if there is one, as the go command prefers),
    /// with its verified `.info`; refused with why when none is left.
    async fn latest_allowed(
        self: &Arc<Self>,
        m: &ModPath,
        refused: &str,
        why: &str,
    ) -> Result<(Bytes, Cache)> {
        let (list, cache) = self.list(m).await?;
        let list = String::from_utf8_lossy(&list).into_owned();
        let mut versions: Vec<&str> = list
            .lines()
            .filter(|v| semver::is_valid(v) && *v != refused)
            .collect();
        // Releases first (as the go command prefers), newest first; each
        // judged with its record (looked up if need be: the cooldown), so the
        // answer is a version a fetch serves.
        versions.sort_by(|a, b| {
            let release = |v: &str| semver::prerelease(v).is_empty();
            release(b)
                .cmp(&release(a))
                .then_with(|| semver::compare(b, a))
        });
        let mut chosen = None;
        for v in versions.iter().take(MAX_LATEST_CANDIDATES) {
            let Ok(mv) = ModVersion::new(m.as_str(), v) else {
                continue;
            };
            if self.latest_verdict(&mv).await.served() {
                chosen = Some(*v);
                break;
            }
        }
        let Some(v) = chosen else {
            self.metrics()
                .gate_verdicts
                .with_label_values(&["refuse", "latest"])
                .inc();
            tracing::error!(target: "modgate::security", module = %m, latest = refused, why,
                "@latest refused: no version of this module may be served");
            return Err(crate::gate::serve::refusal(
                m.as_str(),
                "latest",
                &format!("no version may be served; the newest, {refused}, is refused: {why}"),
            ));
        };
        tracing::info!(target: "modgate::security", module = %m, refused, chosen = v, why,
            "@latest: upstream's latest is refused; answering the newest allowed version");
        let mv = ModVersion::new(m.as_str(), v).map_err(|e| Error::Internal(e.to_string()))?;
        match self.artifact(&mv, Kind::Info).await {
            Ok((e, _)) => Ok((Bytes::from(self.read_small(&e).await?), cache)),
            Err(e) => {
                tracing::warn!(module = %m, version = v, error = %e,
                    "@latest: the allowed version's .info is unavailable; answering its version only");
                Ok((Bytes::from(format!("{{\"Version\":\"{v}\"}}\n")), cache))
            }
        }
    }

    /// A non-canonical `.info` query (`@v/master.info`): resolved upstream,
    /// passed through after checking it names a valid version, never cached.
    pub async fn info_query(self: &Arc<Self>, m: &ModPath, query: &str) -> Result<Bytes> {
        if self.cfg.offline {
            return Err(Error::Offline(format!("{m}@{query}")));
        }
        let esc =
            crate::module::escape_version(query).map_err(|e| Error::BadRequest(e.to_string()))?;
        let data = self
            .route(m.as_str())?
            .upstream
            .get(
                &format!("{}/@v/{esc}.info", m.escaped()),
                self.cfg.limits.max_meta_bytes,
            )
            .await
            .map_err(|e| upstream_meta_error(m, e))?;
        let info = parse_info(&data).map_err(|r| {
            Error::UpstreamUnavailable(format!(
                "{m}@{query}: upstream served an invalid .info: {r}"
            ))
        })?;
        // A query resolving to a refused version is refused like the version.
        crate::gate::serve::admit(&self.gate, self.metrics(), m.as_str(), &info.version)?;
        Ok(data)
    }

    /// Reads a list/@latest answer through the TTL cache. `have_local` says
    /// there is something to serve even if upstream knows nothing.
    async fn cached_meta(
        &self,
        m: &ModPath,
        what: &str,
        upstream_path: &str,
        have_local: bool,
    ) -> Result<(String, Cache)> {
        let key = format!("{what}/{m}");
        let cached: Option<CachedMeta> = self
            .store
            .meta_get(Meta::List, &key)
            .await?
            .and_then(|raw| serde_json::from_slice(&raw).ok());
        if self.cfg.offline {
            return match cached {
                Some(c) => Ok((c.body, Cache::Stale)),
                None if have_local => Ok((String::new(), Cache::Hit)),
                None => Err(Error::Offline(format!("{m} {what}"))),
            };
        }
        if let Some(c) = &cached
            && now_secs().saturating_sub(c.fetched_at) < self.cfg.cache.list_ttl_secs
        {
            return Ok((c.body.clone(), Cache::Hit));
        }
        // A private module's list/@latest asks the private upstream only.
        match self
            .route(m.as_str())?
            .upstream
            .get(upstream_path, self.cfg.limits.max_meta_bytes)
            .await
        {
            Ok(data) => {
                let body = String::from_utf8(data.to_vec()).map_err(|_| {
                    Error::UpstreamUnavailable(format!("{m}: upstream {what} is not UTF-8"))
                })?;
                let c = CachedMeta {
                    fetched_at: now_secs(),
                    body,
                };
                let raw = serde_json::to_vec(&c).map_err(|e| Error::Internal(e.to_string()))?;
                self.store.meta_put(Meta::List, &key, &raw).await?;
                Ok((c.body, Cache::Miss))
            }
            Err(e) if e.is_not_found() && have_local => Ok((String::new(), Cache::Miss)),
            Err(e) if e.is_not_found() => Err(upstream_meta_error(m, e)),
            Err(e) => match cached {
                Some(c) => {
                    tracing::warn!(module = %m, what, error = %e, "upstream failed; serving stale answer");
                    Ok((c.body, Cache::Stale))
                }
                None if have_local => {
                    tracing::warn!(module = %m, what, error = %e, "upstream failed; serving cached versions only");
                    Ok((String::new(), Cache::Stale))
                }
                None => Err(upstream_meta_error(m, e)),
            },
        }
    }

    /// `versions` without those a fetch would refuse, judged on what the
    /// mirror knows (see [`Pipeline::served_known`]).
    async fn served_versions(
        self: &Arc<Self>,
        m: &ModPath,
        versions: Vec<String>,
    ) -> Result<Vec<String>> {
        // Record ids of the cached versions, read only when the cooldown
        // could hold a version of this module.
        let mut records = std::collections::HashMap::new();
        if self.gate.needs_record(m.as_str()) {
            for e in self.store.entries(&format!("{m}@")).await? {
                if let Some(id) =
                    crate::gate::signals::record_of(&e).filter(|_| e.module == m.as_str())
                {
                    records.insert(e.version, id);
                }
            }
        }
        let mut kept = Vec::with_capacity(versions.len());
        for v in versions {
            let served = match ModVersion::new(m.as_str(), &v) {
                Ok(mv) => self.served_known(&mv, records.get(&v).copied()).await?,
                Err(_) => self.gate.check(m.as_str(), &v).served(),
            };
            if served {
                kept.push(v);
            }
        }
        Ok(kept)
    }

    /// Versions of a module with at least one stored artifact.
    async fn cached_versions(&self, m: &ModPath) -> Result<Vec<String>> {
        let mut v: Vec<String> = self
            .store
            .entries(&format!("{m}@"))
            .await?
            .into_iter()
            .filter(|e| e.module == m.as_str())
            .map(|e| e.version)
            .collect();
        v.dedup();
        Ok(v)
    }
}

/// A cached list or @latest answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedMeta {
    fetched_at: u64,
    body: String,
}

fn upstream_meta_error(m: &ModPath, e: UpstreamError) -> Error {
    upstream_to_error(m.to_string(), e)
}
