//! Live positions: one vehicle's latest point, and every fresh vehicle inside a box as a
//! GeoJSON FeatureCollection (RFC 7946: lon/lat order; boxes may cross the antimeridian).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{Path, Query};
use super::schema::ErrorBody;
use super::{ApiError, AppState, Caller};
use crate::domain::{LatLon, Role};
use crate::store::fleet;
use crate::store::positions_read::{self, BBox, Position};

const READ: &[Role] = &[Role::Dispatcher, Role::Analyst];

/// A vehicle's latest position.
#[utoipa::path(get, path = "/v1/vehicles/{id}/position", tag = "positions", security(("bearer" = [])),
    responses((status = 200, body = Position), (status = 404, description = "no such vehicle, or no position yet", body = ErrorBody)))]
pub async fn of_vehicle(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Position>, ApiError> {
    caller.require(READ)?;
    let client = s.pool.get().await?;
    if let Some(p) = positions_read::of_vehicle(&**client, id).await? {
        return Ok(axum::Json(p));
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
    /// `minLon,minLat,maxLon,maxLat`; minLon > maxLon crosses the antimeridian.
    bbox: String,
    /// Only positions at most this old.
    max_age_s: Option<f64>,
    after: Option<Uuid>,
    /// 1–1000, default 100.
    limit: Option<i64>,
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
#[utoipa::path(get, path = "/v1/positions", tag = "positions", security(("bearer" = [])), params(BBoxQuery),
    responses((status = 200, body = FeatureCollection), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn in_bbox(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<BBoxQuery>,
) -> Result<axum::Json<FeatureCollection>, ApiError> {
    caller.require(READ)?;
    let bbox = parse_bbox(&q.bbox)?;
    if q.max_age_s.is_some_and(|a| !a.is_finite() || a < 0.0) {
        return Err(ApiError::Invalid(
            "max_age_s must be a non-negative number".into(),
        ));
    }
    let limit = super::fleet::limit(q.limit)?;
    let rows =
        positions_read::in_bbox(&**s.pool.get().await?, bbox, q.max_age_s, q.after, limit).await?;
    let next_after = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|p| p.vehicle_id))
        .flatten();
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

/// `minLon,minLat,maxLon,maxLat`: malformed is 400, out of range or inverted latitudes 422.
fn parse_bbox(raw: &str) -> Result<BBox, ApiError> {
    let parts: Vec<f64> = raw
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
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
            parse_bbox("-74.1, 40.6,-73.9,40.8").unwrap(),
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
