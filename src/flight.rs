//! Request coalescing: concurrent misses for one key share a single in-flight task,
//! which lives exactly as long as someone waits for it.
//!
//! The work runs in its own spawned task, not in the first caller's future:
//! if that client disconnects, the fetch and verification still finish for
//! every other waiter.
//!
//! # Lifetime of a flight
//! - The map holds only flights that are **running**: a task removes its own
//!   entry when it ends (finished, failed, panicked or cancelled), before its
//!   outcome is handed to the waiters. So the next request for that key after
//!   the end starts afresh (and first finds what the old flight stored), never
//!   an old error, and [`Flights::len`] (`inflight_fetches`) counts running
//!   work exactly.
//! - **Abandonment.** When the last waiter goes away (its client hung up),
//!   the flight is cancelled: its task is aborted, which drops its future and
//!   with it any spool file and upstream connection — **unless it is far
//!   along**.
//! - **The "far along" rule.** The work marks itself far along through its
//!   [`Progress`] once every byte it needs from the network is in hand (for a
//!   zip: the download finished; verification and commit follow, which use no
//!   network and are bounded by the artifact's size). Such a flight is not
//!   cancelled: it finishes and stores the verified artifact, so the download
//!   is not wasted and the next request is a hit. It stays in the map (counted)
//!   until it ends, and a new request for its key joins it.
//!   Checksum-database lookups are far along from their start: they may be
//!   moving the trusted tree head or saving fork evidence.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::error::Error;

type Outcome<T> = Option<Result<T, Error>>;

/// A running flight, as the map holds it.
struct Slot<T> {
    /// Tells this flight apart from a later one under the same key.
    id: u64,
    waiters: usize,
    outcome: watch::Receiver<Outcome<T>>,
    abort: tokio::task::AbortHandle,
    progress: Progress,
}

/// The work's handle to declare itself far along (see the module doc).
#[derive(Clone, Default)]
pub struct Progress(Arc<AtomicBool>);

impl Progress {
    /// From now on the flight completes even if every waiter leaves.
    pub fn far_along(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_far_along(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

type Map<T> = Arc<Mutex<HashMap<String, Slot<T>>>>;

/// A map of in-flight tasks keyed by what they produce.
pub struct Flights<T: Clone + Send + Sync + 'static> {
    // A std Mutex, not a tokio one: it is held only to look up, insert or
    // remove a slot, never across an `.await`.
    inflight: Map<T>,
    next_id: AtomicU64,
}

impl<T: Clone + Send + Sync + 'static> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            inflight: Arc::default(),
            next_id: AtomicU64::new(0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One waiter's place in a flight; leaving (drop) may cancel the flight.
pub struct Waiter<T: Clone + Send + Sync + 'static> {
    map: Map<T>,
    key: String,
    id: u64,
    outcome: watch::Receiver<Outcome<T>>,
    done: bool,
}

impl<T: Clone + Send + Sync + 'static> Waiter<T> {
    /// Waits for the flight's outcome.
    pub async fn wait(mut self) -> Result<T, Error> {
        let out = match self.outcome.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_else(|| Err(task_lost())),
            // The task ended without an outcome: it panicked.
            Err(_) => Err(task_lost()),
        };
        self.done = true;
        out
    }
}

fn task_lost() -> Error {
    Error::Internal("the fetch task ended without an outcome".into())
}

impl<T: Clone + Send + Sync + 'static> Drop for Waiter<T> {
    fn drop(&mut self) {
        let mut map = lock(&self.map);
        let Some(slot) = map.get_mut(&self.key) else {
            return;
        };
        if slot.id != self.id {
            return;
        }
        slot.waiters -= 1;
        if slot.waiters > 0 || self.done || slot.progress.is_far_along() {
            return;
        }
        // The last waiter gave up before the work got far: cancel it. The
        // slot goes now, so a new request starts a fresh attempt at once.
        if let Some(slot) = map.remove(&self.key) {
            drop(map);
            slot.abort.abort();
        }
    }
}

/// Removes a task's own slot when the task ends in any way (also on abort and panic).
struct Unlist<T: Clone + Send + Sync + 'static> {
    map: Map<T>,
    key: String,
    id: u64,
}

