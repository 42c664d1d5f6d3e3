//! Geofences: polygons (GeoJSON Features) and geodesic circles; which fences hold a point, and
//! which vehicles are inside a fence now. Dispatchers write, analysts read; admin does both.
//! Bodies are validated by `domain::geofence` (422 naming the culprit), then by PostGIS'
//! `ST_IsValidReason` (422 with its reason), so no geometry reaches the table unchecked.

use axum::extract::State;
use axum::http::StatusCode;
use deadpool_postgres::Object;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use super::page::{next_after, Limit, Page};
use super::positions::{decimal, max_age};
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::geofence::{Fence, Shape};
use crate::domain::{LatLon, Role};
use crate::geofencing::{Entry, Set};
use crate::store::geofences::{self, FenceVehicle, Loaded};

mod bodies;

pub(super) use bodies::input_schema;
pub use bodies::{FenceVehicleBody, GeofenceBody, GeofenceInput};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, replace, delete))
        .routes(routes!(vehicles))
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
            .map(|e| GeofenceBody::from(&e.row))
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
        let rows = geofences::positions_in(&client, boxes, max_age_s, after, chunk).await?;
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
