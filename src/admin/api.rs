//! The admin API: every request an operator can make, answered by a running server or on a stopped data dir.
//!
//! The CLI builds a [`Request`] and sends it, as one JSON object, to the
//! server's admin socket (`<data-dir>/admin.sock`) or, remotely, to
//! `POST /admin/`; the server runs it with [`execute`] on its own open store
//! and trail ([`Backend::Server`]) and answers one [`Response`]. With no server
//! running the CLI calls [`execute`] itself on the data dir ([`Backend::Dir`]).
//! One code path, so the answer is the same either way.
//!
//! ```text
//! {"cmd":"audit_who","target":"example.com/m@v1.0.0","since":"7d","json":true}
//! {"ok":true,"output":"{\"time\":...}\n"}
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::cache::{self, AdminError};
use super::trust::{self, TrustAdminError};
use crate::audit::{self, AuditError, AuditLog, Trail};
use crate::store::Store;

/// One admin request (the same from the CLI, the socket and `/admin/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// `cache ls [PATTERN] [--json]`
    CacheLs {
        #[serde(default)]
        pattern: Option<String>,
        #[serde(default)]
        json: bool,
    },
    /// `cache rm MODULE[@VERSION]`
    CacheRm { target: String },
    /// `cache verify`
    CacheVerify,
    /// `trust show [--sumdb NAME]`
    TrustShow {
        #[serde(default)]
        sumdb: Option<String>,
    },
    /// `trust reset --sumdb NAME`: only on a stopped data dir (see [`execute`]).
    TrustReset { sumdb: String },
    /// `audit who MODULE[@VERSION] [--since WHEN] [--json]`
    AuditWho {
        target: String,
        #[serde(default)]
        since: Option<String>,
        #[serde(default)]
        json: bool,
    },
    /// `audit export --since WHEN [--until WHEN]` (JSON lines)
    AuditExport {
        since: String,
        #[serde(default)]
        until: Option<String>,
    },
    /// `pins ls [PATTERN]`
    PinsLs {
        #[serde(default)]
        pattern: Option<String>,
    },
    /// `pins rm MODULE@VERSION --reason "…"` (audited)
    PinsRm { target: String, reason: String },
    /// `origin check [PATTERN] [--origin LIST]` (exit 1 if a version was rewritten)
    OriginCheck {
        #[serde(default)]
        pattern: Option<String>,
        origin: String,
    },
    /// `policy check MODULE@VERSION [--policy FILE]`: the verdict and every
    /// reason. `policy: None` judges by the server's own policy file; `store`:
    /// say what the data dir has of it (and judge with its history).
    PolicyCheck {
        target: String,
        #[serde(default)]
        policy: Option<PathBuf>,
        #[serde(default)]
        store: bool,
    },
    /// `prefetch FILE…` beside a running server: the files' text, fetched and
    /// verified through the server's own pipeline (a stopped data dir is
    /// prefetched by the CLI itself, which builds the same pipeline).
    Prefetch {
        sources: Vec<super::prefetch::Source>,
        jobs: usize,
    },
    /// `policy exposure [--policy FILE]`: every cached version the policy
    /// refuses, with why and who fetched it (from the audit trail).
    PolicyExposure {
        #[serde(default)]
        policy: Option<PathBuf>,
    },
}

impl Request {
    /// Whether this request must not run beside a server (and how to do it instead).
    pub fn needs_stopped_server(&self) -> Option<String> {
        match self {
            Request::TrustReset { sumdb } => Some(format!(
                "`trust reset` rewrites the trust state a running server holds in memory, \
                 so it is not done beside one: stop `modgate serve`, run \
                 `modgate trust reset --sumdb {sumdb}`, then start the server again"
            )),
            _ => None,
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The command ran and found nothing wrong (exit 0).
    pub ok: bool,
    /// What the command printed.
    #[serde(default)]
    pub output: String,
    /// Why the command could not run (exit 1, printed to stderr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn error(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            output: String::new(),
            error: Some(msg.into()),
        }
    }
}

