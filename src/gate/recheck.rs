//! Re-judging the cache: after the policy or the advisories change, every cached
//! version gets a fresh verdict; each one newly refused is logged once on
//! `modgate::security`. Nothing is deleted — the blob stays as evidence and the
//! pipeline's gate simply stops serving it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::{Gate, Verdict};
use crate::store::{Store, StoreError};

/// A cached version the gate refuses, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub module: String,
    pub version: String,
    pub why: String,
    /// Kinds of the artifacts held (`info`, `mod`, `zip`).
    pub kinds: Vec<String>,
}

/// Every distinct cached (module, version) with its artifact kinds, in order.
pub async fn cached_versions(
    store: &dyn Store,
) -> Result<BTreeMap<(String, String), Vec<String>>, StoreError> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in store.entries("").await? {
        out.entry((e.module, e.version)).or_default().push(e.kind);
    }
    Ok(out)
}

/// The cached versions `gate` refuses now. The verdicts run on a blocking
/// thread: a large store must not hold up an async worker that serves requests.
/// The release cooldown is not judged here (a hold ends by itself; the
/// re-check logs what a policy or advisory change blocks): see [`refused_with`].
pub async fn refused(store: &dyn Store, gate: &Arc<Gate>) -> Result<Vec<Refused>, StoreError> {
    refused_with(store, gate, false).await
}

/// [`refused`], with `cooldown`: each version judged with its record id too,
/// so versions the cooldown holds are listed (`policy exposure`).
pub async fn refused_with(
    store: &dyn Store,
    gate: &Arc<Gate>,
    cooldown: bool,
) -> Result<Vec<Refused>, StoreError> {
    let mut records = std::collections::HashMap::new();
    let mut versions: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in store.entries("").await? {
        if let Some(id) = super::signals::record_of(&e).filter(|_| cooldown) {
            records.insert((e.module.clone(), e.version.clone()), id);
        }
        versions
            .entry((e.module, e.version))
            .or_default()
            .push(e.kind);
    }
    let gate = gate.clone();
    let judge = move || {
        let now = crate::store::now_secs();
        let mut out = Vec::new();
        for ((module, version), kinds) in versions {
            let facts = super::Facts {
                record_id: match records.is_empty() {
                    true => None,
                    false => records.get(&(module.clone(), version.clone())).copied(),
                },
                info_time: None,
            };
            if let v @ Verdict::Refuse(_) = gate.judge_at(&module, &version, &facts, now) {
                out.push(Refused {
                    why: v.why(),
                    module,
                    version,
                    kinds,
                });
            }
        }
        out
    };
    tokio::task::spawn_blocking(judge)
        .await
        .map_err(|e| StoreError::Index(format!("re-checking cached versions: {e}")))
}

/// Remembers what was refused at the last re-check, to log only what is new.
#[derive(Debug, Default)]
pub struct Rechecker {
    blocked: HashSet<(String, String)>,
}

impl Rechecker {
    /// Re-judges every cached version; logs each newly refused one and returns
    /// (refused now, newly refused).
    pub async fn run(
        &mut self,
        store: &dyn Store,
        gate: &Arc<Gate>,
    ) -> Result<(usize, usize), StoreError> {
        let refused = refused(store, gate).await?;
        let mut now_blocked = HashSet::with_capacity(refused.len());
        let mut new = 0;
        for r in refused {
            let key = (r.module, r.version);
            if !self.blocked.contains(&key) {
                new += 1;
                tracing::warn!(target: "modgate::security", module = %key.0, version = %key.1,
                    why = %r.why, cached = %r.kinds.join(","),
                    "cached version is now refused by the gate (kept as evidence, no longer served)");
            }
            now_blocked.insert(key);
        }
        let total = now_blocked.len();
        self.blocked = now_blocked;
        Ok((total, new))
    }
}
