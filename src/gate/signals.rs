//! The release cooldown and the typosquat check as the gate's [`Check`]s: the pure judgments of `cooldown.rs` and `typosquat.rs` fed what the mirror knows (trusted-head history, served modules), memoized so hits cost nothing.
//!
//! # Typosquat
//!
//! The corpus is Debian's popular module paths plus every module the mirror
//! serves: the store's modules when the server starts, then each module as
//! its first artifact is committed ([`TyposquatCheck::add`]). A module the
//! mirror serves (or a path below one) is never flagged. The judgment of a
//! module path is made once and remembered ([`MEMO_CAP`] paths at most; the
//! memo is emptied when full and whenever the corpus grows), so a request
//! for a module already judged costs one hash lookup under a read lock and
//! allocates nothing unless the path is flagged.
//!
//! `[typosquat] mode`: `enforce` refuses (403, naming the module it resembles
//! and the `[[allow]]` rule that lets it through), `warn` serves and logs on
//! `modgate::security`, `off` checks nothing. Without a `[typosquat]` section
//! the mode is `warn` (see `policy.rs`); without a policy file nothing is
//! checked, as before the gate existed.
//!
//! # Cooldown
//!
//! The age of a version comes from its checksum-database record id (see
//! `cooldown.rs`), which the pipeline knows from the cached entry, or from
//! the verified lookup of a miss. Without it ([`Facts::record_id`] `None`)
//! the cooldown finds nothing: the miss is judged again once its lookup is
//! proven, before a byte is served.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use super::cooldown::{self, Cooldown, Hold, Subject};
use super::policy::TyposquatMode;
use super::typosquat::{Corpus, Resemblance};
use super::{Check, Facts, Finding, FindingKind, Policy};
use crate::sumdb::heads::{HeadHistory, RecordDate};

/// The checksum-database record id of a cached artifact, by which the
/// cooldown dates its version: `None` for an entry no checksum database
/// vouched for (it has no record to date). Every caller reads it here.
/// When a private entry was pinned (first seen): its age for the cooldown;
/// `None` for an entry the checksum database vouched for.
pub fn pinned_at(e: &crate::store::Entry) -> Option<u64> {
    (e.verification.authority == crate::routes::Authority::Pins)
        .then_some(e.verification.verified_at)
}

pub fn record_of(e: &crate::store::Entry) -> Option<i64> {
    (e.verification.authority == crate::routes::Authority::ChecksumDatabase)
        .then_some(e.verification.record_id)
}

/// Module paths whose typosquat judgment is remembered; the memo is emptied
/// when it is full (each judgment costs a few microseconds to make again).
pub const MEMO_CAP: usize = 65_536;

/// Where the cooldown reads the trusted-head history (the sumdb client's, or
/// one read from a data dir).
pub type HeadSource = Arc<dyn Fn() -> Arc<HeadHistory> + Send + Sync>;

/// A head source that never saw a head (every record predates the watch).
pub fn no_heads() -> HeadSource {
    let h = Arc::new(HeadHistory::new());
    Arc::new(move || h.clone())
}

/// A fixed history (`policy check` on a data dir).
pub fn fixed_heads(h: HeadHistory) -> HeadSource {
    let h = Arc::new(h);
    Arc::new(move || h.clone())
}

/// The typosquat check (see the module doc).
pub struct TyposquatCheck {
    corpus: RwLock<Corpus>,
    /// Exact module paths added as served (to add each once, cheaply).
    served: RwLock<HashSet<String>>,
    memo: RwLock<HashMap<Box<str>, Option<Arc<Resemblance>>>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl TyposquatCheck {
    pub fn new(corpus: Corpus) -> TyposquatCheck {
        TyposquatCheck {
            corpus: RwLock::new(corpus),
            served: RwLock::default(),
            memo: RwLock::default(),
        }
    }

    /// Adds a module the mirror serves (no-op when already added).
    pub fn add(&self, module: &str) {
        if read(&self.served).contains(module) {
            return;
        }
        self.add_all([module]);
    }

    /// Adds modules the mirror serves, then forgets every judgment (a new
    /// member clears paths below it and flags near-copies of it).
    pub fn add_all<'a>(&self, modules: impl IntoIterator<Item = &'a str>) {
        let mut served = write(&self.served);
        let mut corpus = write(&self.corpus);
        let mut grew = false;
        for m in modules {
            if !served.contains(m) {
                served.insert(m.to_string());
                corpus.add(m);
                grew = true;
            }
        }
        drop(corpus);
        drop(served);
        if grew {
            write(&self.memo).clear();
        }
    }

