//! The box (or two boxes, across 180°) that surely holds a geodesic circle. It is stored as the
//! fence's `bounds`, under the GiST index every spatial query prefilters with: the exact
//! geodesic test (`ST_DWithin` on geography) cannot use a geometry index by itself.

use serde_json::{json, Value};

use super::Circle;

/// The smallest radius of curvature of the WGS84 ellipsoid: the meridian's at the equator,
/// a(1 − e²). Turning metres into an angle with the smallest radius overestimates the angle,
/// so the box errs on the large side wherever it is.
const MIN_RADIUS_OF_CURVATURE_M: f64 = 6_335_439.0;
/// Slack on top of that, for the sphere-vs-ellipsoid difference in the longitude formula
/// (well under 1 %) and for rounding: 2 % plus 10 m.
const MARGIN_FACTOR: f64 = 1.02;
const MARGIN_M: f64 = 10.0;

/// A lon/lat box that does not cross 180° (`west <= east`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LonLatBox {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

impl LonLatBox {
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        (self.west..=self.east).contains(&lon) && (self.south..=self.north).contains(&lat)
    }
}

impl Circle {
    /// One box, or two when the circle crosses the antimeridian (one each side of 180°).
    ///
    /// Latitude reach is the angular radius δ. Longitude reach is asin(sin δ / cos φ), the
    /// offset of the point where the circle touches a meridian — at high latitude that point
    /// lies poleward of the centre, not due east or west of it. When sin δ ≥ cos φ the circle
    /// holds a pole and spans every longitude.
    pub fn bounds(&self) -> Vec<LonLatBox> {
        let delta = (self.radius_m * MARGIN_FACTOR + MARGIN_M) / MIN_RADIUS_OF_CURVATURE_M;
        let (lon, lat) = (self.center.lon(), self.center.lat().to_radians());
        let south = (lat - delta).to_degrees().max(-90.0);
        let north = (lat + delta).to_degrees().min(90.0);
        let reach = delta.sin() / lat.cos();
        if reach >= 1.0 || north >= 90.0 || south <= -90.0 {
            return vec![LonLatBox {
                west: -180.0,
                south,
                east: 180.0,
                north,
            }];
        }
        let half = reach.asin().to_degrees();
        let part = |west: f64, east: f64| LonLatBox {
            west,
            south,
            east,
            north,
        };
        let (west, east) = (lon - half, lon + half);
        if west < -180.0 {
            vec![part(west + 360.0, 180.0), part(-180.0, east)]
        } else if east > 180.0 {
            vec![part(west, 180.0), part(-180.0, east - 360.0)]
        } else {
            vec![part(west, east)]
        }
    }

    /// `bounds()` as a GeoJSON MultiPolygon for `ST_GeomFromGeoJSON`.
    pub fn bounds_geojson(&self) -> String {
        let boxes: Vec<Value> = self
            .bounds()
            .iter()
            .map(|b| {
                json!([[
                    [b.west, b.south],
                    [b.east, b.south],
                    [b.east, b.north],
                    [b.west, b.north],
                    [b.west, b.south]
                ]])
            })
            .collect();
        json!({"type": "MultiPolygon", "coordinates": boxes}).to_string()
    }
}
