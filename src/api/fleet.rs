//! Fleet management: vehicles (one, bulk, list, patch) and drivers. Dispatchers write,
//! analysts read; admin does both.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use super::schema::ErrorBody;
use super::{ApiError, AppState, Caller};
use crate::domain::{ExternalId, Role};
use crate::store::fleet::{self, Driver, Vehicle, VehicleFields};

const WRITE: &[Role] = &[Role::Dispatcher];
const READ: &[Role] = &[Role::Dispatcher, Role::Analyst];
const VEHICLE_STATUSES: &[&str] = &["active", "maintenance", "inactive", "retired"];
const DRIVER_STATUSES: &[&str] = &["available", "on_job", "on_break", "off_duty", "inactive"];
/// One bulk request registers at most this many vehicles (≈ 2 MB of JSON).
const MAX_BULK: usize = 50_000;

/// A vehicle's attributes. `external_id` is required on create and cannot change afterwards.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VehicleInput {
    /// The device's id on the wire (`fleet/{external_id}/telemetry`).
    external_id: Option<String>,
    vin: Option<String>,
    plate: Option<String>,
    make: Option<String>,
    model: Option<String>,
    year: Option<i32>,
    vehicle_type: Option<String>,
    /// `active` (default), `maintenance`, `inactive` or `retired`.
    status: Option<String>,
    #[schema(value_type = Option<Object>)]
    specs: Option<serde_json::Value>,
}

impl VehicleInput {
    fn validate(self) -> Result<VehicleFields, ApiError> {
        one_of("status", self.status.as_deref(), VEHICLE_STATUSES)?;
        if self.specs.as_ref().is_some_and(|s| !s.is_object()) {
            return Err(ApiError::Invalid("specs must be a JSON object".into()));
        }
        let VehicleInput {
            vin,
            plate,
            make,
            model,
            year,
            vehicle_type,
            status,
            specs,
            ..
        } = self;
        Ok(VehicleFields {
            vin,
            plate,
            make,
            model,
            year,
            vehicle_type,
            status,
            specs,
        })
    }
}

