//! Admission under load: how many misses run at once (in all and per client), how long one may queue, and how many bytes the spool may hold.
//!
//! A miss costs an upstream connection, a spool file of up to `max_zip_bytes`
//! and a core to verify it; a hit costs almost nothing. So only misses are
//! admitted here, at the one place a miss starts ([`crate::pipeline`]); a hit
//! never waits behind them, and a request that joins a miss already running
//! needs no admission of its own. Over a limit the client is answered 503
//! with `Retry-After` ([`crate::error::Error::Overloaded`]), and the limit's
//! `modgate_limit_hits_total{limit}` counter moves:
//!
//! | `limit` | bites when |
//! |---|---|
//! | `miss_queued` | a miss waits for one of the `max_misses` slots |
//! | `miss_per_client` | a miss waits because its client address already has `max_misses_per_client` running |
//! | `miss_queue_timeout` | it waited `miss_queue_secs` in all without a slot: 503 |
//! | `spool_bytes` | a download would take the spool over `max_spool_bytes`: 503 |
//! | `connections` | `max_connections` are open; accepting waits (in [`crate::server`]) |

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits as LimitsConfig;
use crate::error::Error;
use crate::metrics::Metrics;

/// The admission state of one server.
pub struct Admission {
    global: Arc<Semaphore>,
    /// One semaphore per client address with a miss running or queued.
    per_client: ClientMap,
    max_per_client: usize,
    max_wait: Duration,
    retry_after: u64,
    spool: Arc<SpoolBudget>,
    metrics: Arc<Metrics>,
}

/// A running miss's claim on the limits; dropping it gives them back —
/// at once after [`MissPermit::succeeded`], else after [`CANCEL_LINGER`].
pub struct MissPermit {
    held: Option<Held>,
    succeeded: bool,
}

/// The global permit, then the client's (with its map entry: dropped after
/// its permit, by field order, so the entry can go).
type Held = (
    OwnedSemaphorePermit,
    Option<(OwnedSemaphorePermit, ClientSlot)>,
);

/// How long a miss that was cancelled or failed keeps its slot. Its
/// upstream connection is closed by the HTTP client's connection task a
/// moment after the fetch is dropped; giving the slot to the next miss at
/// once let the upstream see one fetch more than `max_misses` while the old
/// one was still being torn down (bench/storm.py, release build).
pub const CANCEL_LINGER: Duration = Duration::from_millis(200);

impl MissPermit {
    /// The miss finished well (its upstream answers were read to the end):
    /// the slot is free as soon as this is dropped.
    pub fn succeeded(mut self) {
        self.succeeded = true;
    }
}

impl Drop for MissPermit {
    fn drop(&mut self) {
        if self.succeeded {
            return;
        }
        if let (Some(held), Ok(rt)) = (self.held.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                tokio::time::sleep(CANCEL_LINGER).await;
                drop(held);
            });
        }
    }
}

type ClientMap = Arc<Mutex<HashMap<IpAddr, Arc<Semaphore>>>>;

/// A client's hold on its map entry; the last one to go removes it, so the
/// map holds only addresses with a miss running or queued.
struct ClientSlot {
    map: ClientMap,
    ip: IpAddr,
    sem: Option<Arc<Semaphore>>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        drop(self.sem.take());
        // Clones are made only under this lock: one left means only the map's.
        if map.get(&self.ip).is_some_and(|s| Arc::strong_count(s) == 1) {
            map.remove(&self.ip);
        }
    }
}

impl Admission {
    pub fn new(cfg: &LimitsConfig, metrics: Arc<Metrics>) -> Admission {
        Admission {
            // 0 would admit nothing: treat it as "one at a time".
            global: Arc::new(Semaphore::new(cfg.max_misses.max(1))),
            per_client: Arc::default(),
            max_per_client: cfg.max_misses_per_client,
            max_wait: Duration::from_secs(cfg.miss_queue_secs),
            retry_after: cfg.retry_after_secs,
            spool: Arc::new(SpoolBudget {
                used: AtomicU64::new(0),
                max: cfg.max_spool_bytes,
                retry_after: cfg.retry_after_secs,
                metrics: metrics.clone(),
            }),
            metrics,
        }
    }

