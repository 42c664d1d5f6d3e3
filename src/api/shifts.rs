//! Shifts: a driver on a vehicle for a time range. Overlaps for the driver or the vehicle
//! are refused by the database's exclusion constraints, race-free, and answer 409.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{self, Json, Path, Query};
use super::page::Limit;
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::Role;
use crate::store::shifts::{self, Shift};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get))
        .routes(routes!(end))
}

/// A shift as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ShiftBody {
    id: Uuid,
    driver_id: Uuid,
    vehicle_id: Uuid,
    start: DateTime<Utc>,
    /// `null` for an open-ended shift.
    end: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Shift> for ShiftBody {
    fn from(s: Shift) -> Self {
        Self {
            id: s.id,
            driver_id: s.driver_id,
            vehicle_id: s.vehicle_id,
            start: s.start,
            end: s.end,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "driver_id": example::DRIVER_ID, "vehicle_id": example::VEHICLE_ID,
    "start": "2026-12-02T06:00:00Z", "end": "2026-12-02T14:00:00Z"
})))]
pub struct NewShift {
    driver_id: Uuid,
    vehicle_id: Uuid,
    start: DateTime<Utc>,
    /// After `start`; omit for an open-ended shift.
    end: Option<DateTime<Utc>>,
}

/// Put a driver on a vehicle from `start` to `end` (exclusive).
#[utoipa::path(post, path = "/v1/shifts", operation_id = "create_shift", tag = "fleet", security(("bearer" = [])), request_body = NewShift,
    responses((status = 201, description = "The shift", body = ShiftBody),
              (status = 409, description = "The driver or the vehicle is already on an overlapping shift", body = ErrorBody),
              (status = 422, description = "`end` not after `start`, or no such driver or vehicle", body = ErrorBody)))]
pub async fn create(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<NewShift>,
) -> Result<(StatusCode, axum::Json<ShiftBody>), ApiError> {
    caller.require(Role::WRITERS)?;
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
    Ok((StatusCode::CREATED, axum::Json(shift.into())))
}

/// One shift.
#[utoipa::path(get, path = "/v1/shifts/{id}", operation_id = "get_shift", tag = "fleet", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The shift's id", example = json!(example::SHIFT_ID))),
    responses((status = 200, description = "The shift", body = ShiftBody),
              (status = 404, description = "No such shift", body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ShiftBody>, ApiError> {
    caller.require(Role::READERS)?;
    let found = shifts::get(&**s.pool.get().await?, id).await?;
    found
        .map(|s| axum::Json(s.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no shift {id}")))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"at": "2026-12-02T12:30:00Z"})))]
pub struct EndShift {
    /// When the shift ends; default now.
    at: Option<DateTime<Utc>>,
}

/// End a shift early (at `at`, default now). The body is optional.
#[utoipa::path(post, path = "/v1/shifts/{id}/end", operation_id = "end_shift", tag = "fleet", security(("bearer" = [])),
    request_body(content = Option<EndShift>, description = "Optional: no body means now"),
    params(("id" = Uuid, Path, description = "The shift's id", example = json!(example::SHIFT_ID))),
    responses((status = 200, description = "The shortened shift", body = ShiftBody),
              (status = 404, description = "No such shift", body = ErrorBody),
              (status = 409, description = "The shift is not running at `at`", body = ErrorBody)))]
pub async fn end(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> Result<axum::Json<ShiftBody>, ApiError> {
    caller.require(Role::WRITERS)?;
    // The body is optional: empty (or `null`) means "now".
    let request: EndShift = extract::optional_json(&body)?;
    let at = request.at.unwrap_or_else(Utc::now);
    let client = s.pool.get().await?;
    if let Some(shift) = shifts::end(&**client, id, at).await? {
        s.live.availability_changed().await;
        return Ok(axum::Json(shift.into()));
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
    #[param(example = json!(example::DRIVER_ID))]
    driver_id: Option<Uuid>,
    #[param(example = json!(example::VEHICLE_ID))]
    vehicle_id: Option<Uuid>,
    /// Only shifts running at this instant: an RFC 3339 date-time or `now`.
    #[param(value_type = Option<InstantOrNow>, inline, example = "now")]
    active_at: Option<String>,
    #[param(example = 20)]
    limit: Option<Limit>,
}

/// `active_at`'s schema. A type rather than `schema_with`: utoipa drops a parameter's
/// description and example when `schema_with` gives its schema.
pub struct InstantOrNow;

impl PartialSchema for InstantOrNow {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["now"])),
            )
            .into()
    }
}

impl ToSchema for InstantOrNow {}

/// Shifts, newest first; not paged (`limit` caps the answer).
#[derive(Serialize, ToSchema)]
pub struct ShiftList {
    items: Vec<ShiftBody>,
}

/// Shifts of a driver or vehicle, newest first.
#[utoipa::path(get, path = "/v1/shifts", operation_id = "list_shifts", tag = "fleet", security(("bearer" = [])), params(ShiftQuery),
    responses((status = 200, description = "Shifts, newest first", body = ShiftList)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ShiftQuery>,
) -> Result<axum::Json<ShiftList>, ApiError> {
    caller.require(Role::READERS)?;
    let active_at = match q.active_at.as_deref() {
        None => None,
        Some("now") => Some(Utc::now()),
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::BadRequest(format!("active_at: {e}")))?
                .to_utc(),
        ),
    };
    let limit = q.limit.unwrap_or_default();
    let rows = shifts::list(
        &**s.pool.get().await?,
        q.driver_id,
        q.vehicle_id,
        active_at,
        limit.get(),
    )
    .await?;
    let items = rows.into_iter().map(ShiftBody::from).collect();
    Ok(axum::Json(ShiftList { items }))
}
