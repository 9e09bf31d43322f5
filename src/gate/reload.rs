//! Keeping the gate current: the policy file re-read on SIGHUP and whenever its
//! contents change (polled every [`POLICY_POLL`]), advisory sources re-read every
//! `refresh`, and the cache re-judged after each change — all in one background
//! task, so serving never waits on any of it.
//!
//! A broken policy file at reload leaves the policy in force, is logged on
//! `modgate::security` and counted; a failed advisory read keeps that source's
//! last good set. Neither makes the server unready.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::advisory::{Advisories, Class, age_secs};
use super::recheck::{Fetchers, Rechecker};
use super::{Gate, Policy, SourceStatus};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::store::Store;

/// How often the policy file is read to see whether it changed.
pub const POLICY_POLL: Duration = Duration::from_secs(2);

/// Reads the advisories once (before serving), then spawns the task that keeps
/// the gate current. Without a policy file there is nothing to watch.
pub async fn start(p: &Arc<Pipeline>, fetchers: Option<Arc<Fetchers>>) -> JoinHandle<()> {
    let Some(path) = p.config().policy.clone() else {
        return tokio::spawn(async {});
    };
    // Every module the mirror serves joins the typosquat corpus before the
    // first request (and whatever the mode: a reload may turn it on).
    match p.store().entries("").await {
        Ok(all) => p
            .gate()
            .served_modules(all.iter().map(|e| e.module.as_str())),
        Err(e) => tracing::error!(target: "modgate::security", error = %e,
            "listing the store for the typosquat corpus; modules it serves may be flagged"),
    }
    let mut r = Reloader {
        path,
        last_text: None,
        gate: p.gate().clone(),
        advisories: Advisories::new(
            &p.gate().snapshot().policy.advisories,
            p.config().request_timeout(),
        ),
        recheck: Rechecker::default(),
        fetchers,
        store: p.store().clone(),
        metrics: p.metrics().clone(),
        next_refresh: Instant::now(),
    };
    // SIGHUP's handler is installed before `start` returns, so a SIGHUP sent
    // once the server answers never meets the default action (exit).
    #[cfg(unix)]
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| tracing::error!(error = %e, "SIGHUP handler not installed; the policy file is still polled"))
        .ok();
    #[cfg(not(unix))]
    let hup = None;
    r.reload_policy(false).await;
    r.refresh_advisories().await;
    tokio::spawn(r.run(hup))
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

struct Reloader {
    path: PathBuf,
    /// The file's text at the last read (good or not): unchanged text is not
    /// parsed (or complained about) again until SIGHUP.
    last_text: Option<String>,
    gate: Arc<Gate>,
    advisories: Advisories,
    recheck: Rechecker,
    /// Who fetched a version (the audit trail), named in the re-check's log.
    fetchers: Option<Arc<Fetchers>>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    next_refresh: Instant,
}

