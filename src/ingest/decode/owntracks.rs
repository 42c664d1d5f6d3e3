//! OwnTracks phone traffic: `_type: location` becomes a point; other types are valid
//! OwnTracks chatter (transitions, LWT, cards) — acknowledged and counted, not stored.

use bytes::Bytes;
use serde::Deserialize;

use super::fields::{self, Kind};
use super::{DecodeError, Decoded, Point, Reason, Reject, Window};
use crate::domain::Timestamp;

#[derive(Deserialize)]
struct WireLocation<'a> {
    #[serde(rename = "_type", default, borrow)]
    kind: Option<&'a str>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    tst: Option<i64>,
    #[serde(default)]
    vel: Option<f64>,
    #[serde(default)]
    cog: Option<f64>,
    #[serde(default)]
    acc: Option<f64>,
}

const TYPED: &[(&str, Kind)] = &[
    ("_type", Kind::String),
    ("lat", Kind::Number),
    ("lon", Kind::Number),
    ("tst", Kind::Integer),
    ("vel", Kind::Number),
    ("cog", Kind::Number),
    ("acc", Kind::Number),
];

pub fn decode(text: &str, payload: &Bytes, window: Window, out: &mut Decoded) {
    // An empty retained message is how OwnTracks clears a topic: valid, nothing to store.
    if text.trim().is_empty() {
        out.ignored = true;
        return;
    }
    match location(text, window, &mut out.dropped) {
        Ok(Some(point)) => out.points.push(point),
        Ok(None) => out.ignored = true,
        Err(error) => out.rejects.push(Reject {
            error,
            payload: payload.clone(),
        }),
    }
}

fn location(
    text: &str,
    window: Window,
    dropped: &mut Vec<&'static str>,
) -> Result<Option<Point>, DecodeError> {
    let wire: WireLocation =
        serde_json::from_str(text).map_err(|e| fields::diagnose(text, &["_type"], TYPED, e))?;
    let unsupported = |detail: &str| DecodeError::new(Reason::OwnTracksUnsupported, detail);
    match wire.kind {
        None => return Err(unsupported("OwnTracks message without \"_type\"")),
        // We cannot decrypt; storing nothing silently would lose the point, so it is a dead letter.
        Some("encrypted") => {
            return Err(unsupported(
                "encrypted OwnTracks payloads are not supported",
            ))
        }
        Some("location") => {}
        Some(_) => return Ok(None),
    }
    let missing = |f: &str| {
        DecodeError::new(
            Reason::MissingField,
            format!("required field {f:?} is missing"),
        )
    };
    let tst = wire.tst.ok_or_else(|| missing("tst"))?;
    let ts = Timestamp::from_epoch_secs(tst)
        .map_err(|_| unsupported(&format!("tst {tst} is not a valid epoch second")))?;
    let position = fields::position(
        wire.lat.ok_or_else(|| missing("lat"))?,
        wire.lon.ok_or_else(|| missing("lon"))?,
    )?;
    let ts = fields::in_window(ts, window)?;
    Ok(Some(Point {
        ts,
        position,
        speed_kmh: fields::measurement("vel", wire.vel, 0.0, 1500.0, dropped),
        heading_deg: fields::measurement("cog", wire.cog, 0.0, 360.0, dropped),
        fuel_pct: None,
        accuracy_m: fields::measurement("acc", wire.acc, 0.0, 1.0e6, dropped),
        engine: None,
    }))
}
