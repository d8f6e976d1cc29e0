//! Health: `GET /health/live` (the process answers) and `GET /health/ready`.
//!
//! Readiness rule: the record store must answer, or the answer is **503** (`unavailable`) —
//! this instance cannot do its work. With the store answering, it is **200**: `ready` when
//! every practice connection's circuit is closed, `degraded` when any is open or half-open.
//! An open circuit is one practice's problem, not this instance's: Keel still serves every
//! other practice and its own store, and another instance would find the same practice down,
//! so taking this one out of rotation would help no one. The body (JSON) lists each
//! practice/interface with its circuit state so operators see which.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keel_integrations::circuit::CircuitState;
use serde_json::json;

use crate::AppState;

pub async fn live() -> &'static str {
    "live"
}

pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let fhir = state.fhir.clone();
    let store_up = tokio::task::spawn_blocking(move || fhir.ping().is_ok())
        .await
        .unwrap_or(false);
    let connections = state
        .directory
        .as_ref()
        .map(|d| d.connection_health())
        .unwrap_or_default();
    let all_closed = connections
        .iter()
        .all(|c| c.circuit == CircuitState::Closed);
    let (status, word) = match (store_up, all_closed) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, true) => (StatusCode::OK, "ready"),
        (true, false) => (StatusCode::OK, "degraded"),
    };
    let body = json!({
        "status": word,
        "store": if store_up { "up" } else { "down" },
        "connections": connections,
    });
    (status, Json(body)).into_response()
}
