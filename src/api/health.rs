//! Liveness, readiness and the Prometheus scrape endpoint. None needs a key.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::store::migrate;

/// A readiness probe must answer even when the database hangs.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready = database reachable, schema at this binary's version, broker connected (if ingesting).
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = tokio::time::timeout(PROBE_TIMEOUT, async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        migrate::is_current(&client)
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|_| Err("timed out".into()));
    let (db_ok, migrations_ok) = match &database {
        Ok(current) => (true, *current),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (false, false)
        }
    };
    let broker_ok = state.broker.as_ref().is_none_or(|b| b.is_connected());
    let ready = db_ok && migrations_ok && broker_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "database": db_ok,
            "migrations": migrations_ok,
            "broker": if state.broker.is_some() { json!(broker_ok) } else { json!("ingest disabled") },
        }
    });
    (status, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
