//! Turns one MQTT message into points to store and rejects to dead-letter.
//!
//! Good input takes a typed serde fast path; only input that fails it is parsed again,
//! generically, to say precisely what is wrong. One bad point in an array never costs
//! the good points around it: each element is decoded on its own.

mod canonical;
mod error;
mod fields;
mod owntracks;
pub mod topic;

use bytes::Bytes;

use crate::domain::{Point, Reason, Timestamp};
pub use error::DecodeError;
pub use topic::Format;

/// Most points one message may carry (the wire contract).
pub const MAX_POINTS_PER_MESSAGE: usize = 1000;

/// Something that becomes a dead letter: why, and the bytes it concerned
/// (the whole payload, or just the offending element of an array).
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub error: DecodeError,
    pub payload: Bytes,
}

/// What one message became.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The device's external id, when the topic named one.
    pub external_id: Option<Box<str>>,
    pub points: Vec<Point>,
    pub rejects: Vec<Reject>,
    /// Optional measurements dropped as invalid (field names, one entry per drop); their points
    /// are kept without them.
    pub dropped: Vec<&'static str>,
    /// Valid traffic that is not telemetry (OwnTracks `transition`, `lwt`, ...): acked, counted, not stored.
    pub ignored: bool,
}

/// The time window a point must fall in, fixed once per batch of decoding.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub oldest: Timestamp,
    pub newest: Timestamp,
}

impl Window {
    pub fn around(now: Timestamp, retention_days: i64, max_future_secs: i64) -> Self {
        Self {
            oldest: now.plus_secs(-retention_days * 86_400),
            newest: now.plus_secs(max_future_secs),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Decoder {
    pub topic_prefix: String,
    pub max_payload_bytes: usize,
}

impl Decoder {
    pub fn decode(&self, topic: &str, payload: &Bytes, window: Window) -> Decoded {
        let whole = |error: DecodeError| Reject {
            error,
            payload: payload.clone(),
        };
        let (format, id) = match topic::parse(&self.topic_prefix, topic) {
            Ok(parsed) => parsed,
            Err(e) => {
                return Decoded {
                    rejects: vec![whole(e)],
                    ..Decoded::default()
                }
            }
        };
        let mut out = Decoded {
            external_id: Some(id.into()),
            ..Decoded::default()
        };
        if payload.len() > self.max_payload_bytes {
            let detail = format!("{} bytes, limit {}", payload.len(), self.max_payload_bytes);
            out.rejects
                .push(whole(DecodeError::new(Reason::PayloadTooLarge, detail)));
            return out;
        }
        let text = match std::str::from_utf8(payload) {
            Ok(text) => text,
            Err(e) => {
                out.rejects.push(whole(DecodeError::new(
                    Reason::InvalidEncoding,
                    e.to_string(),
                )));
                return out;
            }
        };
        match format {
            Format::Canonical => canonical::decode(text, payload, window, &mut out),
            Format::OwnTracks => owntracks::decode(text, payload, window, &mut out),
        }
        out
    }
}

/// Slices `inner` (a sub-slice of `text`) out of `payload` without copying.
fn slice_of(payload: &Bytes, text: &str, inner: &str) -> Bytes {
    let start = inner.as_ptr() as usize - text.as_ptr() as usize;
    payload.slice(start..start + inner.len())
}

#[cfg(test)]
mod tests;
