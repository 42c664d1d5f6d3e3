//! Which device a topic names: `{prefix}fleet/{external_id}/telemetry` or
//! `{prefix}owntracks/{user}/{device}` (external id `{user}/{device}`).

use super::{DecodeError, Reason};
use crate::domain::ExternalId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Canonical,
    OwnTracks,
}

/// Parses a topic into its format and external id, borrowing from the topic.
pub fn parse<'t>(prefix: &str, topic: &'t str) -> Result<(Format, &'t str), DecodeError> {
    let bad = |why: &str| DecodeError::new(Reason::InvalidTopic, format!("topic {topic:?}: {why}"));
    let rest = topic
        .strip_prefix(prefix)
        .ok_or_else(|| bad("outside the configured topic prefix"))?;
    let (format, id) = if let Some(inner) = rest.strip_prefix("fleet/") {
        let id = inner
            .strip_suffix("/telemetry")
            .ok_or_else(|| bad("expected fleet/{external_id}/telemetry"))?;
        if id.contains('/') {
            return Err(bad("external id must be one topic level"));
        }
        (Format::Canonical, id)
    } else if let Some(id) = rest.strip_prefix("owntracks/") {
        if id.split('/').count() != 2 {
            return Err(bad("expected owntracks/{user}/{device}"));
        }
        (Format::OwnTracks, id)
    } else {
        return Err(bad("not a telemetry topic"));
    };
    ExternalId::check(id).map_err(|e| bad(&e.to_string()))?;
    Ok((format, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_and_owntracks_topics() {
        assert_eq!(
            parse("", "fleet/sim-000042/telemetry").unwrap(),
            (Format::Canonical, "sim-000042")
        );
        assert_eq!(
            parse("t1/", "t1/owntracks/alice/phone").unwrap(),
            (Format::OwnTracks, "alice/phone")
        );
    }

    #[test]
    fn malformed_topics_are_invalid_topic() {
        for topic in [
            "fleet//telemetry",
            "fleet/a/b/telemetry",
            "fleet/a/status",
            "fleet/a+b/telemetry",
            "owntracks/alice",
            "owntracks/a/b/c",
            "other/x",
        ] {
            assert_eq!(
                parse("", topic).unwrap_err().reason,
                Reason::InvalidTopic,
                "{topic}"
            );
        }
        let foreign = parse("t1/", "t2/fleet/a/telemetry").unwrap_err();
        assert_eq!(foreign.reason, Reason::InvalidTopic);
    }

    #[test]
    fn the_external_id_limit_is_128_characters_not_bytes() {
        // 128 'ö' are 256 bytes: accepted, as `POST /v1/vehicles` and the table accept them.
        let id = "ö".repeat(128);
        assert_eq!(
            parse("", &format!("fleet/{id}/telemetry")).unwrap(),
            (Format::Canonical, id.as_str())
        );
        let err = parse("", &format!("fleet/{id}ö/telemetry")).unwrap_err();
        assert_eq!(err.reason, Reason::InvalidTopic);
        assert!(err.detail.contains("128 characters"), "{}", err.detail);
    }
}