/// Why an admin request could not run.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Cache(#[from] AdminError),
    #[error(transparent)]
    Trust(#[from] TrustAdminError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    NotBesideServer(String),
    #[error("{0}")]
    Policy(String),
}

/// What a running server lends the admin API: its open store and trail.
pub struct Admin {
    pub data_dir: PathBuf,
    pub store: Arc<dyn Store>,
    pub audit: Option<Arc<AuditLog>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This replica's name in a shared bucket (see `audit::shared`).
    pub replica: String,
    /// With a shared bucket: who fetched a version on any replica (set at start).
    pub everywhere: std::sync::OnceLock<Arc<crate::audit::shared::Everywhere>>,
    pub max_request_bytes: usize,
    /// Largest answer a running server builds (`[admin] max_response_bytes`).
    pub max_response_bytes: usize,
    /// The server's pipeline, for `prefetch` (set once the server is built).
    pub pipeline: std::sync::OnceLock<Arc<crate::pipeline::Pipeline>>,
    /// The server's policy file (`policy`), judged by `policy check|exposure`
    /// when the request names none.
    pub policy: Option<PathBuf>,
    /// Admin tokens accepted under `/admin/` (`[admin] bearer_sha256`); none: off.
    pub http_auth: Option<crate::http::auth::Auth>,
    /// The trusted tree size last seen by the dashboard, when it was first
    /// seen, and whether that was at start-up (so only "at or before").
    pub tree_seen: std::sync::Mutex<(i64, u64, bool)>,
}

impl Admin {
    /// When the trusted tree last advanced, as observed by this process:
    /// `(size, text)`. The trust state keeps no time, so a size already
    /// trusted at start-up is dated "at or before" the first look.
    pub fn tree_seen(&self, size: i64) -> (i64, String) {
        let mut seen = self.tree_seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.0 != size {
            let first = seen.0 == 0 && seen.1 == 0;
            *seen = (size, crate::store::now_secs(), first);
        }
        let when = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(seen.1),
        );
        let text = match seen.2 {
            true => format!("at or before {when}"),
            false => when.to_string(),
        };
        (seen.0, text)
    }
}

