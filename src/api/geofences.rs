//! Geofences: polygons (GeoJSON Features) and geodesic circles; which fences hold a point, and
//! which vehicles are inside a fence now. Dispatchers write, analysts read; admin does both.
//! Bodies are validated by `domain::geofence` (422 naming the culprit), then by PostGIS'
//! `ST_IsValidReason` (422 with its reason), so no geometry reaches the table unchecked.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use super::page::{next_after, Limit, Page};
use super::positions::{decimal, max_age};
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::geofence::{EventSettings, Fence, Shape};
use crate::domain::{LatLon, Role};
use crate::geofencing::{Entry, Set};
use crate::store::geofences::{self, FenceVehicle, Geofence, Loaded};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, replace, delete))
        .routes(routes!(vehicles))
}

/// A geofence as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct GeofenceBody {
    id: Uuid,
    name: String,
    /// `polygon` or `circle`.
    kind: String,
    /// GeoJSON: the Polygon or MultiPolygon as sent; for a circle, its centre as a Point
    /// (the circle itself is geodesic: draw it from `center` and `radius_m`).
    #[schema(value_type = Object)]
    geometry: Box<RawValue>,
    /// `[lon, lat]` of a circle's centre; `null` for polygons.
    center: Option<[f64; 2]>,
    /// A circle's radius in metres; `null` for polygons.
    radius_m: Option<f64>,
    /// How the fence judges enter/exit/dwell events, defaults filled in.
    properties: EventSettingsBody,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&Geofence> for GeofenceBody {
    fn from(g: &Geofence) -> Self {
        g.clone().into()
    }
}

