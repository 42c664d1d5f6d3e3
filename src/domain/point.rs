//! A validated telemetry point: what the decoder produces, the COPY encoder writes and the
//! latest-position upsert keeps. Position and time are validated types; the optional
//! measurements are already range-checked (an invalid one is dropped to `None` by the decoder).

use bytes::Bytes;

use super::{LatLon, Timestamp};

/// A validated telemetry point, ready to encode for COPY.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub ts: Timestamp,
    pub position: LatLon,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
    pub fuel_pct: Option<f64>,
    pub accuracy_m: Option<f64>,
    /// The `engine` object's JSON text, sliced from the payload without copying.
    pub engine: Option<Bytes>,
}
