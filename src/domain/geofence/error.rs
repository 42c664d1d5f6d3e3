//! What can be wrong with a geofence body. Every message names the place (`position 3 of ring 0
//! of polygon 1`, `center`, `properties.name`) and the offending value, so a client can fix it
//! without guessing.

use std::fmt;

use super::{MAX_NAME_CHARS, MAX_POSITIONS, MAX_RADIUS_M};
use crate::domain::LatLon;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeofenceError {
    /// The body is not one of the two forms, or has unknown or mistyped fields.
    #[error("{0}")]
    Shape(String),
    #[error("{0} is required: a non-empty string")]
    MissingName(&'static str),
    #[error("{0} must be at most {MAX_NAME_CHARS} characters")]
    NameTooLong(&'static str),
    #[error(
        "geometry type {0} is not supported: a geofence is a Polygon or MultiPolygon \
         (or a circle: {{\"name\":…,\"center\":[lon,lat],\"radius_m\":…}})"
    )]
    UnsupportedGeometry(String),
    #[error("{at}: {detail}")]
    Malformed { at: String, detail: String },
    #[error("longitude {lon} at {at} is outside [-180, 180]")]
    LonOutOfRange { at: String, lon: f64 },
    #[error("latitude {lat} at {at} is outside [-90, 90]")]
    LatOutOfRange { at: String, lat: f64 },
    #[error(
        "{at} is {position}: latitude {} is outside [-90, 90], and the coordinates look like \
         [lat, lon]; GeoJSON wants [lon, lat]",
        position.0[1]
    )]
    SwappedLonLat { at: String, position: Coord },
    #[error(
        "{ring} has {n} positions; a linear ring needs at least 4 (the first repeated as the last)"
    )]
    RingTooShort { ring: String, n: usize },
    #[error("{ring} is not closed: first position {first} != last {last}")]
    RingNotClosed {
        ring: String,
        first: Coord,
        last: Coord,
    },
    #[error(
        "{ring} crosses the antimeridian between position {from} {a} and position {to} {b}: a \
         polygon must not cross 180°; split it there into a MultiPolygon (RFC 7946 §3.1.9)"
    )]
    CrossesAntimeridian {
        ring: String,
        from: usize,
        to: usize,
        a: Coord,
        b: Coord,
    },
    #[error("geometry has {0} positions; at most {MAX_POSITIONS} are allowed")]
    TooManyPositions(usize),
    #[error("radius_m must be greater than 0 (got {0})")]
    RadiusNotPositive(f64),
    #[error("radius_m must be at most {MAX_RADIUS_M} (1,000 km; got {0})")]
    RadiusTooLarge(f64),
    #[error("properties.{field} {rule}")]
    Setting { field: &'static str, rule: String },
}

/// A position as GeoJSON writes it, `[lon, lat]`, for messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coord(pub [f64; 2]);

impl fmt::Display for Coord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.0[0], self.0[1])
    }
}

impl From<LatLon> for Coord {
    fn from(p: LatLon) -> Self {
        Coord([p.lon(), p.lat()])
    }
}
