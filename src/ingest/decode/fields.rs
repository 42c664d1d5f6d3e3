//! Checks shared by every wire format: position, time window, optional measurements,
//! and the slow-path diagnosis that names exactly what is wrong with a rejected object.

use serde_json::{Map, Value};

use super::{DecodeError, Reason, Window};
use crate::domain::{LatLon, PositionError, Timestamp};

pub fn position(lat: f64, lon: f64) -> Result<LatLon, DecodeError> {
    LatLon::new(lat, lon).map_err(|e| {
        let reason = match e {
            PositionError::LatNotFinite | PositionError::LonNotFinite => Reason::NonFinite,
            PositionError::LatOutOfRange => Reason::LatOutOfRange,
            PositionError::LonOutOfRange => Reason::LonOutOfRange,
        };
        DecodeError::new(reason, format!("{e} (lat {lat}, lon {lon})"))
    })
}

pub fn in_window(ts: Timestamp, window: Window) -> Result<Timestamp, DecodeError> {
    if ts < window.oldest {
        let detail = format!(
            "{} is older than raw retention (oldest {})",
            ts.to_datetime(),
            window.oldest.to_datetime()
        );
        return Err(DecodeError::new(Reason::TimestampTooOld, detail));
    }
    if ts > window.newest {
        let detail = format!(
            "{} is ahead of the server clock beyond the allowed skew (latest {})",
            ts.to_datetime(),
            window.newest.to_datetime()
        );
        return Err(DecodeError::new(Reason::TimestampInFuture, detail));
    }
    Ok(ts)
}

/// An optional measurement outside its physical range (or not finite) is dropped to `None`,
/// and its name noted in `dropped`: many trackers send `-1` for "unknown course/speed"
/// (iOS CoreLocation's convention), and losing the whole position over an unknown heading
/// would throw away the one thing every point must carry. The writer counts the drops per
/// field (`meridian_ingest_fields_dropped_total`) once the point has committed.
pub fn measurement(
    name: &'static str,
    value: Option<f64>,
    min: f64,
    max: f64,
    dropped: &mut Vec<&'static str>,
) -> Option<f64> {
    match value {
        Some(v) if v.is_finite() && (min..=max).contains(&v) => Some(v),
        Some(_) => {
            dropped.push(name);
            None
        }
        None => None,
    }
}

/// Classifies a serde_json syntax failure: an overflowing number (`1e999`) is the only way
/// JSON can spell a non-finite value, and deserves its own reason.
pub fn syntax(e: &serde_json::Error) -> DecodeError {
    let detail = e.to_string();
    if detail.starts_with("number out of range") {
        DecodeError::new(Reason::NonFinite, detail)
    } else {
        DecodeError::new(Reason::InvalidJson, detail)
    }
}

/// The expected JSON type of a field, for diagnosis.
#[derive(Clone, Copy)]
pub enum Kind {
    Number,
    Integer,
    NumberOrString,
    Object,
    String,
}

impl Kind {
    fn matches(self, v: &Value) -> bool {
        match self {
            Kind::Number => v.is_number(),
            Kind::Integer => v.is_i64() || v.is_u64(),
            Kind::NumberOrString => v.is_number() || v.is_string(),
            Kind::Object => v.is_object(),
            Kind::String => v.is_string(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Integer => "an integer",
            Kind::NumberOrString => "a number or an RFC 3339 string",
            Kind::Object => "an object",
            Kind::String => "a string",
        }
    }
}

/// Re-parses text the fast path refused and names the first problem: not JSON, not an
/// object, a required field missing, or a field of the wrong type.
pub fn diagnose(
    text: &str,
    required: &[&str],
    typed: &[(&str, Kind)],
    fallback: serde_json::Error,
) -> DecodeError {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return syntax(&e),
    };
    let Some(obj) = value.as_object() else {
        return DecodeError::new(
            Reason::NotAnObject,
            format!("expected a JSON object, got {}", json_type(&value)),
        );
    };
    if let Some(missing) = required
        .iter()
        .find(|f| obj.get(**f).is_none_or(Value::is_null))
    {
        return DecodeError::new(
            Reason::MissingField,
            format!("required field {missing:?} is missing"),
        );
    }
    if let Some(e) = wrong_type(obj, typed) {
        return e;
    }
    DecodeError::new(Reason::InvalidJson, fallback.to_string())
}

fn wrong_type(obj: &Map<String, Value>, typed: &[(&str, Kind)]) -> Option<DecodeError> {
    typed
        .iter()
        .find_map(|(field, kind)| match obj.get(*field) {
            Some(v) if !v.is_null() && !kind.matches(v) => Some(DecodeError::new(
                Reason::WrongType,
                format!(
                    "field {field:?} must be {}, got {}",
                    kind.name(),
                    json_type(v)
                ),
            )),
            _ => None,
        })
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