    /// What `module` resembles, judged once and remembered.
    pub fn resemblance(&self, module: &str) -> Option<Arc<Resemblance>> {
        if let Some(r) = read(&self.memo).get(module) {
            return r.clone();
        }
        let r = read(&self.corpus).check(module).map(Arc::new);
        let mut memo = write(&self.memo);
        if memo.len() >= MEMO_CAP {
            memo.clear();
        }
        memo.insert(module.into(), r.clone());
        r
    }
}

impl Check for TyposquatCheck {
    fn applies(&self, policy: &Policy) -> bool {
        policy.typosquat.mode != TyposquatMode::Off
    }

    fn check(
        &self,
        policy: &Policy,
        module: &str,
        _version: &str,
        _facts: &Facts,
        _now: u64,
        out: &mut Vec<Finding>,
    ) {
        let Some(r) = self.resemblance(module) else {
            return;
        };
        out.push(Finding {
            kind: FindingKind::Typosquat,
            id: r.similar_to.clone(),
            reason: format!(
                "{module} resembles {} ({}); if it is the module you mean, \
                 let it through with an [[allow]] rule for module = \"{module}\" in the policy",
                r.similar_to, r.how
            ),
            enforce: policy.typosquat.mode == TyposquatMode::Enforce,
        });
    }
}

/// The release cooldown (see the module doc and `cooldown.rs`).
pub struct CooldownCheck {
    heads: HeadSource,
    /// A history set once in place of `heads` (`policy check` reads the data
    /// dir's after the gate is built).
    fixed: std::sync::OnceLock<Arc<HeadHistory>>,
    /// Records known old enough, so that a hit on one reads no history.
    old: arc_swap::ArcSwap<Watermark>,
    /// `.info` Times read for pre-watch records (record id → Time), so that
    /// in a fresh mirror's first `min_age` a hit reads the `.info` once.
    info_times: std::sync::Mutex<HashMap<i64, Option<u64>>>,
}

/// Every record with an id below `below` is at least `min_age` seconds old:
/// it was in a head first seen `min_age` ago (or predates the watch, which
/// began that long ago). Time only makes it truer; a new `min_age` voids it.
/// (Thinning the history may later date such a record a little later — by
/// at most ~1/128 of its age, see `sumdb/heads.rs` — a version once old
/// enough stays served rather than flickering back into the cooldown.)
#[derive(Debug, Default)]
struct Watermark {
    min_age: u64,
    below: i64,
}

impl CooldownCheck {
    pub fn new(heads: HeadSource) -> CooldownCheck {
        CooldownCheck {
            heads,
            fixed: std::sync::OnceLock::new(),
            old: arc_swap::ArcSwap::default(),
            info_times: std::sync::Mutex::default(),
        }
    }

