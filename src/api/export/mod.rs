//! The fleet history export, for analysts: every vehicle's hourly or daily rollup rows over a
//! time range, streamed from the database row by row as CSV or NDJSON (gzip when asked, by the
//! router's compression layer, which compresses chunk by chunk). One pooled connection serves
//! an export for its whole life; a client that leaves cancels the query.

mod encode;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::Query;
use super::schema::ErrorBody;
use super::{ApiError, AppState, Caller};
use crate::domain::export::{ExportRange, Rollup, VehicleIds, VehicleIdsError};
use crate::domain::Role;
use crate::store::export;
use encode::{Encoded, Format};

/// Exports one node streams at once. Each holds a connection of the 16-connection API pool for
/// as long as its client reads, so a few slow downloads must not starve every other request.
pub const MAX_EXPORTS: usize = 4;

/// The node's export slots.
pub type ExportSlots = Arc<Semaphore>;

pub fn slots() -> ExportSlots {
    Arc::new(Semaphore::new(MAX_EXPORTS))
}

/// gzip at its fastest level for exports: the router's default level compresses a CSV export
/// at ~20 MB/s on one core, a quarter of the rate rows leave the database; the fastest level is
/// several times quicker for a somewhat larger file. The router's own layer passes a response
/// that already carries `Content-Encoding` through untouched.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(history))
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
}

/// `1h`: rows of `telemetry_hourly`; `1d`: rows of `telemetry_daily`.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
pub enum ExportResolution {
    #[default]
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Csv,
    Ndjson,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Start of the range (RFC 3339, inclusive), widened to the start of its bucket.
    #[param(example = "2026-11-01T00:00:00Z")]
    from: DateTime<Utc>,
    /// End of the range (RFC 3339, exclusive), after `from`. At most 400 days for `1h`,
    /// 18262 (50 years) for `1d`.
    #[param(example = "2026-12-01T00:00:00Z")]
    to: DateTime<Utc>,
    /// Default `1h`.
    #[param(inline, example = "1h")]
    resolution: Option<ExportResolution>,
    /// Only these vehicles: up to 1000 hyphenated UUIDs, comma-separated, no spaces. Default:
    /// every vehicle.
    #[param(
        max_length = 36999,
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})*$",
        example = "5c3f1a2b-8d4e-4f6a-9b7c-2e1d0f3a4b5c"
    )]
    vehicle_ids: Option<String>,
    /// Default `csv`.
    #[param(inline, example = "ndjson")]
    format: Option<ExportFormat>,
}

const CSV_EXAMPLE: &str = "vehicle_id,bucket,points,avg_speed_kmh,max_speed_kmh,avg_fuel_pct,min_fuel_pct,distance_m,first_ts,last_ts,first_lon,first_lat,last_lon,last_lat\n\
    5c3f1a2b-8d4e-4f6a-9b7c-2e1d0f3a4b5c,2026-12-01T10:00:00Z,360,42.5,88.0,61.2,60.1,21873.4,2026-12-01T10:00:04.120Z,2026-12-01T10:59:58.870Z,10.7512,59.9107,10.9021,59.9433\n\
    5c3f1a2b-8d4e-4f6a-9b7c-2e1d0f3a4b5c,2026-12-01T11:00:00Z,12,,,,,0.0,2026-12-01T11:00:03Z,2026-12-01T11:01:01Z,10.9021,59.9433,10.9021,59.9433\n";

const NDJSON_EXAMPLE: &str = "{\"vehicle_id\":\"5c3f1a2b-8d4e-4f6a-9b7c-2e1d0f3a4b5c\",\"bucket\":\"2026-12-01T10:00:00Z\",\"points\":360,\"avg_speed_kmh\":42.5,\"max_speed_kmh\":88.0,\"avg_fuel_pct\":61.2,\"min_fuel_pct\":60.1,\"distance_m\":21873.4,\"first_ts\":\"2026-12-01T10:00:04.120Z\",\"last_ts\":\"2026-12-01T10:59:58.870Z\",\"first_lon\":10.7512,\"first_lat\":59.9107,\"last_lon\":10.9021,\"last_lat\":59.9433}\n";

