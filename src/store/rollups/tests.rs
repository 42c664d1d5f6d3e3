//! Unit tests of the rollups' time arithmetic.

use super::*;

#[test]
fn hours_and_days_truncate_in_utc() {
    let ts = DateTime::parse_from_rfc3339("2026-12-02T23:59:59.999+01:00")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(hour_of(ts).to_rfc3339(), "2026-12-02T22:00:00+00:00");
    assert_eq!(day_of(ts).to_rfc3339(), "2026-12-02T00:00:00+00:00");
}

#[test]
fn truncation_holds_at_the_ends_of_what_rfc_3339_can_write() {
    for (raw, hour, day) in [
        (
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T23:00:00+00:00",
            "9999-12-31T00:00:00+00:00",
        ),
        (
            "0000-01-01T00:30:00Z",
            "0000-01-01T00:00:00+00:00",
            "0000-01-01T00:00:00+00:00",
        ),
    ] {
        let ts = DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(hour_of(ts).to_rfc3339(), hour);
        assert_eq!(day_of(ts).to_rfc3339(), day);
    }
}
