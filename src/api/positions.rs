//! Live positions: one vehicle's latest point, and every fresh vehicle inside a box as a
//! GeoJSON FeatureCollection (RFC 7946: lon/lat order; boxes may cross the antimeridian).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Path, Query};
use super::page::{next_after, Limit};
use super::schema::{example, ErrorBody};
use super::{ApiError, AppState, Caller};
use crate::domain::{LatLon, Role};
use crate::store::fleet;
use crate::store::positions_read::{self, BBox, Position};

/// Longest `max_age_s` accepted: ten years. Larger is a unit mistake, and PostgreSQL's interval
/// arithmetic would overflow long before `f64` does.
pub(super) const MAX_AGE_S: f64 = 315_360_000.0;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(of_vehicle))
        .routes(routes!(in_bbox))
}

/// A vehicle's latest position.
#[derive(Serialize, ToSchema)]
pub struct PositionBody {
    vehicle_id: Uuid,
    external_id: String,
    lon: f64,
    lat: f64,
    /// When the vehicle reported it.
    ts: DateTime<Utc>,
    speed_kmh: Option<f64>,
    heading_deg: Option<f64>,
    fuel_pct: Option<f64>,
    accuracy_m: Option<f64>,
}

impl From<Position> for PositionBody {
    fn from(p: Position) -> Self {
        Self {
            vehicle_id: p.vehicle_id,
            external_id: p.external_id,
            lon: p.lon,
            lat: p.lat,
            ts: p.ts,
            speed_kmh: p.speed_kmh,
            heading_deg: p.heading_deg,
            fuel_pct: p.fuel_pct,
            accuracy_m: p.accuracy_m,
        }
    }
}

/// A vehicle's latest position.
#[utoipa::path(get, path = "/v1/vehicles/{id}/position", operation_id = "vehicle_position", tag = "positions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The vehicle's id", example = json!(example::VEHICLE_ID))),
    responses((status = 200, description = "The latest position", body = PositionBody),
              (status = 404, description = "No such vehicle, or no position yet", body = ErrorBody)))]
pub async fn of_vehicle(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PositionBody>, ApiError> {
    caller.require(Role::READERS)?;
    let client = s.pool.get().await?;
    if let Some(p) = positions_read::of_vehicle(&**client, id).await? {
        return Ok(axum::Json(p.into()));
    }
    match fleet::get_vehicle(&**client, id).await? {
        None => Err(ApiError::NotFound(format!("no vehicle {id}"))),
        Some(_) => Err(ApiError::NotFound(format!(
            "vehicle {id} has not reported a position yet"
        ))),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BBoxQuery {
    /// `minLon,minLat,maxLon,maxLat` in decimal degrees (lon −180…180, lat −90…90,
    /// minLat ≤ maxLat); minLon > maxLon crosses the antimeridian.
    #[param(
        pattern = r"^-?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]+)?),-?(?:90(?:\.0+)?|[1-8]?[0-9](?:\.[0-9]+)?),-?(?:180(?:\.0+)?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:\.[0-9]+)?),-?(?:90(?:\.0+)?|[1-8]?[0-9](?:\.[0-9]+)?)$",
        example = "-74.05,40.68,-73.9,40.82"
    )]
    bbox: String,
    /// Only positions at most this many seconds old.
    #[param(minimum = 0.0, maximum = 315360000.0, example = 300.0)]
    max_age_s: Option<f64>,
    /// Return items after this vehicle id (the previous page's `next_after`).
    #[param(example = json!(example::VEHICLE_ID))]
    after: Option<Uuid>,
    #[param(example = 100)]
    limit: Option<Limit>,
}

#[derive(Serialize, ToSchema)]
pub struct FeatureCollection {
    /// Always `FeatureCollection`.
    #[serde(rename = "type")]
    kind: &'static str,
    features: Vec<Feature>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct Feature {
    /// Always `Feature`.
    #[serde(rename = "type")]
    kind: &'static str,
    id: Uuid,
    geometry: PointGeometry,
    properties: FeatureProperties,
}

#[derive(Serialize, ToSchema)]
pub struct PointGeometry {
    /// Always `Point`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `[lon, lat]`.
    coordinates: [f64; 2],
}

#[derive(Serialize, ToSchema)]
pub struct FeatureProperties {
    vehicle_id: Uuid,
    external_id: String,
    ts: DateTime<Utc>,
    speed_kmh: Option<f64>,
    heading_deg: Option<f64>,
}

/// Vehicles whose latest position lies inside a box (edges included), as GeoJSON.
#[utoipa::path(get, path = "/v1/positions", operation_id = "positions_in_bbox", tag = "positions", security(("bearer" = [])), params(BBoxQuery),
    responses((status = 200, description = "A page of positions, by vehicle id", body = FeatureCollection),
              (status = 422, description = "`bbox` with minLat above maxLat", body = ErrorBody)))]
