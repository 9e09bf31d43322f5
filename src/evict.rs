//! The store's size cap: past `[store] max_bytes`, the versions served least recently are evicted; held versions never are.
//!
//! - **What is evicted:** whole versions (`.info`, `.mod` and `.zip` together),
//!   least recently served first. Versions not served since this process
//!   started count as older than any served one, oldest verified first.
//!   Their index entries go, then every blob no remaining entry names.
//! - **What comes back:** an evicted version is an ordinary miss again:
//!   fetched and verified (proof, hashes, zip rules) before it is served.
//!   The proven lookup is kept (small, and it is what the refetch is checked
//!   against).
//! - **What is never evicted:** a version for which the hook
//!   [`Evictor::set_is_held`] says so — versions held as evidence (blocked
//!   by policy or advisories) — and everything that is not an artifact
//!   (trust state, proofs, tiles: they live outside the index).
//! - **When:** after each miss that stored something, in the background,
//!   one run at a time; each version evicted counts once in
//!   `modgate_limit_hits_total{limit="store_max_bytes"}`.
//!
//! A version served while it is evicted finds its blob gone; the pipeline
//! treats that as a missing blob (drops the entry, fetches and verifies
//! again), so the race costs a refetch, never a wrong answer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::metrics::Metrics;
use crate::protocol::{Kind, ModVersion};
use crate::store::{Entry, Store, StoreResult};

/// Says whether a version must be kept whatever the cap (module, version).
pub type IsHeld = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// The cap, and when each version was last served.
pub struct Evictor {
    max_bytes: u64,
    /// module → version → tick of its last serve. Nested so a hit on a
    /// known version updates it without allocating.
    served: Mutex<HashMap<String, HashMap<String, u64>>>,
    tick: AtomicU64,
    is_held: RwLock<IsHeld>,
    running: Arc<AtomicBool>,
}

/// What one eviction run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Evicted {
    /// Whether the store was over its cap when the run began.
    pub was_over: bool,
    pub versions: Vec<(String, String)>,
    pub bytes: u64,
    pub blobs_deleted: usize,
}