impl From<Geofence> for GeofenceBody {
    fn from(g: Geofence) -> Self {
        Self {
            id: g.id,
            name: g.name,
            kind: g.kind,
            geometry: g.geometry,
            center: g.center,
            radius_m: g.radius_m,
            properties: g.settings.into(),
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

/// A fence's event settings. Sent in `properties` (next to `name` on a Feature; on its own
/// on a circle); what is left out takes the default.
#[derive(Serialize, ToSchema)]
pub struct EventSettingsBody {
    /// Metres a point must be past the boundary to count towards entering or leaving
    /// (default 30; 0–5000). Entering a fence too small to be that deep asks a quarter of its
    /// smaller side.
    hysteresis_m: f64,
    /// Consecutive such points that confirm a change (default 3; 1–100).
    confirm_points: u32,
    /// Seconds inside after which one `dwell` event is raised per stay (default none).
    dwell_s: Option<u32>,
    /// Points reporting a worse `accuracy_m` are ignored for events (default 100).
    max_accuracy_m: f64,
}

impl From<EventSettings> for EventSettingsBody {
    fn from(s: EventSettings) -> Self {
        Self {
            hysteresis_m: s.hysteresis_m,
            confirm_points: s.confirm_points,
            dwell_s: s.dwell_s,
            max_accuracy_m: s.max_accuracy_m,
        }
    }
}

/// A vehicle whose latest position is inside a fence.
#[derive(Serialize, ToSchema)]
pub struct FenceVehicleBody {
    vehicle_id: Uuid,
    external_id: String,
    lon: f64,
    lat: f64,
    ts: DateTime<Utc>,
}

impl From<FenceVehicle> for FenceVehicleBody {
    fn from(v: FenceVehicle) -> Self {
        Self {
            vehicle_id: v.vehicle_id,
            external_id: v.external_id,
            lon: v.lon,
            lat: v.lat,
            ts: v.ts,
        }
    }
}

/// A geofence to create or replace: a GeoJSON Feature holding a Polygon or MultiPolygon
/// (RFC 7946, `[lon, lat]`, holes allowed, rings closed, no edge across 180° — split such a
/// fence into a MultiPolygon), or a geodesic circle. Bodies are read by `domain::geofence`;
/// this schema states its structural rules. What JSON Schema cannot state (a ring closed,
/// no self-intersection, no edge across 180°, at most 100,000 positions) answers 422.
pub struct GeofenceInput;

/// `GeofenceInput`'s schema (see `schema::raw_schemas`).
pub(super) fn input_schema() -> Value {
    {
        let name = json!({"type": "string", "minLength": 1, "maxLength": 200,
            "pattern": super::schema::NOT_BLANK, "description": "1–200 characters, not only whitespace"});
        let lon = json!({"type": "number", "minimum": -180, "maximum": 180});
        let lat = json!({"type": "number", "minimum": -90, "maximum": 90});
        let position = json!({"type": "array", "prefixItems": [lon, lat, {"type": "number"}],
            "minItems": 2, "maxItems": 3, "description": "[lon, lat] or [lon, lat, altitude]"});
        let ring = json!({"type": "array", "items": position, "minItems": 4,
            "description": "closed: the last position repeats the first"});
        let polygon = json!({"type": "array", "items": ring, "minItems": 1,
            "description": "the outer ring, then holes"});
        // A GeoJSON `bbox` is read and ignored, whatever it holds.
        let any = json!({"type": ["string", "number", "boolean", "array", "object", "null"], "description": "ignored"});
        let geometry = |kind: &str, coordinates: Value| {
            json!({"type": "object", "additionalProperties": false, "required": ["type", "coordinates"],
                "properties": {"type": {"type": "string", "enum": [kind]}, "coordinates": coordinates, "bbox": any.clone()}})
        };
        let feature = json!({"title": "Feature", "type": "object", "additionalProperties": false,
        "required": ["type", "geometry", "properties"],
        "examples": [{"type": "Feature", "properties": {"name": "Midtown depot"},
            "geometry": {"type": "Polygon", "coordinates": [[[-73.995, 40.748], [-73.975, 40.748],
                [-73.975, 40.762], [-73.995, 40.762], [-73.995, 40.748]]]}}],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "geometry": {"oneOf": [
                geometry("Polygon", polygon.clone()),
                geometry("MultiPolygon", json!({"type": "array", "items": polygon, "minItems": 1})),
            ]},
            "properties": {"type": "object", "additionalProperties": false, "required": ["name"],
                "properties": settings_properties(Some(name.clone()))},
            "bbox": any
        }});
        let circle = json!({"title": "Circle", "type": "object", "additionalProperties": false,
        "required": ["name", "center", "radius_m"],
        "description": "Every point within `radius_m` metres of `center`, measured on the WGS84 ellipsoid.",
        "examples": [{"name": "JFK pickup zone", "center": [-73.7781, 40.6413], "radius_m": 1500}],
        "properties": {
            "name": name,
            "center": position,
            "radius_m": {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000,
                "description": "metres, at most 1,000 km"},
            "properties": {"type": "object", "additionalProperties": false,
                "description": "event settings", "properties": settings_properties(None)}
        }});
        json!({"oneOf": [feature, circle]})
    }
}

/// The event settings' schema (with `name` on a Feature's properties).
fn settings_properties(name: Option<Value>) -> Value {
    let mut p = json!({
        "hysteresis_m": {"type": "number", "minimum": 0, "maximum": 5000,
            "description": "metres past the boundary that count (default 30)"},
        "confirm_points": {"type": "integer", "minimum": 1, "maximum": 100,
            "description": "consecutive points that confirm a change (default 3)"},
        "dwell_s": {"type": "integer", "minimum": 1, "maximum": 2_592_000,
            "description": "seconds inside before a dwell event (default none)"},
        "max_accuracy_m": {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000,
            "description": "points less accurate than this are ignored for events (default 100)"}
    });
    if let Some(name) = name {
        p["name"] = name;
    }
    p
}

/// A body as a valid fence: the Rust checks, then PostGIS' validity check for polygons.
async fn validate(client: &Object, body: Value) -> Result<Fence, ApiError> {
    let fence = Fence::from_json(body).map_err(|e| ApiError::Invalid(e.to_string()))?;
    if let Shape::Area(area) = fence.shape() {
        if let Some(reason) = geofences::invalid_reason(&***client, area).await? {
            return Err(ApiError::Invalid(format!(
                "geometry is not valid: {reason}"
            )));
        }
    }
    Ok(fence)
}

fn no_fence(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no geofence {id}"))
}

const INVALID_SHAPE: &str = "Invalid name, radius or geometry (also what the schema cannot state: \
    an unclosed ring, a self-intersection, an edge across 180°); the message says which and where";

/// Create a geofence: a GeoJSON Feature (Polygon or MultiPolygon) or a circle.
#[utoipa::path(post, path = "/v1/geofences", operation_id = "create_geofence", tag = "geofences", security(("bearer" = [])), request_body = GeofenceInput,
    responses((status = 201, description = "The geofence", body = GeofenceBody),
              (status = 422, description = INVALID_SHAPE, body = ErrorBody)))]
