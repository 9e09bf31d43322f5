//! The audit trail: an append-only record of every artifact served or refused, to whom, queried by module.
//!
//! # What is recorded
//!
//! Every answer to `.info`, `.mod` and `.zip` (hit, miss or stale, served or
//! not), and every `list` and `@latest` answer (kinds `list` and `latest`):
//! those carry no bytes of a module, but they show who was interested in a
//! module and when — after a bad release, "who asked for the version list of
//! M this week" finds the machines that were about to pick it up. Each record
//! holds the time (µs), the client address, `X-Forwarded-For` as sent (never
//! trusted), the authenticated user or `bearer[i]`, module, version, kind,
//! cache outcome, HTTP status, the error message when refused or failed, and
//! the size of the signed tree the artifact was verified at. Requests refused
//! before a module was parsed (401 without credentials, 400 bad paths) are in
//! the access log only: they name no module.
//!
//! # Layout (`<data-dir>/audit/`, a sled database of its own)
//!
//! One tree, two kinds of keys, both written in one atomic batch per record:
//!
//! ```text
//! t time_us(8, BE) seq(8, BE)                        -> record (JSON, short keys)
//! m module \0 version \0 time_us(8, BE) seq(8, BE)   -> (empty: the index)
//! ```
//!
//! "Who fetched M[@V]" is one prefix scan of the `m` keys (`mM\0` or
//! `mM\0V\0`) and a point read of each record they name: it reads only
//! what concerns M however large the trail. The `t` keys are in time order
//! (records are appended at the end), for `audit export` and retention.
//! The records sit under the append-only keys and the randomly placed index
//! keys carry no value, which keeps sled's page rewrites (and so its space
//! and write amplification) small. One batch on one sled tree is atomic, so
//! after a crash a record has both keys or neither; sled's log is
//! checksummed and recovers to a consistent prefix, so the trail always
//! reads back whole. `seq` is sled's persistent monotonic id, so two records
//! in the same microsecond never collide.
//!
//! # Durability (enforced in [`AuditLog::record`] and the writer task)
//!
//! - A **miss** or a **refusal/failure** (status ≥ 400) is durable before the
//!   response leaves: the access-log middleware awaits [`AuditLog::record`],
//!   which waits until the writer has flushed that record to disk.
//! - A **hit** (or stale list) is a non-blocking `try_send` of a small struct
//!   onto a bounded channel. The writer collects hits in memory and writes
//!   and flushes them as one transaction every `audit.flush_ms` (default
//!   500 ms, at most 1000), or sooner with the next miss or refusal, or once
//!   [`WRITE_BATCH`] are waiting. The most a `kill -9` can lose is the hits
//!   answered since the last flush: at most `flush_ms` plus the time of one
//!   write, well under a second by default. Tested in tests/audit_trail.rs
//!   (`kill_9_after_a_miss_keeps_its_record`: a miss answered just before
//!   SIGKILL is there after a restart; `hits_are_durable_within_a_second`).
//! - When the channel is full (the disk cannot keep up), a hit waits up to
//!   [`FULL_WAIT`] for room and is then dropped, counted in
//!   `modgate_audit_records_dropped_total`; misses and refusals always wait.
//!
//! # Retention
//!
//! Records older than `audit.retention` (default 400 days) are deleted by a
//! background task (at start and every [`PRUNE_EVERY`]), in batches, while
//! the server keeps serving.
//!
//! # Size and speed (measured, `cargo test --release --test audit_scale -- --ignored`)
//!
//! See `AUDIT_SCALE` in the report/README: 1,000,000 synthetic records over
//! 10,000 modules.
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// How long a hit waits for room in a full channel before it is dropped (and counted).
pub const FULL_WAIT: Duration = Duration::from_millis(50);
/// How often retention runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Records removed per retention batch (keeps each sled transaction small).
const PRUNE_BATCH: usize = 10_000;
/// Records written per writer batch at most.
pub const WRITE_BATCH: usize = 4096;
/// The audit database's page cache: the trail is written far more than read.
const CACHE_BYTES: u64 = 16 << 20;