pub async fn in_bbox(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<BBoxQuery>,
) -> Result<axum::Json<FeatureCollection>, ApiError> {
    caller.require(Role::READERS)?;
    let bbox = parse_bbox(&q.bbox)?;
    max_age(q.max_age_s)?;
    let limit = q.limit.unwrap_or_default();
    let rows = positions_read::in_bbox(
        &**s.pool.get().await?,
        bbox,
        q.max_age_s,
        q.after,
        limit.get(),
    )
    .await?;
    let next_after = next_after(&rows, limit, |p| p.vehicle_id);
    let features = rows
        .into_iter()
        .map(|p| Feature {
            kind: "Feature",
            id: p.vehicle_id,
            geometry: PointGeometry {
                kind: "Point",
                coordinates: [p.lon, p.lat],
            },
            properties: FeatureProperties {
                vehicle_id: p.vehicle_id,
                external_id: p.external_id,
                ts: p.ts,
                speed_kmh: p.speed_kmh,
                heading_deg: p.heading_deg,
            },
        })
        .collect();
    Ok(axum::Json(FeatureCollection {
        kind: "FeatureCollection",
        features,
        next_after,
    }))
}

/// `max_age_s` as the schema states it: 0 to `MAX_AGE_S` seconds.
pub(super) fn max_age(raw: Option<f64>) -> Result<(), ApiError> {
    if raw.is_some_and(|a| !(0.0..=MAX_AGE_S).contains(&a)) {
        return Err(ApiError::Invalid(format!(
            "max_age_s: must be between 0 and {MAX_AGE_S} seconds"
        )));
    }
    Ok(())
}

/// A decimal number as the documented patterns spell it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?` — no
/// exponent, sign `+`, spaces, `inf` or `NaN`, which `f64::from_str` would take.
pub(super) fn decimal(raw: &str) -> Option<f64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let plain = all_digits(int) && all_digits(frac) && (int == "0" || !int.starts_with('0'));
    plain.then(|| raw.parse().ok()).flatten()
}

/// `minLon,minLat,maxLon,maxLat`: malformed is 400, out of range or inverted latitudes 422.
fn parse_bbox(raw: &str) -> Result<BBox, ApiError> {
    let parts: Vec<f64> = raw
        .split(',')
        .map(decimal)
        .collect::<Option<_>>()
        .ok_or_else(|| {
            ApiError::BadRequest("bbox must be four numbers: minLon,minLat,maxLon,maxLat".into())
        })?;
    let [min_lon, min_lat, max_lon, max_lat] = parts[..] else {
        return Err(ApiError::BadRequest(
            "bbox must be four numbers: minLon,minLat,maxLon,maxLat".into(),
        ));
    };
    for (lat, lon) in [(min_lat, min_lon), (max_lat, max_lon)] {
        LatLon::new(lat, lon).map_err(|e| ApiError::Invalid(format!("bbox: {e}")))?;
    }
    if min_lat > max_lat {
        return Err(ApiError::Invalid(
            "bbox: minLat must not exceed maxLat".into(),
        ));
    }
    Ok(BBox {
        min_lon,
        min_lat,
        max_lon,
        max_lat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_parsing() {
        assert_eq!(
            parse_bbox("-74.1,40.6,-73.9,40.8").unwrap(),
            BBox {
                min_lon: -74.1,
                min_lat: 40.6,
                max_lon: -73.9,
                max_lat: 40.8
            }
        );
        assert!(
            parse_bbox("179,-20,-179,-15").is_ok(),
            "crossing the antimeridian is allowed"
        );
        for (raw, status) in [
            ("1,2,3", 400),
            ("a,b,c,d", 400),
            ("1,2,3,4,5", 400),
            ("1, 2,3,4", 400),
            ("1e1,2,3,4", 400),
            ("01,2,3,4", 400),
            ("NaN,2,3,4", 400),
            ("0,95,1,96", 422),
            ("0,10,1,5", 422),
            ("181,0,182,1", 422),
        ] {
            let got = match parse_bbox(raw) {
                Err(ApiError::BadRequest(_)) => 400,
                Err(ApiError::Invalid(_)) => 422,
                other => panic!("{raw}: {other:?}"),
            };
            assert_eq!(got, status, "{raw}");
        }
    }
}