    /// Admits one miss for `client` (unknown: only the global limit applies),
    /// waiting up to `miss_queue_secs` in all: first for a slot of its
    /// client's share, then for a global one.
    pub async fn admit(&self, client: Option<IpAddr>, what: &str) -> Result<MissPermit, Error> {
        let deadline = tokio::time::Instant::now() + self.max_wait;
        let client = match client {
            Some(ip) if self.max_per_client > 0 => {
                let sem = {
                    let mut map = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
                    map.entry(ip)
                        .or_insert_with(|| Arc::new(Semaphore::new(self.max_per_client)))
                        .clone()
                };
                let slot = ClientSlot {
                    map: self.per_client.clone(),
                    ip,
                    sem: Some(sem.clone()),
                };
                let permit = self.acquire(sem, deadline, "miss_per_client", what).await?;
                Some((permit, slot))
            }
            _ => None,
        };
        let global = self
            .acquire(self.global.clone(), deadline, "miss_queued", what)
            .await?;
        Ok(MissPermit {
            held: Some((global, client)),
            succeeded: false,
        })
    }

    /// A permit of `sem`, waiting until `deadline` (counted as `limit` if it must wait).
    async fn acquire(
        &self,
        sem: Arc<Semaphore>,
        deadline: tokio::time::Instant,
        limit: &str,
        what: &str,
    ) -> Result<OwnedSemaphorePermit, Error> {
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(p);
        }
        self.metrics.limit_hit(limit);
        match tokio::time::timeout_at(deadline, sem.acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            // The semaphores are never closed; both arms mean "no slot in time".
            _ => {
                self.metrics.limit_hit("miss_queue_timeout");
                Err(self.overloaded(format!(
                    "{what}: too many downloads running; waited {}s for a slot (limits.max_misses, limits.max_misses_per_client)",
                    self.max_wait.as_secs()
                )))
            }
        }
    }

    /// A new, empty charge against the spool's byte budget.
    pub fn spool_charge(&self) -> SpoolCharge {
        SpoolCharge {
            budget: self.spool.clone(),
            held: 0,
        }
    }

    /// Misses running now, out of the global limit (for tests and metrics).
    pub fn misses_available(&self) -> usize {
        self.global.available_permits()
    }

    fn overloaded(&self, reason: String) -> Error {
        Error::Overloaded {
            reason,
            retry_after: self.retry_after,
        }
    }
}

/// An expensive check (the readiness write probe: two fsyncs) run at most
/// once per interval: its result is reused until the interval has passed,
/// and callers arriving while it runs wait for that run instead of starting
/// another. So probes, however frequent, cost at most one run per interval.
pub struct Throttled {
    interval: Duration,
    // A tokio Mutex, held across the check on purpose: that is what makes
    // concurrent callers share one run.
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Result<(), String>)>>,
}

impl Throttled {
    pub fn new(interval: Duration) -> Throttled {
        Throttled {
            interval,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The last result if younger than the interval, else `check`'s.
    pub async fn get<F, Fut>(&self, check: F) -> Result<(), String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, r)) = &*last
            && at.elapsed() < self.interval
        {
            return r.clone();
        }
        let r = check().await;
        *last = Some((tokio::time::Instant::now(), r.clone()));
        r
    }
}

/// The bytes all spool files may hold together.
pub struct SpoolBudget {
    used: AtomicU64,
    max: u64,
    retry_after: u64,
    metrics: Arc<Metrics>,
}

/// The bytes one spool file holds against the budget; given back on drop
/// (when the spool file is committed or removed).
pub struct SpoolCharge {
    budget: Arc<SpoolBudget>,
    held: u64,
}

impl SpoolCharge {
    /// Makes the charge at least `total` bytes; fails (and counts a bite)
    /// if that would take the spool over its budget.
    pub fn reserve(&mut self, total: u64) -> Result<(), SpoolFull> {
        if total <= self.held {
            return Ok(());
        }
        let more = total - self.held;
        let b = &self.budget;
        let mut used = b.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(more);
            if next > b.max {
                b.metrics.limit_hit("spool_bytes");
                return Err(SpoolFull {
                    limit: b.max,
                    retry_after: b.retry_after,
                });
            }
            match b
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        self.held = total;
        Ok(())
    }

    /// Bytes this charge holds.
    pub fn held(&self) -> u64 {
        self.held
    }
}

impl Drop for SpoolCharge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

