//! A geofence as a client sends it: a GeoJSON Feature holding a Polygon or MultiPolygon, or a
//! geodesic circle. Parsing checks structure, ranges, closure and the antimeridian here, in Rust,
//! so PostGIS only ever sees well-formed geometry and every mistake answers with a message that
//! names the ring, position and value at fault. (Self-intersection is left to PostGIS'
//! `ST_IsValidReason`, which the API asks through the store before writing.)

mod bounds;
mod error;
pub mod event;
pub mod judge;
mod settings;
#[cfg(test)]
mod tests;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{LatLon, PositionError};
pub use bounds::LonLatBox;
pub use error::{Coord, GeofenceError};
pub use settings::EventSettings;
use settings::SettingsInput;

/// Longest name, in characters (the table checks the same).
pub const MAX_NAME_CHARS: usize = 200;
/// Largest circle: 1,000 km. Anything bigger is a typo in the unit, not a fence.
pub const MAX_RADIUS_M: f64 = 1_000_000.0;
/// Most positions in one fence: validity and containment cost grow with the vertex count.
pub const MAX_POSITIONS: usize = 100_000;

/// A validated geofence: a name, a shape and how it judges events.
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    name: String,
    shape: Shape,
    settings: EventSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Area(Area),
    Circle(Circle),
}

/// One or more polygons; in each, ring 0 is the outer boundary and the others are holes.
/// Edges are straight lines in lon/lat (RFC 7946 §3.1.1), never crossing 180°.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    multi: bool,
    polygons: Vec<Vec<Vec<LatLon>>>,
}

/// Every point within `radius_m` metres of `center`, measured along the WGS84 ellipsoid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Circle {
    center: LatLon,
    radius_m: f64,
}

