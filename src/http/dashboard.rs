//! The dashboard at `/`: trust state, store size, recent refusals, and "who fetched M[@V]".
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;

pub async fn page(State(_st): State<AppState>) -> Response {
    Html("todo").into_response()
}