fn one_of(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(ApiError::Invalid(format!(
            "{field} must be one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

fn external_id(raw: &str) -> Result<(), ApiError> {
    ExternalId::check(raw).map_err(|e| ApiError::Invalid(format!("external_id: {e}")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    status: Option<String>,
    vehicle_type: Option<String>,
    /// Return items after this id (the previous page's `next_after`).
    after: Option<Uuid>,
    /// 1–1000, default 100.
    limit: Option<i64>,
}

/// A page size: 1–1000, default 100.
pub(super) fn limit(raw: Option<i64>) -> Result<i64, ApiError> {
    match raw.unwrap_or(100) {
        n @ 1..=1000 => Ok(n),
        _ => Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        )),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    items: Vec<T>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<Uuid>,
}

fn page<T: ToSchema>(items: Vec<T>, limit: i64, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let next_after = (items.len() as i64 == limit)
        .then(|| items.last().map(&id))
        .flatten();
    Page { items, next_after }
}

/// Register a vehicle (nothing but `external_id` is required).
#[utoipa::path(post, path = "/v1/vehicles", tag = "fleet", security(("bearer" = [])), request_body = VehicleInput,
    responses((status = 201, body = Vehicle), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_vehicle(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<VehicleInput>,
) -> Result<(StatusCode, axum::Json<Vehicle>), ApiError> {
    caller.require(WRITE)?;
    let id = body
        .external_id
        .clone()
        .ok_or_else(|| ApiError::Invalid("external_id is required".into()))?;
    external_id(&id)?;
    let fields = body.validate()?;
    let vehicle = fleet::create_vehicle(&**s.pool.get().await?, &id, &fields).await?;
    Ok((StatusCode::CREATED, axum::Json(vehicle)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkVehicles {
    items: Vec<BulkVehicle>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkVehicle {
    external_id: String,
    vehicle_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkResult {
    /// Newly registered.
    created: u64,
    /// Already registered (left unchanged).
    existing: u64,
}

/// Register up to 50,000 vehicles in one statement; existing external ids are left alone.
#[utoipa::path(post, path = "/v1/vehicles/bulk", tag = "fleet", security(("bearer" = [])), request_body = BulkVehicles,
    responses((status = 201, body = BulkResult), (status = 422, body = ErrorBody)))]
pub async fn create_vehicles_bulk(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<BulkVehicles>,
) -> Result<(StatusCode, axum::Json<BulkResult>), ApiError> {
    caller.require(WRITE)?;
    if body.items.is_empty() || body.items.len() > MAX_BULK {
        return Err(ApiError::Invalid(format!(
            "items must hold 1 to {MAX_BULK} vehicles"
        )));
    }
    for (i, v) in body.items.iter().enumerate() {
        external_id(&v.external_id).map_err(|e| ApiError::Invalid(format!("items[{i}]: {e}")))?;
    }
    let ids: Vec<&str> = body.items.iter().map(|v| v.external_id.as_str()).collect();
    let types: Vec<Option<&str>> = body
        .items
        .iter()
        .map(|v| v.vehicle_type.as_deref())
        .collect();
    let created = fleet::create_vehicles_bulk(&**s.pool.get().await?, &ids, &types).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(BulkResult {
            created,
            existing: ids.len() as u64 - created,
        }),
    ))
}

/// One vehicle.
#[utoipa::path(get, path = "/v1/vehicles/{id}", tag = "fleet", security(("bearer" = [])),
    responses((status = 200, body = Vehicle), (status = 404, body = ErrorBody)))]
pub async fn get_vehicle(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vehicle>, ApiError> {
    caller.require(READ)?;
    let found = fleet::get_vehicle(&**s.pool.get().await?, id).await?;
    found
        .map(axum::Json)
        .ok_or_else(|| ApiError::NotFound(format!("no vehicle {id}")))
}

/// Vehicles, filtered by status and type, in pages.
#[utoipa::path(get, path = "/v1/vehicles", tag = "fleet", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Page<Vehicle>), (status = 400, body = ErrorBody)))]
pub async fn list_vehicles(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<Page<Vehicle>>, ApiError> {
    caller.require(READ)?;
    let n = limit(q.limit)?;
    let items = fleet::list_vehicles(
        &**s.pool.get().await?,
        q.status.as_deref(),
        q.vehicle_type.as_deref(),
        q.after,
        n,
    )
    .await?;
    Ok(axum::Json(page(items, n, |v| v.id)))
}

/// Change a vehicle's attributes; absent fields stay as they are.
#[utoipa::path(patch, path = "/v1/vehicles/{id}", tag = "fleet", security(("bearer" = [])), request_body = VehicleInput,
    responses((status = 200, body = Vehicle), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_vehicle(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<VehicleInput>,
) -> Result<axum::Json<Vehicle>, ApiError> {
    caller.require(WRITE)?;
    if body.external_id.is_some() {
        return Err(ApiError::Invalid(
            "external_id cannot change; register a new vehicle".into(),
        ));
    }
    let fields = body.validate()?;
    let found = fleet::update_vehicle(&**s.pool.get().await?, id, &fields).await?;
    // Status and type decide availability: the next nearest query must see the change.
    s.live.availability_changed().await;
    found
        .map(axum::Json)
        .ok_or_else(|| ApiError::NotFound(format!("no vehicle {id}")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DriverInput {
    name: Option<String>,
    license_number: Option<String>,
    /// `available`, `on_job`, `on_break`, `off_duty` (default on create) or `inactive`.
    status: Option<String>,
}

/// Register a driver (`name` required).
#[utoipa::path(post, path = "/v1/drivers", tag = "fleet", security(("bearer" = [])), request_body = DriverInput,
    responses((status = 201, body = Driver), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_driver(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<DriverInput>,
) -> Result<(StatusCode, axum::Json<Driver>), ApiError> {
    caller.require(WRITE)?;
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::Invalid("name is required".into()))?;
    one_of("status", body.status.as_deref(), DRIVER_STATUSES)?;
    let driver = fleet::create_driver(
        &**s.pool.get().await?,
        name,
        body.license_number.as_deref(),
        body.status.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(driver)))
}

/// One driver.
#[utoipa::path(get, path = "/v1/drivers/{id}", tag = "fleet", security(("bearer" = [])),
    responses((status = 200, body = Driver), (status = 404, body = ErrorBody)))]
pub async fn get_driver(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Driver>, ApiError> {
    caller.require(READ)?;
    let found = fleet::get_driver(&**s.pool.get().await?, id).await?;
    found
        .map(axum::Json)
        .ok_or_else(|| ApiError::NotFound(format!("no driver {id}")))
}

/// Drivers, filtered by status, in pages.
#[utoipa::path(get, path = "/v1/drivers", tag = "fleet", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Page<Driver>), (status = 400, body = ErrorBody)))]
pub async fn list_drivers(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<Page<Driver>>, ApiError> {
    caller.require(READ)?;
    let n = limit(q.limit)?;
    let items =
        fleet::list_drivers(&**s.pool.get().await?, q.status.as_deref(), q.after, n).await?;
    Ok(axum::Json(page(items, n, |d| d.id)))
}

/// Change a driver's name, licence or status (e.g. `{"status": "available"}`).
#[utoipa::path(patch, path = "/v1/drivers/{id}", tag = "fleet", security(("bearer" = [])), request_body = DriverInput,
    responses((status = 200, body = Driver), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_driver(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<DriverInput>,
) -> Result<axum::Json<Driver>, ApiError> {
    caller.require(WRITE)?;
    one_of("status", body.status.as_deref(), DRIVER_STATUSES)?;
    if body.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::Invalid("name must not be empty".into()));
    }
    let found = fleet::update_driver(
        &**s.pool.get().await?,
        id,
        body.name.as_deref(),
        body.license_number.as_deref(),
        body.status.as_deref(),
    )
    .await?;
    s.live.availability_changed().await;
    found
        .map(axum::Json)
        .ok_or_else(|| ApiError::NotFound(format!("no driver {id}")))
}
