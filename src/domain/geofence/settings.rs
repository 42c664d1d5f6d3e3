//! How a fence judges its events: hysteresis against GPS jitter, how many points confirm a
//! change, when a stay becomes a dwell, and which fixes are too vague to count. Each fence
//! carries its own (`properties` on a Feature or on a circle); what a client leaves out takes
//! the default, and the stored fence holds the full, effective set.

use serde::{Deserialize, Serialize};

use super::GeofenceError;

/// The most hysteresis a fence may ask for: beyond a few km it no longer describes jitter.
pub const MAX_HYSTERESIS_M: f64 = 5_000.0;
pub const MAX_CONFIRM_POINTS: u32 = 100;
/// 30 days.
pub const MAX_DWELL_S: u32 = 30 * 86_400;

/// A fence's event settings, complete (defaults filled in).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EventSettings {
    /// Metres a point must be past the boundary (inside to enter, outside to leave) to count
    /// towards a change of state. Default 30: with 15 m (1 σ) of jitter on a vehicle parked on
    /// the edge, a point lands 30 m over the line 2.3 % of the time.
    pub hysteresis_m: f64,
    /// Consecutive such points that confirm the change. Default 3: three 2 σ excursions in a
    /// row happen about once in 85,000 points (≈ once a day at 1 Hz, on the very edge).
    pub confirm_points: u32,
    /// Seconds inside after which a `dwell` event is raised (once per stay); none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dwell_s: Option<u32>,
    /// Fixes whose reported `accuracy_m` is worse than this are stored but ignored for fence
    /// state. Default 100.
    pub max_accuracy_m: f64,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            hysteresis_m: 30.0,
            confirm_points: 3,
            dwell_s: None,
            max_accuracy_m: 100.0,
        }
    }
}

/// The settings as a client may send them: every field optional (left out: the default), none
/// nullable (`null` is not a number).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingsInput {
    #[serde(default, deserialize_with = "present")]
    pub hysteresis_m: Option<f64>,
    #[serde(default, deserialize_with = "present")]
    pub confirm_points: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    pub dwell_s: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    pub max_accuracy_m: Option<f64>,
}

/// A field that, when present, must hold a value: `Option` alone would take `null` as absent.
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl EventSettings {
    pub(super) fn from_input(i: SettingsInput) -> Result<Self, GeofenceError> {
        let d = Self::default();
        let s = Self {
            hysteresis_m: i.hysteresis_m.unwrap_or(d.hysteresis_m),
            confirm_points: i.confirm_points.unwrap_or(d.confirm_points),
            dwell_s: i.dwell_s,
            max_accuracy_m: i.max_accuracy_m.unwrap_or(d.max_accuracy_m),
        };
        let bad = |field: &'static str, rule: &str| GeofenceError::Setting {
            field,
            rule: rule.to_owned(),
        };
        if !(0.0..=MAX_HYSTERESIS_M).contains(&s.hysteresis_m) {
            return Err(bad("hysteresis_m", "must be between 0 and 5000 metres"));
        }
        if !(1..=MAX_CONFIRM_POINTS).contains(&s.confirm_points) {
            return Err(bad("confirm_points", "must be between 1 and 100"));
        }
        if s.dwell_s.is_some_and(|d| !(1..=MAX_DWELL_S).contains(&d)) {
            return Err(bad(
                "dwell_s",
                "must be between 1 and 2592000 seconds (30 days)",
            ));
        }
        if !(s.max_accuracy_m > 0.0 && s.max_accuracy_m <= 1.0e6) {
            return Err(bad(
                "max_accuracy_m",
                "must be above 0 and at most 1000000 metres",
            ));
        }
        Ok(s)
    }

    /// The stored form (`geofences.properties`), read back by `from_stored`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("settings serialize")
    }

    /// Reads what `to_json` stored; anything missing or unreadable takes the default (a fence
    /// written before settings existed has `{}`).
    pub fn from_stored(v: &serde_json::Value) -> Self {
        let d = Self::default();
        let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        let u = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
        };
        Self {
            hysteresis_m: f("hysteresis_m").unwrap_or(d.hysteresis_m),
            confirm_points: u("confirm_points").unwrap_or(d.confirm_points).max(1),
            dwell_s: u("dwell_s"),
            max_accuracy_m: f("max_accuracy_m").unwrap_or(d.max_accuracy_m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_ranges_are_checked() {
        let s = EventSettings::from_input(SettingsInput {
            dwell_s: Some(600),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.hysteresis_m, 30.0);
        assert_eq!(s.dwell_s, Some(600));
        assert_eq!(EventSettings::from_stored(&s.to_json()), s);
        assert_eq!(
            EventSettings::from_stored(&serde_json::json!({})),
            EventSettings::default()
        );
        let null: Result<SettingsInput, _> =
            serde_json::from_value(serde_json::json!({"max_accuracy_m": null}));
        assert!(null.is_err(), "null is not a number");
        for bad in [
            SettingsInput {
                hysteresis_m: Some(-1.0),
                ..Default::default()
            },
            SettingsInput {
                confirm_points: Some(0),
                ..Default::default()
            },
            SettingsInput {
                dwell_s: Some(0),
                ..Default::default()
            },
            SettingsInput {
                max_accuracy_m: Some(f64::NAN),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                EventSettings::from_input(bad),
                Err(GeofenceError::Setting { .. })
            ));
        }
    }
}