/// The spool's byte budget is spent (by downloads running now).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the spool is full: downloads in progress hold {limit} bytes (limits.max_spool_bytes)")]
pub struct SpoolFull {
    pub limit: u64,
    pub retry_after: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(global: usize, per_client: usize) -> LimitsConfig {
        LimitsConfig {
            max_misses: global,
            max_misses_per_client: per_client,
            miss_queue_secs: 0,
            max_spool_bytes: 100,
            ..LimitsConfig::default()
        }
    }

    fn bites(m: &Metrics, limit: &str) -> u64 {
        m.limit_hits.with_label_values(&[limit]).get()
    }

    #[tokio::test]
    async fn global_limit_queues_then_503s() {
        let m = Arc::new(Metrics::new());
        let a = Admission::new(&cfg(2, 0), m.clone());
        let p1 = a.admit(None, "x").await.unwrap();
        let _p2 = a.admit(None, "x").await.unwrap();
        let e = a.admit(None, "x").await.err().expect("no slot left");
        assert_eq!(e.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(bites(&m, "miss_queued"), 1);
        assert_eq!(bites(&m, "miss_queue_timeout"), 1);
        p1.succeeded();
        a.admit(None, "x")
            .await
            .expect("a slot came back")
            .succeeded();
    }

    #[tokio::test]
    async fn per_client_limit_leaves_other_clients_alone() {
        let m = Arc::new(Metrics::new());
        let a = Admission::new(&cfg(10, 2), m.clone());
        let (ip1, ip2): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let p1 = a.admit(Some(ip1), "x").await.unwrap();
        let p2 = a.admit(Some(ip1), "x").await.unwrap();
        assert!(a.admit(Some(ip1), "x").await.is_err());
        assert_eq!(bites(&m, "miss_per_client"), 1);
        assert_eq!(bites(&m, "miss_queued"), 0, "not the global limit");
        a.admit(Some(ip2), "x")
            .await
            .expect("another client is admitted")
            .succeeded();
        p1.succeeded();
        a.admit(Some(ip1), "x")
            .await
            .expect("its slot came back")
            .succeeded();
        p2.succeeded();
        assert_eq!(a.misses_available(), 10, "every permit given back");
        assert!(a.per_client.lock().unwrap().is_empty(), "no address kept");
    }

    #[tokio::test]
    async fn throttled_check_runs_once_per_interval() {
        let t = Arc::new(Throttled::new(Duration::from_secs(3600)));
        let runs = Arc::new(AtomicU64::new(0));
        let probe = |runs: Arc<AtomicU64>| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        };
        let mut joins = Vec::new();
        for _ in 0..20 {
            let (t, runs) = (t.clone(), runs.clone());
            joins.push(tokio::spawn(async move { t.get(|| probe(runs)).await }));
        }
        for j in joins {
            j.await.unwrap().unwrap();
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "concurrent probes share one run"
        );
        t.get(|| probe(runs.clone())).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "reused within the interval");
        // Past the interval it runs again (a short one here).
        let short = Throttled::new(Duration::from_millis(10));
        short.get(|| probe(runs.clone())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        short.get(|| probe(runs.clone())).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "run again after it");
    }

    #[tokio::test]
    async fn a_cancelled_miss_keeps_its_slot_a_moment() {
        let m = Arc::new(Metrics::new());
        let a = Admission::new(&cfg(1, 0), m);
        drop(a.admit(None, "x").await.unwrap()); // cancelled: not succeeded
        assert!(a.admit(None, "x").await.is_err(), "still held");
        tokio::time::sleep(CANCEL_LINGER * 2).await;
        a.admit(None, "x").await.expect("given back").succeeded();
        assert_eq!(a.misses_available(), 1);
    }

    #[tokio::test]
    async fn spool_budget_is_shared_and_given_back() {
        let m = Arc::new(Metrics::new());
        let a = Admission::new(&cfg(10, 0), m.clone());
        let mut c1 = a.spool_charge();
        c1.reserve(60).unwrap();
        c1.reserve(50).unwrap(); // already held
        let mut c2 = a.spool_charge();
        assert!(c2.reserve(41).is_err());
        assert_eq!(bites(&m, "spool_bytes"), 1);
        c2.reserve(40).unwrap();
        drop(c1);
        c2.reserve(100).unwrap();
        assert_eq!(c2.held(), 100);
    }
}
