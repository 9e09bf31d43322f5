//! The admin API over HTTP: `POST /admin/` with one JSON request, for admin tokens only.
//!
//! Off unless `[admin] bearer_sha256` lists tokens. It sits outside the
//! client-auth layer and checks its own tokens: an admin token runs the
//! request (the same [`crate::admin::api`] the socket answers); a valid
//! *client* credential is answered 403 (policy: clients are not admins);
//! anything else 401.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::Shared;
use super::auth::AuthUser;
use crate::admin::api;
use crate::error::Error;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/admin", post(handle))
        .route("/admin/", post(handle))
}

async fn handle(State(st): State<Shared>, req: Request) -> Response {
    let Some(admin) = st.admin.clone() else {
        return Error::NotFound("no admin API in this server".into()).into_response();
    };
    let Some(tokens) = &admin.http_auth else {
        return Error::NotFound(
            "the admin API over HTTP is off; set [admin] bearer_sha256 to enable it".into(),
        )
        .into_response();
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let who = match authorization.as_deref().map(|a| (tokens.check(a), a)) {
        Some((Ok(who), _)) => who,
        Some((Err(_), a)) if st.auth.enabled() && st.auth.check(a).is_ok() => {
            tracing::warn!(target: "modgate::security", "a client credential was presented to the admin API");
            return Error::Forbidden("the admin API takes admin tokens only".into())
                .into_response();
        }
        _ => {
            return Error::Unauthorized("an admin bearer token is required".into()).into_response();
        }
    };
    let max = admin.max_request_bytes;
    let body = match to_bytes(req.into_body(), max).await {
        Ok(b) => b,
        Err(_) => {
            admin
                .metrics
                .admin_requests
                .with_label_values(&["too_large"])
                .inc();
            return Error::BadRequest(format!(
                "admin request larger than admin.max_request_bytes ({max} bytes)"
            ))
            .into_response();
        }
    };
    let request = match api::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            admin
                .metrics
                .admin_requests
                .with_label_values(&["bad_request"])
                .inc();
            return Error::BadRequest(e).into_response();
        }
    };
    tracing::info!(target: "modgate::admin", request = ?request, via = "http", user = %who, "admin request");
    let answer = api::answer(&admin, request).await;
    let mut text = serde_json::to_vec(&answer).unwrap_or_default();
    text.push(b'\n');
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.extensions_mut().insert(AuthUser(who));
    r
}
