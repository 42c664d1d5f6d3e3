//! The decoder's error: a dead-letter reason code plus a detail a human can act on.

use crate::domain::Reason;

/// Why a message or one point of it cannot be stored: a reason code plus a detail a human can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct DecodeError {
    pub reason: Reason,
    pub detail: String,
}

impl DecodeError {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}
