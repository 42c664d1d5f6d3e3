//! A device's identifier as it appears in its MQTT topic and in `vehicles.external_id`.

use std::fmt;

/// Longest external id accepted, in characters (Unicode scalar values). IMEIs are 15 digits,
/// VINs 17 characters; 128 leaves room for OwnTracks `user/device` pairs without letting a topic
/// smuggle kilobytes into a cache key. Characters, not bytes, because that is what the API
/// schema's `maxLength` and the table's `CHECK (length(external_id) ...)` count: one rule in all
/// three places, so an id the schema allows is never refused here.
pub const MAX_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalIdError {
    #[error("external id is empty")]
    Empty,
    #[error("external id is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("external id contains a control character, a wildcard or whitespace")]
    BadCharacter,
}

impl ExternalId {
    pub fn parse(raw: &str) -> Result<Self, ExternalIdError> {
        Self::check(raw)?;
        Ok(Self(raw.to_owned()))
    }

    /// Validates without allocating; the decoder checks every message's id this way.
    pub fn check(raw: &str) -> Result<(), ExternalIdError> {
        if raw.is_empty() {
            return Err(ExternalIdError::Empty);
        }
        // Counting stops at the first character over the limit: a topic may be kilobytes long.
        if raw.chars().nth(MAX_LEN).is_some() {
            return Err(ExternalIdError::TooLong);
        }
        // `+` and `#` are MQTT wildcards; a topic level holding one is a client bug.
        if raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '+' || c == '#')
        {
            return Err(ExternalIdError::BadCharacter);
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_imei_plate_and_owntracks_pair() {
        for ok in [
            "356938035643809",
            "B-XY 123".replace(' ', "-").as_str(),
            "alice/phone",
            "sim-000042",
        ] {
            assert!(ExternalId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_empty_long_wildcards_and_whitespace() {
        assert_eq!(ExternalId::parse(""), Err(ExternalIdError::Empty));
        assert_eq!(
            ExternalId::parse(&"x".repeat(MAX_LEN + 1)),
            Err(ExternalIdError::TooLong)
        );
        assert!(ExternalId::parse(&"x".repeat(MAX_LEN)).is_ok());
        for bad in ["a+b", "a#", "a b", "a\u{0}b"] {
            assert_eq!(
                ExternalId::parse(bad),
                Err(ExternalIdError::BadCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        // 'ä' is 2 bytes and '車' 3 in UTF-8: 128 characters of either are well over 128 bytes.
        for c in ['ä', '車'] {
            let at_limit: String = std::iter::repeat_n(c, MAX_LEN).collect();
            assert!(at_limit.len() > MAX_LEN);
            assert!(ExternalId::parse(&at_limit).is_ok(), "{c}: {MAX_LEN} chars");
            let over = format!("{at_limit}{c}");
            assert_eq!(
                ExternalId::parse(&over),
                Err(ExternalIdError::TooLong),
                "{c}"
            );
        }
    }
}
