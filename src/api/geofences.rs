//! Geofences: polygons (GeoJSON Features) and geodesic circles; which fences hold a point, and
//! which vehicles are inside a fence now. Dispatchers write, analysts read; admin does both.
//! Bodies are validated by `domain::geofence` (422 naming the culprit), then by PostGIS'
//! `ST_IsValidReason` (422 with its reason), so no geometry reaches the table unchecked.

use axum::extract::State;
use axum::http::StatusCode;
use deadpool_postgres::Object;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{Json, Path, Query};
use super::schema::ErrorBody;
use super::{ApiError, AppState, Caller};
use crate::domain::geofence::{Fence, Shape};
use crate::domain::{LatLon, Role};
use crate::store::geofences::{self, FenceVehicle, Geofence};

const WRITE: &[Role] = &[Role::Dispatcher];
const READ: &[Role] = &[Role::Dispatcher, Role::Analyst];

/// A geofence to create or replace, in one of two forms. (Documentation only: bodies are read
/// by `domain::geofence`, whose messages say exactly what is wrong.)
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum GeofenceInput {
    Feature(FeatureInput),
    Circle(CircleInput),
}

/// A GeoJSON Feature whose geometry is a Polygon or MultiPolygon (holes allowed; RFC 7946,
/// `[lon, lat]`; rings closed; no edge across 180° — split such a fence into a MultiPolygon).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct FeatureInput {
    /// `Feature`.
    #[serde(rename = "type")]
    kind: String,
    /// `{"type": "Polygon" | "MultiPolygon", "coordinates": …}`.
    #[schema(value_type = Object)]
    geometry: Value,
    properties: FeatureProperties,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct FeatureProperties {
    /// 1–200 characters.
    name: String,
}

/// Every point within `radius_m` metres of `center`, measured on the WGS84 ellipsoid.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CircleInput {
    /// 1–200 characters.
    name: String,
    /// `[lon, lat]`.
    center: [f64; 2],
    /// Greater than 0, at most 1,000,000 (1,000 km).
    radius_m: f64,
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

/// Create a geofence: a GeoJSON Feature (Polygon or MultiPolygon) or a circle.
#[utoipa::path(post, path = "/v1/geofences", tag = "geofences", security(("bearer" = [])), request_body = GeofenceInput,
    responses((status = 201, body = Geofence), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, description = "invalid geometry, radius or name; the message says which and where", body = ErrorBody)))]
pub async fn create(
    caller: Caller,
    State(s): State<AppState>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Geofence>), ApiError> {
    caller.require(WRITE)?;
    let client = s.pool.get().await?;
    let fence = validate(&client, body).await?;
    let created = geofences::create(&**client, &fence).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// One geofence.
#[utoipa::path(get, path = "/v1/geofences/{id}", tag = "geofences", security(("bearer" = [])),
    responses((status = 200, body = Geofence), (status = 404, body = ErrorBody)))]
pub async fn get(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Geofence>, ApiError> {
    caller.require(READ)?;
    let found = geofences::get(&**s.pool.get().await?, id).await?;
    found.map(axum::Json).ok_or_else(|| no_fence(id))
}

/// Replace a geofence's name and shape (same body forms as create; the kind may change).
#[utoipa::path(put, path = "/v1/geofences/{id}", tag = "geofences", security(("bearer" = [])), request_body = GeofenceInput,
    responses((status = 200, body = Geofence), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Geofence>, ApiError> {
    caller.require(WRITE)?;
    let client = s.pool.get().await?;
    let fence = validate(&client, body).await?;
    let found = geofences::replace(&**client, id, &fence).await?;
    found.map(axum::Json).ok_or_else(|| no_fence(id))
}

/// Delete a geofence.
#[utoipa::path(delete, path = "/v1/geofences/{id}", tag = "geofences", security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.require(WRITE)?;
    if geofences::delete(&**s.pool.get().await?, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_fence(id))
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `lon,lat`: only fences containing this point (boundaries count as inside).
    contains: Option<String>,
    /// Return items after this id (the previous page's `next_after`).
    after: Option<Uuid>,
    /// 1–1000, default 100.
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct GeofencePage {
    items: Vec<Geofence>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<Uuid>,
}

/// Geofences by id, in pages; with `contains=lon,lat` only those holding that point.
#[utoipa::path(get, path = "/v1/geofences", tag = "geofences", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = GeofencePage), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<GeofencePage>, ApiError> {
    caller.require(READ)?;
    let limit = super::fleet::limit(q.limit)?;
    let point = q.contains.as_deref().map(parse_point).transpose()?;
    let client = s.pool.get().await?;
    let items = match point {
        Some(p) => geofences::containing(&**client, p, q.after, limit).await?,
        None => geofences::list(&**client, q.after, limit).await?,
    };
    let next_after = next_after(&items, limit, |f| f.id);
    Ok(axum::Json(GeofencePage { items, next_after }))
}

fn next_after<T>(items: &[T], limit: i64, id: impl Fn(&T) -> Uuid) -> Option<Uuid> {
    (items.len() as i64 == limit)
        .then(|| items.last().map(id))
        .flatten()
}

/// `lon,lat` (GeoJSON order): not two numbers is 400, out of range 422.
fn parse_point(raw: &str) -> Result<LatLon, ApiError> {
    let malformed = || ApiError::BadRequest("contains must be two numbers: lon,lat".into());
    let (lon, lat) = raw.split_once(',').ok_or_else(malformed)?;
    let lon: f64 = lon.trim().parse().map_err(|_| malformed())?;
    let lat: f64 = lat.trim().parse().map_err(|_| malformed())?;
    LatLon::new(lat, lon).map_err(|e| ApiError::Invalid(format!("contains: {e}")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VehiclesParams {
    /// Only vehicles whose latest position is at most this old.
    max_age_s: Option<f64>,
    after: Option<Uuid>,
    /// 1–1000, default 100.
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FenceVehiclePage {
    items: Vec<FenceVehicle>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<Uuid>,
}

/// Vehicles whose latest position is inside a geofence now (boundaries count as inside).
#[utoipa::path(get, path = "/v1/geofences/{id}/vehicles", tag = "geofences", security(("bearer" = [])), params(VehiclesParams),
    responses((status = 200, body = FenceVehiclePage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn vehicles(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Query(q): Query<VehiclesParams>,
) -> Result<axum::Json<FenceVehiclePage>, ApiError> {
    caller.require(READ)?;
    if q.max_age_s.is_some_and(|a| !a.is_finite() || a < 0.0) {
        return Err(ApiError::Invalid(
            "max_age_s must be a non-negative number".into(),
        ));
    }
    let limit = super::fleet::limit(q.limit)?;
    let items = geofences::vehicles_inside(&**s.pool.get().await?, id, q.max_age_s, q.after, limit)
        .await?
        .ok_or_else(|| no_fence(id))?;
    let next_after = next_after(&items, limit, |v| v.vehicle_id);
    Ok(axum::Json(FenceVehiclePage { items, next_after }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_lon_lat_and_malformed_is_400_out_of_range_422() {
        let p = parse_point(" 18.96, 69.65").unwrap();
        assert_eq!((p.lon(), p.lat()), (18.96, 69.65));
        for (raw, status) in [
            ("abc", 400),
            ("1", 400),
            ("1,2,3", 400),
            ("1,x", 400),
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
