//! Dead-letter reason codes: the stable, documented vocabulary for "why this was not stored".
//! Clients alert on these strings, so they never change meaning once released. Shared by the
//! decoder (which finds most of them), the writer (unknown vehicle, refused by the database)
//! and the store (which persists them).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidEncoding,
    InvalidJson,
    NotAnObject,
    MissingField,
    WrongType,
    LatOutOfRange,
    LonOutOfRange,
    NonFinite,
    /// Retired: an optional measurement out of range is now dropped to NULL and its point kept
    /// (counted in `meridian_ingest_fields_dropped_total`). The code stays reserved.
    ValueOutOfRange,
    InvalidTimestamp,
    TimestampTooOld,
    TimestampInFuture,
    UnknownVehicle,
    PayloadTooLarge,
    ArrayTooLong,
    EmptyArray,
    InvalidTopic,
    OwnTracksUnsupported,
    UnsupportedValue,
    RejectedByDatabase,
}

impl Reason {
    pub const ALL: [Reason; 20] = [
        Reason::InvalidEncoding,
        Reason::InvalidJson,
        Reason::NotAnObject,
        Reason::MissingField,
        Reason::WrongType,
        Reason::LatOutOfRange,
        Reason::LonOutOfRange,
        Reason::NonFinite,
        Reason::ValueOutOfRange,
        Reason::InvalidTimestamp,
        Reason::TimestampTooOld,
        Reason::TimestampInFuture,
        Reason::UnknownVehicle,
        Reason::PayloadTooLarge,
        Reason::ArrayTooLong,
        Reason::EmptyArray,
        Reason::InvalidTopic,
        Reason::OwnTracksUnsupported,
        Reason::UnsupportedValue,
        Reason::RejectedByDatabase,
    ];

    /// A code released once and no longer emitted; never reused for another meaning.
    pub fn is_retired(self) -> bool {
        self == Reason::ValueOutOfRange
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidEncoding => "invalid_encoding",
            Reason::InvalidJson => "invalid_json",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::LatOutOfRange => "lat_out_of_range",
            Reason::LonOutOfRange => "lon_out_of_range",
            Reason::NonFinite => "non_finite",
            Reason::ValueOutOfRange => "value_out_of_range",
            Reason::InvalidTimestamp => "invalid_timestamp",
            Reason::TimestampTooOld => "timestamp_too_old",
            Reason::TimestampInFuture => "timestamp_in_future",
            Reason::UnknownVehicle => "unknown_vehicle",
            Reason::PayloadTooLarge => "payload_too_large",
            Reason::ArrayTooLong => "array_too_long",
            Reason::EmptyArray => "empty_array",
            Reason::InvalidTopic => "invalid_topic",
            Reason::OwnTracksUnsupported => "owntracks_unsupported",
            Reason::UnsupportedValue => "unsupported_value",
            Reason::RejectedByDatabase => "rejected_by_database",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_distinct_snake_case() {
        let codes: HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(codes.len(), Reason::ALL.len());
        assert!(codes
            .iter()
            .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')));
    }
}
