//! Bodies every endpoint shares (errors, health, keys) and the wire form of domain types: the
//! API layer owns `Serialize`/`Deserialize`/`ToSchema`, so `domain/` and `store/` stay free of
//! HTTP. What handlers return and what `/openapi.json` describes are the same types.

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::domain::alert::{AlertSubject, Severity};
use crate::domain::{DriverStatus, Money, Role, VehicleStatus};
use crate::store::api_keys::ApiKey;
use crate::store::audit::Entity;

// String rules are stated as `pattern`s on the fields (utoipa takes literals there):
// `^[^\x00]*$` is text PostgreSQL can store (no U+0000, which `extract` refuses naming the
// field); `EXTERNAL_ID`'s class is `domain::ExternalId` (no control characters, whitespace or
// MQTT wildcards); `NOT_BLANK` is that plus "not only whitespace" (Unicode White_Space, as
// Rust's `str::trim`).

/// Text that is not only whitespace and holds no U+0000.
pub const NOT_BLANK: &str = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$";

/// Ids in the document's examples. One vehicle, one driver, their shift and a fence, so the
/// examples tell one story across operations (and schemathesis' examples phase sends them: an
/// id that does not exist on the node under test answers the documented 404 or 422).
pub mod example {
    pub const VEHICLE_ID: &str = "5c3f1a2b-8d4e-4f6a-9b7c-2e1d0f3a4b5c";
    pub const DRIVER_ID: &str = "7a1e2b3c-4d5e-4f60-8a9b-0c1d2e3f4a5b";
    pub const SHIFT_ID: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
    pub const GEOFENCE_ID: &str = "3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7";
    pub const JOB_ID: &str = "2b3c4d5e-6f70-4a81-92a3-b4c5d6e7f809";
    pub const DISPATCH_ID: &str = "6e5d4c3b-2a19-4f08-8e7d-6c5b4a392817";
    pub const MAINTENANCE_ID: &str = "c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f";
    pub const ALERT_ID: &str = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b";
    pub const WEBHOOK_ID: &str = "8f9e0d1c-2b3a-4c5d-9e6f-7a8b9c0d1e2f";
}

/// Free-form JSON that PostgreSQL's jsonb can store: any value, but no U+0000 in any string
/// or key, however deep. One schema for every JSON type (`pattern` applies to strings only,
/// `items` to arrays, `propertyNames`/`additionalProperties` to objects), written as JSON
/// because utoipa's typed model cannot hold it; `contract::finish` puts it in the document.
pub struct JsonValue;

/// A JSON object of free-form attributes (`JsonValue`s).
pub struct JsonObject;

/// Hand-written component schemas, by name: what utoipa's typed model cannot express.
pub fn raw_schemas() -> Vec<(&'static str, serde_json::Value)> {
    let value = "#/components/schemas/JsonValue";
    let key = serde_json::json!({"type": "string", "pattern": r"^[^\x00]*$"});
    vec![
        (
            "JsonValue",
            serde_json::json!({
                "type": ["null", "boolean", "number", "string", "array", "object"],
                "pattern": r"^[^\x00]*$",
                "items": {"$ref": value},
                "propertyNames": key,
                "additionalProperties": {"$ref": value},
            }),
        ),
        (
            "JsonObject",
            serde_json::json!({
                "type": "object",
                "propertyNames": key,
                "additionalProperties": {"$ref": value},
            }),
        ),
        ("GeofenceInput", super::geofences::input_schema()),
        (
            "LonLat",
            serde_json::json!({
                "description": "A point as `[lon, lat]` in degrees (WGS84), like GeoJSON.",
                "type": "array",
                "prefixItems": [
                    {"type": "number", "minimum": -180, "maximum": 180},
                    {"type": "number", "minimum": -90, "maximum": 90},
                ],
                "items": false,
                "minItems": 2,
                "maxItems": 2,
                "examples": [[-73.9857, 40.7484]],
            }),
        ),
    ]
}

/// A placeholder in utoipa's model for a schema from `raw_schemas`, so fields can refer to it.
macro_rules! raw_schema {
    ($t:ty) => {
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new().into()
            }
        }

        impl ToSchema for $t {}
    };
}

