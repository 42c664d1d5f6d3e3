//! What a vehicle's track may be asked for: a resolution, and a time range that resolution can
//! answer — within its size cap, and within the retention of the table it reads from. The
//! range is checked here once, so the store only ever sees ranges it can serve.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, TimeDelta, Utc};

/// How long each source of a track is kept (`MERIDIAN_RETENTION_RAW_DAYS`,
/// `MERIDIAN_RETENTION_HOURLY_DAYS`); daily rollups are kept forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw_days: i64,
    pub hourly_days: i64,
}

/// Most raw points one response carries (about 6 MB of JSON): a raw range within its cap can
/// still hold more when a device reports faster than every few seconds.
pub const MAX_POINTS: usize = 100_000;

/// The grain of a track: every stored point, or one point per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Raw,
    Minute,
    FiveMinutes,
    Hour,
    Day,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown resolution {0:?}: expected raw, 1m, 5m, 1h or 1d")]
pub struct ResolutionError(String);

impl Resolution {
    /// Finest first.
    pub const ALL: [Resolution; 5] = [
        Resolution::Raw,
        Resolution::Minute,
        Resolution::FiveMinutes,
        Resolution::Hour,
        Resolution::Day,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::Minute => "1m",
            Resolution::FiveMinutes => "5m",
            Resolution::Hour => "1h",
            Resolution::Day => "1d",
        }
    }

    /// The bucket width; `None` for raw points. All are whole divisors of a UTC day, so
    /// buckets line up with the Unix epoch (and with `date_bin`'s origin in 2000).
    pub fn bucket(self) -> Option<TimeDelta> {
        match self {
            Resolution::Raw => None,
            Resolution::Minute => Some(Duration::minutes(1)),
            Resolution::FiveMinutes => Some(Duration::minutes(5)),
            Resolution::Hour => Some(Duration::hours(1)),
            Resolution::Day => Some(Duration::days(1)),
        }
    }

    /// The longest range one request may span. Chosen so a response stays well under 100k
    /// points: 7 days of raw points at one per 10 s is 60k; 31 days of minutes 45k; 92 days
    /// of 5 minutes 26k; 3 years of hours 26k; 50 years of days 18k.
    pub fn max_days(self) -> i64 {
        match self {
            Resolution::Raw => 7,
            Resolution::Minute => 31,
            Resolution::FiveMinutes => 92,
            Resolution::Hour => 3 * 365 + 1,
            Resolution::Day => 50 * 365 + 12,
        }
    }

    /// How far back this resolution's source reaches, in days (`None`: kept forever). Raw,
    /// 1m and 5m read raw points; 1h reads hourly rollups; 1d daily rollups.
    fn retention_days(self, kept: Retention) -> Option<i64> {
        match self {
            Resolution::Raw | Resolution::Minute | Resolution::FiveMinutes => Some(kept.raw_days),
            Resolution::Hour => Some(kept.hourly_days),
            Resolution::Day => None,
        }
    }
}

impl FromStr for Resolution {
    type Err = ResolutionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resolution::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ResolutionError(s.to_owned()))
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a range cannot be answered at a resolution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("from ({from}) must be before to ({to})")]
    Empty {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error("a {days}-day range is too large for resolution {resolution} (at most {max} days){}",
        match coarser {
            Some(c) => format!("; resolution {c} covers it"),
            None => "; ask for a shorter range".to_owned(),
        })]
    TooLarge {
        resolution: Resolution,
        days: i64,
        max: i64,
        coarser: Option<Resolution>,
    },
    #[error("resolution {resolution} keeps {kept} days: {from} is before {horizon}; for this range use {}",
        remaining.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or "))]
    BeyondRetention {
        resolution: Resolution,
        kept: i64,
        from: DateTime<Utc>,
        horizon: DateTime<Utc>,
        remaining: Vec<Resolution>,
    },
}

/// A range a resolution can answer: `[from, to)`, widened to whole buckets (a bucket that
/// overlaps the asked range is returned whole, so 10:30–12:00 at 1h gives 10:00 and 11:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackRange {
    pub resolution: Resolution,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl TrackRange {
    /// Checks `[from, to)` at `resolution` as of `now`, with each source kept as `retention` says.
    pub fn new(
        resolution: Resolution,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
        retention: Retention,
    ) -> Result<Self, RangeError> {
        if from >= to {
            return Err(RangeError::Empty { from, to });
        }
        let (from, to) = whole_buckets(resolution, from, to);
        let range = Self {
            resolution,
            from,
            to,
        };
        if let Some(kept) = resolution.retention_days(retention) {
            let horizon = now - Duration::days(kept);
            if from < horizon {
                return Err(RangeError::BeyondRetention {
                    resolution,
                    kept,
                    from,
                    horizon,
                    remaining: Self::coarser_than(resolution)
                        .filter(|r| range.within_retention(*r, now, retention))
                        .collect(),
                });
            }
        }
        let days = range.days();
        if days > resolution.max_days() {
            return Err(RangeError::TooLarge {
                resolution,
                days,
                max: resolution.max_days(),
                coarser: Self::coarser_than(resolution).find(|r| days <= r.max_days()),
            });
        }
        Ok(range)
    }

    /// The range's length in whole days, rounded up.
    fn days(&self) -> i64 {
        let secs = (self.to - self.from).num_seconds();
        (secs + 86_399) / 86_400
    }

    fn within_retention(&self, r: Resolution, now: DateTime<Utc>, retention: Retention) -> bool {
        r.retention_days(retention)
            .is_none_or(|kept| self.from >= now - Duration::days(kept))
    }

    fn coarser_than(r: Resolution) -> impl Iterator<Item = Resolution> {
        Resolution::ALL
            .into_iter()
            .filter(move |c| *c as u8 > r as u8)
    }
}

