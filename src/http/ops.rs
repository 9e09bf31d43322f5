//! Operational endpoints: liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::AppState;

/// `/healthz`: the process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `/readyz`: the store answers.
pub async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    match st.pipeline.store().entries("\u{10ffff}").await {
        Ok(_) => (StatusCode::OK, "{\"ready\":true}\n".to_string()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"ready": false, "store": e.to_string()}).to_string() + "\n",
        ),
    }
}
