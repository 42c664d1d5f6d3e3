//! A vehicle's track over HTTP, for analysts (and admins, dispatchers): raw points or buckets
//! over a time range, as JSON, as a GeoJSON LineString Feature (RFC 7946) or as CSV.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Path, Query};
use super::schema::{example, ErrorBody, LonLat};
use super::{ApiError, AppState, Caller};
use crate::domain::track::{RangeError, Resolution};
use crate::domain::Role;
use crate::history::{self, HistoryError, Track, TrackRequest};
use crate::store::track::TrackPoint;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(track))
}

/// `raw`: every stored point. `1m`, `5m`: buckets computed from raw points. `1h`, `1d`: the
/// hourly/daily rollups, with hours the rollup job has not closed yet computed from raw points.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
pub enum TrackResolution {
    #[serde(rename = "raw")]
    Raw,
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
}

impl From<TrackResolution> for Resolution {
    fn from(r: TrackResolution) -> Self {
        match r {
            TrackResolution::Raw => Resolution::Raw,
            TrackResolution::Minute => Resolution::Minute,
            TrackResolution::FiveMinutes => Resolution::FiveMinutes,
            TrackResolution::Hour => Resolution::Hour,
            TrackResolution::Day => Resolution::Day,
        }
    }
}

impl From<Resolution> for TrackResolution {
    fn from(r: Resolution) -> Self {
        match r {
            Resolution::Raw => TrackResolution::Raw,
            Resolution::Minute => TrackResolution::Minute,
            Resolution::FiveMinutes => TrackResolution::FiveMinutes,
            Resolution::Hour => TrackResolution::Hour,
            Resolution::Day => TrackResolution::Day,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrackFormat {
    #[default]
    Json,
    Geojson,
    Csv,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrackParams {
    /// Start of the range (RFC 3339, inclusive). Bucketed resolutions widen the range to
    /// whole buckets. Raw, 1m and 5m reach back raw retention (30 days by default), 1h one
    /// year, 1d forever.
    #[param(example = "2026-12-01T00:00:00Z")]
    from: DateTime<Utc>,
    /// End of the range (RFC 3339, exclusive), after `from`. At most 7 days for raw, 31 for
    /// 1m, 92 for 5m, 1096 (3 years) for 1h, 18262 (50 years) for 1d.
    #[param(example = "2026-12-02T00:00:00Z")]
    to: DateTime<Utc>,
    /// Default `raw`.
    #[param(inline, example = "1m")]
    resolution: Option<TrackResolution>,
    /// Simplify the line (Ramer–Douglas–Peucker) with this tolerance in metres, keeping the
    /// first and last points.
    #[param(exclusive_minimum = 0.0, example = 5.0)]
    simplify_m: Option<f64>,
    /// Default `json`.
    #[param(inline, example = "geojson")]
    format: Option<TrackFormat>,
}

/// A vehicle's track.
#[derive(Serialize, ToSchema)]
pub struct TrackBody {
    vehicle_id: Uuid,
    resolution: TrackResolution,
    /// The range the points cover (bucketed resolutions: widened to whole buckets).
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// Oldest first.
    points: Vec<TrackPointBody>,
}

/// A raw point, or a bucket: `ts` its start, `lon`/`lat` the last point in it, `speed_kmh`
/// and `fuel_pct` averages over the points that carried them.
#[derive(Serialize, ToSchema)]
pub struct TrackPointBody {
    ts: DateTime<Utc>,
    lon: f64,
    lat: f64,
    speed_kmh: Option<f64>,
    fuel_pct: Option<f64>,
    /// Raw points behind this point: 1 for a raw point.
    #[schema(minimum = 1)]
    count: i64,
}

impl From<TrackPoint> for TrackPointBody {
    fn from(p: TrackPoint) -> Self {
        Self {
            ts: p.ts,
            lon: p.lon,
            lat: p.lat,
            speed_kmh: p.speed_kmh,
            fuel_pct: p.fuel_pct,
            count: p.count,
        }
    }
}

/// The track as a GeoJSON Feature: a LineString of `[lon, lat]` with per-vertex values in
/// `properties`. One point is a `Point` (a LineString needs two positions); none is a `null`
/// geometry, valid for a Feature.
#[derive(Serialize, ToSchema)]
pub struct TrackFeature {
    /// Always `Feature`.
    #[serde(rename = "type")]
    kind: &'static str,
    #[schema(required = true)]
    geometry: Option<TrackGeometry>,
    properties: TrackProperties,
}

#[derive(Serialize, ToSchema)]
#[serde(tag = "type")]
pub enum TrackGeometry {
    LineString {
        #[schema(value_type = Vec<LonLat>, min_items = 2)]
        coordinates: Vec<[f64; 2]>,
    },
    Point {
        #[schema(value_type = LonLat)]
        coordinates: [f64; 2],
    },
}

/// Per-vertex arrays, in the geometry's order, and what was asked.
#[derive(Serialize, ToSchema)]
pub struct TrackProperties {
    vehicle_id: Uuid,
    resolution: TrackResolution,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    times: Vec<DateTime<Utc>>,
    speed_kmh: Vec<Option<f64>>,
    fuel_pct: Vec<Option<f64>>,
    count: Vec<i64>,
}

const CSV_EXAMPLE: &str = "ts,lon,lat,speed_kmh,fuel_pct,count\n\
    2026-12-01T10:00:00Z,-73.9857,40.7484,42.5,55.2,6\n\
    2026-12-01T10:01:00Z,-73.9861,40.749,,55.1,5\n";

/// A vehicle's track over `[from, to)`: raw points or buckets, oldest first.
#[utoipa::path(get, path = "/v1/vehicles/{id}/track", operation_id = "vehicle_track", tag = "history", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The vehicle's id", example = json!(example::VEHICLE_ID)), TrackParams),
    responses((status = 200, description = "The track, in the asked `format`", content(
                  (TrackBody = "application/json"),
                  (TrackFeature = "application/geo+json"),
                  (String = "text/csv", example = json!(CSV_EXAMPLE)))),
              (status = 404, description = "No such vehicle", body = ErrorBody),
              (status = 422, description = "`from` not before `to`, `simplify_m` not above 0, a range over the resolution's cap (`range_too_large`) or older than its retention (`beyond_retention`); the message names what fits", body = ErrorBody)))]
pub async fn track(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Query(q): Query<TrackParams>,
) -> Result<Response, ApiError> {
    caller.require(Role::READERS)?;
    let req = TrackRequest {
        vehicle: id,
        resolution: q.resolution.map_or(Resolution::Raw, Resolution::from),
        from: q.from,
        to: q.to,
        simplify_m: q.simplify_m,
    };
    let client = s.pool.get().await?;
    let track = history::track(&client, req, Utc::now(), s.retention).await?;
    Ok(match q.format.unwrap_or_default() {
        TrackFormat::Json => axum::Json(json_body(id, track)).into_response(),
        TrackFormat::Geojson => (
            [(header::CONTENT_TYPE, "application/geo+json")],
            axum::Json(feature(id, track)),
        )
            .into_response(),
        TrackFormat::Csv => {
            ([(header::CONTENT_TYPE, "text/csv")], csv(&track.points)).into_response()
        }
    })
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        let message = e.to_string();
        match e {
            HistoryError::Tolerance => ApiError::Invalid(message),
            HistoryError::Range(RangeError::Empty { .. }) => ApiError::Invalid(message),
            HistoryError::Range(RangeError::TooLarge { .. }) | HistoryError::TooManyPoints => {
                ApiError::Unprocessable {
                    code: "range_too_large",
                    message,
                }
            }
            HistoryError::Range(RangeError::BeyondRetention { .. }) => ApiError::Unprocessable {
                code: "beyond_retention",
                message,
            },
            HistoryError::NoVehicle(_) => ApiError::NotFound(message),
            HistoryError::Store(e) => e.into(),
        }
    }
}

fn json_body(vehicle_id: Uuid, t: Track) -> TrackBody {
    TrackBody {
        vehicle_id,
        resolution: t.range.resolution.into(),
        from: t.range.from,
        to: t.range.to,
        points: t.points.into_iter().map(TrackPointBody::from).collect(),
    }
}

fn feature(vehicle_id: Uuid, t: Track) -> TrackFeature {
    let mut coordinates: Vec<[f64; 2]> = t.points.iter().map(|p| [p.lon, p.lat]).collect();
    let geometry = match coordinates.len() {
        0 => None,
        1 => Some(TrackGeometry::Point {
            coordinates: coordinates.remove(0),
        }),
        _ => Some(TrackGeometry::LineString { coordinates }),
    };
    TrackFeature {
        kind: "Feature",
        geometry,
        properties: TrackProperties {
            vehicle_id,
            resolution: t.range.resolution.into(),
            from: t.range.from,
            to: t.range.to,
            times: t.points.iter().map(|p| p.ts).collect(),
            speed_kmh: t.points.iter().map(|p| p.speed_kmh).collect(),
            fuel_pct: t.points.iter().map(|p| p.fuel_pct).collect(),
            count: t.points.iter().map(|p| p.count).collect(),
        },
    }
}

/// `ts,lon,lat,speed_kmh,fuel_pct,count`, an empty field for a missing value. No field can
/// hold a comma, quote or newline, so nothing needs quoting.
fn csv(points: &[TrackPoint]) -> String {
    let mut out = String::with_capacity(64 * (points.len() + 1));
    out.push_str("ts,lon,lat,speed_kmh,fuel_pct,count\n");
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for p in points {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            p.ts.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            p.lon,
            p.lat,
            opt(p.speed_kmh),
            opt(p.fuel_pct),
            p.count
        );
    }
    out
}