/// Where a request runs.
pub enum Backend<'a> {
    /// Inside a running server, on what it has open.
    Server(&'a Admin),
    /// On a data dir no server holds (the CLI, as before the socket existed).
    Dir(&'a Path),
    /// On a shared bucket the CLI opened (`--store s3://…`), with a local data
    /// dir for what is not shared (the audit trail, evidence).
    Bucket(&'a Path, Arc<dyn Store>),
}

/// Runs `req`, writing what it prints to `out`; `Ok(false)`: it ran and found problems.
pub async fn execute(
    backend: Backend<'_>,
    req: Request,
    out: &mut (dyn Write + Send),
) -> Result<bool, ApiError> {
    match req {
        Request::Prefetch { sources, jobs } => {
            let Backend::Server(a) = backend else {
                return Err(ApiError::Policy(
                    "prefetch on a stopped data dir runs in the CLI (`modgate prefetch`)".into(),
                ));
            };
            let Some(pipeline) = a.pipeline.get() else {
                return Err(ApiError::Policy("the server is still starting".into()));
            };
            let want = super::prefetch::want_of(&sources)?;
            let summary = super::prefetch::run(pipeline.clone(), want, jobs.clamp(1, 64)).await;
            writeln!(out, "{summary}")?;
            Ok(summary.failed.is_empty())
        }
        Request::PolicyCheck {
            target,
            policy,
            store,
        } => {
            let gate = policy_gate(&backend, policy, out).await?;
            let store = match (&backend, store) {
                (Backend::Server(_) | Backend::Bucket(..), _) | (Backend::Dir(_), true) => {
                    Some(open_store(&backend)?)
                }
                (Backend::Dir(_), false) => None,
            };
            let store = store.as_deref().map(|s| s as &dyn crate::store::Store);
            super::policy::check(&gate, store, &target, out)
                .await
                .map_err(|e| ApiError::Policy(e.to_string()))
        }
        Request::PolicyExposure { policy } => {
            let gate = policy_gate(&backend, policy, out).await?;
            let store = open_store(&backend)?;
            // Naming who fetched a version needs the trail; without one the list still runs.
            let trail = open_trail(&backend).ok();
            super::policy::exposure(&gate, &*store, trail.as_ref(), out)
                .await
                .map_err(|e| ApiError::Policy(e.to_string()))?;
            Ok(true)
        }
        Request::CacheLs { pattern, json } => {
            let store = open_store(&backend)?;
            cache::ls(&*store, pattern.as_deref(), json, out).await?;
            Ok(true)
        }
        Request::CacheRm { target } => {
            let store = open_store(&backend)?;
            cache::rm(&*store, &target, out).await?;
            Ok(true)
        }
        Request::CacheVerify => {
            let store = open_store(&backend)?;
            Ok(cache::verify(&*store, out).await?.bad.is_empty())
        }
        Request::PinsLs { pattern } => {
            let store = open_store(&backend)?;
            super::pins::ls(&*store, pattern.as_deref(), out).await?;
            Ok(true)
        }
        Request::PinsRm { target, reason } => {
            let store = open_store(&backend)?;
            let (mv, why) = super::pins::rm(&*store, &target, &reason, out).await?;
            let event = super::pins::audit_event(&mv, why);
            match &backend {
                Backend::Server(a) => match &a.audit {
                    Some(log) => {
                        // On disk before the command answers (an admin event is rare).
                        log.record(event).await;
                        log.sync().await;
                    }
                    None => writeln!(out, "(this server keeps no audit trail)")?,
                },
                Backend::Dir(d) | Backend::Bucket(d, _) => {
                    blocking_ok(|| Trail::open(d)?.write(&[event], true))?
                }
            }
            Ok(true)
        }
        Request::OriginCheck { pattern, origin } => {
            let store = open_store(&backend)?;
            let (data_dir, metrics) = match &backend {
                Backend::Server(a) => (a.data_dir.clone(), a.metrics.clone()),
                Backend::Dir(d) | Backend::Bucket(d, _) => (d.to_path_buf(), Arc::default()),
            };
            // Naming who fetched a version needs the trail; without one the check still runs.
            let trail = open_trail(&backend).ok();
            let report = super::origin::check(
                &*store,
                &data_dir,
                trail.as_ref(),
                metrics,
                super::origin::Options {
                    pattern: pattern.as_deref(),
                    origin: &origin,
                    pause: std::time::Duration::ZERO,
                },
                out,
            )
            .await?;
            Ok(report.rewritten == 0)
        }
        Request::TrustShow { sumdb } => {
            let states = match backend {
                Backend::Server(a) => {
                    trust::show_store(&*a.store, &a.data_dir, sumdb.as_deref()).await?
                }
                Backend::Dir(d) => {
                    trust::show_store(&*trust::open(d)?, d, sumdb.as_deref()).await?
                }
                Backend::Bucket(d, s) => trust::show_store(&*s, d, sumdb.as_deref()).await?,
            };
            out.write_all(trust::render(&states).as_bytes())?;
            Ok(true)
        }
        r @ Request::TrustReset { .. } => match backend {
            // Replicas re-read the shared trust state (`[store] poll_secs`):
            // a reset of the bucket reaches every one of them, running or not.
            Backend::Server(a) if !a.store.is_shared() => Err(ApiError::NotBesideServer(
                r.needs_stopped_server().unwrap_or_default(),
            )),
            backend => {
                let Request::TrustReset { sumdb } = r else {
                    unreachable!("matched above")
                };
                let store = match backend {
                    Backend::Dir(d) => trust::open(d)?,
                    Backend::Bucket(_, s) => s,
                    Backend::Server(a) => a.store.clone(),
                };
                let r = trust::reset_store(&*store, &sumdb).await?;
                writeln!(
                    out,
                    "checksum database {}: fork marker {}, trusted tree {}, {} cached tiles cleared; \
                     the next verification trusts its current head",
                    r.name,
                    if r.cleared_fork {
                        "cleared"
                    } else {
                        "was not set"
                    },
                    match r.cleared_tree {
                        Some(t) => format!("of size {} forgotten", t.n),
                        None => "was not set".to_string(),
                    },
                    r.cleared_tiles
                )?;
                Ok(true)
            }
        },
        Request::AuditWho {
            target,
            since,
            json,
        } => {
            let (module, version) = audit::split_target(&target)?;
            let since = match since {
                Some(s) => audit::parse_when(&s, audit::now_us())?,
                None => 0,
            };
            let trails = open_trails(&backend).await?;
            let records = blocking_ok(|| {
                audit::shared::who_all(&trails, &module, version.as_deref(), since)
            })?;
            for r in records {
                let line = match json {
                    true => serde_json::to_string(&r).unwrap_or_default(),
                    false => audit::render_line(&r),
                };
                writeln!(out, "{line}")?;
            }
            Ok(true)
        }
        Request::AuditExport { since, until } => {
            let now = audit::now_us();
            let since = audit::parse_when(&since, now)?;
            let until = match until {
                Some(u) => audit::parse_when(&u, now)?,
                None => u64::MAX,
            };
            // With replicas: every replica's trail, one after the other
            // (each in time order).
            let trails = open_trails(&backend).await?;
            let mut failed = None;
            for trail in &trails {
                blocking_ok(|| {
                    trail.export(since, until, |r| {
                        if let Err(e) =
                            writeln!(out, "{}", serde_json::to_string(&r).unwrap_or_default())
                        {
                            failed = Some(e);
                            return false;
                        }
                        true
                    })
                })?;
                if failed.is_some() {
                    break;
                }
            }
            if let Some(e) = failed {
                return Err(e.into());
            }
            Ok(true)
        }
    }
}

/// Runs a sled read on this thread, telling tokio it may block (reads of
/// the trail are short and bounded by what the query selects).
fn blocking_ok<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The store to work on: the server's own, or the data dir's when no server holds it.
fn open_store(backend: &Backend<'_>) -> Result<Arc<dyn Store>, AdminError> {
    Ok(match backend {
        Backend::Server(a) => a.store.clone(),
        Backend::Dir(d) => cache::open_store(d)?,
        Backend::Bucket(_, s) => s.clone(),
    })
}

/// A gate for `policy` (else the server's own policy file) with its advisory
/// sources read once, as a server on this data dir would judge; a source that
/// cannot be read is named in the output.
async fn policy_gate(
    backend: &Backend<'_>,
    policy: Option<PathBuf>,
    out: &mut (dyn Write + Send),
) -> Result<Arc<crate::gate::Gate>, ApiError> {
    let file = match (policy, backend) {
        (Some(f), _) => f,
        (None, Backend::Server(a)) => a.policy.clone().ok_or_else(|| {
            ApiError::Policy("this server runs without a policy file; give --policy FILE".into())
        })?,
        (None, Backend::Dir(_) | Backend::Bucket(..)) => {
            return Err(ApiError::Policy(
                "no policy file: give --policy FILE (or MODGATE_POLICY, or a --config naming one)"
                    .into(),
            ));
        }
    };
    let mut warnings = Vec::new();
    let gate = super::policy::load_gate(&file, &mut warnings)
        .await
        .map_err(|e| ApiError::Policy(e.to_string()))?;
    out.write_all(&warnings)?;
    Ok(gate)
}

/// The trails `audit who` reads: this one's, and with a shared bucket every
/// other replica's published trail (copied under the data dir first).
async fn open_trails(backend: &Backend<'_>) -> Result<Vec<Trail>, AuditError> {
    let (store, data_dir, own) = match backend {
        Backend::Server(a) if a.store.is_shared() => {
            (a.store.clone(), a.data_dir.clone(), Some(a.replica.clone()))
        }
        Backend::Bucket(d, s) => (s.clone(), d.to_path_buf(), None),
        _ => return Ok(vec![open_trail(backend)?]),
    };
    let mut trails = Vec::new();
    if own.is_some() || data_dir.join("audit").is_dir() {
        trails.push(open_trail(backend)?);
    }
    for dir in audit::shared::sync(&*store, &data_dir, own.as_deref()).await? {
        trails.push(blocking_ok(|| Trail::open(&dir))?);
    }
    Ok(trails)
}

fn open_trail(backend: &Backend<'_>) -> Result<Trail, AuditError> {
    match backend {
        Backend::Server(a) => match &a.audit {
            Some(log) => Ok(log.trail().clone()),
            None => Err(AuditError::Usage("this server keeps no audit trail".into())),
        },
        // Reading must not create a trail (a mistyped --data-dir would).
        Backend::Dir(d) | Backend::Bucket(d, _) if !d.join("audit").is_dir() => {
            Err(AuditError::Usage(format!(
                "no audit trail in {} (no audit directory: no modgate with the audit trail has served from it)",
                d.display()
            )))
        }
        Backend::Dir(d) | Backend::Bucket(d, _) => Trail::open(d),
    }
}

/// Collects a command's output in memory, up to a bound: the answer is one
/// JSON object, so an unbounded `audit export` would grow the server.
struct Capped {
    buf: Vec<u8>,
    max: usize,
    exceeded: bool,
}

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.max {
            self.exceeded = true;
            return Err(std::io::Error::other(format!(
                "the answer would exceed admin.max_response_bytes ({} bytes): narrow it \
                 (e.g. --since/--until), or run the command on a stopped data dir",
                self.max
            )));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs a request inside a running server and packs the answer (socket and `/admin/`).
pub async fn answer(admin: &Admin, req: Request) -> Response {
    let mut out = Capped {
        buf: Vec::new(),
        max: admin.max_response_bytes,
        exceeded: false,
    };
    let r = execute(Backend::Server(admin), req, &mut out).await;
    let output = String::from_utf8_lossy(&out.buf).into_owned();
    match r {
        Ok(ok) => {
            admin
                .metrics
                .admin_requests
                .with_label_values(&["ok"])
                .inc();
            Response {
                ok,
                output,
                error: None,
            }
        }
        Err(e) => {
            let outcome = if out.exceeded {
                "answer_too_large"
            } else {
                "error"
            };
            admin
                .metrics
                .admin_requests
                .with_label_values(&[outcome])
                .inc();
            Response {
                ok: false,
                output,
                error: Some(e.to_string()),
            }
        }
    }
}

/// Sends `req` to a remote server's `POST <url>/admin/` with an admin token.
pub async fn ask_http(url: &str, token: &str, req: &Request) -> Result<Response, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| e.to_string())?;
    let endpoint = format!("{}/admin/", url.trim_end_matches('/'));
    let resp = client
        .post(&endpoint)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(req).map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| format!("{endpoint}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{endpoint}: {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{endpoint}: not an admin answer: {e}"))
}

