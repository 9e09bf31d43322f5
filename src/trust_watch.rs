//! The head watcher: a background task that fetches, verifies and trusts the checksum database's signed head at a fixed interval, so new records are dated within about one interval.
//!
//! Without it a record is dated when modgate first needs a head that holds
//! it — a lookup on a miss — which dates it late (a cooldown lasts longer,
//! never shorter), and dates it at that moment even when the version had
//! been in the log for days. With it, every record entering the log is
//! dated at most one interval (plus the database's own publishing delay)
//! after it appeared, whether or not anybody asks for it. Each round goes
//! through [`Client::watch_head`], the same verified path as a `go` client's
//! `/sumdb/<name>/latest`: a consistency proof against the trusted head,
//! fork detection and evidence included.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::sumdb::client::Client;

/// The running watcher; dropping it stops the task.
pub struct HeadWatcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HeadWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the watcher of `client`'s database every `watch.head_interval_secs`,
/// unless that is 0 or the server is offline (it contacts nothing then).
pub fn start(client: Arc<Client>, cfg: &Config) -> Option<HeadWatcher> {
    if cfg.offline || cfg.watch.head_interval_secs == 0 {
        return None;
    }
    let every = Duration::from_secs(cfg.watch.head_interval_secs);
    Some(HeadWatcher {
        task: tokio::spawn(watch(client, every)),
    })
}

async fn watch(client: Arc<Client>, every: Duration) {
    // The first round one interval after start, not at once: a start-up
    // verifies nothing yet, and the first lookup trusts a head anyway.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // After a slow round, wait a whole interval again rather than bursting.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Whether the last round failed: a lasting outage is logged when it
    // starts and when it ends, not every round.
    let mut failing = false;
    loop {
        ticks.tick().await;
        match client.watch_head().await {
            Ok(tree) => {
                tracing::debug!(sumdb = client.name(), tree_size = tree.n, "watched head");
                if failing {
                    tracing::info!(
                        sumdb = client.name(),
                        tree_size = tree.n,
                        "watching the checksum database head again"
                    );
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    if e.is_security() {
                        tracing::error!(target: "modgate::security", sumdb = client.name(),
                            error = %e, "watching the checksum database head");
                    } else {
                        tracing::warn!(sumdb = client.name(), error = %e,
                            "watching the checksum database head failed; new versions are \
                             dated when next looked up (later) until it works again");
                    }
                }
                failing = true;
            }
        }
    }
}