impl<T: Clone + Send + Sync + 'static> Drop for Unlist<T> {
    fn drop(&mut self) {
        let mut map = lock(&self.map);
        if map.get(&self.key).is_some_and(|s| s.id == self.id) {
            map.remove(&self.key);
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// Joins the running flight for `key`, if there is one.
    pub fn join(&self, key: &str) -> Option<Waiter<T>> {
        let mut map = lock(&self.inflight);
        let slot = map.get_mut(key)?;
        slot.waiters += 1;
        Some(Waiter {
            map: self.inflight.clone(),
            key: key.to_string(),
            id: slot.id,
            outcome: slot.outcome.clone(),
            done: false,
        })
    }

    /// Runs `work` for `key` unless a task for `key` is already running, in
    /// which case this waits for that task's outcome instead.
    pub async fn run<F, Fut>(&self, key: &str, work: F) -> Result<T, Error>
    where
        F: FnOnce(Progress) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        self.start(key, work).wait().await
    }

    /// Like [`Flights::run`], but returns the place in the flight without waiting.
    pub fn start<F, Fut>(&self, key: &str, work: F) -> Waiter<T>
    where
        F: FnOnce(Progress) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let mut map = lock(&self.inflight);
        if let Some(slot) = map.get_mut(key) {
            slot.waiters += 1;
            return Waiter {
                map: self.inflight.clone(),
                key: key.to_string(),
                id: slot.id,
                outcome: slot.outcome.clone(),
                done: false,
            };
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        let progress = Progress::default();
        let fut = work(progress.clone());
        let unlist = Unlist {
            map: self.inflight.clone(),
            key: key.to_string(),
            id,
        };
        let task = tokio::spawn(async move {
            let out = fut.await;
            // Out of the map first, then the outcome: whoever comes after
            // this point starts afresh rather than reading an old outcome.
            drop(unlist);
            let _ = tx.send(Some(out));
        });
        map.insert(
            key.to_string(),
            Slot {
                id,
                waiters: 1,
                outcome: rx.clone(),
                abort: task.abort_handle(),
                progress,
            },
        );
        Waiter {
            map: self.inflight.clone(),
            key: key.to_string(),
            id,
            outcome: rx,
            done: false,
        }
    }

    /// Number of flights running now (for metrics).
    pub fn len(&self) -> usize {
        lock(&self.inflight).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Shared ownership for flights held in long-lived state.
pub type SharedFlights<T> = Arc<Flights<T>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn one_task_for_many_waiters() {
        let flights: Arc<Flights<u32>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut joins = Vec::new();
        for _ in 0..50 {
            let (flights, runs) = (flights.clone(), runs.clone());
            joins.push(tokio::spawn(async move {
                flights
                    .run("k", |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(7)
                    })
                    .await
            }));
        }
        for j in joins {
            assert_eq!(j.await.unwrap().unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flights.is_empty());
    }

    /// Dropped when the work's future is dropped (cancelled) or finishes.
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn abandoned_flight_is_cancelled_and_the_key_starts_afresh() {
        let flights: Flights<u32> = Flights::default();
        let dropped = Arc::new(AtomicBool::new(false));
        let d = Dropped(dropped.clone());
        let w = flights.start("k", |_| async move {
            let _d = d;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Err(Error::UpstreamUnavailable("old failure".into()))
        });
        assert_eq!(flights.len(), 1);
        // A second waiter joins, then both give up.
        let w2 = flights.join("k").expect("running flight");
        drop(w);
        assert_eq!(flights.len(), 1, "one waiter is still there");
        drop(w2);
        assert_eq!(flights.len(), 0, "cancelled at once");
        settle().await;
        assert!(
            dropped.load(Ordering::SeqCst),
            "the work's future was dropped"
        );
        // The same key again: a fresh attempt, not the old one.
        let v = flights.run("k", |_| async { Ok(2) }).await.unwrap();
        assert_eq!(v, 2);
        assert!(flights.is_empty());
    }

    #[tokio::test]
    async fn finished_failure_is_not_served_to_a_later_request() {
        let flights: Flights<u32> = Flights::default();
        let e = flights
            .run("k", |_| async {
                Err(Error::UpstreamUnavailable("upstream down".into()))
            })
            .await;
        assert!(e.is_err());
        assert!(flights.is_empty(), "a finished flight leaves the map");
        let v = flights.run("k", |_| async { Ok(5) }).await.unwrap();
        assert_eq!(v, 5);
    }

    #[tokio::test]
    async fn far_along_flight_completes_without_waiters() {
        let flights: Flights<u32> = Flights::default();
        let finished = Arc::new(AtomicBool::new(false));
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let f = finished.clone();
        let w = flights.start("k", |progress| async move {
            // The download is done: from here it completes.
            progress.far_along();
            let _ = go_rx.await;
            f.store(true, Ordering::SeqCst);
            Ok(9)
        });
        settle().await;
        drop(w);
        assert_eq!(flights.len(), 1, "still running and counted");
        // A new request joins the running flight rather than starting another.
        let again = flights.join("k").expect("joins the far-along flight");
        go_tx.send(()).unwrap();
        assert_eq!(again.wait().await.unwrap(), 9);
        assert!(finished.load(Ordering::SeqCst));
        assert!(flights.is_empty());
    }

    #[tokio::test]
    async fn a_panicking_task_leaves_no_slot() {
        let flights: Flights<u32> = Flights::default();
        let r = flights
            .run("k", |_| async { panic!("bug in the work") })
            .await;
        assert!(matches!(r, Err(Error::Internal(_))));
        assert!(flights.is_empty());
    }
}