impl Evictor {
    /// `max_bytes` 0: no cap (and nothing is tracked on hits).
    pub fn new(max_bytes: u64) -> Evictor {
        Evictor {
            max_bytes,
            served: Mutex::default(),
            tick: AtomicU64::new(1),
            is_held: RwLock::new(Arc::new(|_: &str, _: &str| false)),
            running: Arc::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_bytes > 0
    }

    /// Installs the hook that marks versions never to evict (the supply-chain
    /// gate: versions blocked by policy or advisories are kept as evidence).
    pub fn set_is_held(&self, f: IsHeld) {
        *self.is_held.write().unwrap_or_else(|p| p.into_inner()) = f;
    }

    /// A version was served (hit or miss). A no-op without a cap.
    pub fn served(&self, module: &str, version: &str) {
        if !self.enabled() {
            return;
        }
        let t = self.tick.fetch_add(1, Ordering::Relaxed);
        let mut map = self.served.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(module) {
            Some(vs) => match vs.get_mut(version) {
                Some(at) => *at = t,
                None => {
                    vs.insert(version.to_string(), t);
                }
            },
            None => {
                map.insert(
                    module.to_string(),
                    HashMap::from([(version.to_string(), t)]),
                );
            }
        }
    }

    fn last_served(&self, module: &str, version: &str) -> u64 {
        let map = self.served.lock().unwrap_or_else(|p| p.into_inner());
        map.get(module)
            .and_then(|vs| vs.get(version))
            .copied()
            .unwrap_or(0)
    }

    fn forget(&self, module: &str, version: &str) {
        let mut map = self.served.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(vs) = map.get_mut(module) {
            vs.remove(version);
            if vs.is_empty() {
                map.remove(module);
            }
        }
    }

    /// After a miss stored something: evicts in the background if the store
    /// is over the cap (one run at a time; a run already going covers it).
    pub fn after_commit(self: &Arc<Self>, store: Arc<dyn Store>, metrics: Arc<Metrics>) {
        if !self.enabled() || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                // Worth another run if this one freed something, or found
                // nothing to do (a commit since may have gone over).
                let progressed = match this.evict(store.as_ref(), &metrics).await {
                    Ok(done) => !done.was_over || !done.versions.is_empty(),
                    Err(e) => {
                        tracing::error!(error = %e, "evicting from the store");
                        false
                    }
                };
                this.running.store(false, Ordering::Release);
                // A commit that came while this ran found it running and left
                // the check to it: look again (while runs make progress, so
                // a store full of held versions does not spin).
                let over = matches!(store.totals().await, Ok((_, b)) if b > this.max_bytes);
                if !progressed || !over || this.running.swap(true, Ordering::AcqRel) {
                    break;
                }
            }
        });
    }

    /// Evicts least recently served versions until the store is within its cap.
    pub async fn evict(&self, store: &dyn Store, metrics: &Metrics) -> StoreResult<Evicted> {
        let mut out = Evicted::default();
        let (_, mut bytes) = store.totals().await?;
        if !self.enabled() || bytes <= self.max_bytes {
            return Ok(out);
        }
        out.was_over = true;
        let entries = store.entries("").await?;
        let mut uses: HashMap<String, usize> = HashMap::new();
        let mut versions: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
        for e in entries {
            *uses.entry(e.digest.clone()).or_default() += 1;
            versions
                .entry((e.module.clone(), e.version.clone()))
                .or_default()
                .push(e);
        }
        // Least recently served first; never-served (since start) before
        // any served, the longest verified first.
        let mut order: Vec<(u64, u64, (String, String))> = versions
            .iter()
            .map(|(k, es)| {
                let verified = es
                    .iter()
                    .map(|e| e.verification.verified_at)
                    .max()
                    .unwrap_or(0);
                (self.last_served(&k.0, &k.1), verified, k.clone())
            })
            .collect();
        order.sort();
        let is_held = self
            .is_held
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut unused = HashSet::new();
        for (_, _, key) in order {
            if bytes <= self.max_bytes {
                break;
            }
            if is_held(&key.0, &key.1) {
                continue;
            }
            let Ok(mv) = ModVersion::new(&key.0, &key.1) else {
                continue;
            };
            for e in versions.get(&key).into_iter().flatten() {
                let Some(kind) = Kind::parse(&e.kind) else {
                    continue;
                };
                if store.remove(&mv, kind).await? {
                    bytes = bytes.saturating_sub(e.size);
                    out.bytes += e.size;
                    if let Some(n) = uses.get_mut(&e.digest) {
                        *n -= 1;
                        if *n == 0 {
                            unused.insert(e.digest.clone());
                        }
                    }
                }
            }
            self.forget(&key.0, &key.1);
            metrics.limit_hit("store_max_bytes");
            tracing::info!(module = %key.0, version = %key.1, "evicted (store over [store] max_bytes)");
            out.versions.push(key);
        }
        for digest in unused {
            store.delete_blob(&digest).await?;
            out.blobs_deleted += 1;
        }
        if bytes > self.max_bytes {
            tracing::warn!(
                bytes,
                max_bytes = self.max_bytes,
                "store still over [store] max_bytes: the rest is held"
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_order_is_tracked_only_with_a_cap() {
        let off = Evictor::new(0);
        off.served("m", "v1.0.0");
        assert_eq!(off.last_served("m", "v1.0.0"), 0);
        let on = Evictor::new(1);
        on.served("m", "v1.0.0");
        on.served("m", "v1.1.0");
        assert!(on.last_served("m", "v1.0.0") < on.last_served("m", "v1.1.0"));
        on.served("m", "v1.0.0");
        assert!(on.last_served("m", "v1.0.0") > on.last_served("m", "v1.1.0"));
        on.forget("m", "v1.0.0");
        on.forget("m", "v1.1.0");
        assert!(on.served.lock().unwrap().is_empty());
    }
}