pub async fn create(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<GeofenceBody>), ApiError> {
    caller.require(Role::WRITERS)?;
    let client = s.pool.get().await?;
    let fence = validate(&client, body).await?;
    let created = geofences::create(&**client, &fence).await?;
    // This node answers from its set at once; the others hear the trigger's NOTIFY.
    s.fences.apply(
        created.id,
        Some(Loaded {
            row: created.clone(),
            fence,
        }),
    );
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

/// One geofence.
#[utoipa::path(get, path = "/v1/geofences/{id}", operation_id = "get_geofence", tag = "geofences", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The geofence's id", example = json!(example::GEOFENCE_ID))),
    responses((status = 200, description = "The geofence", body = GeofenceBody),
              (status = 404, description = "No such geofence", body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<GeofenceBody>, ApiError> {
    caller.require(Role::READERS)?;
    let found = geofences::get(&**s.pool.get().await?, id).await?;
    found
        .map(|g| axum::Json(g.into()))
        .ok_or_else(|| no_fence(id))
}

/// Replace a geofence's name and shape (same body forms as create; the kind may change).
#[utoipa::path(put, path = "/v1/geofences/{id}", operation_id = "replace_geofence", tag = "geofences", security(("bearer" = [])), request_body = GeofenceInput,
    params(("id" = Uuid, Path, description = "The geofence's id", example = json!(example::GEOFENCE_ID))),
    responses((status = 200, description = "The geofence", body = GeofenceBody),
              (status = 404, description = "No such geofence", body = ErrorBody),
              (status = 422, description = INVALID_SHAPE, body = ErrorBody)))]
pub async fn replace(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<Value>,
) -> Result<axum::Json<GeofenceBody>, ApiError> {
    caller.require(Role::WRITERS)?;
    let client = s.pool.get().await?;
    let fence = validate(&client, body).await?;
    let found = geofences::replace(&**client, id, &fence).await?;
    let row = found.ok_or_else(|| no_fence(id))?;
    s.fences.apply(
        id,
        Some(Loaded {
            row: row.clone(),
            fence,
        }),
    );
    Ok(axum::Json(row.into()))
}

/// Delete a geofence.
#[utoipa::path(delete, path = "/v1/geofences/{id}", operation_id = "delete_geofence", tag = "geofences", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The geofence's id", example = json!(example::GEOFENCE_ID))),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such geofence", body = ErrorBody)))]
pub async fn delete(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::WRITERS)?;
    if geofences::delete(&**s.pool.get().await?, id).await? {
        s.fences.apply(id, None);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_fence(id))
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `lon,lat` in decimal degrees: only fences containing this point (boundaries count).
    #[param(
        pattern = r"^-?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]+)?),-?(?:90(?:\.0+)?|[1-8]?[0-9](?:\.[0-9]+)?)$",
        example = "-73.985,40.755"
    )]
    contains: Option<String>,
    /// Return items after this id (the previous page's `next_after`).
    #[param(example = json!(example::GEOFENCE_ID))]
    after: Option<Uuid>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// Geofences by id, in pages; with `contains=lon,lat` only those holding that point.
#[utoipa::path(get, path = "/v1/geofences", operation_id = "list_geofences", tag = "geofences", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page of geofences, by id", body = Page<GeofenceBody>),
              (status = 503, description = "With `contains`: this node's geofence index is loading or has lost the database", body = ErrorBody)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<Page<GeofenceBody>>, ApiError> {
    caller.require(Role::READERS)?;
    let limit = q.limit.unwrap_or_default();
    let point = q.contains.as_deref().map(parse_point).transpose()?;
    if let Some(p) = point {
        let set = fences_now(&s)?;
        let items: Vec<GeofenceBody> = set
            .containing(p)
            .into_iter()
            .filter(|e| q.after.is_none_or(|after| e.row.id > after))
            .take(limit.get() as usize)
            .map(|e| GeofenceBody::from(&*e.row))
            .collect();
        return Ok(axum::Json(Page {
            next_after: next_after(&items, limit, |b| b.id),
            items,
        }));
    }
    let rows = geofences::list(&**s.pool.get().await?, q.after, limit.get()).await?;
    Ok(axum::Json(Page::of(
        rows,
        limit,
        |f| f.id,
        GeofenceBody::from,
    )))
}