/// `[from, to)` widened to whole buckets of `resolution` (raw: as asked).
pub(crate) fn whole_buckets(
    resolution: Resolution,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    match resolution.bucket() {
        None => (from, to),
        // RFC 3339 has four-digit years: a last bucket that would end in year 10000 ends
        // at the last representable instant instead.
        Some(width) => (floor(from, width), ceil(to, width).min(last_instant())),
    }
}

fn last_instant() -> DateTime<Utc> {
    "9999-12-31T23:59:59.999999Z"
        .parse()
        .expect("a valid instant")
}

/// The start of the `width` bucket (a whole number of microseconds, counted from the Unix
/// epoch: hours and UTC days) that holds `t`; exact to year 9999, unlike chrono's
/// `duration_trunc`, which counts nanoseconds and fails past 2262.
pub fn floor(t: DateTime<Utc>, width: TimeDelta) -> DateTime<Utc> {
    let w = width.num_microseconds().expect("bucket widths are small");
    let us = t.timestamp_micros();
    DateTime::from_timestamp_micros(us - us.rem_euclid(w)).unwrap_or(t)
}

fn ceil(t: DateTime<Utc>, width: TimeDelta) -> DateTime<Utc> {
    let down = floor(t, width);
    if down == t {
        t
    } else {
        down + width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-12-02T15:20:00Z";

    fn range(r: Resolution, from: &str, to: &str) -> Result<TrackRange, RangeError> {
        TrackRange::new(
            r,
            at(from),
            at(to),
            at(NOW),
            Retention {
                raw_days: 30,
                hourly_days: 365,
            },
        )
    }

    #[test]
    fn resolutions_round_trip_through_their_names() {
        for r in Resolution::ALL {
            assert_eq!(r.as_str().parse::<Resolution>(), Ok(r));
        }
        assert!("2m".parse::<Resolution>().is_err());
    }

    #[test]
    fn bucketed_ranges_widen_to_whole_buckets() {
        let r = range(
            Resolution::Hour,
            "2026-12-01T10:30:00Z",
            "2026-12-01T12:00:00Z",
        )
        .unwrap();
        assert_eq!(
            (r.from, r.to),
            (at("2026-12-01T10:00:00Z"), at("2026-12-01T12:00:00Z"))
        );
        let r = range(
            Resolution::FiveMinutes,
            "2026-12-01T10:03:10Z",
            "2026-12-01T10:11:00.5Z",
        )
        .unwrap();
        assert_eq!(
            (r.from, r.to),
            (at("2026-12-01T10:00:00Z"), at("2026-12-01T10:15:00Z"))
        );
        let r = range(
            Resolution::Raw,
            "2026-12-01T10:03:10Z",
            "2026-12-01T10:04:00Z",
        )
        .unwrap();
        assert_eq!(
            r.from,
            at("2026-12-01T10:03:10Z"),
            "raw ranges are taken as asked"
        );
    }

    #[test]
    fn empty_and_inverted_ranges_are_refused() {
        for (from, to) in [
            ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z"),
            ("2026-12-01T11:00:00Z", "2026-12-01T10:00:00Z"),
        ] {
            assert!(matches!(
                range(Resolution::Raw, from, to),
                Err(RangeError::Empty { .. })
            ));
        }
    }

    #[test]
    fn a_range_over_the_cap_names_the_cap_and_a_resolution_that_fits() {
        let err = range(
            Resolution::Raw,
            "2026-11-20T00:00:00Z",
            "2026-12-01T00:00:00Z",
        )
        .unwrap_err();
        assert_eq!(
            err,
            RangeError::TooLarge {
                resolution: Resolution::Raw,
                days: 11,
                max: 7,
                coarser: Some(Resolution::Minute)
            }
        );
        assert!(err.to_string().contains("at most 7 days"), "{err}");
        assert!(err.to_string().contains("resolution 1m covers it"), "{err}");
        assert!(range(
            Resolution::Raw,
            "2026-11-24T00:00:00Z",
            "2026-12-01T00:00:00Z"
        )
        .is_ok());
        let err = range(
            Resolution::Day,
            "1900-01-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        )
        .unwrap_err();
        assert!(
            matches!(err, RangeError::TooLarge { coarser: None, .. }),
            "{err}"
        );
    }

    #[test]
    fn past_raw_retention_only_the_rollups_remain() {
        let err = range(
            Resolution::Minute,
            "2026-10-01T00:00:00Z",
            "2026-10-02T00:00:00Z",
        )
        .unwrap_err();
        let RangeError::BeyondRetention { remaining, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(remaining, &[Resolution::Hour, Resolution::Day]);
        assert!(err.to_string().ends_with("use 1h or 1d"), "{err}");
        let err = range(
            Resolution::Raw,
            "2025-10-01T00:00:00Z",
            "2025-10-02T00:00:00Z",
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("use 1d"), "{err}");
        let err = range(
            Resolution::Hour,
            "2025-10-01T00:00:00Z",
            "2025-10-02T00:00:00Z",
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("use 1d"), "{err}");
        assert!(range(
            Resolution::Day,
            "2000-10-01T00:00:00Z",
            "2000-10-02T00:00:00Z"
        )
        .is_ok());
    }
}
