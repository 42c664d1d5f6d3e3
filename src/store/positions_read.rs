//! Reading latest positions: one vehicle's, or every fresh one inside a bounding box.
//! (Writing them is `positions`, in the ingest transaction.)

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::StoreError;

/// A vehicle's latest position, as stored.
#[derive(Debug)]
pub struct Position {
    pub vehicle_id: Uuid,
    pub external_id: String,
    pub lon: f64,
    pub lat: f64,
    pub ts: DateTime<Utc>,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
    pub fuel_pct: Option<f64>,
    pub accuracy_m: Option<f64>,
}

/// A lon/lat box as envelopes: one, or two when it crosses the antimeridian (min_lon > max_lon).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl BBox {
    fn envelopes(self) -> [(f64, f64); 2] {
        if self.min_lon <= self.max_lon {
            [(self.min_lon, self.max_lon); 2]
        } else {
            [(self.min_lon, 180.0), (-180.0, self.max_lon)]
        }
    }
}

const COLUMNS: &str = "p.vehicle_id, v.external_id, ST_X(p.location), ST_Y(p.location), p.ts, \
                       p.speed_kmh, p.heading_deg, p.fuel_pct, p.accuracy_m";

fn position(r: &Row) -> Position {
    Position {
        vehicle_id: r.get(0),
        external_id: r.get(1),
        lon: r.get(2),
        lat: r.get(3),
        ts: r.get(4),
        speed_kmh: r.get(5),
        heading_deg: r.get(6),
        fuel_pct: r.get(7),
        accuracy_m: r.get(8),
    }
}

pub async fn of_vehicle(
    c: &impl GenericClient,
    vehicle_id: Uuid,
) -> Result<Option<Position>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM vehicle_positions p JOIN vehicles v ON v.id = p.vehicle_id WHERE p.vehicle_id = $1");
    Ok(c.query_opt(&sql, &[&vehicle_id])
        .await?
        .as_ref()
        .map(position))
}

/// Positions inside `bbox` (boundaries included), fresher than `max_age_s` if given, by vehicle id.
/// `&&` against a constant envelope uses the GiST on `location`.
pub async fn in_bbox(
    c: &impl GenericClient,
    bbox: BBox,
    max_age_s: Option<f64>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Position>, StoreError> {
    let [(w1, e1), (w2, e2)] = bbox.envelopes();
    let sql = format!(
        "SELECT {COLUMNS} FROM vehicle_positions p JOIN vehicles v ON v.id = p.vehicle_id \
         WHERE (p.location && ST_MakeEnvelope($1, $3, $2, $4, 4326) OR p.location && ST_MakeEnvelope($5, $3, $6, $4, 4326)) \
         AND ($7::float8 IS NULL OR p.ts >= now() - make_interval(secs => $7)) \
         AND ($8::uuid IS NULL OR p.vehicle_id > $8) ORDER BY p.vehicle_id LIMIT $9"
    );
    let rows = c
        .query(
            &sql,
            &[
                &w1,
                &e1,
                &bbox.min_lat,
                &bbox.max_lat,
                &w2,
                &e2,
                &max_age_s,
                &after,
                &limit,
            ],
        )
        .await?;
    Ok(rows.iter().map(position).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_across_the_antimeridian_splits_in_two() {
        let b = BBox {
            min_lon: 179.0,
            min_lat: -20.0,
            max_lon: -179.0,
            max_lat: -15.0,
        };
        assert_eq!(b.envelopes(), [(179.0, 180.0), (-180.0, -179.0)]);
        let b = BBox {
            min_lon: -74.1,
            min_lat: 40.6,
            max_lon: -73.9,
            max_lat: 40.8,
        };
        assert_eq!(b.envelopes(), [(-74.1, -73.9), (-74.1, -73.9)]);
    }
}
