//! GOPROXY protocol handlers: parse the path, ask the pipeline, stream the answer.

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, ClientAddr, RequestLog, Shared};
use crate::error::Error;
use crate::protocol::{self, Kind, ParseError, Request};
use crate::store::BlobBody;

/// The fallback handler: every path that is not an ops endpoint.
pub async fn handle(
    State(st): State<Shared>,
    client: Option<Extension<ClientAddr>>,
    method: Method,
    uri: Uri,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = (StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n").into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let req = match protocol::parse(uri.path()) {
        Ok(r) => r,
        Err(ParseError::BadRequest(m)) => return Error::BadRequest(m).into_response(),
        Err(ParseError::NotFound(m)) => return Error::NotFound(m).into_response(),
    };
    let mut log = RequestLog::default();
    // The peer address counts against the per-client miss limit.
    let client = client.map(|Extension(ClientAddr(a))| a.ip());
    let mut resp = match serve(&st, client, req, &mut log).await {
        Ok(r) => r,
        Err(e) => {
            // For the audit trail: why it was refused or failed.
            log.reason = Some(e.to_string());
            e.into_response()
        }
    };
    resp.extensions_mut().insert(log);
    resp
}

async fn serve(
    st: &AppState,
    client: Option<std::net::IpAddr>,
    req: Request,
    log: &mut RequestLog,
) -> Result<Response, Error> {
    let p = &st.pipeline;
    let max_age = p.config().cache.immutable_max_age_secs;
    match req {
        Request::Artifact(mv, kind) => {
            log.module = mv.path().to_string();
            log.version = mv.version().to_string();
            log.kind = kind.ext();
            let (entry, blob, cache) = p.open_from(client, &mv, kind).await?;
            log.cache = cache.as_str();
            // A pinned (private) version was proven in no tree.
            log.tree_size = (entry.verification.authority
                == crate::routes::Authority::ChecksumDatabase)
                .then_some(entry.verification.tree_size);
            // A small blob is already in memory: one full body, written with its head.
            // A file streams in large chunks (a 500 MiB zip never sits in memory).
            let body = match blob.body {
                BlobBody::Memory(b) => Body::from(b),
                BlobBody::File(_) => Body::from_stream(blob.into_stream()),
            };
            // Headers inserted by their constant names, the fixed ones
            // without formatting (a cached hit's cost is mostly per-request
            // overhead like this).
            let mut r = Response::new(body);
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(kind.content_type()),
            );
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.size));
            h.insert(header::CACHE_CONTROL, immutable(max_age));
            if let Ok(etag) = HeaderValue::try_from(format!("\"{}\"", entry.digest)) {
                h.insert(header::ETAG, etag);
            }
            Ok(r)
        }
        Request::List(m) => {
            log.module = m.to_string();
            log.kind = "list";
            let (body, cache) = p.list(&m).await?;
            log.cache = cache.as_str();
            Ok(small(body, "text/plain; charset=utf-8"))
        }
        Request::Latest(m) => {
            log.module = m.to_string();
            log.kind = "latest";
            let (body, cache) = p.latest(&m).await?;
            log.cache = cache.as_str();
            Ok(small(body, Kind::Info.content_type()))
        }
        Request::InfoQuery(m, q) => {
            log.module = m.to_string();
            log.version = q.clone();
            log.kind = "info";
            log.cache = "miss";
            let body = p.info_query(&m, &q).await?;
            Ok(small(body, Kind::Info.content_type()))
        }
        Request::Sumdb { name, req } => {
            log.kind = "sumdb";
            Ok(super::sumdb::handle(st, &name, req).await)
        }
    }
}

/// `Cache-Control` of an immutable artifact: the default's value is a constant.
fn immutable(max_age: u64) -> HeaderValue {
    const DEFAULT: u64 = 365 * 24 * 3600;
    match max_age {
        DEFAULT => HeaderValue::from_static("public, max-age=31536000, immutable"),
        // Digits and ASCII only: always a valid header value.
        _ => HeaderValue::try_from(format!("public, max-age={max_age}, immutable"))
            .unwrap_or_else(|_| HeaderValue::from_static("no-cache")),
    }
}

/// A small mutable answer (list, @latest, queries): never cached long downstream.
fn small(body: bytes::Bytes, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_is_the_same_text_constant_or_not() {
        let d = crate::config::Config::default()
            .cache
            .immutable_max_age_secs;
        assert_eq!(immutable(d), "public, max-age=31536000, immutable");
        assert_eq!(immutable(60), "public, max-age=60, immutable");
    }
}
