//! A point in time as microseconds since the Unix epoch — PostgreSQL's `timestamptz`
//! resolution, so what we validate is exactly what gets stored and compared for idempotency.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("not an RFC 3339 timestamp: {0}")]
    NotRfc3339(String),
    #[error("epoch milliseconds must be a non-negative integer")]
    BadEpoch,
}

const MICROS_PER_MILLI: i64 = 1_000;
const MICROS_PER_SEC: i64 = 1_000_000;
/// 9999-12-31: beyond this, chrono and PostgreSQL disagree about what a year means.
const MAX_EPOCH_MS: i64 = 253_402_300_799_999;

impl Timestamp {
    pub fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn from_epoch_millis(ms: i64) -> Result<Self, TimestampError> {
        if !(0..=MAX_EPOCH_MS).contains(&ms) {
            return Err(TimestampError::BadEpoch);
        }
        Ok(Self(ms * MICROS_PER_MILLI))
    }

    pub fn from_epoch_secs(secs: i64) -> Result<Self, TimestampError> {
        Self::from_epoch_millis(secs.checked_mul(1000).ok_or(TimestampError::BadEpoch)?)
    }

    /// RFC 3339 with any offset; sub-microsecond digits are truncated, as PostgreSQL would.
    pub fn parse_rfc3339(raw: &str) -> Result<Self, TimestampError> {
        let parsed = DateTime::parse_from_rfc3339(raw)
            .map_err(|e| TimestampError::NotRfc3339(e.to_string()))?;
        Ok(Self(parsed.timestamp_micros()))
    }

    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    pub fn unix_micros(self) -> i64 {
        self.0
    }

    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(MICROS_PER_SEC)))
    }

    /// Seconds from `self` to `later` (negative if `later` is earlier).
    pub fn secs_until(self, later: Timestamp) -> f64 {
        (later.0 - self.0) as f64 / MICROS_PER_SEC as f64
    }

    /// Days since the Unix epoch, UTC: the partition a point belongs to.
    pub fn utc_day(self) -> i64 {
        self.0.div_euclid(86_400 * MICROS_PER_SEC)
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_epoch_millis_agree() {
        let a = Timestamp::parse_rfc3339("2025-11-21T10:00:00.123Z").unwrap();
        let b = Timestamp::from_epoch_millis(1_763_719_200_123).unwrap();
        assert_eq!(a, b);
        let c = Timestamp::parse_rfc3339("2025-11-21T11:00:00.123+01:00").unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn rejects_garbage_and_negative_epochs() {
        assert!(matches!(
            Timestamp::parse_rfc3339("yesterday"),
            Err(TimestampError::NotRfc3339(_))
        ));
        assert_eq!(
            Timestamp::from_epoch_millis(-1),
            Err(TimestampError::BadEpoch)
        );
        assert_eq!(
            Timestamp::from_epoch_millis(i64::MAX),
            Err(TimestampError::BadEpoch)
        );
    }

    #[test]
    fn utc_day_splits_at_midnight_utc() {
        let before = Timestamp::parse_rfc3339("2025-11-21T23:59:59.999999Z").unwrap();
        let after = Timestamp::parse_rfc3339("2025-11-22T00:00:00Z").unwrap();
        assert_eq!(after.utc_day() - before.utc_day(), 1);
        assert_eq!(Timestamp::from_unix_micros(-1).utc_day(), -1);
    }
}