impl Reloader {
    #[cfg_attr(not(unix), allow(unused_mut, unused_variables))]
    async fn run(mut self, mut hup: Hangup) {
        let mut tick = tokio::time::interval(POLICY_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // What was cached before this start is judged once, in the background.
        let mut dirty = true;
        loop {
            if dirty {
                self.recheck().await;
            }
            #[cfg(unix)]
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hup_recv = std::future::pending::<()>();
            let forced = tokio::select! {
                () = hup_recv => {
                    tracing::info!(target: "modgate::security", file = %self.path.display(), "SIGHUP: reloading the policy");
                    true
                }
                _ = tick.tick() => false,
            };
            dirty = self.reload_policy(forced).await;
            if Instant::now() >= self.next_refresh {
                dirty |= self.refresh_advisories().await;
            }
        }
    }

    /// Re-reads the policy file; `true` if a new policy is in force.
    async fn reload_policy(&mut self, forced: bool) -> bool {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) => {
                if forced || self.last_text.is_some() {
                    self.metrics
                        .gate_policy_loads
                        .with_label_values(&["error"])
                        .inc();
                    tracing::error!(target: "modgate::security", file = %self.path.display(), error = %e,
                        "policy file unreadable; the policy in force stays");
                    self.gate
                        .set_policy_error(Some(format!("{}: {e}", self.path.display())));
                }
                self.last_text = None;
                return false;
            }
        };
        if !forced && self.last_text.as_deref() == Some(text.as_str()) {
            return false;
        }
        let first = self.last_text.is_none();
        self.last_text = Some(text.clone());
        let policy = match Policy::parse(&text) {
            Ok(p) => p,
            Err((line, problem)) => {
                self.metrics
                    .gate_policy_loads
                    .with_label_values(&["error"])
                    .inc();
                let e = super::PolicyError::Invalid {
                    path: self.path.clone(),
                    line,
                    problem,
                };
                tracing::error!(target: "modgate::security", error = %e,
                    "policy reload failed; the policy in force stays");
                self.gate.set_policy_error(Some(e.to_string()));
                return false;
            }
        };
        self.metrics
            .gate_policy_loads
            .with_label_values(&["ok"])
            .inc();
        self.gate.set_policy_error(None);
        if !self.advisories.same_sources(&policy.advisories) {
            self.advisories.configure(&policy.advisories);
            self.next_refresh = Instant::now();
        }
        let refresh = policy.advisories.refresh;
        if self.next_refresh > Instant::now() + refresh {
            self.next_refresh = Instant::now() + refresh;
        }
        let (deny, allow) = (policy.deny.len(), policy.allow.len());
        let generation = self.gate.set_policy(policy);
        if !first {
            tracing::info!(target: "modgate::security", file = %self.path.display(), deny, allow, generation,
                "policy reloaded");
        }
        true
    }

    /// Re-reads every advisory source; `true` if what is in force changed.
    async fn refresh_advisories(&mut self) -> bool {
        let refresh = self.gate.snapshot().policy.advisories.refresh;
        self.next_refresh = Instant::now() + refresh;
        if self.advisories.sources().is_empty() {
            let had = !self.gate.snapshot().advisories.is_empty();
            if had {
                self.gate.set_advisories(Default::default());
            }
            self.gate.set_sources(Vec::new());
            return had;
        }
        let reports = self.advisories.refresh().await;
        let mut changed = false;
        for r in &reports {
            let class = r.class.as_str();
            match &r.result {
                Ok(n) => {
                    self.metrics
                        .gate_advisory_reads
                        .with_label_values(&[class, "ok"])
                        .inc();
                    if r.changed {
                        tracing::info!(target: "modgate::security", source = %r.location, class, entries = n,
                            "advisories read");
                    }
                    changed |= r.changed;
                }
                Err(e) => {
                    self.metrics
                        .gate_advisory_reads
                        .with_label_values(&[class, "error"])
                        .inc();
                    tracing::error!(target: "modgate::security", source = %r.location, class, error = %e,
                        "advisory source failed; its last good set stays in force");
                }
            }
        }
        let mut statuses = Vec::new();
        for class in [Class::Malicious, Class::Vulnerability] {
            let mut entries = 0;
            let mut oldest: Option<u64> = None;
            for (s, r) in self.advisories.sources().iter().zip(&reports) {
                if s.class != class {
                    continue;
                }
                let good = s.last_good.as_ref();
                entries += good.map_or(0, |d| d.set.len());
                let modified = good.and_then(|d| d.modified.or(Some(d.read_at)));
                if let Some(m) = modified {
                    oldest = Some(oldest.map_or(m, |o| o.min(m)));
                }
                statuses.push(SourceStatus {
                    location: s.location.clone(),
                    class: class.as_str(),
                    entries: good.map_or(0, |d| d.set.len()),
                    modified,
                    read_at: good.map(|d| d.read_at),
                    error: r.result.as_ref().err().cloned(),
                });
            }
            self.metrics
                .gate_advisory_entries
                .with_label_values(&[class.as_str()])
                .set(entries as i64);
            if let Some(o) = oldest {
                self.metrics
                    .gate_advisory_age
                    .with_label_values(&[class.as_str()])
                    .set(age_secs(o) as i64);
            }
        }
        self.gate.set_sources(statuses);
        if changed {
            self.gate.set_advisories(self.advisories.merged());
        }
        changed
    }

    async fn recheck(&mut self) {
        let started = std::time::Instant::now();
        match self
            .recheck
            .run(self.store.as_ref(), &self.gate, self.fetchers.as_deref())
            .await
        {
            Ok((total, new)) => {
                self.metrics.gate_blocked_cached.set(total as i64);
                tracing::info!(target: "modgate::security", refused = total, newly_refused = new,
                    took_ms = started.elapsed().as_millis() as u64, "cached versions re-checked");
            }
            Err(e) => {
                tracing::error!(target: "modgate::security", error = %e, "re-checking cached versions failed");
            }
        }
    }
}
