//! The HTTP side. `router(state)` is the whole surface, so tests can drive it without a socket.
//! Every route is in the OpenAPI document served at `/openapi.json`, generated from the handlers.

mod alerts;
mod audit;
mod auth;
mod contract;
mod dispatches;
mod drivers;
mod error;
mod export;
mod extract;
mod geofence_events;
mod geofences;
mod health;
mod jobs;
mod maintenance;
mod nearest;
mod odometer;
mod page;
mod positions;
mod schema;
mod shifts;
mod stream;
mod track;
mod vehicles;
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Json, Router};
use deadpool_postgres::Pool;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::Caller;
pub use error::ApiError;
pub use export::slots as export_slots;

use crate::dispatch::Desk;
use crate::ingest::mqtt::BrokerStatus;
use crate::live::Live;
use crate::observability;
use crate::readiness::Readiness;

/// A request that takes longer than this is answered 503 instead of holding a connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    /// `None` on a node with ingest switched off: readiness then ignores the broker.
    pub broker: Option<BrokerStatus>,
    pub metrics: PrometheusHandle,
    /// This node's in-memory index (nearest drivers) and API-key cache.
    pub live: Arc<Live>,
    /// Jobs to drivers: automatic and named dispatch, the queue.
    pub desk: Desk,
    /// The node's live stream: the event tailer's feed and the position-stream lease.
    pub hub: Arc<crate::stream::Hub>,
    /// This node's fences in memory: `contains` and fence vehicles answer from them.
    pub fences: Arc<crate::geofencing::Geofences>,
    /// Conditions raised by the node's parts (ingest, broker) while they cannot do their job.
    pub readiness: Readiness,
    /// How many days raw points are kept (`MERIDIAN_RETENTION_RAW_DAYS`): tracks at raw, 1m
    /// and 5m cannot reach further back.
    pub retention: crate::domain::track::Retention,
    /// Slots for fleet history exports, each of which holds a pooled connection while it streams.
    pub exports: export::ExportSlots,
}

/// The document's frame; the paths come from the modules' `routes()`, the shared error
/// responses and the security scheme from `contract::finish`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Meridian",
        description = "Fleet telemetry engine: fleet management, live positions, operations."
    ),
    components(schemas(
        schema::ErrorBody,
        schema::ErrorDetail,
        schema::JsonValue,
        schema::JsonObject,
        page::Limit
    ))
)]
pub struct ApiDoc;

/// The served document (JSON): every route below and nothing else.
pub type Document = Arc<serde_json::Value>;

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi(Extension(doc): Extension<Document>) -> Json<serde_json::Value> {
    Json(serde_json::Value::clone(&doc))
}

/// Every route with its OpenAPI path. Adding an endpoint is one `routes!` entry in its module.
pub fn api() -> (Router<AppState>, serde_json::Value) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi))
        .merge(health::routes())
        .merge(auth::routes())
        .merge(vehicles::routes())
        .merge(drivers::routes())
        .merge(nearest::routes())
        .merge(shifts::routes())
        .merge(positions::routes())
        .merge(track::routes())
        .merge(odometer::routes())
        .merge(export::routes())
        .merge(geofences::routes())
        .merge(geofence_events::routes())
        .merge(stream::routes())
        .merge(jobs::routes())
        .merge(dispatches::routes())
        .merge(maintenance::routes())
        .merge(alerts::routes())
        .merge(audit::routes())
        .merge(webhooks::routes())
        .split_for_parts();
    contract::finish(&mut doc);
    (router, contract::with_raw_schemas(&doc))
}

/// The OpenAPI document `/openapi.json` serves.
pub fn document() -> serde_json::Value {
    api().1
}

pub fn router(state: AppState) -> Router {
    let (routes, doc) = api();
    routes
        // route_layer: runs after routing, so the matched route template is known.
        .route_layer(middleware::from_fn(track_metrics))
        .layer(Extension(Document::new(doc)))
        .fallback(error::not_found)
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Request count and latency labelled by route template (never the concrete path: ids
/// in paths would explode cardinality).
async fn track_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    observability::http_request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
