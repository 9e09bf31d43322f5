//! The checksum database through the proxy: `/sumdb/<name>/{supported,latest,lookup,tile}`.
//!
//! A `go` client whose `GOSUMDB` names the database without a URL asks its
//! proxy first (`/sumdb/<name>/supported`) and, on 200, reads the database
//! through it. Everything served here was verified by modgate with the
//! configured key: lookups (signature, inclusion, consistency) are served
//! byte for byte as verified and cached for good; `latest` is verified and
//! merged into modgate's trusted head; hash tiles are authenticated against
//! the trusted tree. The client verifies all of it again itself.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::Error;
use crate::pipeline::forked_message;
use crate::protocol::SumdbRequest;
use crate::sumdb::client::ClientError;
use crate::sumdb::tlog::parse_tile_path;

/// Answers `/sumdb/<name>/...`. Only the configured database is proxied:
/// for any other name, 404 tells the `go` command to contact it directly.
pub async fn handle(st: &AppState, name: &str, req: SumdbRequest) -> Response {
    match serve(st, name, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve(st: &AppState, name: &str, req: SumdbRequest) -> Result<Response, Error> {
    let p = &st.pipeline;
    let client = p.sumdb();
    if name != client.name() {
        return Err(Error::NotFound(format!(
            "checksum database {name} is not proxied here (modgate verifies against {})",
            client.name()
        )));
    }
    let immutable = format!(
        "public, max-age={}, immutable",
        p.config().cache.immutable_max_age_secs
    );
    match req {
        SumdbRequest::Supported => Ok(answer(Vec::new(), "text/plain; charset=utf-8", "no-cache")),
        // A private path is never looked up: the database would learn it.
        SumdbRequest::Lookup(mv) if p.routes().is_private(mv.path()) => {
            Err(Error::NotFound(format!(
                "{mv}: a private module (it matches `private`); modgate never asks the \
                 checksum database about it (set GONOSUMDB or GOPRIVATE for it)"
            )))
        }
        SumdbRequest::Lookup(mv) => {
            let (body, _cache) = p.lookup_response(&mv).await?;
            Ok(answer(
                body.to_vec(),
                "text/plain; charset=utf-8",
                &immutable,
            ))
        }
        SumdbRequest::Latest => {
            if p.config().offline {
                let note = client.latest_note();
                if note.is_empty() {
                    return Err(Error::Offline(format!("{name} latest")));
                }
                return Ok(answer(note, "text/plain; charset=utf-8", "no-cache"));
            }
            let l = client
                .proxy_latest()
                .await
                .map_err(|e| client_error(name, "latest", e))?;
            Ok(answer(l.note, "text/plain; charset=utf-8", "no-cache"))
        }
        SumdbRequest::Tile(path) => {
            let t =
                parse_tile_path(&path).map_err(|e| Error::BadRequest(format!("{name}: {e}")))?;
            let tile = client
                .proxy_tile(t)
                .await
                .map_err(|e| client_error(name, &path, e))?
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "{name}: {path}: not served (record-data tiles are not proxied; \
                         hash tiles only within the database's signed tree)"
                    ))
                })?;
            let cache = if t.is_full() {
                immutable.as_str()
            } else {
                "no-cache"
            };
            Ok(answer(tile.data, "application/octet-stream", cache))
        }
    }
}

fn answer(body: Vec<u8>, content_type: &'static str, cache_control: &str) -> Response {
    let mut r = (StatusCode::OK, Body::from(body)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    r
}

/// A sumdb client failure on `what` (`latest`, a tile path) as an [`Error`]:
/// proven misbehaviour is 403, an unreachable database 502/504.
fn client_error(name: &str, what: &str, e: ClientError) -> Error {
    if matches!(e, ClientError::Fork(_) | ClientError::Forked) {
        tracing::error!(target: "modgate::security", sumdb = name, what,
            "refused: checksum database presented a forked log");
        return Error::Security(format!("{name} {what}: {}", forked_message(name)));
    }
    if e.is_local() {
        tracing::error!(sumdb = name, what, error = %e, "checksum database request failed on our side");
        return match e {
            ClientError::StorageFull(m) => Error::InsufficientStorage(m),
            ClientError::Storage(m) => Error::Storage(m),
            e => Error::Internal(format!("{name} {what}: {e}")),
        };
    }
    if e.is_security() {
        tracing::error!(target: "modgate::security", sumdb = name, what, error = %e,
            "refused: checksum database verification failed");
        return Error::Security(format!("{name} {what}: {e}"));
    }
    match e {
        ClientError::NotFound(_) => Error::NotFound(format!("{name} {what}: {e}")),
        e => {
            tracing::warn!(sumdb = name, what, error = %e, "checksum database unavailable");
            let msg = format!("{name} {what}: cannot be verified now: {e}");
            match e {
                ClientError::Timeout { .. } => Error::Timeout(msg),
                _ => Error::UpstreamUnavailable(msg),
            }
        }
    }
}
