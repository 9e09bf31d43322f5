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
    let mut pins = std::collections::HashMap::new();
    let mut versions: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for e in store.entries("").await? {
        if let Some(id) = super::signals::record_of(&e).filter(|_| cooldown) {
            records.insert((e.module.clone(), e.version.clone()), id);
        }
        if let Some(at) = super::signals::pinned_at(&e).filter(|_| cooldown) {
            pins.insert((e.module.clone(), e.version.clone()), at);
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
                pinned_at: pins.get(&(module.clone(), version.clone())).copied(),
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
    /// Re-judges every cached version; logs each newly refused one — with who
    /// fetched it, when `fetchers` can say — records the refused set on the
    /// gate, and returns (refused now, newly refused).
    pub async fn run(
        &mut self,
        store: &dyn Store,
        gate: &Arc<Gate>,
        fetchers: Option<&Fetchers>,
    ) -> Result<(usize, usize), StoreError> {
        let refused = refused(store, gate).await?;
        let mut now_blocked = HashSet::with_capacity(refused.len());
        let mut new = 0;
        for r in &refused {
            let key = (r.module.clone(), r.version.clone());
            if !self.blocked.contains(&key) {
                new += 1;
                let who = match fetchers {
                    Some(f) => f(&key.0, &key.1).await,
                    None => Vec::new(),
                };
                tracing::warn!(target: "modgate::security", module = %key.0, version = %key.1,
                    why = %r.why, cached = %r.kinds.join(","), fetched_by = %who.join(", "),
                    "cached version is now refused by the gate (kept as evidence, no longer served)");
            }
            now_blocked.insert(key);
        }
        let total = now_blocked.len();
        self.blocked = now_blocked;
        gate.set_blocked(refused);
        Ok((total, new))
    }
}

/// Who fetched `module@version` (from the audit trail), for the re-check's log line.
pub type Fetchers =
    dyn Fn(&str, &str) -> futures_util::future::BoxFuture<'static, Vec<String>> + Send + Sync;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Policy;
    use crate::store::{EmbeddedStore, Entry, Verification};

    async fn store_with(dir: &std::path::Path, versions: &[(&str, &str)]) -> EmbeddedStore {
        use sha2::Digest;
        let store = EmbeddedStore::open(dir).unwrap();
        for (m, v) in versions {
            let data = format!("module {m}\n");
            let entry = Entry {
                module: m.to_string(),
                version: v.to_string(),
                kind: "mod".into(),
                digest: hex::encode(sha2::Sha256::digest(data.as_bytes())),
                size: data.len() as u64,
                verification: Verification {
                    h1: String::new(),
                    sumdb: "test".into(),
                    record_id: 1,
                    tree_size: 2,
                    tree_hash: String::new(),
                    verified_at: 0,
                    authority: Default::default(),
                },
            };
            store.commit_bytes(data.as_bytes(), entry).await.unwrap();
        }
        store
    }

    fn deny(modules: &[&str]) -> Policy {
        let mut t = String::new();
        for m in modules {
            t.push_str(&format!(
                "[[deny]]\nmodule = \"{m}\"\nreason = \"no {m}\"\n"
            ));
        }
        Policy::parse(&t).unwrap()
    }

    #[tokio::test]
    async fn only_newly_refused_versions_count_as_new() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(
            dir.path(),
            &[
                ("example.com/a", "v1.0.0"),
                ("example.com/a", "v1.1.0"),
                ("example.com/b", "v1.0.0"),
            ],
        )
        .await;
        let gate = Arc::new(Gate::default());
        let mut r = Rechecker::default();
        assert_eq!(r.run(&store, &gate, None).await.unwrap(), (0, 0));
        gate.set_policy(deny(&["example.com/a"]));
        assert_eq!(r.run(&store, &gate, None).await.unwrap(), (2, 2));
        assert_eq!(r.run(&store, &gate, None).await.unwrap(), (2, 0));
        gate.set_policy(deny(&["example.com/a", "example.com/b"]));
        assert_eq!(r.run(&store, &gate, None).await.unwrap(), (3, 1));
        let list = refused(&store, &gate).await.unwrap();
        assert_eq!(list[2].module, "example.com/b");
        assert_eq!(list[2].why, "deny policy line 5: no example.com/b");
        assert_eq!(list[2].kinds, ["mod"]);
        gate.set_policy(Policy::default());
        assert_eq!(r.run(&store, &gate, None).await.unwrap(), (0, 0));
        // Nothing was deleted.
        assert_eq!(cached_versions(&store).await.unwrap().len(), 3);
    }
}
