//! The HTTP surface: `app(state)` builds the router; handlers live by concern.
//!
//! - [`proxy`]: the GOPROXY protocol (`list`, `.info`, `.mod`, `.zip`, `@latest`).
//! - [`sumdb`]: the checksum database through the proxy (`/sumdb/<name>/...`).
//! - [`ops`]: health and metrics.
//! - [`auth`]: optional client authentication.

pub mod admin;
pub mod auth;
pub mod dashboard;
pub mod ops;
pub mod proxy;
pub mod sumdb;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::pipeline::Pipeline;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    /// Accepted credentials (none configured: every request passes).
    pub auth: Arc<auth::Auth>,
    /// The audit trail (absent when a test builds its own state).
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// The admin API a running server answers (socket, `/admin/`, dashboard).
    pub admin: Option<Arc<crate::admin::api::Admin>>,
}

/// What a handler learned about a request, for the access log line.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    pub module: String,
    pub version: String,
    pub kind: &'static str,
    pub cache: &'static str,
    /// The size of the signed tree the artifact was verified at.
    pub tree_size: Option<i64>,
    /// The error message of a refusal or failure.
    pub reason: Option<String>,
}

/// The peer address of the connection a request came on (set by the
/// server's accept loop; absent when a test calls the router directly).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// What handlers get: one `Arc`, so each request clones and drops one
/// counter instead of one per field (a measurable share of a cached hit).
pub type Shared = Arc<AppState>;

/// The whole router. Tests call this directly with their own state.
pub fn app(state: AppState) -> Router {
    let state: Shared = Arc::new(state);
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/", get(dashboard::page))
        .fallback(proxy::handle)
        // /admin/ checks admin tokens itself (`auth::admit` lets it through).
        .merge(admin::routes())
        .layer(middleware::from_fn_with_state(state.clone(), front))
        .with_state(state)
}

/// The one middleware every request passes: client authentication
/// ([`auth::admit`]), then the handler, then one log line per request — who
/// asked (peer address, any `X-Forwarded-For`, the authenticated user), for
/// what (method, path, and what the handler recorded: module, version, kind,
/// cache outcome), and the answer (status, duration) — so there is a record
/// of who fetched what; counted in the metrics, and handed to the audit trail.
/// Refused (401) requests are logged and counted too.
async fn front(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // A clone of the request's URI shares its bytes (no copy of the path).
    let uri = req.uri().clone();
    let path = uri.path();
    let client_ip = req.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    // Said by the client or a proxy in front: recorded as given, never trusted.
    let forwarded_for = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect::<String>());
    let mut resp = match auth::admit(&st.auth, &req) {
        Ok(user) => {
            let mut resp = next.run(req).await;
            if let Some(user) = user {
                resp.extensions_mut().insert(user);
            }
            resp
        }
        Err(refused) => refused.into_response(),
    };
    let status = resp.status().as_u16();
    // Milliseconds to the microsecond (a hit takes well under 0.1 ms): a
    // number in JSON, short in text, and no string to allocate.
    let ms = (start.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    let log = resp.extensions().get::<RequestLog>();
    let user = resp
        .extensions()
        .get::<auth::AuthUser>()
        .map(|u| u.0.as_str());
    let kind = match log {
        Some(l) if !l.kind.is_empty() => l.kind,
        _ if matches!(path, "/healthz" | "/readyz" | "/metrics") => "ops",
        _ => "other",
    };
    st.pipeline
        .metrics()
        .request(kind, status, log.map_or("", |l| l.cache));
    // Fields that are None are left out of the line.
    let client = client_ip.map(tracing::field::display);
    let forwarded = forwarded_for.as_deref();
    match log {
        Some(l) => tracing::info!(target: "modgate::access", %method, %path, status,
            client, forwarded_for = forwarded, user,
            module = %l.module, version = %l.version, kind = l.kind, cache = l.cache,
            duration_ms = ms, "request"),
        None => tracing::info!(target: "modgate::access", %method, %path, status,
            client, forwarded_for = forwarded, user, duration_ms = ms, "request"),
    }
    if let Some(audit) = &st.audit {
        audit_record(audit, &mut resp, client_ip, forwarded_for, status).await;
    }
    resp
}

/// Hands the answer to the audit trail (see [`crate::audit`] for what is
/// recorded and when it is durable): a miss or refusal waits for its record
/// to reach the disk; a hit is queued.
async fn audit_record(
    audit: &crate::audit::AuditLog,
    resp: &mut Response,
    client: Option<std::net::IpAddr>,
    forwarded_for: Option<String>,
    status: u16,
) {
    let user = resp
        .extensions()
        .get::<auth::AuthUser>()
        .map(|u| u.0.clone());
    let Some(l) = resp.extensions_mut().remove::<RequestLog>() else {
        return;
    };
    if !matches!(l.kind, "info" | "mod" | "zip" | "list" | "latest") {
        return;
    }
    audit
        .record(crate::audit::Event {
            time_us: crate::audit::now_us(),
            client,
            forwarded_for,
            user,
            module: l.module,
            version: l.version,
            kind: l.kind,
            cache: l.cache,
            status,
            reason: l.reason,
            tree_size: l.tree_size,
        })
        .await;
}