const FORMS: &str = "expected a GeoJSON Feature \
    {\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\"|\"MultiPolygon\",\"coordinates\":…},\"properties\":{\"name\":…}} \
    or a circle {\"name\":…,\"center\":[lon,lat],\"radius_m\":…}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureBody {
    geometry: Value,
    properties: Option<Properties>,
    // `type` is checked before this struct is read; `bbox` is standard GeoJSON and ignored.
    #[serde(rename = "type")]
    _kind: Value,
    #[serde(default, rename = "bbox")]
    _bbox: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Properties {
    name: Option<String>,
    // The event settings, spelled out: serde's `flatten` does not work with `deny_unknown_fields`.
    #[serde(default, deserialize_with = "settings::present")]
    hysteresis_m: Option<f64>,
    #[serde(default, deserialize_with = "settings::present")]
    confirm_points: Option<u32>,
    #[serde(default, deserialize_with = "settings::present")]
    dwell_s: Option<u32>,
    #[serde(default, deserialize_with = "settings::present")]
    max_accuracy_m: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CircleBody {
    name: Option<String>,
    center: Value,
    radius_m: f64,
    #[serde(default)]
    properties: SettingsInput,
}

impl Fence {
    /// Reads either body form. The caller has already parsed the JSON text (a syntax error is
    /// the caller's 400); everything here is a well-formed body that is wrong (422).
    pub fn from_json(body: Value) -> Result<Self, GeofenceError> {
        let Value::Object(obj) = &body else {
            return Err(GeofenceError::Shape(FORMS.into()));
        };
        let circle = obj.contains_key("center") || obj.contains_key("radius_m");
        // A circle may carry `properties` (its event settings); a Feature always has a type
        // or a geometry.
        if obj.contains_key("type")
            || obj.contains_key("geometry")
            || (obj.contains_key("properties") && !circle)
        {
            feature_type(obj)?;
            Self::feature(body)
        } else if circle {
            Self::circle(body)
        } else {
            Err(GeofenceError::Shape(FORMS.into()))
        }
    }

    fn feature(body: Value) -> Result<Self, GeofenceError> {
        let f: FeatureBody =
            serde_json::from_value(body).map_err(|e| GeofenceError::Shape(e.to_string()))?;
        let (raw_name, settings) = match f.properties {
            Some(p) => (
                p.name,
                SettingsInput {
                    hysteresis_m: p.hysteresis_m,
                    confirm_points: p.confirm_points,
                    dwell_s: p.dwell_s,
                    max_accuracy_m: p.max_accuracy_m,
                },
            ),
            None => (None, SettingsInput::default()),
        };
        let name = name(raw_name.as_deref(), "properties.name")?;
        let shape = Shape::Area(Area::from_geometry(&f.geometry)?);
        Ok(Fence {
            name,
            shape,
            settings: EventSettings::from_input(settings)?,
        })
    }

    fn circle(body: Value) -> Result<Self, GeofenceError> {
        let c: CircleBody =
            serde_json::from_value(body).map_err(|e| GeofenceError::Shape(e.to_string()))?;
        let name = name(c.name.as_deref(), "name")?;
        let center = position(&c.center, || "center".into())?;
        let r = c.radius_m;
        if r.is_nan() || r <= 0.0 {
            return Err(GeofenceError::RadiusNotPositive(r));
        }
        if r > MAX_RADIUS_M {
            return Err(GeofenceError::RadiusTooLarge(r));
        }
        Ok(Fence {
            name,
            shape: Shape::Circle(Circle {
                center,
                radius_m: r,
            }),
            settings: EventSettings::from_input(c.properties)?,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }

    /// `polygon` or `circle`: the stored `kind`.
    pub fn kind(&self) -> &'static str {
        match self.shape {
            Shape::Area(_) => "polygon",
            Shape::Circle(_) => "circle",
        }
    }
}

/// A body with `type` must be a Feature; a bare geometry lacks the name, so say how to wrap it.
fn feature_type(obj: &Map<String, Value>) -> Result<(), GeofenceError> {
    match obj.get("type").and_then(Value::as_str) {
        Some("Feature") => Ok(()),
        Some(t @ ("Polygon" | "MultiPolygon")) => Err(GeofenceError::Shape(format!(
            "a bare {t} has no name: wrap it as {{\"type\":\"Feature\",\"geometry\":<the {t}>,\"properties\":{{\"name\":…}}}}"
        ))),
        Some(other) => Err(GeofenceError::Shape(format!(
            "type must be \"Feature\", not {other:?}; {FORMS}"
        ))),
        None => Err(GeofenceError::Shape(format!(
            "type must be \"Feature\"; {FORMS}"
        ))),
    }
}

fn name(raw: Option<&str>, field: &'static str) -> Result<String, GeofenceError> {
    let name = raw.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(GeofenceError::MissingName(field));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(GeofenceError::NameTooLong(field));
    }
    Ok(name.to_owned())
}

impl Area {
    fn from_geometry(geometry: &Value) -> Result<Self, GeofenceError> {
        let obj = geometry.as_object().ok_or_else(|| {
            malformed(
                "geometry",
                "expected a Polygon or MultiPolygon geometry object",
            )
        })?;
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
        let multi = match kind {
            "Polygon" => false,
            "MultiPolygon" => true,
            "" => return Err(malformed("geometry", "type is missing")),
            other => return Err(GeofenceError::UnsupportedGeometry(other.to_owned())),
        };
        if let Some(key) = obj
            .keys()
            .find(|k| !["type", "coordinates", "bbox"].contains(&k.as_str()))
        {
            return Err(GeofenceError::Shape(format!(
                "unknown field `{key}` in geometry"
            )));
        }
        let coordinates = obj
            .get("coordinates")
            .ok_or_else(|| malformed("geometry", "coordinates are missing"))?;
        let polygons = if multi {
            let items = coordinates.as_array().ok_or_else(|| {
                malformed(
                    "coordinates",
                    "expected an array of polygons (arrays of rings)",
                )
            })?;
            if items.is_empty() {
                return Err(malformed(
                    "coordinates",
                    "a MultiPolygon needs at least one polygon",
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, p)| polygon(p, i))
                .collect::<Result<_, _>>()?
        } else {
            vec![polygon(coordinates, 0)?]
        };
        let area = Area { multi, polygons };
        let n = area.positions();
        if n > MAX_POSITIONS {
            return Err(GeofenceError::TooManyPositions(n));
        }
        Ok(area)
    }

    fn positions(&self) -> usize {
        self.polygons.iter().flatten().map(Vec::len).sum()
    }

    /// `Polygon` or `MultiPolygon`, as the client sent it.
    pub fn is_multi(&self) -> bool {
        self.multi
    }

    /// The polygons: each a list of rings (outer first, then holes) of closed position lists.
    pub fn polygons(&self) -> &[Vec<Vec<LatLon>>] {
        &self.polygons
    }

    /// GeoJSON text for `ST_GeomFromGeoJSON` (2D, lon/lat; altitudes are dropped).
    pub fn to_geojson(&self) -> String {
        let rings = |p: &Vec<Vec<LatLon>>| -> Value {
            p.iter()
                .map(|r| {
                    r.iter()
                        .map(|q| json!([q.lon(), q.lat()]))
                        .collect::<Value>()
                })
                .collect()
        };
        let geometry = if self.multi {
            json!({"type": "MultiPolygon", "coordinates": self.polygons.iter().map(rings).collect::<Vec<_>>()})
        } else {
            json!({"type": "Polygon", "coordinates": rings(&self.polygons[0])})
        };
        geometry.to_string()
    }
}

impl Circle {
    pub fn center(&self) -> LatLon {
        self.center
    }

    pub fn radius_m(&self) -> f64 {
        self.radius_m
    }
}

fn polygon(v: &Value, p: usize) -> Result<Vec<Vec<LatLon>>, GeofenceError> {
    let at = || format!("polygon {p}");
    let rings = v
        .as_array()
        .ok_or_else(|| malformed(&at(), "expected an array of linear rings"))?;
    if rings.is_empty() {
        return Err(malformed(
            &at(),
            "has no rings; it needs at least its outer ring",
        ));
    }
    rings
        .iter()
        .enumerate()
        .map(|(r, ring_value)| ring(ring_value, &format!("ring {r} of polygon {p}")))
        .collect()
}

/// One linear ring: every position valid, at least 4 of them, closed, and no edge jumping
/// over 180° of longitude (which in GeoJSON means it goes the long way round, through 0°).
fn ring(v: &Value, at: &str) -> Result<Vec<LatLon>, GeofenceError> {
    let items = v
        .as_array()
        .ok_or_else(|| malformed(at, "expected an array of positions"))?;
    let ring: Vec<LatLon> = items
        .iter()
        .enumerate()
        .map(|(i, p)| position(p, || format!("position {i} of {at}")))
        .collect::<Result<_, _>>()?;
    if ring.len() < 4 {
        return Err(GeofenceError::RingTooShort {
            ring: at.to_owned(),
            n: ring.len(),
        });
    }
    let (first, last) = (ring[0], ring[ring.len() - 1]);
    if first != last {
        return Err(GeofenceError::RingNotClosed {
            ring: at.to_owned(),
            first: first.into(),
            last: last.into(),
        });
    }
    if let Some(i) = (1..ring.len()).find(|&i| (ring[i].lon() - ring[i - 1].lon()).abs() > 180.0) {
        return Err(GeofenceError::CrossesAntimeridian {
            ring: at.to_owned(),
            from: i - 1,
            to: i,
            a: ring[i - 1].into(),
            b: ring[i].into(),
        });
    }
    Ok(ring)
}

/// `[lon, lat]` or `[lon, lat, altitude]`. A latitude out of range next to a longitude that
/// would be a fine latitude is most likely `[lat, lon]`, and the message says so.
fn position(v: &Value, at: impl Fn() -> String) -> Result<LatLon, GeofenceError> {
    let numbers: Option<Vec<f64>> = v
        .as_array()
        .and_then(|a| a.iter().map(Value::as_f64).collect());
    let (lon, lat) = match numbers.as_deref() {
        Some(&[lon, lat]) | Some(&[lon, lat, _]) => (lon, lat),
        _ => {
            return Err(malformed(
                &at(),
                "expected a position [lon, lat] (or [lon, lat, altitude]) of numbers",
            ))
        }
    };
    LatLon::new(lat, lon).map_err(|e| match e {
        PositionError::LatOutOfRange if lon.abs() <= 90.0 && lat.abs() <= 180.0 => {
            GeofenceError::SwappedLonLat {
                at: at(),
                position: Coord([lon, lat]),
            }
        }
        PositionError::LatOutOfRange => GeofenceError::LatOutOfRange { at: at(), lat },
        PositionError::LonOutOfRange => GeofenceError::LonOutOfRange { at: at(), lon },
        PositionError::LatNotFinite | PositionError::LonNotFinite => {
            malformed(&at(), "coordinates must be finite numbers")
        }
    })
}

fn malformed(at: &str, detail: &str) -> GeofenceError {
    GeofenceError::Malformed {
        at: at.to_owned(),
        detail: detail.to_owned(),
    }
}
