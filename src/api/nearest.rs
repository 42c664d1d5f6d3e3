//! Nearest available drivers, answered from this node's live index — no database round trip.
//! Distances are geodesic metres on WGS84; see `live::nearest` for the search.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::Query;
use super::schema::ErrorBody;
use super::{ApiError, AppState, Caller};
use crate::domain::{LatLon, Role, Timestamp};
use crate::live::nearest::NearestQuery;

const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
/// A driver whose vehicle has not reported for five minutes is not where the map says.
const DEFAULT_MAX_AGE_S: f64 = 300.0;
/// Half the length of the equator, a bit over: every point on Earth is within it.
const MAX_RADIUS_M: f64 = 20_040_000.0;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(nearest))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearestParams {
    /// Pickup latitude, −90…90.
    #[param(minimum = -90.0, maximum = 90.0, example = 40.7128)]
    lat: f64,
    /// Pickup longitude, −180…180.
    #[param(minimum = -180.0, maximum = 180.0, example = -74.006)]
    lon: f64,
    /// 1–100, default 10.
    #[param(minimum = 1, maximum = 100, default = 10, example = 5)]
    limit: Option<usize>,
    /// Only drivers within this many metres (geodesic), above 0 and at most 20,040 km;
    /// default unlimited.
    #[param(exclusive_minimum = 0.0, maximum = 20040000.0, example = 5000.0)]
    radius_m: Option<f64>,
    /// Only drivers whose position is at most this many seconds old (above 0); default 300.
    #[param(
        exclusive_minimum = 0.0,
        maximum = 315360000.0,
        default = 300.0,
        example = 120.0
    )]
    max_age_s: Option<f64>,
    /// Only vehicles of this `vehicle_type` (exact match; not empty).
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00]*$",
        example = "truck"
    )]
    vehicle_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NearestList<'a> {
    /// Nearest first.
    items: Vec<NearestDriver<'a>>,
    /// The database state the answer reflects (the live index's last refresh).
    as_of: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct NearestDriver<'a> {
    driver_id: Uuid,
    vehicle_id: Uuid,
    external_id: &'a str,
    /// Geodesic distance on WGS84, metres.
    distance_m: f64,
    lon: f64,
    lat: f64,
    /// When the vehicle reported this position.
    ts: DateTime<Utc>,
    speed_kmh: Option<f64>,
    heading_deg: Option<f64>,
}

/// The nearest drivers who can take a job now: status `available`, on a shift active now with
/// an active vehicle, not on a dispatch, and with a position fresher than `max_age_s`.
#[utoipa::path(get, path = "/v1/drivers/nearest", tag = "dispatch", security(("bearer" = [])), params(NearestParams),
    responses((status = 200, description = "Nearest first", body = NearestList),
        (status = 503, description = "This node's live index is not loaded or is behind", body = ErrorBody)))]
pub async fn nearest(
    caller: Caller,
    State(s): State<AppState>,
    Query(p): Query<NearestParams>,
) -> Result<Response, ApiError> {
    caller.require(Role::WRITERS)?;
    let query = validate(p)?;
    let as_of = s.live.current_as_of().ok_or_else(|| {
        ApiError::Unavailable("the live index is loading or has lost the database".into())
    })?;
    let hits = s.live.nearest(&query);
    let items = hits
        .iter()
        .map(|h| {
            let (shift, fix) = (&h.candidate.shift, &h.candidate.fix);
            NearestDriver {
                driver_id: shift.driver_id,
                vehicle_id: shift.vehicle_id,
                external_id: &shift.external_id,
                distance_m: h.distance_m,
                lon: fix.lon,
                lat: fix.lat,
                ts: Timestamp::from_unix_micros(fix.ts_us).to_datetime(),
                speed_kmh: fix.speed_kmh,
                heading_deg: fix.heading_deg,
            }
        })
        .collect();
    let list = NearestList {
        items,
        as_of: as_of.to_datetime(),
    };
    // Sized for the answer up front: growing the buffer was a visible share of a request.
    let mut body = Vec::with_capacity(64 + 320 * list.items.len());
    serde_json::to_writer(&mut body, &list).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn validate(p: NearestParams) -> Result<NearestQuery, ApiError> {
    let at = LatLon::new(p.lat, p.lon).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let Some(r) = p.radius_m {
        if !(r.is_finite() && r > 0.0 && r <= MAX_RADIUS_M) {
            return Err(ApiError::Invalid(format!(
                "radius_m must be a number of metres above 0 and at most {MAX_RADIUS_M}"
            )));
        }
    }
    let max_age_s = p.max_age_s.unwrap_or(DEFAULT_MAX_AGE_S);
    if !(max_age_s > 0.0 && max_age_s <= super::positions::MAX_AGE_S) {
        return Err(ApiError::Invalid(format!(
            "max_age_s must be a number of seconds above 0 and at most {}",
            super::positions::MAX_AGE_S
        )));
    }
    if p.vehicle_type.as_deref().is_some_and(str::is_empty) {
        return Err(ApiError::Invalid(
            "vehicle_type must not be empty (omit it to allow any type)".into(),
        ));
    }
    Ok(NearestQuery {
        lat: at.lat(),
        lon: at.lon(),
        limit,
        radius_m: p.radius_m,
        max_age_us: (max_age_s * 1e6).min(i64::MAX as f64) as i64,
        vehicle_type: p.vehicle_type,
        now_us: Timestamp::now().unix_micros(),
    })
}
