//! The canonical payload: one point object, or an array of up to 1000 of them.

use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::fields::{self, Kind};
use super::{
    slice_of, DecodeError, Decoded, Point, Reason, Reject, Window, MAX_POINTS_PER_MESSAGE,
};
use crate::domain::{Timestamp, TimestampError};

/// The fast path. Unknown fields are ignored so devices can send more than we store.
#[derive(Deserialize)]
struct WirePoint<'a> {
    #[serde(default)]
    ts: Option<WireTs>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    speed_kmh: Option<f64>,
    #[serde(default)]
    heading_deg: Option<f64>,
    #[serde(default)]
    fuel_pct: Option<f64>,
    #[serde(default)]
    accuracy_m: Option<f64>,
    #[serde(default, borrow)]
    engine: Option<&'a RawValue>,
}

const REQUIRED: &[&str] = &["ts", "lat", "lon"];
const TYPED: &[(&str, Kind)] = &[
    ("ts", Kind::NumberOrString),
    ("lat", Kind::Number),
    ("lon", Kind::Number),
    ("speed_kmh", Kind::Number),
    ("heading_deg", Kind::Number),
    ("fuel_pct", Kind::Number),
    ("accuracy_m", Kind::Number),
    ("engine", Kind::Object),
];

/// `ts` parsed during deserialization: RFC 3339 text or epoch milliseconds.
struct WireTs(Result<Timestamp, TimestampError>);

impl<'de> Deserialize<'de> for WireTs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TsVisitor;
        impl Visitor<'_> for TsVisitor {
            type Value = WireTs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 string or epoch milliseconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WireTs, E> {
                Ok(WireTs(Timestamp::parse_rfc3339(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<WireTs, E> {
                Ok(WireTs(
                    i64::try_from(v)
                        .map_err(|_| TimestampError::BadEpoch)
                        .and_then(Timestamp::from_epoch_millis),
                ))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<WireTs, E> {
                Ok(WireTs(Timestamp::from_epoch_millis(v)))
            }
            /// JavaScript clients send integers as floats; fractions carry microseconds.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<WireTs, E> {
                let micros = (v * 1000.0).round();
                // Same bounds as integer epochs: 1970 up to the end of year 9999.
                if !(0.0..=253_402_300_799_999_000.0).contains(&micros) {
                    return Ok(WireTs(Err(TimestampError::BadEpoch)));
                }
                Ok(WireTs(Ok(Timestamp::from_unix_micros(micros as i64))))
            }
        }
        d.deserialize_any(TsVisitor)
    }
}

pub fn decode(text: &str, payload: &Bytes, window: Window, out: &mut Decoded) {
    let whole = |error| Reject {
        error,
        payload: payload.clone(),
    };
    if !text.trim_start().starts_with('[') {
        match point(text, window, &mut out.dropped) {
            Ok(p) => out.points.push(with_engine(p, payload, text)),
            Err(e) => out.rejects.push(whole(e)),
        }
        return;
    }
    let elements: Vec<&RawValue> = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return out.rejects.push(whole(fields::syntax(&e))),
    };
    if elements.is_empty() {
        return out.rejects.push(whole(DecodeError::new(
            Reason::EmptyArray,
            "the array holds no points",
        )));
    }
    if elements.len() > MAX_POINTS_PER_MESSAGE {
        let detail = format!("{} points, limit {MAX_POINTS_PER_MESSAGE}", elements.len());
        return out
            .rejects
            .push(whole(DecodeError::new(Reason::ArrayTooLong, detail)));
    }
    out.points.reserve(elements.len());
    for raw in elements {
        let raw = raw.get();
        match point(raw, window, &mut out.dropped) {
            Ok(p) => out.points.push(with_engine(p, payload, text)),
            Err(error) => out.rejects.push(Reject {
                error,
                payload: slice_of(payload, text, raw),
            }),
        }
    }
}

/// A point whose `engine` still borrows the text; turned into an owned slice of the payload.
struct Parsed<'a> {
    point: Point,
    engine: Option<&'a str>,
}

fn with_engine(p: Parsed<'_>, payload: &Bytes, text: &str) -> Point {
    let mut point = p.point;
    point.engine = p.engine.map(|raw| slice_of(payload, text, raw));
    point
}

fn point<'a>(
    text: &'a str,
    window: Window,
    dropped: &mut Vec<&'static str>,
) -> Result<Parsed<'a>, DecodeError> {
    let wire: WirePoint =
        serde_json::from_str(text).map_err(|e| fields::diagnose(text, REQUIRED, TYPED, e))?;
    let missing = |f: &str| {
        DecodeError::new(
            Reason::MissingField,
            format!("required field {f:?} is missing"),
        )
    };
    let ts = wire
        .ts
        .ok_or_else(|| missing("ts"))?
        .0
        .map_err(|e| DecodeError::new(Reason::InvalidTimestamp, e.to_string()))?;
    let position = fields::position(
        wire.lat.ok_or_else(|| missing("lat"))?,
        wire.lon.ok_or_else(|| missing("lon"))?,
    )?;
    let ts = fields::in_window(ts, window)?;
    let engine = match wire.engine.map(RawValue::get) {
        Some(raw) if !raw.starts_with('{') => {
            return Err(DecodeError::new(
                Reason::WrongType,
                "field \"engine\" must be an object",
            ));
        }
        // PostgreSQL's jsonb cannot hold NUL characters; say so instead of failing the batch.
        Some(raw) if raw.contains("\\u0000") => {
            return Err(DecodeError::new(
                Reason::UnsupportedValue,
                "\"engine\" contains \\u0000, which jsonb cannot store",
            ));
        }
        other => other,
    };
    Ok(Parsed {
        point: Point {
            ts,
            position,
            speed_kmh: fields::measurement("speed_kmh", wire.speed_kmh, 0.0, 1500.0, dropped),
            heading_deg: fields::measurement("heading_deg", wire.heading_deg, 0.0, 360.0, dropped),
            fuel_pct: fields::measurement("fuel_pct", wire.fuel_pct, 0.0, 100.0, dropped),
            accuracy_m: fields::measurement("accuracy_m", wire.accuracy_m, 0.0, 1.0e6, dropped),
            engine: None,
        },
        engine,
    })
}
