//! Vehicles: register (one or in bulk), read, list, change. Dispatchers write, analysts read;
//! admin does both. Every rule a body must follow is in its schema, and checked here or by
//! the domain types (`ExternalId`, `VehicleStatus`).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use super::page::{Limit, Page};
use super::schema::{example, ErrorBody, JsonObject};
use super::{ApiError, AppState, Caller};
use crate::domain::{ExternalId, Role, VehicleStatus};
use crate::store::fleet::{self, Vehicle, VehicleFields};

/// One bulk request registers at most this many vehicles (≈ 2 MB of JSON).
const MAX_BULK: usize = 50_000;
/// Longest free-text attribute (vin, plate, make, model, type), in characters: these are
/// labels, and `vehicle_type` is indexed (a btree entry must stay far below 2,700 bytes).
const MAX_TEXT: usize = 200;
const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 2200;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_vehicle, list_vehicles))
        .routes(routes!(create_vehicles_bulk))
        .routes(routes!(get_vehicle, update_vehicle))
}

/// A vehicle as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct VehicleBody {
    id: Uuid,
    /// The device's id on the wire (`fleet/{external_id}/telemetry`).
    external_id: String,
    vin: Option<String>,
    plate: Option<String>,
    make: Option<String>,
    model: Option<String>,
    year: Option<i32>,
    vehicle_type: Option<String>,
    status: VehicleStatus,
    /// Free-form attributes (a JSON object).
    #[schema(value_type = Object)]
    specs: Box<serde_json::value::RawValue>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Vehicle> for VehicleBody {
    fn from(v: Vehicle) -> Self {
        Self {
            id: v.id,
            external_id: v.external_id,
            vin: v.vin,
            plate: v.plate,
            make: v.make,
            model: v.model,
            year: v.year,
            vehicle_type: v.vehicle_type,
            status: v.status,
            specs: v.specs,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// A new vehicle: only `external_id` is required. (Every field is listed again rather than
/// flattened from `VehicleChanges`: serde cannot refuse unknown fields through a flatten.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "external_id": "356938035643809", "vin": "4V4NC9EH5LN223481", "plate": "NY-HTK4217",
    "make": "Volvo", "model": "VNL 760", "year": 2021, "vehicle_type": "truck", "status": "active",
    "specs": {"payload_kg": 18000, "refrigerated": true}
})))]
pub struct NewVehicle {
    /// The device's id on the wire (`fleet/{external_id}/telemetry`): 1–128 characters, no
    /// whitespace, control characters, `+` or `#`. Cannot change afterwards.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x20\x7F-\xA0+#\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    external_id: String,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    vin: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    plate: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    make: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    model: Option<String>,
    #[schema(minimum = 1900, maximum = 2200)]
    #[serde(default, deserialize_with = "integral")]
    year: Option<i32>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    vehicle_type: Option<String>,
    /// `active` if absent.
    status: Option<VehicleStatus>,
    /// Free-form attributes: a JSON object (no U+0000 in its keys or text).
    #[schema(value_type = Option<JsonObject>)]
    specs: Option<serde_json::Value>,
}

impl NewVehicle {
    fn split(self) -> (String, VehicleChanges) {
        let NewVehicle {
            external_id,
            vin,
            plate,
            make,
            model,
            year,
            vehicle_type,
            status,
            specs,
        } = self;
        let changes = VehicleChanges {
            vin,
            plate,
            make,
            model,
            year,
            vehicle_type,
            status,
            specs,
        };
        (external_id, changes)
    }
}

/// A vehicle's changeable attributes; on change, absent (or `null`) fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"status": "maintenance", "plate": "NY-HTK4218"})))]
pub struct VehicleChanges {
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    vin: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    plate: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    make: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    model: Option<String>,
    #[schema(minimum = 1900, maximum = 2200)]
    #[serde(default, deserialize_with = "integral")]
    year: Option<i32>,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
    vehicle_type: Option<String>,
    status: Option<VehicleStatus>,
    /// Free-form attributes: a JSON object (no U+0000 in its keys or text).
    #[schema(value_type = Option<JsonObject>)]
    specs: Option<serde_json::Value>,
}

impl VehicleChanges {
    fn validate(self) -> Result<VehicleFields, ApiError> {
        let texts = [
            ("vin", &self.vin),
            ("plate", &self.plate),
            ("make", &self.make),
            ("model", &self.model),
            ("vehicle_type", &self.vehicle_type),
        ];
        for (field, value) in texts {
            if value.as_ref().is_some_and(|v| v.chars().count() > MAX_TEXT) {
                return Err(ApiError::Invalid(format!(
                    "{field}: at most {MAX_TEXT} characters"
                )));
            }
        }
        if self
            .year
            .is_some_and(|y| !(MIN_YEAR..=MAX_YEAR).contains(&y))
        {
            return Err(ApiError::Invalid(format!(
                "year: must be between {MIN_YEAR} and {MAX_YEAR}"
            )));
        }
        if self.specs.as_ref().is_some_and(|s| !s.is_object()) {
            return Err(ApiError::Invalid("specs: must be a JSON object".into()));
        }
        Ok(VehicleFields {
            vin: self.vin,
            plate: self.plate,
            make: self.make,
            model: self.model,
            year: self.year,
            vehicle_type: self.vehicle_type,
            status: self.status,
            specs: self.specs,
        })
    }
}

