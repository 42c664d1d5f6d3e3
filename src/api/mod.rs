//! The HTTP side. `router(state)` is the whole surface, so tests can drive it without a socket.
//! Every route is in the OpenAPI document served at `/openapi.json`, generated from the handlers.

mod auth;
mod error;
mod extract;
mod fleet;
mod geofences;
mod health;
mod nearest;
mod positions;
mod schema;
mod shifts;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use deadpool_postgres::Pool;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use auth::Caller;
pub use error::ApiError;

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
    /// Conditions raised by the node's parts (ingest, broker) while they cannot do their job.
    pub readiness: Readiness,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Meridian", description = "Fleet telemetry engine: fleet management, live positions, operations."),
    paths(
        health::healthz, health::readyz, health::metrics, openapi, auth::whoami, auth::list_keys,
        fleet::create_vehicle, fleet::create_vehicles_bulk, fleet::get_vehicle, fleet::list_vehicles, fleet::update_vehicle,
        fleet::create_driver, fleet::get_driver, fleet::list_drivers, fleet::update_driver,
        shifts::create, shifts::get, shifts::end, shifts::list, positions::of_vehicle, positions::in_bbox,
        geofences::create, geofences::get, geofences::replace, geofences::delete, geofences::list, geofences::vehicles,
        nearest::nearest,
    ),
    components(schemas(schema::ErrorBody, schema::ErrorDetail)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/whoami", get(auth::whoami))
        .route("/v1/apikeys", get(auth::list_keys))
        .route(
            "/v1/vehicles",
            post(fleet::create_vehicle).get(fleet::list_vehicles),
        )
        .route("/v1/vehicles/bulk", post(fleet::create_vehicles_bulk))
        .route(
            "/v1/vehicles/{id}",
            get(fleet::get_vehicle).patch(fleet::update_vehicle),
        )
        .route(
            "/v1/drivers",
            post(fleet::create_driver).get(fleet::list_drivers),
        )
        .route("/v1/drivers/nearest", get(nearest::nearest))
        .route(
            "/v1/drivers/{id}",
            get(fleet::get_driver).patch(fleet::update_driver),
        )
        .route("/v1/shifts", post(shifts::create).get(shifts::list))
        .route("/v1/shifts/{id}", get(shifts::get))
        .route("/v1/shifts/{id}/end", post(shifts::end))
        .route("/v1/vehicles/{id}/position", get(positions::of_vehicle))
        .route("/v1/positions", get(positions::in_bbox))
        .route(
            "/v1/geofences",
            post(geofences::create).get(geofences::list),
        )
        .route(
            "/v1/geofences/{id}",
            get(geofences::get)
                .put(geofences::replace)
                .delete(geofences::delete),
        )
        .route("/v1/geofences/{id}/vehicles", get(geofences::vehicles))
        // route_layer: runs after routing, so the matched route template is known.
        .route_layer(middleware::from_fn(track_metrics))
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
