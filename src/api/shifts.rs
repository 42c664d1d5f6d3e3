//! Shifts: a driver on a vehicle for a time range. Overlaps for the driver or the vehicle
//! are refused by the database's exclusion constraints, race-free, and answer 409.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use super::schema::ErrorBody;
use super::{ApiError, AppState, Caller};
use crate::domain::Role;
use crate::store::shifts::{self, Shift};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShift {
    driver_id: Uuid,
    vehicle_id: Uuid,
    start: DateTime<Utc>,
    /// Omit for an open-ended shift.
    end: Option<DateTime<Utc>>,
}

/// Put a driver on a vehicle from `start` to `end` (exclusive).
#[utoipa::path(post, path = "/v1/shifts", tag = "fleet", security(("bearer" = [])), request_body = NewShift,
    responses((status = 201, body = Shift), (status = 409, description = "driver or vehicle already on an overlapping shift", body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<NewShift>,
) -> Result<(StatusCode, axum::Json<Shift>), ApiError> {
    caller.require(&[Role::Dispatcher])?;
    if body.end.is_some_and(|end| end <= body.start) {
        return Err(ApiError::Invalid("end must be after start".into()));
    }
    let shift = shifts::create(
        &**s.pool.get().await?,
        body.driver_id,
        body.vehicle_id,
        body.start,
        body.end,
    )
    .await
    .map_err(|e| match ApiError::from(e) {
        ApiError::Conflict(m) if m.contains("shifts_driver") => {
            ApiError::Conflict("the driver is already on an overlapping shift".into())
        }
        ApiError::Conflict(_) => {
            ApiError::Conflict("the vehicle is already on an overlapping shift".into())
        }
        ApiError::Invalid(m) if m.contains("foreign key") => {
            ApiError::Invalid("no such driver or vehicle".into())
        }
        other => other,
    })?;
    s.live.availability_changed().await;
    Ok((StatusCode::CREATED, axum::Json(shift)))
}

/// One shift.
#[utoipa::path(get, path = "/v1/shifts/{id}", tag = "fleet", security(("bearer" = [])),
    responses((status = 200, body = Shift), (status = 404, body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Shift>, ApiError> {
    caller.require(&[Role::Dispatcher, Role::Analyst])?;
    let found = shifts::get(&**s.pool.get().await?, id).await?;
    found
        .map(axum::Json)
        .ok_or_else(|| ApiError::NotFound(format!("no shift {id}")))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EndShift {
    /// When the shift ends; default now.
    at: Option<DateTime<Utc>>,
}

/// End a shift early (at `at`, default now).
#[utoipa::path(post, path = "/v1/shifts/{id}/end", tag = "fleet", security(("bearer" = [])), request_body = EndShift,
    responses((status = 200, body = Shift), (status = 404, body = ErrorBody), (status = 409, description = "not running at that time", body = ErrorBody)))]
pub async fn end(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Shift>, ApiError> {
    caller.require(&[Role::Dispatcher])?;
    // The body is optional: empty means "now".
    let request: EndShift = if body.iter().all(u8::is_ascii_whitespace) {
        EndShift::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::Invalid(format!("body: {e}")))?
    };
    let at = request.at.unwrap_or_else(Utc::now);
    let client = s.pool.get().await?;
    if let Some(shift) = shifts::end(&**client, id, at).await? {
        s.live.availability_changed().await;
        return Ok(axum::Json(shift));
    }
    match shifts::get(&**client, id).await? {
        None => Err(ApiError::NotFound(format!("no shift {id}"))),
        Some(_) => Err(ApiError::Conflict(format!(
            "shift {id} is not running at {at}"
        ))),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShiftQuery {
    driver_id: Option<Uuid>,
    vehicle_id: Option<Uuid>,
    /// Only shifts running at this instant (`now` is accepted).
    active_at: Option<String>,
    /// 1–1000, default 100.
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ShiftList {
    items: Vec<Shift>,
}

/// Shifts of a driver or vehicle, newest first.
#[utoipa::path(get, path = "/v1/shifts", tag = "fleet", security(("bearer" = [])), params(ShiftQuery),
    responses((status = 200, body = ShiftList), (status = 400, body = ErrorBody)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ShiftQuery>,
) -> Result<axum::Json<ShiftList>, ApiError> {
    caller.require(&[Role::Dispatcher, Role::Analyst])?;
    let active_at = match q.active_at.as_deref() {
        None => None,
        Some("now") => Some(Utc::now()),
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::BadRequest(format!("active_at: {e}")))?
                .to_utc(),
        ),
    };
    let limit = super::fleet::limit(q.limit)?;
    let items = shifts::list(
        &**s.pool.get().await?,
        q.driver_id,
        q.vehicle_id,
        active_at,
        limit,
    )
    .await?;
    Ok(axum::Json(ShiftList { items }))
}
