//! The trusted-head history of a checksum database: when modgate first saw each tree size, which dates every record that entered the log while it watched.
//!
//! # Why the log dates a version
//!
//! A record's id is its position in an append-only, signed log. If modgate
//! trusted a tree of size `n` first at time `t`, every record with id `< n`
//! was in the log at `t`; if the head it trusted just before (size `m`,
//! seen at `t'`) had `m <= id`, the record was not in the log modgate knew at
//! `t'`. So a record's age is at least `now - t` where `t` is the first-seen
//! time of the smallest watched head with size `> id`. Nobody can backdate
//! that: the author chooses the `.info` Time of a version, but not when its
//! record enters the log, nor when modgate saw it there. Watching the head
//! every half minute or so (see `trust_watch`) dates a new record within
//! about a minute.
//!
//! Records with an id below the **first** head modgate ever saw were in the
//! log before it watched; [`HeadHistory::date`] says so, and the caller
//! decides (the cooldown treats them as old, see `gate::cooldown`).
//!
//! # Size
//!
//! One entry per trusted head advance would grow forever, so the history is
//! thinned as it ages: an entry is dropped when its neighbours are closer in
//! time than [`MIN_GAP_SECS`] or than `1/`[`THIN_RATIO`] of their age. A
//! record whose entry was dropped is dated by the next entry kept, which is
//! later: thinning only ever makes a record look *younger* (a cooldown can
//! last longer, never shorter), by at most `max(60 s, age/128)` — under
//! 34 minutes at 72 hours. The first head (the boundary of what was
//! watched) and the newest are always kept. With a head every 30 seconds
//! that is about 1,300 entries (15 KB stored) after two months, growing with
//! the logarithm of time after that. It is written at most every
//! [`PERSIST_EVERY`] (the first head at once).
//!
//! # Stored form
//!
//! JSON under the trust-store file [`heads_file`] (`<name>/heads`, beside
//! `<name>/latest`): `{"v":1,"heads":[[size,seen],[dsize,dseen],...]}`,
//! the first pair absolute (tree size, Unix seconds), the others deltas from
//! the previous one, so most numbers are short. `modgate trust reset` leaves
//! it alone: it clears trust in a head, not the record of when sizes were seen.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::client::{ClientError, ClientOps};

/// Entries closer in time than this (seconds) are merged however young.
pub const MIN_GAP_SECS: u64 = 60;

/// Entries are merged while the gap between their neighbours is at most
/// `1/THIN_RATIO` of the neighbours' age: a record's date errs (later, never
/// earlier) by at most that fraction of its age.
pub const THIN_RATIO: u64 = 128;

/// The trust-store file holding the head history of database `name`.
pub fn heads_file(name: &str) -> String {
    format!("{name}/heads")
}

/// A trusted tree head size and when modgate first saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The tree size (number of records).
    pub size: i64,
    /// Unix seconds when modgate first trusted a tree of this size.
    pub seen: u64,
}

/// What the history says about a record's age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordDate {
    /// Nothing was ever watched (a mirror that never reached the database).
    Unwatched,
    /// The record was already in the first head modgate saw: older than the
    /// watch, its entry date unknown.
    BeforeWatch { first: Head },
    /// The record entered the log at or before `head.seen`: the first-seen
    /// time of the smallest watched head containing it.
    FirstSeen { head: Head },
    /// The record is beyond every head watched (not verified against a head
    /// that the history recorded): as far as modgate knows, it is new now.
    Beyond { newest: Head },
}

/// The trusted-head history (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadHistory {
    /// Sorted by size (strictly increasing); `seen` is non-decreasing.
    /// `heads[0]` is the first head modgate ever saw.
    heads: Vec<Head>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    v: u32,
    heads: Vec<(i64, u64)>,
}

/// Why a stored history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadsError {
    #[error("head history does not parse: {0}")]
    Json(#[from] serde_json::Error),
    #[error("head history has unknown version {0}")]
    Version(u32),
    #[error("head history is not ordered at entry {0}")]
    Order(usize),
}

impl HeadHistory {
    /// An empty history (nothing watched yet).
    pub fn new() -> HeadHistory {
        HeadHistory::default()
    }

    /// The entries, oldest first.
    pub fn heads(&self) -> &[Head] {
        &self.heads
    }

    /// The first head modgate ever saw: records below its size predate the watch.
    pub fn first(&self) -> Option<Head> {
        self.heads.first().copied()
    }

    /// The newest head recorded.
    pub fn newest(&self) -> Option<Head> {
        self.heads.last().copied()
    }