/// `lon,lat` (GeoJSON order): not two decimal numbers is 400, out of range 422.
fn parse_point(raw: &str) -> Result<LatLon, ApiError> {
    let malformed = || ApiError::BadRequest("contains must be two numbers: lon,lat".into());
    let (lon, lat) = raw.split_once(',').ok_or_else(malformed)?;
    let lon = decimal(lon).ok_or_else(malformed)?;
    let lat = decimal(lat).ok_or_else(malformed)?;
    LatLon::new(lat, lon).map_err(|e| ApiError::Invalid(format!("contains: {e}")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VehiclesParams {
    /// Only vehicles whose latest position is at most this many seconds old.
    #[param(minimum = 0.0, maximum = 315360000.0, example = 300.0)]
    max_age_s: Option<f64>,
    /// Return items after this vehicle id (the previous page's `next_after`).
    #[param(example = json!(example::VEHICLE_ID))]
    after: Option<Uuid>,
    #[param(example = 50)]
    limit: Option<Limit>,
}

/// Vehicles whose latest position is inside a geofence now (boundaries count as inside).
#[utoipa::path(get, path = "/v1/geofences/{id}/vehicles", operation_id = "geofence_vehicles", tag = "geofences", security(("bearer" = [])), params(
        ("id" = Uuid, Path, description = "The geofence's id", example = json!(example::GEOFENCE_ID)), VehiclesParams),
    responses((status = 200, description = "A page of vehicles, by vehicle id", body = Page<FenceVehicleBody>),
              (status = 404, description = "No such geofence", body = ErrorBody),
              (status = 503, description = "This node's geofence index is loading or has lost the database", body = ErrorBody)))]
pub async fn vehicles(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Query(q): Query<VehiclesParams>,
) -> Result<axum::Json<Page<FenceVehicleBody>>, ApiError> {
    caller.require(Role::READERS)?;
    max_age(q.max_age_s)?;
    let limit = q.limit.unwrap_or_default();
    let entry = fences_now(&s)?
        .get(id)
        .cloned()
        .ok_or_else(|| no_fence(id))?;
    let rows = vehicles_in(&s, &entry, q.max_age_s, q.after, limit.get()).await?;
    Ok(axum::Json(Page::of(
        rows,
        limit,
        |v| v.vehicle_id,
        FenceVehicleBody::from,
    )))
}

/// This node's fences, if they are current (see `geofencing::shared::MAX_STALENESS`).
fn fences_now(s: &AppState) -> Result<std::sync::RwLockReadGuard<'_, Set>, ApiError> {
    s.fences.current().ok_or_else(|| {
        ApiError::Unavailable("the geofence index is loading or has lost the database".into())
    })
}

/// Vehicles inside a fence held in memory: candidates from the positions' spatial index by
/// the fence's boxes, the exact test here, in id order, read in chunks until the page is full.
async fn vehicles_in(
    s: &AppState,
    entry: &Entry,
    max_age_s: Option<f64>,
    mut after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<FenceVehicle>, ApiError> {
    let Some(boxes) = geofences::probe_boxes_of(entry.fence.bounds()) else {
        return Ok(Vec::new());
    };
    let chunk = (limit * 2).max(200);
    let client = s.pool.get().await?;
    let mut out = Vec::new();
    loop {
        let rows = geofences::positions_in(&**client, boxes, max_age_s, after, chunk).await?;
        let full = rows.len() as i64 == chunk;
        after = rows.last().map(|r| r.vehicle_id);
        out.extend(
            rows.into_iter()
                .filter(|r| LatLon::new(r.lat, r.lon).is_ok_and(|p| entry.fence.contains(p))),
        );
        if out.len() as i64 >= limit || !full {
            out.truncate(limit as usize);
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_lon_lat_and_malformed_is_400_out_of_range_422() {
        let p = parse_point("18.96,69.65").unwrap();
        assert_eq!((p.lon(), p.lat()), (18.96, 69.65));
        for (raw, status) in [
            ("abc", 400),
            ("1", 400),
            ("1,2,3", 400),
            ("1,x", 400),
            ("1, 2", 400),
            ("1e1,2", 400),
            ("200,0", 422),
            ("0,95", 422),
        ] {
            let got = match parse_point(raw) {
                Err(ApiError::BadRequest(_)) => 400,
                Err(ApiError::Invalid(_)) => 422,
                other => panic!("{raw}: {other:?}"),
            };
            assert_eq!(got, status, "{raw}");
        }
    }
}
