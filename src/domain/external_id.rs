//! A device's identifier as it appears in its MQTT topic and in `vehicles.external_id`.

use std::fmt;

/// Longest external id accepted. IMEIs are 15 digits, VINs 17 characters; 128 leaves room
/// for OwnTracks `user/device` pairs without letting a topic smuggle kilobytes into a cache key.
pub const MAX_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalIdError {
    #[error("external id is empty")]
    Empty,
    #[error("external id is longer than {MAX_LEN} bytes")]
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
        if raw.len() > MAX_LEN {
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
        for bad in ["a+b", "a#", "a b", "a\u{0}b"] {
            assert_eq!(
                ExternalId::parse(bad),
                Err(ExternalIdError::BadCharacter),
                "{bad:?}"
            );
        }
    }
}
