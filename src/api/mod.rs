//! The HTTP side. `router(state)` is the whole surface, so tests can drive it without a socket.

mod auth;
mod error;
mod health;

use axum::{routing::get, Router};
use deadpool_postgres::Pool;
use metrics_exporter_prometheus::PrometheusHandle;

pub use auth::Caller;
pub use error::ApiError;

use crate::ingest::mqtt::BrokerStatus;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    /// `None` on a node with ingest switched off: readiness then ignores the broker.
    pub broker: Option<BrokerStatus>,
    pub metrics: PrometheusHandle,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/whoami", get(auth::whoami))
        .route("/v1/apikeys", get(auth::list_keys))
        .fallback(error::not_found)
        .with_state(state)
}