    /// Records that a tree of `size` was trusted at `now` (Unix seconds).
    /// Sizes not above the newest are already dated: ignored. A clock that
    /// went backwards is clamped to the newest entry's time, so a later head
    /// never looks older than an earlier one. Returns true if anything changed.
    pub fn record(&mut self, size: i64, now: u64) -> bool {
        let seen = match self.heads.last() {
            Some(last) if size <= last.size => return false,
            Some(last) => now.max(last.seen),
            None => now,
        };
        self.heads.push(Head { size, seen });
        self.thin(seen);
        true
    }

    /// Drops entries whose neighbours are close enough in time that dating
    /// by the later neighbour errs little (see the module doc). Never the
    /// first entry, nor the newest.
    fn thin(&mut self, now: u64) {
        let mut i = 1;
        while i + 1 < self.heads.len() {
            let (before, after) = (self.heads[i - 1], self.heads[i + 1]);
            let age = now.saturating_sub(before.seen);
            let tolerance = MIN_GAP_SECS.max(age / THIN_RATIO);
            if after.seen.saturating_sub(before.seen) <= tolerance {
                self.heads.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Dates record `id` (see [`RecordDate`]).
    pub fn date(&self, id: i64) -> RecordDate {
        let (Some(first), Some(newest)) = (self.first(), self.newest()) else {
            return RecordDate::Unwatched;
        };
        if id < first.size {
            return RecordDate::BeforeWatch { first };
        }
        // The smallest head whose size is above `id`: the first that holds it.
        let i = self.heads.partition_point(|h| h.size <= id);
        match self.heads.get(i) {
            Some(&head) => RecordDate::FirstSeen { head },
            None => RecordDate::Beyond { newest },
        }
    }

    /// Merges another history of the same log (e.g. one another process
    /// persisted): the union of both, each size dated by the earlier sighting,
    /// then made monotonic (a size is never dated before a smaller one).
    pub fn merge(&mut self, other: &HeadHistory) {
        let mut all: Vec<Head> = self.heads.iter().chain(&other.heads).copied().collect();
        all.sort_by_key(|h| (h.size, h.seen));
        all.dedup_by_key(|h| h.size);
        let mut latest = 0;
        for h in &mut all {
            latest = latest.max(h.seen);
            h.seen = latest;
        }
        let now = all.last().map_or(0, |h| h.seen);
        self.heads = all;
        self.thin(now);
    }

    /// The stored form (see the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let mut prev = Head { size: 0, seen: 0 };
        let heads = self
            .heads
            .iter()
            .map(|h| {
                let d = (h.size - prev.size, h.seen - prev.seen);
                prev = *h;
                d
            })
            .collect();
        serde_json::to_vec(&Stored { v: 1, heads }).unwrap_or_default()
    }

    /// Reads the stored form back, checking its order.
    pub fn decode(raw: &[u8]) -> Result<HeadHistory, HeadsError> {
        let stored: Stored = serde_json::from_slice(raw)?;
        if stored.v != 1 {
            return Err(HeadsError::Version(stored.v));
        }
        let mut heads = Vec::with_capacity(stored.heads.len());
        let mut prev = Head { size: 0, seen: 0 };
        for (i, (dsize, dseen)) in stored.heads.into_iter().enumerate() {
            let (Some(size), Some(seen)) =
                (prev.size.checked_add(dsize), prev.seen.checked_add(dseen))
            else {
                return Err(HeadsError::Order(i));
            };
            if size <= 0 || (i > 0 && dsize <= 0) {
                return Err(HeadsError::Order(i));
            }
            prev = Head { size, seen };
            heads.push(prev);
        }
        Ok(HeadHistory { heads })
    }
}

// ---- the live history of a running client ----

/// How often, at most, the history is written to the trust store (besides
/// the first head, written at once). What is lost in a crash only makes the
/// records of the last few minutes look younger, so writing on every head
/// advance would buy nothing but write volume.
pub const PERSIST_EVERY: Duration = Duration::from_secs(300);

/// The history a [`Client`](super::client::Client) keeps as it advances its
/// trusted head, persisted through its [`ClientOps`] trust store.
#[derive(Default)]
pub struct HeadLog {
    // A std Mutex: held only to swap small values, never across an await.
    state: Mutex<LogState>,
    // Serializes writes, so an older snapshot never overwrites a newer one.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct LogState {
    history: Arc<HeadHistory>,
    dirty: bool,
    // The first head was recorded and not yet written: written at once.
    urgent: bool,
    last_write: Option<Instant>,
}

impl HeadLog {
    fn state(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The history now (cheap: a shared snapshot).
    pub fn snapshot(&self) -> Arc<HeadHistory> {
        self.state().history.clone()
    }

    /// Merges the stored history into memory. A damaged one is logged and
    /// replaced at the next write: the history then starts again, so what
    /// it held counts as older than the watch (served, like a fresh mirror).
    pub async fn load(&self, ops: &dyn ClientOps, file: &str) -> Result<(), ClientError> {
        let Some(raw) = ops.read_config(file).await? else {
            return Ok(());
        };
        match HeadHistory::decode(&raw) {
            Ok(stored) => Arc::make_mut(&mut self.state().history).merge(&stored),
            Err(e) => tracing::error!(target: "modgate::security", file, error = %e,
                "stored checksum-database head history is damaged; starting a new one \
                 (versions already in the log count as older than the watch)"),
        }
        Ok(())
    }

    /// Notes that a tree of `size` was first trusted at `now`.
    pub fn seen(&self, size: i64, now: u64) {
        let mut st = self.state();
        let first = st.history.first().is_none();
        if Arc::make_mut(&mut st.history).record(size, now) {
            st.dirty = true;
            st.urgent |= first;
        }
    }

    /// Writes the history if it changed and the last write is
    /// [`PERSIST_EVERY`] old (or `force`, or the first head is unwritten).
    /// Failures are logged: the history in memory stays right.
    pub async fn persist(&self, ops: &dyn ClientOps, file: &str, force: bool) {
        {
            let st = self.state();
            let due = st.last_write.is_none_or(|at| at.elapsed() >= PERSIST_EVERY);
            if !st.dirty || !(force || st.urgent || due) {
                return;
            }
        }
        let _writing = self.writing.lock().await;
        for _ in 0..3 {
            let stored = match ops.read_config(file).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(file, error = %e, "reading the head history to update it");
                    return;
                }
            };
            let encoded = {
                let mut st = self.state();
                if let Some(old) = stored.as_deref().and_then(|r| HeadHistory::decode(r).ok()) {
                    Arc::make_mut(&mut st.history).merge(&old);
                }
                st.dirty = false;
                st.urgent = false;
                st.last_write = Some(Instant::now());
                st.history.encode()
            };
            match ops.write_config(file, stored.as_deref(), &encoded).await {
                Ok(()) => return,
                Err(ClientError::CasConflict) => continue,
                Err(e) => {
                    self.state().dirty = true;
                    tracing::warn!(file, error = %e, "writing the head history");
                    return;
                }
            }
        }
        self.state().dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000;

    #[test]
    fn dates_records_by_the_first_head_holding_them() {
        let mut h = HeadHistory::new();
        assert_eq!(h.date(5), RecordDate::Unwatched);
        assert!(h.record(100, T0));
        assert!(h.record(150, T0 + 3600));
        assert!(h.record(200, T0 + 7200));
        assert!(!h.record(200, T0 + 9000), "same size again: already dated");
        assert!(!h.record(120, T0 + 9000), "a smaller size: already dated");
        let first = Head {
            size: 100,
            seen: T0,
        };
        assert_eq!(h.first(), Some(first));
        assert_eq!(h.date(0), RecordDate::BeforeWatch { first });
        assert_eq!(h.date(99), RecordDate::BeforeWatch { first });
        let at = |size, seen| RecordDate::FirstSeen {
            head: Head { size, seen },
        };
        assert_eq!(h.date(100), at(150, T0 + 3600));
        assert_eq!(h.date(149), at(150, T0 + 3600));
        assert_eq!(h.date(150), at(200, T0 + 7200));
        assert_eq!(h.date(199), at(200, T0 + 7200));
        assert!(matches!(h.date(200), RecordDate::Beyond { .. }));
    }

    #[test]
    fn a_clock_going_back_never_dates_a_later_head_earlier() {
        let mut h = HeadHistory::new();
        h.record(10, T0);
        h.record(20, T0 - 500);
        assert_eq!(h.heads()[1].seen, T0);
    }

    #[test]
    fn thinning_keeps_it_small_and_only_ever_dates_later() {
        // A head every 30 s for 60 days, 50 records each.
        let mut h = HeadHistory::new();
        let mut truth = Vec::new();
        let step = 30;
        let days = 60;
        for i in 0..(days * 86400 / step) {
            let (size, now) = (1000 + 50 * (i as i64 + 1), T0 + i * step);
            h.record(size, now);
            truth.push((size, now));
        }
        let now = T0 + days * 86400;
        assert!(h.heads().len() < 2000, "{} entries", h.heads().len());
        assert_eq!(h.first().map(|f| f.size), Some(1050));
        assert!(h.heads().windows(2).all(|w| w[0].size < w[1].size));
        // Every record is dated no earlier than the truth, and late by at
        // most max(60 s, age/128) (plus one watch interval of slack).
        for &(size, true_seen) in truth.iter().skip(1) {
            let id = size - 1; // the last record of this head
            let RecordDate::FirstSeen { head } = h.date(id) else {
                panic!("record {id} not dated");
            };
            assert!(head.seen >= true_seen, "record {id} dated early");
            let age = now - true_seen;
            let allowed = MIN_GAP_SECS.max(age / THIN_RATIO) + step;
            assert!(
                head.seen - true_seen <= allowed,
                "record {id} dated {}s late, allowed {allowed}",
                head.seen - true_seen
            );
        }
        let stored = h.encode();
        assert!(stored.len() < 40 << 10, "{} bytes stored", stored.len());
        assert_eq!(HeadHistory::decode(&stored).unwrap(), h);
    }

    proptest::proptest! {
        /// Whatever the rhythm of heads, a record is never dated before the
        /// head that first held it, and late by at most max(60 s, ~age/128).
        #[test]
        fn thinning_only_dates_later_within_bounds(
            steps in proptest::collection::vec((1i64..1000, 0u64..200_000), 1..1500)
        ) {
            let mut h = HeadHistory::new();
            let mut truth = Vec::new();
            let (mut size, mut now) = (0i64, T0);
            for (dsize, dt) in steps {
                size += dsize;
                now += dt;
                h.record(size, now);
                truth.push((size, now));
            }
            proptest::prop_assert!(h.heads().windows(2).all(|w| w[0].size < w[1].size && w[0].seen <= w[1].seen));
            proptest::prop_assert_eq!(h.first().map(|f| f.size), truth.first().map(|t| t.0));
            proptest::prop_assert_eq!(h.newest().map(|f| f.size), truth.last().map(|t| t.0));
            for w in truth.windows(2) {
                let ((prev, _), (size, seen)) = (w[0], w[1]);
                for id in [prev, size - 1] {
                    let RecordDate::FirstSeen { head } = h.date(id) else {
                        return Err(proptest::test_runner::TestCaseError::fail(format!("record {id} not dated")));
                    };
                    proptest::prop_assert!(head.seen >= seen, "record {} dated early", id);
                    let age = now - seen;
                    let allowed = MIN_GAP_SECS.max(age / (THIN_RATIO - 1) + 1);
                    proptest::prop_assert!(head.seen - seen <= allowed,
                        "record {} dated {}s late, allowed {}", id, head.seen - seen, allowed);
                }
            }
            proptest::prop_assert_eq!(HeadHistory::decode(&h.encode()).unwrap(), h);
        }
    }

    #[test]
    fn stored_form_round_trips_and_rejects_damage() {
        let mut h = HeadHistory::new();
        h.record(740257, T0);
        h.record(740300, T0 + 120);
        let raw = h.encode();
        assert_eq!(
            std::str::from_utf8(&raw).unwrap(),
            format!(r#"{{"v":1,"heads":[[740257,{T0}],[43,120]]}}"#)
        );
        assert_eq!(HeadHistory::decode(&raw).unwrap(), h);
        assert!(HeadHistory::decode(b"{").is_err());
        assert!(HeadHistory::decode(br#"{"v":2,"heads":[]}"#).is_err());
        assert!(HeadHistory::decode(br#"{"v":1,"heads":[[10,5],[0,1]]}"#).is_err());
        assert!(HeadHistory::decode(br#"{"v":1,"heads":[[10,5],[-3,1]]}"#).is_err());
        assert!(HeadHistory::decode(br#"{"v":1,"heads":[[10,5],[1,-1]]}"#).is_err());
        assert!(HeadHistory::decode(br#"{"v":1,"heads":[[0,5]]}"#).is_err());
        assert_eq!(
            HeadHistory::decode(br#"{"v":1,"heads":[]}"#).unwrap(),
            HeadHistory::new()
        );
    }

    #[test]
    fn merge_takes_the_union_dated_by_the_earlier_sighting() {
        let mut a = HeadHistory::new();
        a.record(100, T0);
        a.record(300, T0 + 1000);
        let mut b = HeadHistory::new();
        b.record(200, T0 + 500);
        b.record(300, T0 + 900);
        a.merge(&b);
        let sizes: Vec<(i64, u64)> = a.heads().iter().map(|h| (h.size, h.seen)).collect();
        assert_eq!(sizes, [(100, T0), (200, T0 + 500), (300, T0 + 900)]);
    }
}
