//! A vehicle's odometer: distance per UTC day from the rollups (issue 9, item 5), for analysts,
//! admins and dispatchers.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Path, Query};
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::track::{whole_buckets, Resolution};
use crate::domain::Role;
use crate::store::{fleet, odometer};

/// Longest range one request may cover.
const MAX_DAYS: i64 = 3_660;
/// Without `from`/`to`: the last 30 days up to now.
const DEFAULT_DAYS: i64 = 30;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(odometer))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OdometerParams {
    /// Start (RFC 3339), widened to its UTC day; default 30 days before `to`.
    #[param(example = "2026-11-01T00:00:00Z")]
    from: Option<DateTime<Utc>>,
    /// End (RFC 3339, exclusive), widened to the end of its UTC day; default now. At most
    /// 3,660 days after `from`.
    #[param(example = "2026-12-01T00:00:00Z")]
    to: Option<DateTime<Utc>>,
}

/// Distance per UTC day with points, oldest first, and their total.
#[derive(Serialize, ToSchema)]
pub struct OdometerBody {
    vehicle_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    days: Vec<OdometerDayBody>,
    /// Sum of `distance_m` over `days`.
    total_m: f64,
}

#[derive(Serialize, ToSchema)]
pub struct OdometerDayBody {
    /// The UTC day.
    #[schema(value_type = String, format = Date, example = "2026-11-30")]
    day: chrono::NaiveDate,
    /// Geodesic metres driven (see *Vehicle history: rollups*: steps between consecutive
    /// points, including the step into the day).
    distance_m: f64,
    points: i64,
    /// `false`: the day is not wholly rolled up yet; only its closed hours count so far.
    closed: bool,
}

/// A vehicle's distance per UTC day, from the hourly and daily rollups.
#[utoipa::path(get, path = "/v1/vehicles/{id}/odometer", operation_id = "vehicle_odometer", tag = "history", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The vehicle's id", example = json!(example::VEHICLE_ID)), OdometerParams),
    responses((status = 200, description = "Distance per day", body = OdometerBody),
              (status = 404, description = "No such vehicle", body = ErrorBody),
              (status = 422, description = "`from` not before `to`, or more than 3,660 days (`range_too_large`)", body = ErrorBody)))]
pub async fn odometer(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Query(q): Query<OdometerParams>,
) -> Result<Json<OdometerBody>, ApiError> {
    caller.require(Role::READERS)?;
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q
        .from
        .or_else(|| to.checked_sub_signed(TimeDelta::days(DEFAULT_DAYS)))
        .ok_or_else(|| ApiError::Invalid("`to` is too early to count 30 days back from".into()))?;
    if from >= to {
        return Err(ApiError::Invalid("`from` must be before `to`".into()));
    }
    let (from, to) = whole_buckets(Resolution::Day, from, to);
    if (to - from).num_days() > MAX_DAYS {
        return Err(ApiError::Unprocessable {
            code: "range_too_large",
            message: format!("at most {MAX_DAYS} days per request"),
        });
    }
    let client = s.pool.get().await?;
    if fleet::get_vehicle(&**client, id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no vehicle {id}")));
    }
    let days: Vec<OdometerDayBody> = odometer::days(&**client, id, from, to)
        .await?
        .into_iter()
        .map(|d| OdometerDayBody {
            day: d.day.date_naive(),
            distance_m: d.distance_m,
            points: d.points,
            closed: d.closed,
        })
        .collect();
    let total_m = days.iter().map(|d| d.distance_m).sum();
    Ok(Json(OdometerBody {
        vehicle_id: id,
        from,
        to,
        days,
        total_m,
    }))
}