raw_schema!(JsonValue);
raw_schema!(JsonObject);
raw_schema!(super::geofences::GeofenceInput);
raw_schema!(LonLat);

/// `[lon, lat]` (see `raw_schemas`).
pub struct LonLat;

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `unsupported_media_type`, `invalid`, `unavailable`, `internal`; on a track,
    /// `range_too_large` (the range exceeds the resolution's cap) and `beyond_retention` (the
    /// resolution's data no longer reaches back that far).
    pub code: &'static str,
    /// What went wrong, for a human; for invalid input it names the field.
    pub message: String,
    /// On a 409 from a dispatch: why the named driver cannot take the job (`busy`, `off_duty`,
    /// `no_shift`, `vehicle_unavailable`, `wrong_vehicle_type`, `no_position`,
    /// `stale_position`) or why the job cannot be dispatched (`job_not_open`); on a refused
    /// status change, `illegal_transition`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// On a refused status change: the statuses the dispatch may go to from where it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_next: Option<Vec<&'static str>>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub checks: ReadinessChecks,
    /// Every part of the node that cannot do its job right now, with the reason.
    pub failing: Vec<FailingCheck>,
}

#[derive(Serialize, ToSchema)]
pub struct FailingCheck {
    /// Which part: e.g. `ingest_writer`, `mqtt_subscription`, `mqtt_session`.
    pub check: &'static str,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReadinessChecks {
    pub database: bool,
    pub migrations: bool,
    /// `null` on a node with ingest switched off.
    pub broker: Option<bool>,
    /// The in-memory nearest-driver index is loaded and no older than its staleness limit.
    pub live_index: bool,
    /// The in-memory geofence set is loaded and no older than its staleness limit.
    pub geofence_index: bool,
}

/// An API key as the API shows it: never the secret or its hash.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// The first characters of the key, to recognise it.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            role: k.role,
            key_prefix: k.key_prefix,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// A domain enum on the wire: its `as_str` text, parsed with `FromStr` (so an unknown value
/// is refused with the domain's message), documented as a string `enum` of every value.
macro_rules! wire_enum {
    ($t:ty, $names:expr, $doc:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                raw.parse().map_err(D::Error::custom)
            }
        }

        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some($names.iter().copied()))
                    .description(Some($doc))
                    .into()
            }
        }

        impl ToSchema for $t {}
    };
}

wire_enum!(
    VehicleStatus,
    VehicleStatus::NAMES,
    "Only `active` vehicles are offered for dispatch."
);
wire_enum!(
    DriverStatus,
    DriverStatus::NAMES,
    "Only `available` drivers are offered for dispatch; new drivers start `off_duty`."
);
wire_enum!(
    Role,
    ["admin", "dispatcher", "analyst"],
    "What a key may do: admin everything, dispatcher writes and dispatch, analyst reads."
);
wire_enum!(
    AlertSubject,
    AlertSubject::NAMES,
    "What the alert is about; `entity_id` is its id."
);
wire_enum!(
    Severity,
    Severity::NAMES,
    "How urgently someone should look."
);
wire_enum!(
    Entity,
    Entity::NAMES,
    "What an audit row is about; `entity_id` is its id."
);

/// Money on the wire: a decimal string, exact (see `domain::Money`). A JSON number is refused
/// with a message saying why, rather than rounded.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(raw) => raw.parse().map_err(D::Error::custom),
            serde_json::Value::Number(n) => Err(D::Error::custom(format!(
                "send amounts as a decimal string such as \"{n}\", not a number: money is exact"
            ))),
            other => Err(D::Error::custom(format!(
                "expected a decimal string such as \"1249.90\", got {other}"
            ))),
        }
    }
}

impl PartialSchema for Money {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(Money::PATTERN))
            .examples(["1249.90"])
            .description(Some(
                "Money, exact: a decimal string, 0 to 9999999999.99, at most 2 decimals \
                 (answers always carry 2). Not a JSON number.",
            ))
            .into()
    }
}

impl ToSchema for Money {}
