//! Liveness, readiness and the Prometheus scrape endpoint. None needs a key.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema::{FailingCheck, Health, Readiness, ReadinessChecks};
use super::AppState;
use crate::store::migrate;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// A readiness probe must answer even when the database hangs.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready = database reachable, schema at this binary's version, broker connected (if ingesting),
/// live index and geofence set loaded and current, and no part of the node reporting a failure (`failing`).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Readiness),
              (status = 503, description = "Not ready: the body says which checks fail and why", body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
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
    let broker = state.broker.as_ref().map(|b| b.is_connected());
    let live_index = state.live.is_current();
    let geofence_index = state.fences.current().is_some();
    let failing: Vec<FailingCheck> = state
        .readiness
        .failing()
        .into_iter()
        .map(|(check, reason)| FailingCheck { check, reason })
        .collect();
    let ready = db_ok
        && migrations_ok
        && broker != Some(false)
        && live_index
        && geofence_index
        && failing.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let checks = ReadinessChecks {
        database: db_ok,
        migrations: migrations_ok,
        broker,
        live_index,
        geofence_index,
    };
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "not_ready" },
            checks,
            failing,
        }),
    )
}

/// Prometheus text exposition of every `meridian_*` metric.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