/// An integer as JSON Schema counts them: `2020.0` is one too.
fn integral<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    let n: Option<f64> = Option::deserialize(d)?;
    n.map(|n| {
        let whole = n.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&n);
        whole
            .then_some(n as i32)
            .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {n}")))
    })
    .transpose()
}

fn external_id(raw: &str) -> Result<(), ApiError> {
    ExternalId::check(raw).map_err(|e| ApiError::Invalid(format!("external_id: {e}")))
}

/// Register a vehicle (nothing but `external_id` is required).
#[utoipa::path(post, path = "/v1/vehicles", tag = "fleet", security(("bearer" = [])), request_body = NewVehicle,
    responses((status = 201, description = "Registered", body = VehicleBody),
              (status = 409, description = "`external_id` is already registered", body = ErrorBody)))]
pub async fn create_vehicle(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<NewVehicle>,
) -> Result<(StatusCode, axum::Json<VehicleBody>), ApiError> {
    caller.require(Role::WRITERS)?;
    let (id, changes) = body.split();
    external_id(&id)?;
    let fields = changes.validate()?;
    let vehicle = fleet::create_vehicle(&**s.pool.get().await?, &id, &fields).await?;
    Ok((StatusCode::CREATED, axum::Json(vehicle.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"items": [
    {"external_id": "sim-000001", "vehicle_type": "van"},
    {"external_id": "sim-000002", "vehicle_type": "van"},
    {"external_id": "sim-000003"}
]})))]
pub struct BulkVehicles {
    #[schema(min_items = 1, max_items = 50000)]
    items: Vec<BulkVehicle>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkVehicle {
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x20\x7F-\xA0+#\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$"
    )]
    external_id: String,
    #[schema(max_length = 200, pattern = r"^[^\x00]*$")]
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
    responses((status = 201, description = "Registered (or already there)", body = BulkResult)))]
pub async fn create_vehicles_bulk(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<BulkVehicles>,
) -> Result<(StatusCode, axum::Json<BulkResult>), ApiError> {
    caller.require(Role::WRITERS)?;
    if body.items.is_empty() || body.items.len() > MAX_BULK {
        return Err(ApiError::Invalid(format!(
            "items must hold 1 to {MAX_BULK} vehicles"
        )));
    }
    for (i, v) in body.items.iter().enumerate() {
        external_id(&v.external_id).map_err(|e| ApiError::Invalid(format!("items[{i}].{e}")))?;
        if v.vehicle_type
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_TEXT)
        {
            return Err(ApiError::Invalid(format!(
                "items[{i}].vehicle_type: at most {MAX_TEXT} characters"
            )));
        }
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
    params(("id" = Uuid, Path, description = "The vehicle's id", example = json!(example::VEHICLE_ID))),
    responses((status = 200, description = "The vehicle", body = VehicleBody),
              (status = 404, description = "No such vehicle", body = ErrorBody)))]
pub async fn get_vehicle(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<VehicleBody>, ApiError> {
    caller.require(Role::READERS)?;
    let found = fleet::get_vehicle(&**s.pool.get().await?, id).await?;
    found
        .map(|v| axum::Json(v.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no vehicle {id}")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(example = "active")]
    status: Option<VehicleStatus>,
    /// Exact match.
    #[param(max_length = 200, pattern = r"^[^\x00]*$", example = "truck")]
    vehicle_type: Option<String>,
    /// Return items after this id (the previous page's `next_after`).
    #[param(example = json!(example::VEHICLE_ID))]
    after: Option<Uuid>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// Vehicles, filtered by status and type, in pages.
#[utoipa::path(get, path = "/v1/vehicles", tag = "fleet", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page of vehicles, by id", body = Page<VehicleBody>)))]
pub async fn list_vehicles(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<Page<VehicleBody>>, ApiError> {
    caller.require(Role::READERS)?;
    if q.vehicle_type
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TEXT)
    {
        return Err(ApiError::Invalid(format!(
            "vehicle_type: at most {MAX_TEXT} characters"
        )));
    }
    let limit = q.limit.unwrap_or_default();
    let rows = fleet::list_vehicles(
        &**s.pool.get().await?,
        q.status,
        q.vehicle_type.as_deref(),
        q.after,
        limit.get(),
    )
    .await?;
    Ok(axum::Json(Page::of(
        rows,
        limit,
        |v| v.id,
        VehicleBody::from,
    )))
}

/// Change a vehicle's attributes; absent fields stay as they are (`external_id` cannot change).
#[utoipa::path(patch, path = "/v1/vehicles/{id}", tag = "fleet", security(("bearer" = [])), request_body = VehicleChanges,
    params(("id" = Uuid, Path, description = "The vehicle's id", example = json!(example::VEHICLE_ID))),
    responses((status = 200, description = "The changed vehicle", body = VehicleBody),
              (status = 404, description = "No such vehicle", body = ErrorBody)))]
pub async fn update_vehicle(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<VehicleChanges>,
) -> Result<axum::Json<VehicleBody>, ApiError> {
    caller.require(Role::WRITERS)?;
    let fields = body.validate()?;
    let found = fleet::update_vehicle(&**s.pool.get().await?, id, &fields).await?;
    // Status and type decide availability: the next nearest query must see the change.
    s.live.availability_changed().await;
    found
        .map(|v| axum::Json(v.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no vehicle {id}")))
}
