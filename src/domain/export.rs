//! What a fleet history export may ask for: a rollup table (hourly or daily), a time range it
//! can stream in reasonable time, and optionally which vehicles. Checked here once, so the store
//! only ever runs exports it was meant to.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::track::{RangeError, Resolution};

/// Most vehicle ids one export may name: 1000 ids are ~37 kB of query string, within every
/// HTTP stack's URI limit (hyper and the `http` crate allow 64 kB).
pub const MAX_VEHICLE_IDS: usize = 1000;

/// The rollup table an export reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rollup {
    Hourly,
    Daily,
}

impl Rollup {
    pub fn table(self) -> &'static str {
        match self {
            Rollup::Hourly => "telemetry_hourly",
            Rollup::Daily => "telemetry_daily",
        }
    }

    pub fn resolution(self) -> Resolution {
        match self {
            Rollup::Hourly => Resolution::Hour,
            Rollup::Daily => Resolution::Day,
        }
    }

    /// The longest range one export may span. 400 days of hours for a 1,000-vehicle fleet is
    /// at most 9.6M rows (~2.5 GB of CSV, seconds to a minute at the measured rate); 50 years
    /// of days is 18k rows per vehicle. A longer hourly range is refused pointing at `1d`.
    pub fn max_days(self) -> i64 {
        match self {
            Rollup::Hourly => 400,
            Rollup::Daily => 50 * 365 + 12,
        }
    }
}

/// `[from, to)` widened to whole buckets (a bucket overlapping the asked range is exported
/// whole, as the track endpoint does), within the rollup's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportRange {
    pub rollup: Rollup,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl ExportRange {
    pub fn new(rollup: Rollup, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, RangeError> {
        if from >= to {
            return Err(RangeError::Empty { from, to });
        }
        let (from, to) = super::track::whole_buckets(rollup.resolution(), from, to);
        let days = ((to - from).num_seconds() + 86_399) / 86_400;
        if days > rollup.max_days() {
            let coarser = (rollup == Rollup::Hourly && days <= Rollup::Daily.max_days())
                .then_some(Resolution::Day);
            return Err(RangeError::TooLarge {
                resolution: rollup.resolution(),
                days,
                max: rollup.max_days(),
                coarser,
            });
        }
        Ok(Self { rollup, from, to })
    }
}

/// A non-empty set of at most `MAX_VEHICLE_IDS` vehicle ids, from `id,id,…` (hyphenated UUIDs,
/// no spaces; duplicates are taken once). Sorted, so the SQL array is too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleIds(Vec<Uuid>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VehicleIdsError {
    #[error("vehicle_ids: {0:?} is not a UUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, comma-separated, no spaces)")]
    Malformed(String),
    #[error("vehicle_ids: empty; leave it out to export every vehicle")]
    Empty,
    #[error("vehicle_ids: {0} ids, at most {MAX_VEHICLE_IDS} per export")]
    TooMany(usize),
}

impl VehicleIds {
    pub fn parse(list: &str) -> Result<Self, VehicleIdsError> {
        if list.is_empty() {
            return Err(VehicleIdsError::Empty);
        }
        let mut ids = BTreeSet::new();
        let mut count = 0;
        for item in list.split(',') {
            count += 1;
            // Only the hyphenated form, the one the document's pattern allows (`Uuid` would
            // also take braces, `urn:uuid:` and 32 bare digits).
            let id = (item.len() == 36)
                .then(|| Uuid::try_parse(item).ok())
                .flatten()
                .ok_or_else(|| VehicleIdsError::Malformed(truncated(item)))?;
            ids.insert(id);
        }
        if count > MAX_VEHICLE_IDS {
            return Err(VehicleIdsError::TooMany(count));
        }
        Ok(Self(ids.into_iter().collect()))
    }

    pub fn as_slice(&self) -> &[Uuid] {
        &self.0
    }
}

/// A malformed item as quoted back in the error: enough to find it, not the whole input.
fn truncated(item: &str) -> String {
    item.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_widen_to_whole_buckets_and_refuse_empty_ones() {
        let r = ExportRange::new(
            Rollup::Hourly,
            at("2026-12-01T10:30:00Z"),
            at("2026-12-01T12:00:01Z"),
        )
        .unwrap();
        assert_eq!(
            (r.from, r.to),
            (at("2026-12-01T10:00:00Z"), at("2026-12-01T13:00:00Z"))
        );
        let r = ExportRange::new(
            Rollup::Daily,
            at("2026-12-01T10:30:00Z"),
            at("2026-12-03T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            (r.from, r.to),
            (at("2026-12-01T00:00:00Z"), at("2026-12-03T00:00:00Z"))
        );
        let t = at("2026-12-01T10:00:00Z");
        assert!(matches!(
            ExportRange::new(Rollup::Hourly, t, t),
            Err(RangeError::Empty { .. })
        ));
    }

    #[test]
    fn hourly_ranges_stop_at_400_days_and_point_at_daily() {
        let from = at("2025-01-01T00:00:00Z");
        assert!(ExportRange::new(Rollup::Hourly, from, at("2026-02-05T00:00:00Z")).is_ok());
        let err = ExportRange::new(Rollup::Hourly, from, at("2026-02-05T00:00:01Z")).unwrap_err();
        assert!(
            matches!(
                err,
                RangeError::TooLarge {
                    days: 401,
                    max: 400,
                    coarser: Some(Resolution::Day),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("resolution 1d covers it"), "{err}");
        let err = ExportRange::new(Rollup::Daily, at("1900-01-01T00:00:00Z"), from).unwrap_err();
        assert!(err.to_string().contains("ask for a shorter range"), "{err}");
    }

    #[test]
    fn vehicle_ids_parse_strictly_and_dedupe() {
        let a = "5c3f1a2b-8d4e-4f6a-9b7c-2e1d0f3a4b5c";
        let b = "0b7e4c1a-2f3d-4e5a-8b6c-7d8e9f0a1b2c";
        let ids = VehicleIds::parse(&format!("{a},{b},{a}")).unwrap();
        assert_eq!(ids.as_slice().len(), 2);
        assert!(ids.as_slice().windows(2).all(|w| w[0] < w[1]), "sorted");
        for bad in [
            format!("{a}, {b}"),
            format!("{a},"),
            "5c3f1a2b8d4e4f6a9b7c2e1d0f3a4b5c".to_owned(),
            format!("{{{a}}}"),
            "truck-17".to_owned(),
        ] {
            assert!(
                matches!(VehicleIds::parse(&bad), Err(VehicleIdsError::Malformed(_))),
                "{bad}"
            );
        }
        let err = VehicleIds::parse(&format!("{a},nope")).unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
        assert_eq!(VehicleIds::parse(""), Err(VehicleIdsError::Empty));
        let many = vec![a; MAX_VEHICLE_IDS + 1].join(",");
        assert_eq!(
            VehicleIds::parse(&many),
            Err(VehicleIdsError::TooMany(MAX_VEHICLE_IDS + 1))
        );
        assert!(VehicleIds::parse(&vec![a; MAX_VEHICLE_IDS].join(",")).is_ok());
    }
}