/// Why the audit trail could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit trail in {dir}: {msg}")]
    Db { dir: PathBuf, msg: String },
    #[error(
        "audit trail in {0} is in use by a running modgate; ask it (the admin socket) or stop it"
    )]
    Locked(PathBuf),
    #[error("audit trail: the writer has stopped")]
    Closed,
    #[error("{0}")]
    Usage(String),
}

/// One answer, as handed from the request path to the writer. Small and
/// cheap to build: the strings are those the handler already owns.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub time_us: u64,
    pub client: Option<IpAddr>,
    pub forwarded_for: Option<String>,
    pub user: Option<String>,
    pub module: String,
    pub version: String,
    pub kind: &'static str,
    pub cache: &'static str,
    pub status: u16,
    pub reason: Option<String>,
    pub tree_size: Option<i64>,
}

impl Event {
    /// Whether this record must be durable before the response leaves.
    pub fn must_sync(&self) -> bool {
        self.cache == "miss" || self.status >= 400
    }
}

/// A record read back from the trail (also the JSON line of `audit who --json`
/// and `audit export`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339, to the microsecond.
    pub time: String,
    pub time_us: u64,
    pub client: Option<String>,
    pub forwarded_for: Option<String>,
    pub user: Option<String>,
    pub module: String,
    pub version: String,
    pub kind: String,
    pub cache: String,
    pub status: u16,
    /// `served`, `refused` (403: verification or policy) or `failed`.
    pub verdict: String,
    pub reason: Option<String>,
    pub tree_size: Option<i64>,
}

/// What is stored under a record's time key.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "m")]
    module: String,
    #[serde(rename = "v")]
    version: String,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    client: Option<String>,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    forwarded_for: Option<String>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(rename = "k")]
    kind: String,
    #[serde(rename = "h", default, skip_serializing_if = "String::is_empty")]
    cache: String,
    #[serde(rename = "s")]
    status: u16,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    tree_size: Option<i64>,
}

/// The verdict word of a status.
pub fn verdict(status: u16) -> &'static str {
    match status {
        403 => "refused",
        s if s < 400 => "served",
        _ => "failed",
    }
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn rfc3339_us(us: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

/// Parses `--since`/`--until`: a duration back from now (`7d`, `12h`) or an
/// RFC 3339 date (`2026-11-01` or `2026-11-01T10:00:00Z`). Returns µs since the epoch.
pub fn parse_when(s: &str, now: u64) -> Result<u64, AuditError> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now.saturating_sub(d.as_micros() as u64));
    }
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as u64)
        .ok_or_else(|| {
            AuditError::Usage(format!(
                "{s:?} is neither a duration (7d, 12h) nor a date (2026-11-01, 2026-11-01T10:00:00Z)"
            ))
        })
}

/// Key prefixes of the two kinds of keys in the one tree.
const MODULE_KEY: u8 = b'm';
const TIME_KEY: u8 = b't';

/// `m module \0 [version \0]`: the prefix of a module's (or version's) index keys.
fn module_prefix(module: &str, version: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(module.len() + 40);
    k.push(MODULE_KEY);
    k.extend_from_slice(module.as_bytes());
    k.push(0);
    if let Some(v) = version {
        k.extend_from_slice(v.as_bytes());
        k.push(0);
    }
    k
}

