//! The checksum database through the proxy: `/sumdb/<name>/{supported,latest,lookup,tile}`.

use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::Error;
use crate::protocol::SumdbRequest;

/// Answers `/sumdb/<name>/...`. Not proxied yet: 404 tells the `go` command
/// to contact the checksum database directly, as it does for any proxy
/// without sumdb support.
pub async fn handle(_st: &AppState, name: &str, _req: SumdbRequest) -> Response {
    Error::NotFound(format!("checksum database {name} is not proxied")).into_response()
}