/// The fleet's hourly or daily rollup rows over `[from, to)`, streamed.
///
/// Rows `vehicle_id, bucket, points, avg_speed_kmh, max_speed_kmh, avg_fuel_pct, min_fuel_pct,
/// distance_m, first_ts, last_ts, first_lon, first_lat, last_lon, last_lat`, ordered by
/// `(bucket, vehicle_id)`; instants RFC 3339 UTC; a missing value is an empty CSV field or
/// JSON `null`. Only **closed** buckets exist: the rollup job writes an hour about 2 minutes
/// after it ends and a day after its last hour, and this export does not top up open buckets
/// from raw points (the track endpoint does). Send `Accept-Encoding: gzip` for a compressed
/// stream. A database failure after the first byte ends the response without its final chunk,
/// so a client sees an error, never a silently short file.
#[utoipa::path(get, path = "/v1/history", operation_id = "history_export", tag = "history", security(("bearer" = [])),
    params(ExportParams),
    responses((status = 200, description = "The rows, in the asked `format`", content(
                  (String = "text/csv", example = json!(CSV_EXAMPLE)),
                  (String = "application/x-ndjson", example = json!(NDJSON_EXAMPLE))),
                  headers(("Content-Disposition" = String, description = "`attachment; filename=\"history-1h-….csv\"`"))),
              (status = 400, description = "`from`/`to` missing or not RFC 3339, an unknown `resolution` or `format`, a `vehicle_ids` item that is not a UUID (named)", body = ErrorBody),
              (status = 404, description = "A `vehicle_ids` item that is no vehicle (named)", body = ErrorBody),
              (status = 422, description = "`from` not before `to` (`invalid`), more than 1000 `vehicle_ids` (`invalid`) or a range over the resolution's cap (`range_too_large`, naming the cap)", body = ErrorBody),
              (status = 503, description = "This node already streams its maximum of concurrent exports (4); retry later", body = ErrorBody)))]
pub async fn history(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ExportParams>,
) -> Result<Response, ApiError> {
    caller.require(Role::ANALYSTS)?;
    let (rollup, resolution) = match q.resolution.unwrap_or_default() {
        ExportResolution::Hour => (Rollup::Hourly, "1h"),
        ExportResolution::Day => (Rollup::Daily, "1d"),
    };
    let range =
        ExportRange::new(rollup, q.from, q.to).map_err(crate::history::HistoryError::from)?;
    let vehicles = q.vehicle_ids.as_deref().map(parse_ids).transpose()?;
    let permit = s.exports.clone().try_acquire_owned().map_err(|_| {
        ApiError::Unavailable(format!(
            "this node already streams {MAX_EXPORTS} exports; retry when one ends"
        ))
    })?;
    let client = s.pool.get().await?;
    if let Some(ids) = &vehicles {
        let unknown = export::unknown_vehicles(&client, ids).await?;
        if !unknown.is_empty() {
            return Err(no_such_vehicles(&unknown));
        }
    }
    let rows = export::rows(
        client,
        &range,
        vehicles.as_ref(),
        crate::observability::export_cancelled,
    )
    .await?;
    let format = match q.format.unwrap_or_default() {
        ExportFormat::Csv => Format::Csv,
        ExportFormat::Ndjson => Format::Ndjson,
    };
    let (content_type, ext) = match format {
        Format::Csv => ("text/csv", "csv"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ");
    let filename = format!(
        "attachment; filename=\"history-{resolution}-{}-{}.{ext}\"",
        stamp(range.from),
        stamp(range.to)
    );
    let body = Body::from_stream(Encoded::new(rows, format, resolution, permit));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        body,
    )
        .into_response())
}

/// A malformed id list is a 400 naming the item; too many ids a 422.
fn parse_ids(list: &str) -> Result<VehicleIds, ApiError> {
    VehicleIds::parse(list).map_err(|e| match e {
        VehicleIdsError::TooMany(_) => ApiError::Invalid(e.to_string()),
        _ => ApiError::BadRequest(e.to_string()),
    })
}

/// The 404 for ids that are no vehicle: the first named, the rest counted.
fn no_such_vehicles(unknown: &[uuid::Uuid]) -> ApiError {
    let more = match unknown.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more unknown ids)", n - 1),
    };
    ApiError::NotFound(format!("vehicle_ids: no vehicle {}{more}", unknown[0]))
}