/// `t time_us(8) seq(8)`: a record's key.
fn time_key(time_us: u64, seq: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = TIME_KEY;
    k[1..9].copy_from_slice(&time_us.to_be_bytes());
    k[9..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Splits a module index key into module, version and the record's time key.
fn split_key(k: &[u8]) -> Option<(&str, &str, [u8; 17])> {
    let k = k.strip_prefix(&[MODULE_KEY])?;
    if k.len() < 16 + 2 {
        return None;
    }
    let (names, tail) = k.split_at(k.len() - 16);
    let names = names.strip_suffix(&[0])?;
    let zero = names.iter().position(|&b| b == 0)?;
    let module = std::str::from_utf8(&names[..zero]).ok()?;
    let version = std::str::from_utf8(&names[zero + 1..]).ok()?;
    let mut tk = [0u8; 17];
    tk[0] = TIME_KEY;
    tk[1..].copy_from_slice(tail);
    Some((module, version, tk))
}

fn key_time(tk: &[u8]) -> u64 {
    tk.get(1..9)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

fn decode(tk: &[u8], v: &[u8]) -> Option<Record> {
    let time_us = key_time(tk);
    let s: Stored = serde_json::from_slice(v).ok()?;
    Some(Record {
        time: rfc3339_us(time_us),
        time_us,
        client: s.client,
        forwarded_for: s.forwarded_for,
        user: s.user,
        module: s.module,
        version: s.version,
        verdict: verdict(s.status).to_string(),
        kind: s.kind,
        cache: s.cache,
        status: s.status,
        reason: s.reason,
        tree_size: s.tree_size,
    })
}

/// The on-disk trail: opened by a server (which writes) or by the CLI on a stopped data dir.
#[derive(Clone)]
pub struct Trail {
    dir: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
}

impl Trail {
    /// Opens (creating) `<data-dir>/audit`.
    pub fn open(data_dir: &Path) -> Result<Trail, AuditError> {
        let dir = data_dir.join("audit");
        if crate::admin::lock::held(&dir) {
            return Err(AuditError::Locked(data_dir.to_owned()));
        }
        let err = |e: sled::Error| AuditError::Db {
            dir: dir.clone(),
            msg: e.to_string(),
        };
        let db = sled::Config::new()
            .path(&dir)
            .cache_capacity(CACHE_BYTES)
            // The trail only grows at its time end and shrinks at its start:
            // let sled reclaim space eagerly.
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(err)?;
        let tree = db.open_tree("trail").map_err(err)?;
        Ok(Trail { dir, db, tree })
    }

    fn err(&self) -> impl Fn(sled::Error) -> AuditError + '_ {
        |e| AuditError::Db {
            dir: self.dir.clone(),
            msg: e.to_string(),
        }
    }

    /// Writes records (both keys of each in one atomic batch); `sync` flushes them to disk.
    pub fn write(&self, events: &[Event], sync: bool) -> Result<(), AuditError> {
        let mut batch = sled::Batch::default();
        for e in events {
            let seq = self.db.generate_id().map_err(self.err())?;
            let tk = time_key(e.time_us, seq);
            let mut mk = module_prefix(&e.module, Some(&e.version));
            mk.extend_from_slice(&tk[1..]);
            let stored = Stored {
                module: e.module.clone(),
                version: e.version.clone(),
                client: e.client.map(|c| c.to_string()),
                forwarded_for: e.forwarded_for.clone(),
                user: e.user.clone(),
                kind: e.kind.to_string(),
                cache: e.cache.to_string(),
                status: e.status,
                reason: e.reason.clone(),
                tree_size: e.tree_size,
            };
            let v = serde_json::to_vec(&stored).map_err(|x| AuditError::Usage(x.to_string()))?;
            batch.insert(&tk[..], v);
            batch.insert(mk, &[] as &[u8]);
        }
        // One batch on one tree is atomic in sled: after a crash a record
        // has both its keys or neither.
        self.tree.apply_batch(batch).map_err(self.err())?;
        if sync {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&self) -> Result<(), AuditError> {
        self.db.flush().map(|_| ()).map_err(self.err())
    }

    /// Every record of `module` (or only of `module@version`) at or after
    /// `since` (µs), oldest first within a version. Reads only that module's
    /// index keys, and the records they name.
    pub fn who(
        &self,
        module: &str,
        version: Option<&str>,
        since_us: u64,
        mut each: impl FnMut(Record) -> bool,
    ) -> Result<(), AuditError> {
        for item in self.tree.scan_prefix(module_prefix(module, version)) {
            let (k, _) = item.map_err(self.err())?;
            let Some((_, _, tk)) = split_key(&k) else {
                continue;
            };
            if key_time(&tk) < since_us {
                continue;
            }
            if let Some(v) = self.tree.get(tk).map_err(self.err())?
                && let Some(r) = decode(&tk, &v)
                && !each(r)
            {
                break;
            }
        }
        Ok(())
    }

    /// Records with `since <= time < until`, in time order.
    pub fn export(
        &self,
        since_us: u64,
        until_us: u64,
        mut each: impl FnMut(Record) -> bool,
    ) -> Result<(), AuditError> {
        for item in self
            .tree
            .range(time_key(since_us, 0)..time_key(until_us, 0))
        {
            let (tk, v) = item.map_err(self.err())?;
            if let Some(r) = decode(&tk, &v)
                && !each(r)
            {
                break;
            }
        }
        Ok(())
    }

    /// Deletes records older than `cutoff_us`, in batches; returns how many.
    pub fn prune(&self, cutoff_us: u64) -> Result<u64, AuditError> {
        let mut removed = 0u64;
        loop {
            let mut batch = sled::Batch::default();
            let mut n = 0;
            for item in self
                .tree
                .range(time_key(0, 0)..time_key(cutoff_us, 0))
                .take(PRUNE_BATCH)
            {
                let (tk, v) = item.map_err(self.err())?;
                if let Ok(s) = serde_json::from_slice::<Stored>(&v) {
                    let mut mk = module_prefix(&s.module, Some(&s.version));
                    mk.extend_from_slice(&tk[1..]);
                    batch.remove(mk);
                }
                batch.remove(tk);
                n += 1;
            }
            if n == 0 {
                return Ok(removed);
            }
            self.tree.apply_batch(batch).map_err(self.err())?;
            removed += n;
        }
    }

    /// Records in the trail (a walk of the time keys; for tests and measurements).
    pub fn len(&self) -> usize {
        self.tree.scan_prefix([TIME_KEY]).count()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.scan_prefix([TIME_KEY]).next().is_none()
    }

    /// Bytes the trail's files take on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

struct Msg {
    event: Event,
    done: Option<oneshot::Sender<()>>,
}

/// A server's audit trail: the on-disk [`Trail`] plus its writer and retention tasks.
pub struct AuditLog {
    trail: Trail,
    tx: mpsc::Sender<Msg>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Taken by [`AuditLog::spawn`] (the writer owns it from then on).
    rx: std::sync::Mutex<Option<mpsc::Receiver<Msg>>>,
    retention: Duration,
    flush_every: Duration,
    /// The writer and retention tasks, stopped by [`AuditLog::stop`].
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The most recent refusals, newest last, for the dashboard.
    recent: std::sync::Mutex<std::collections::VecDeque<Event>>,
}

/// Refusals kept in memory for the dashboard.
pub const RECENT_REFUSALS: usize = 50;

impl AuditLog {
    /// Opens the trail; [`AuditLog::spawn`] starts its writer (in a runtime).
    pub fn open(
        data_dir: &Path,
        cfg: &crate::config::AuditConfig,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Arc<AuditLog>, AuditError> {
        let retention = cfg.retention()?;
        let trail = Trail::open(data_dir)?;
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        Ok(Arc::new(AuditLog {
            trail,
            tx,
            metrics,
            rx: std::sync::Mutex::new(Some(rx)),
            retention,
            flush_every: Duration::from_millis(cfg.flush_ms.clamp(1, 1000)),
            tasks: Default::default(),
            recent: Default::default(),
        }))
    }

    /// Starts the writer and retention tasks (once; later calls do nothing).
    pub fn spawn(&self) {
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(rx) = rx {
            let (t, m) = (self.trail.clone(), self.metrics.clone());
            let w = tokio::spawn(writer(t, rx, self.flush_every, m));
            let (t, m) = (self.trail.clone(), self.metrics.clone());
            let r = tokio::spawn(retain(t, self.retention, m));
            let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            tasks.extend([w, r]);
        }
    }

    /// Flushes what is queued, then stops the writer and retention (server shutdown).
    pub async fn stop(&self) {
        self.sync().await;
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
        }
    }

    /// The most recent refusals (403), newest first.
    pub fn recent_refusals(&self) -> Vec<Event> {
        let r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        r.iter().rev().cloned().collect()
    }

    pub fn trail(&self) -> &Trail {
        &self.trail
    }

    /// Records one answer. A miss or refusal returns once it is on disk; a
    /// hit returns at once (see the module doc for the rule and what a crash can lose).
    pub async fn record(&self, event: Event) {
        if event.status == 403 {
            let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if r.len() == RECENT_REFUSALS {
                r.pop_front();
            }
            r.push_back(event.clone());
        }
        if event.must_sync() {
            let (done, wait) = oneshot::channel();
            let msg = Msg {
                event,
                done: Some(done),
            };
            if self.tx.send(msg).await.is_err() {
                self.metrics.audit_dropped.inc();
                return;
            }
            // The writer answers after its flush; a writer that died drops `done`.
            if wait.await.is_err() {
                self.metrics.audit_dropped.inc();
            }
            return;
        }
        match self.tx.try_send(Msg { event, done: None }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                self.metrics.audit_queue_full.inc();
                if !matches!(
                    tokio::time::timeout(FULL_WAIT, self.tx.send(msg)).await,
                    Ok(Ok(()))
                ) {
                    self.metrics.audit_dropped.inc();
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.metrics.audit_dropped.inc(),
        }
    }

    /// Flushes everything queued so far (for shutdown and tests).
    pub async fn sync(&self) {
        let (done, wait) = oneshot::channel();
        let msg = Msg {
            event: Event::default(),
            done: Some(done),
        };
        if self.tx.send(msg).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Writes queued records in batches. Hits collect in memory and are
/// written and flushed together every `flush_every` (or once [`WRITE_BATCH`]
/// are waiting), so the request path pays only a channel send and the disk
/// sees one transaction per batch. A record someone waits for (a miss, a
/// refusal) is written with everything pending and flushed before they are told.
async fn writer(
    trail: Trail,
    mut rx: mpsc::Receiver<Msg>,
    flush_every: Duration,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut tick = tokio::time::interval(flush_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Vec<Event> = Vec::with_capacity(WRITE_BATCH);
    let mut waiters = Vec::new();
    let mut buf = Vec::with_capacity(WRITE_BATCH);
    loop {
        let sync = tokio::select! {
            n = rx.recv_many(&mut buf, WRITE_BATCH) => {
                if n == 0 {
                    break;
                }
                for m in buf.drain(..) {
                    // A sync marker carries no module.
                    if !m.event.module.is_empty() {
                        pending.push(m.event);
                    }
                    if let Some(d) = m.done {
                        waiters.push(d);
                    }
                }
                if waiters.is_empty() && pending.len() < WRITE_BATCH {
                    continue;
                }
                !waiters.is_empty()
            }
            _ = tick.tick() => {
                if pending.is_empty() {
                    continue;
                }
                true
            }
        };
        write_batch(&trail, std::mem::take(&mut pending), sync, &metrics).await;
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
    write_batch(&trail, pending, true, &metrics).await;
}

async fn write_batch(
    trail: &Trail,
    events: Vec<Event>,
    sync: bool,
    metrics: &crate::metrics::Metrics,
) {
    let count = events.len() as u64;
    let t = trail.clone();
    match tokio::task::spawn_blocking(move || t.write(&events, sync)).await {
        Ok(Ok(())) => metrics.audit_records.inc_by(count),
        Ok(Err(e)) => {
            metrics.audit_dropped.inc_by(count);
            tracing::error!(error = %e, records = count, "writing the audit trail");
        }
        Err(e) => {
            metrics.audit_dropped.inc_by(count);
            tracing::error!(error = %e, "audit writer task");
        }
    }
}

/// Deletes records older than `retention`, at start and every [`PRUNE_EVERY`].
async fn retain(trail: Trail, retention: Duration, metrics: Arc<crate::metrics::Metrics>) {
    let mut tick = tokio::time::interval(PRUNE_EVERY.min(retention.max(Duration::from_secs(1))));
    loop {
        tick.tick().await;
        let cutoff = now_us().saturating_sub(retention.as_micros() as u64);
        let t = trail.clone();
        match tokio::task::spawn_blocking(move || t.prune(cutoff)).await {
            Ok(Ok(n)) if n > 0 => {
                metrics.audit_pruned.inc_by(n);
                tracing::info!(records = n, "audit retention: old records deleted");
            }
            Ok(Err(e)) => tracing::error!(error = %e, "audit retention"),
            _ => {}
        }
    }
}

/// One text line of `audit who` / the dashboard.
pub fn render_line(r: &Record) -> String {
    let mut s = format!(
        "{} client={} forwarded_for={} user={} {}@{} {} {} status={} {}",
        r.time,
        r.client.as_deref().unwrap_or("-"),
        r.forwarded_for.as_deref().unwrap_or("-"),
        r.user.as_deref().unwrap_or("-"),
        r.module,
        r.version,
        r.kind,
        if r.cache.is_empty() { "-" } else { &r.cache },
        r.status,
        r.verdict,
    );
    if let Some(t) = r.tree_size {
        s.push_str(&format!(" tree_size={t}"));
    }
    if let Some(reason) = &r.reason {
        s.push_str(&format!(" reason={reason:?}"));
    }
    s
}

/// Parses `MODULE[@VERSION]`.
pub fn split_target(t: &str) -> Result<(String, Option<String>), AuditError> {
    let (m, v) = match t.split_once('@') {
        Some((m, v)) => (m, Some(v.to_string())),
        None => (t, None),
    };
    crate::protocol::ModPath::new(m).map_err(|e| AuditError::Usage(e.to_string()))?;
    Ok((m.to_string(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(module: &str, version: &str, t: u64, client: &str) -> Event {
        Event {
            time_us: t,
            client: Some(client.parse().unwrap()),
            module: module.into(),
            version: version.into(),
            kind: "zip",
            cache: "hit",
            status: 200,
            tree_size: Some(7),
            ..Event::default()
        }
    }

    #[test]
    fn who_reads_only_the_module_and_export_is_time_ordered() {
        let d = tempfile::tempdir().unwrap();
        let t = Trail::open(d.path()).unwrap();
        t.write(
            &[
                ev("a.com/x", "v1.0.0", 30, "127.0.0.2"),
                ev("a.com/xy", "v1.0.0", 10, "127.0.0.9"),
                ev("a.com/x", "v1.1.0", 20, "127.0.0.3"),
                ev("a.com/x", "v1.0.0", 5, "127.0.0.4"),
            ],
            true,
        )
        .unwrap();
        let mut got = vec![];
        t.who("a.com/x", None, 0, |r| {
            got.push((r.version, r.client.unwrap()));
            true
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("v1.0.0".into(), "127.0.0.4".into()),
                ("v1.0.0".into(), "127.0.0.2".into()),
                ("v1.1.0".into(), "127.0.0.3".into())
            ]
        );
        let mut n = 0;
        t.who("a.com/x", Some("v1.0.0"), 10, |r| {
            assert_eq!(r.client.as_deref(), Some("127.0.0.2"));
            assert_eq!(r.tree_size, Some(7));
            assert_eq!(r.verdict, "served");
            n += 1;
            true
        })
        .unwrap();
        assert_eq!(n, 1);
        let mut times = vec![];
        t.export(0, 25, |r| {
            times.push(r.time_us);
            true
        })
        .unwrap();
        assert_eq!(times, vec![5, 10, 20]);
        assert_eq!(t.prune(15).unwrap(), 2);
        assert_eq!(t.len(), 2);
        let mut left = 0;
        t.who("a.com/x", Some("v1.0.0"), 0, |_| {
            left += 1;
            true
        })
        .unwrap();
        assert_eq!(left, 1);
    }

    #[test]
    fn keys_round_trip() {
        let mut k = module_prefix("a.com/m", Some("v1.0.0"));
        let tk = time_key(0x0001_0203_0405_0607, 9);
        k.extend_from_slice(&tk[1..]);
        assert_eq!(split_key(&k), Some(("a.com/m", "v1.0.0", tk)));
        assert_eq!(key_time(&tk), 0x0001_0203_0405_0607);
        assert_eq!(split_key(b"mshort"), None);
        assert_eq!(split_key(&tk), None);
    }

    #[test]
    fn when() {
        let now = 10 * 86_400 * 1_000_000;
        assert_eq!(parse_when("1d", now).unwrap(), 9 * 86_400 * 1_000_000);
        assert_eq!(parse_when("1970-01-02", now).unwrap(), 86_400 * 1_000_000);
        assert!(parse_when("yesterday", now).is_err());
    }
}
