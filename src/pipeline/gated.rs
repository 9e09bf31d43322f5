//! What the pipeline tells the supply-chain gate about a version: its
//! checksum-database record id (from the cached entry, a cached verified
//! lookup, or the lookup a miss just proved) and, where the cooldown needs it,
//! its `.info` Time — so the one verdict can hold versions by their age.

use std::sync::Arc;

use super::Pipeline;
use crate::error::Result;
use crate::gate::Facts;
use crate::gate::signals::record_of;
use crate::protocol::{Kind, ModVersion};
use crate::store::{Entry, now_secs};

impl Pipeline {
    /// The facts the gate judges `mv` by, given its record id if known. The
    /// `.info` Time is read (from the store only) just where the cooldown
    /// asks for it: a record older than the watch, within `min_age` of the
    /// watch's start (see `gate/cooldown.rs`) — never on an ordinary hit,
    /// and once per version (remembered by record id).
    pub(super) async fn facts(&self, mv: &ModVersion, record_id: Option<i64>) -> Facts {
        let Some(id) = record_id else {
            return Facts::default();
        };
        let info_time = if self.gate.needs_info_time(mv.path(), id, now_secs()) {
            match self.gate.known_info_time(id) {
                Some(t) => t,
                None => match self.stored_info_time(mv).await {
                    Some(t) => {
                        self.gate.remember_info_time(id, t);
                        t
                    }
                    // Not cached (yet): read when it is.
                    None => None,
                },
            }
        } else {
            None
        };
        Facts {
            record_id: Some(id),
            info_time,
            pinned_at: None,
        }
    }

    /// The stored `.info`'s Time: `None` when no `.info` is cached (or it
    /// cannot be read), `Some(None)` when it has no valid Time.
    async fn stored_info_time(&self, mv: &ModVersion) -> Option<Option<u64>> {
        let e = self.store.entry(mv, Kind::Info).await.ok()??;
        let data = self.read_small(&e).await.ok()?;
        Some(crate::gate::cooldown::info_time(&data))
    }

    /// The gate on a cached artifact (or one a miss just committed): the full
    /// verdict, the cooldown judging the entry's record.
    pub(super) async fn admit_entry(&self, mv: &ModVersion, entry: &Entry) -> Result<()> {
        let mut facts = self.facts(mv, record_of(entry)).await;
        facts.pinned_at = crate::gate::signals::pinned_at(entry);
        crate::gate::serve::admit_with(&self.gate, self.metrics(), mv.path(), mv.version(), &facts)
    }

    /// The gate before a miss contacts upstream: refuses what is known to be
    /// refused (policy, advisories, typosquats, and the cooldown when a
    /// verified lookup of the version is cached already).
    pub(super) async fn screen_miss(&self, mv: &ModVersion) -> Result<()> {
        let record_id = match self.gate.needs_record(mv.path()) {
            true => self.cached_lookup(mv).await?.map(|l| l.id),
            false => None,
        };
        let facts = self.facts(mv, record_id).await;
        crate::gate::serve::screen(&self.gate, self.metrics(), mv.path(), mv.version(), &facts)
    }

    /// Whether `mv` would be served, judged on what the mirror knows without
    /// asking upstream (`list`): the record id of a cached artifact
    /// (`cached`) or cached verified lookup. A version whose record is known
    /// nowhere is listed: its fetch is judged in full.
    pub(super) async fn served_known(&self, mv: &ModVersion, cached: Option<i64>) -> Result<bool> {
        let record_id = match (cached, self.gate.needs_record(mv.path())) {
            (_, false) => None,
            (Some(id), true) => Some(id),
            (None, true) => self.cached_lookup(mv).await?.map(|l| l.id),
        };
        let facts = self.facts(mv, record_id).await;
        Ok(self.gate.judge(mv.path(), mv.version(), &facts).served())
    }

    /// The verdict on `mv` for `@latest`: while the cooldown could hold a
    /// version of the module, its `.info` is fetched first through the
    /// ordinary miss (verified and cached — the go command asks for it next
    /// anyway; a held one stays cached, unserved), so `@latest` never names a
    /// version a fetch would hold. Going through the miss, not a bare lookup,
    /// keeps a module on the one verified path its fetches take. A fetch that
    /// fails leaves the record unknown (the version's own fetch then decides).
    pub(super) async fn latest_verdict(self: &Arc<Self>, mv: &ModVersion) -> crate::gate::Verdict {
        let mut record_id = None;
        if self.gate.needs_record(mv.path()) {
            record_id = match self.store.entry(mv, Kind::Info).await {
                Ok(Some(e)) => record_of(&e),
                _ => None,
            };
            if record_id.is_none() {
                // Its outcome is judged below from what it cached.
                let _ = self.artifact(mv, Kind::Info).await;
                if let Ok(Some(e)) = self.store.entry(mv, Kind::Info).await {
                    record_id = record_of(&e);
                }
            }
        }
        let facts = self.facts(mv, record_id).await;
        self.gate.judge(mv.path(), mv.version(), &facts)
    }
}
