//! Vehicle history for analysts: a vehicle's track over a time range at a resolution, with
//! optional simplification. The range is checked against the resolution's cap and retention
//! (`domain::track`), read from raw points or rollups (`store::track`), then simplified here.

pub mod simplify;

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::ClientWrapper;
use uuid::Uuid;

use crate::domain::track::{floor, RangeError, Resolution, Retention, TrackRange, MAX_POINTS};
use crate::store::track::{self, TrackPoint};
use crate::store::{fleet, StoreError};

/// What a client asks for.
#[derive(Debug, Clone, Copy)]
pub struct TrackRequest {
    pub vehicle: Uuid,
    pub resolution: Resolution,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Simplification tolerance in metres (> 0, finite); `None` keeps every point.
    pub simplify_m: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Track {
    pub range: TrackRange,
    pub points: Vec<TrackPoint>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("simplify_m: must be a finite number of metres above 0")]
    Tolerance,
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("no vehicle {0}")]
    NoVehicle(Uuid),
    #[error(
        "more than {MAX_POINTS} raw points in this range; ask for a shorter range or resolution 1m"
    )]
    TooManyPoints,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The track `req` asks for, as of `now`, with each source kept as `retention` says.
pub async fn track(
    c: &ClientWrapper,
    req: TrackRequest,
    now: DateTime<Utc>,
    retention: Retention,
) -> Result<Track, HistoryError> {
    if req.simplify_m.is_some_and(|m| !(m.is_finite() && m > 0.0)) {
        return Err(HistoryError::Tolerance);
    }
    let range = TrackRange::new(req.resolution, req.from, req.to, now, retention)?;
    // Retention drops whole days: raw points are kept from the start of that UTC day.
    let raw_floor = floor(now - Duration::days(retention.raw_days), Duration::days(1));
    let limit = MAX_POINTS as i64 + 1;
    let mut points = track::read(c, req.vehicle, &range, raw_floor, limit).await?;
    if points.len() > MAX_POINTS {
        return Err(HistoryError::TooManyPoints);
    }
    // Only an empty track can be an unknown vehicle: the lookup stays off the common path.
    if points.is_empty() && fleet::get_vehicle(&**c, req.vehicle).await?.is_none() {
        return Err(HistoryError::NoVehicle(req.vehicle));
    }
    if let Some(tolerance) = req.simplify_m {
        let lon_lat: Vec<_> = points.iter().map(|p| (p.lon, p.lat)).collect();
        let mut kept = vec![false; points.len()];
        for i in simplify::keep(&lon_lat, tolerance) {
            kept[i] = true;
        }
        let mut kept = kept.into_iter();
        points.retain(|_| kept.next().unwrap_or(false));
    }
    Ok(Track { range, points })
}