    /// The `.info` Time remembered for `record_id`: `Some(None)` when its
    /// `.info` was read and has none.
    pub fn known_info_time(&self, record_id: i64) -> Option<Option<u64>> {
        let m = self.info_times.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&record_id).copied()
    }

    /// Remembers the `.info` Time of `record_id` ([`MEMO_CAP`] at most).
    pub fn remember_info_time(&self, record_id: i64, time: Option<u64>) {
        let mut m = self.info_times.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MEMO_CAP {
            m.clear();
        }
        m.insert(record_id, time);
    }

    /// Whether `record_id` is known old enough for `min_age` (no history read).
    fn known_old(&self, min_age: u64, record_id: i64) -> bool {
        let w = self.old.load();
        w.min_age == min_age && record_id < w.below
    }

    /// Raises the watermark to what `history` proves at `now`.
    fn raise(&self, history: &HeadHistory, min_age: u64, now: u64) {
        let heads = history.heads();
        let i = heads.partition_point(|h| h.seen.saturating_add(min_age) <= now);
        let Some(below) = i.checked_sub(1).map(|i| heads[i].size) else {
            return;
        };
        let w = self.old.load();
        if w.min_age != min_age || below > w.below {
            self.old.store(Arc::new(Watermark { min_age, below }));
        }
    }

    /// Dates records by `h` from now on (once; later calls are ignored).
    pub fn set_history(&self, h: HeadHistory) {
        let _ = self.fixed.set(Arc::new(h));
    }

    /// The history records are dated by now.
    pub fn history(&self) -> Arc<HeadHistory> {
        match self.fixed.get() {
            Some(h) => h.clone(),
            None => (self.heads)(),
        }
    }

    fn min_age(policy: &Policy) -> u64 {
        policy.cooldown.min_age.map_or(0, |d| d.as_secs())
    }

    /// Whether the cooldown is on and `module` is not exempt.
    pub fn holds_module(&self, policy: &Policy, module: &str) -> bool {
        Self::min_age(policy) > 0 && !policy.cooldown.exempt.iter().any(|p| p.matches(module))
    }

    /// Whether judging `record_id` needs the `.info` Time (a record older
    /// than the watch, within `min_age` of the watch's start).
    pub fn needs_info_time(&self, policy: &Policy, module: &str, record_id: i64, now: u64) -> bool {
        if !self.holds_module(policy, module) || self.known_old(Self::min_age(policy), record_id) {
            return false;
        }
        match self.history().date(record_id) {
            RecordDate::Unwatched => true,
            RecordDate::BeforeWatch { first } => {
                now < first.seen.saturating_add(Self::min_age(policy))
            }
            RecordDate::FirstSeen { .. } | RecordDate::Beyond { .. } => false,
        }
    }

    /// The hold on `module@version`, if the cooldown holds it.
    pub fn hold(
        &self,
        policy: &Policy,
        module: &str,
        version: &str,
        facts: &Facts,
        now: u64,
    ) -> Option<Hold> {
        let exempt = |m: &str| policy.cooldown.exempt.iter().any(|p| p.matches(m));
        if let Some(at) = facts.pinned_at {
            let c = Cooldown {
                min_age: policy.cooldown.min_age.unwrap_or_default(),
                exempt: &exempt,
            };
            let subject = Subject {
                module,
                version,
                record_id: 0,
                info_time: None,
            };
            return cooldown::check_pinned(&c, &subject, at, now);
        }
        let record_id = facts.record_id?;
        let min_age = Self::min_age(policy);
        if self.known_old(min_age, record_id) {
            return None;
        }
        let c = Cooldown {
            min_age: policy.cooldown.min_age.unwrap_or_default(),
            exempt: &exempt,
        };
        let subject = Subject {
            module,
            version,
            record_id,
            info_time: facts.info_time,
        };
        let history = self.history();
        let hold = cooldown::check(&c, &subject, &history, now);
        self.raise(&history, min_age, now);
        hold
    }
}

impl Check for CooldownCheck {
    fn applies(&self, policy: &Policy) -> bool {
        Self::min_age(policy) > 0
    }

