//! Request coalescing: concurrent misses for one key share a single in-flight task.
//!
//! The work runs in its own spawned task, not in the first caller's future:
//! if that client disconnects, the fetch and verification still finish and
//! every other waiter still gets the outcome.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use crate::error::Error;

type Flight<T> = Shared<BoxFuture<'static, Result<T, Error>>>;

/// A map of in-flight tasks keyed by what they produce.
pub struct Flights<T: Clone + Send + Sync + 'static> {
    // A std Mutex, not a tokio one: it is held only to look up or insert a
    // handle, never across an `.await`.
    inflight: Mutex<HashMap<String, Flight<T>>>,
}

impl<T: Clone + Send + Sync + 'static> Default for Flights<T> {
    fn default() -> Self {
        Flights {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// Runs `work` for `key` unless a task for `key` is already running, in
    /// which case this waits for that task's outcome instead.
    pub async fn run<F, Fut>(&self, key: &str, work: F) -> Result<T, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let flight = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(key) {
                Some(f) => f.clone(),
                None => {
                    let task = tokio::spawn(work());
                    let f = async move {
                        task.await
                            .unwrap_or_else(|e| Err(Error::Internal(format!("task failed: {e}"))))
                    }
                    .boxed()
                    .shared();
                    map.insert(key.to_string(), f.clone());
                    f
                }
            }
        };
        let out = flight.clone().await;
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(key).is_some_and(|f| f.ptr_eq(&flight)) {
            map.remove(key);
        }
        out
    }

    /// Number of distinct keys in flight (for metrics).
    pub fn len(&self) -> usize {
        self.inflight.lock().map(|m| m.len()).unwrap_or(0)
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

    #[tokio::test]
    async fn one_task_for_many_waiters() {
        let flights: Arc<Flights<u32>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut joins = Vec::new();
        for _ in 0..50 {
            let (flights, runs) = (flights.clone(), runs.clone());
            joins.push(tokio::spawn(async move {
                flights
                    .run("k", || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
}
