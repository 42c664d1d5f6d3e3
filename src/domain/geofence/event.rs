//! A geofence event as every consumer sees it: the API's `/v1/geofence-events`, the MQTT
//! message on `meridian/events/geofence/{fence_id}`, the webhook body and the live stream all
//! carry exactly this object, so its field names are the contract clients rely on.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// What happened between a vehicle and a fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The vehicle is now inside (confirmed past the fence's hysteresis).
    Enter,
    /// The vehicle is now outside.
    Exit,
    /// The vehicle has stayed inside for the fence's `dwell_s`.
    Dwell,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Enter, EventKind::Exit, EventKind::Dwell];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Enter => "enter",
            EventKind::Exit => "exit",
            EventKind::Dwell => "dwell",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event type must be one of enter, exit, dwell (not {0:?})")]
pub struct EventKindError(String);

impl FromStr for EventKind {
    type Err = EventKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enter" => Ok(EventKind::Enter),
            "exit" => Ok(EventKind::Exit),
            "dwell" => Ok(EventKind::Dwell),
            other => Err(EventKindError(other.to_owned())),
        }
    }
}

/// One stored event. `id` is its idempotency key: a consumer that sees an id twice (delivery
/// is at least once) has seen the same event twice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeofenceEvent {
    pub id: i64,
    pub fence_id: Uuid,
    pub vehicle_id: Uuid,
    pub external_id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The time of the point that decided it, on the device's clock.
    pub ts: DateTime<Utc>,
    pub lon: f64,
    pub lat: f64,
    /// When Meridian committed it.
    pub recorded_at: DateTime<Utc>,
}

impl GeofenceEvent {
    /// The body every channel carries (MQTT payload, webhook body, stream data).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_the_contract_names() {
        let e = GeofenceEvent {
            id: 7,
            fence_id: Uuid::nil(),
            vehicle_id: Uuid::nil(),
            external_id: "sim-1".into(),
            kind: EventKind::Enter,
            ts: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            lon: 10.5,
            lat: 59.9,
            recorded_at: DateTime::from_timestamp(1_800_000_001, 0).unwrap(),
        };
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "external_id",
                "fence_id",
                "id",
                "lat",
                "lon",
                "recorded_at",
                "ts",
                "type",
                "vehicle_id"
            ]
        );
        assert_eq!(v["type"], "enter");
        assert_eq!("dwell".parse::<EventKind>(), Ok(EventKind::Dwell));
        assert!("leave".parse::<EventKind>().is_err());
    }
}