/// Parses a request body; the error says what a request looks like.
pub fn parse(body: &[u8]) -> Result<Request, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "bad admin request: {e}; expected one JSON object such as \
             {{\"cmd\":\"cache_ls\"}} or {{\"cmd\":\"audit_who\",\"target\":\"example.com/m@v1.0.0\"}}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_capped() {
        let mut c = Capped {
            buf: Vec::new(),
            max: 8,
            exceeded: false,
        };
        assert!(c.write_all(b"12345").is_ok());
        let e = c.write_all(b"6789").unwrap_err();
        assert!(e.to_string().contains("max_response_bytes"), "{e}");
        assert!(c.exceeded);
        assert_eq!(c.buf, b"12345");
    }

    #[test]
    fn requests_round_trip_and_bad_ones_are_explained() {
        let r = Request::AuditWho {
            target: "a.com/m@v1.0.0".into(),
            since: Some("7d".into()),
            json: true,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"cmd\":\"audit_who\""), "{text}");
        assert_eq!(parse(text.as_bytes()).unwrap(), r);
        assert_eq!(
            parse(br#"{"cmd":"cache_verify"}"#).unwrap(),
            Request::CacheVerify
        );
        let e = parse(br#"{"cmd":"rm_rf"}"#).unwrap_err();
        assert!(e.contains("bad admin request"), "{e}");
        assert!(parse(b"\xff\xfe").is_err());
        assert!(
            Request::TrustReset { sumdb: "x".into() }
                .needs_stopped_server()
                .is_some()
        );
    }
}
