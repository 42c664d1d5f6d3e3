//! The geofence API's bodies: a fence and its event settings as the API shows them, a vehicle
//! inside a fence, and the input schema (two forms, stated by hand: `Fence::from_json` reads
//! the body itself).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::geofence::EventSettings;
use crate::store::geofences::{FenceVehicle, Geofence};

/// A geofence as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct GeofenceBody {
    pub(super) id: Uuid,
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
pub(in crate::api) fn input_schema() -> Value {
    {
        let name = json!({"type": "string", "minLength": 1, "maxLength": 200,
            "pattern": crate::api::schema::NOT_BLANK, "description": "1–200 characters, not only whitespace"});
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