    fn check(
        &self,
        policy: &Policy,
        module: &str,
        version: &str,
        facts: &Facts,
        now: u64,
        out: &mut Vec<Finding>,
    ) {
        if let Some(hold) = self.hold(policy, module, version, facts, now) {
            out.push(Finding {
                kind: FindingKind::Cooldown,
                id: match facts.pinned_at {
                    Some(_) => "pinned".to_string(),
                    None => format!("record {}", facts.record_id.unwrap_or_default()),
                },
                reason: hold.reason,
                enforce: true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::{Gate, Verdict, with_policy};

    const DAY: u64 = 86_400;

    fn gate(policy: &str, heads: HeadSource) -> Gate {
        with_policy(Policy::parse(policy).unwrap(), heads)
    }

    #[test]
    fn typosquat_modes_and_allow() {
        let g = gate("[typosquat]\nmode = \"enforce\"\n", no_heads());
        let v = g.check("github.com/boltdb-go/bolt", "v1.3.1");
        assert!(!v.served(), "{v:?}");
        assert!(v.why().contains("github.com/boltdb/bolt"), "{}", v.why());
        assert!(v.why().contains("[[allow]]"), "{}", v.why());
        assert_eq!(g.check("github.com/boltdb/bolt", "v1.3.1"), Verdict::Allow);

        let g = gate("[typosquat]\nmode = \"warn\"\n", no_heads());
        assert_eq!(
            g.check("github.com/boltdb-go/bolt", "v1.3.1").outcome(),
            "warn"
        );
        let g = gate("[typosquat]\nmode = \"off\"\n", no_heads());
        assert_eq!(
            g.check("github.com/boltdb-go/bolt", "v1.3.1"),
            Verdict::Allow
        );
        // No section: warn. No policy at all: nothing.
        let g = gate("", no_heads());
        assert_eq!(
            g.check("github.com/boltdb-go/bolt", "v1.3.1").outcome(),
            "warn"
        );
        let g = with_policy(Policy::default(), no_heads());
        assert_eq!(
            g.check("github.com/boltdb-go/bolt", "v1.3.1"),
            Verdict::Allow
        );

        let g = gate(
            "[typosquat]\nmode = \"enforce\"\n[[allow]]\nmodule = \"github.com/boltdb-go/bolt\"\nreason = \"ours\"\n",
            no_heads(),
        );
        assert_eq!(
            g.check("github.com/boltdb-go/bolt", "v1.3.1").outcome(),
            "excepted"
        );
    }

    #[test]
    fn served_modules_join_the_corpus_and_clear_the_memo() {
        let g = gate("[typosquat]\nmode = \"enforce\"\n", no_heads());
        assert!(g.check("corp.example/platform/auth2", "v1.0.0").served());
        g.served_module("corp.example/platform/authz");
        let v = g.check("corp.example/platform/auth2", "v1.0.0");
        assert!(!v.served());
        assert!(
            v.why().contains("corp.example/platform/authz"),
            "{}",
            v.why()
        );
        // A flagged module the mirror comes to serve is no longer flagged.
        g.served_modules(["corp.example/platform/auth2"]);
        assert!(g.check("corp.example/platform/auth2", "v1.0.0").served());
    }

    #[test]
    fn the_cooldown_holds_by_record_id() {
        let now = crate::store::now_secs();
        let mut h = HeadHistory::new();
        h.record(100, now - 30 * DAY);
        h.record(200, now - 60);
        let g = gate(
            "[cooldown]\nmin_age = \"72h\"\nexempt = [\"corp.example/*\"]\n",
            fixed_heads(h),
        );
        let new = Facts {
            record_id: Some(150),
            info_time: Some(now - 5 * 365 * DAY),
            pinned_at: None,
        };
        let v = g.judge("example.com/m", "v1.0.0", &new);
        assert!(!v.served(), "{v:?}");
        assert!(v.why().contains("release cooldown"), "{}", v.why());
        // Unknown record: nothing yet (judged again when it is known).
        assert!(g.check("example.com/m", "v1.0.0").served());
        // Older than the watch: served.
        let old = Facts {
            record_id: Some(50),
            info_time: Some(now - 5 * 365 * DAY),
            pinned_at: None,
        };
        assert!(g.judge("example.com/m", "v1.0.0", &old).served());
        // A private version is dated by its pin: held for min_age after it
        // was first seen, whatever its .info says; an exempt one is served.
        let pinned = |at| Facts {
            record_id: None,
            info_time: Some(now - 5 * 365 * DAY),
            pinned_at: Some(at),
        };
        let v = g.judge("git.corp.test/lib", "v1.2.0", &pinned(now - DAY));
        assert!(!v.served(), "{v:?}");
        assert!(v.why().contains("first seen and pinned"), "{}", v.why());
        assert!(
            g.judge("git.corp.test/lib", "v1.2.0", &pinned(now - 4 * DAY))
                .served()
        );
        assert!(g.judge("corp.example/x/y", "v1.2.0", &pinned(now)).served());
        assert!(g.judge("corp.example/x/y", "v1.0.0", &new).served());
        assert!(g.needs_record("example.com/m"));
        assert!(!g.needs_record("corp.example/x"));
        assert!(!g.needs_info_time("example.com/m", 50, now));
        // Within min_age of the watch's start (a gate asked then, before the
        // watermark knew better), a pre-watch record needs its .info Time.
        let mut young = HeadHistory::new();
        young.record(100, now - 60);
        let g2 = gate("[cooldown]\nmin_age = \"72h\"\n", fixed_heads(young));
        assert!(g2.needs_info_time("example.com/m", 50, now));
        assert!(
            g.cooldown_hold("example.com/m", "v1.0.0", &new, now)
                .is_some()
        );
    }

    #[test]
    fn the_watermark_never_serves_what_the_history_holds() {
        let now = 1_800_000_000;
        let mut h = HeadHistory::new();
        h.record(100, now - 30 * DAY);
        h.record(200, now - 4 * DAY);
        h.record(300, now - DAY);
        let c = CooldownCheck::new(fixed_heads(h));
        let p = Policy::parse("[cooldown]\nmin_age = \"72h\"\n").unwrap();
        let facts = |id| Facts {
            record_id: Some(id),
            info_time: None,
            pinned_at: None,
        };
        assert!(
            c.hold(&p, "example.com/m", "v1", &facts(150), now)
                .is_none()
        );
        // Records below 200 are known old now; 250 (seen a day ago) is not.
        assert!(c.known_old(3 * DAY, 199));
        assert!(!c.known_old(3 * DAY, 200));
        assert!(
            c.hold(&p, "example.com/m", "v1", &facts(250), now)
                .is_some()
        );
        // Another min_age voids it.
        assert!(!c.known_old(5 * DAY, 10));
        let p5 = Policy::parse("[cooldown]\nmin_age = \"120h\"\n").unwrap();
        assert!(
            c.hold(&p5, "example.com/m", "v1", &facts(150), now)
                .is_some()
        );
        assert!(!c.known_old(3 * DAY, 10));
    }
}
