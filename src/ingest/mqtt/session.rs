//! Reconnect and resubscribe pacing for the MQTT source, as plain state machines (no I/O,
//! no clock of their own) so their policies are unit-tested.
//!
//! - [`Takeovers`]: two nodes started with the same `MQTT_CLIENT_ID` take the session from
//!   each other on every connect (the broker drops the older connection; Mosquitto 2.0.11
//!   without saying why, see [`closed_by_broker`]). Reconnecting at the
//!   ordinary pace makes the pair flap a few times a second, forever, each node holding the
//!   session (and its in-flight messages) for half a second. After a few takeovers in a row we
//!   call it a misconfiguration, say so, and back off exponentially, so the pair settles: the
//!   node that backs off longest leaves the other one connected, at most a takeover a minute.
//! - [`Retries`]: a refused subscription is retried with exponential backoff (an ACL or a
//!   broker quota may be fixed while we run) instead of once, or in a tight loop.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{DisconnectReasonCode, SubscribeReasonCode};
use rumqttc::v5::{ConnectionError, StateError};

/// The ordinary pause before reconnecting after a lost connection.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Takeovers in a row (no connection lasting [`STABLE_AFTER`] between them) that mean another
/// client uses our id rather than a one-off (a node restarting before the broker noticed the
/// old connection was gone takes the session over once, legitimately).
pub const FLAPPING_AFTER: u32 = 3;
/// A connection that stays up this long ends a takeover streak. Below [`MAX_BACKOFF`], so the
/// node that backs off longest leaves the other one up long enough to count as settled.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Longest pause between reconnects or resubscriptions: long enough that a misconfigured pair
/// costs the broker almost nothing, short enough that a fixed one recovers within a minute.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// First pause once flapping is recognised, and before the first resubscription.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// `FIRST_BACKOFF · 2^attempt`, capped at [`MAX_BACKOFF`].
fn exponential(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF)
}

/// The current streak of session takeovers.
#[derive(Debug, Default)]
pub struct Takeovers {
    streak: u32,
}

impl Takeovers {
    /// Another connection took our session; returns how long to wait before reconnecting.
    pub fn taken_over(&mut self) -> Duration {
        self.streak += 1;
        if self.is_flapping() {
            exponential(self.streak - FLAPPING_AFTER)
        } else {
            RECONNECT_DELAY
        }
    }

    /// The connection stayed up for [`STABLE_AFTER`]: whatever took it over has gone.
    pub fn settled(&mut self) {
        self.streak = 0;
    }

    pub fn streak(&self) -> u32 {
        self.streak
    }

    pub fn is_flapping(&self) -> bool {
        self.streak >= FLAPPING_AFTER
    }
}

/// Consecutive failures of something retried with backoff.
#[derive(Debug, Default)]
pub struct Retries {
    failures: u32,
}

impl Retries {
    /// One more failure; returns how long to wait before the next try.
    pub fn failed(&mut self) -> Duration {
        self.failures += 1;
        exponential(self.failures - 1)
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// Why the broker closed an established connection, if it did, as a metric label: a
/// takeover by another connection with our client id says so in its DISCONNECT (MQTT v5,
/// reason 0x8E), but Mosquitto 2.0.11 just closes the socket, so a close without a reason
/// counts too. Taken one by one these are ordinary; many in a row is what [`Takeovers`] flags.
pub fn closed_by_broker(error: &ConnectionError) -> Option<&'static str> {
    use std::io::ErrorKind;
    match error {
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        }) => Some("session_taken_over"),
        ConnectionError::MqttState(StateError::ConnectionAborted) => Some("closed_without_reason"),
        ConnectionError::MqttState(StateError::Io(e)) | ConnectionError::Io(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
            ) =>
        {
            Some("closed_without_reason")
        }
        _ => None,
    }
}

/// A SUBACK failure reason as a metric label.
pub fn reason_label(code: &SubscribeReasonCode) -> &'static str {
    use SubscribeReasonCode as R;
    match code {
        R::Success(_) => "success",
        R::Failure => "failure",
        R::Unspecified => "unspecified",
        R::ImplementationSpecific => "implementation_specific",
        R::NotAuthorized => "not_authorized",
        R::TopicFilterInvalid => "topic_filter_invalid",
        R::PkidInUse => "packet_id_in_use",
        R::QuotaExceeded => "quota_exceeded",
        R::SharedSubscriptionsNotSupported => "shared_subscriptions_not_supported",
        R::SubscriptionIdNotSupported => "subscription_ids_not_supported",
        R::WildcardSubscriptionsNotSupported => "wildcard_subscriptions_not_supported",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_single_takeover_reconnects_at_the_ordinary_pace() {
        let mut t = Takeovers::default();
        assert_eq!(t.taken_over(), RECONNECT_DELAY);
        assert!(!t.is_flapping());
    }

    #[test]
    fn repeated_takeovers_back_off_exponentially_up_to_the_cap() {
        let mut t = Takeovers::default();
        let delays: Vec<Duration> = (0..12).map(|_| t.taken_over()).collect();
        assert_eq!(delays[..FLAPPING_AFTER as usize - 1], [RECONNECT_DELAY; 2]);
        assert!(t.is_flapping());
        assert_eq!(
            delays[FLAPPING_AFTER as usize - 1..],
            [
                secs(1),
                secs(2),
                secs(4),
                secs(8),
                secs(16),
                secs(32),
                MAX_BACKOFF,
                MAX_BACKOFF,
                MAX_BACKOFF,
                MAX_BACKOFF
            ]
        );
        assert!(
            STABLE_AFTER < MAX_BACKOFF,
            "the winner of a pair can settle"
        );
    }

    #[test]
    fn a_stable_connection_ends_the_streak() {
        let mut t = Takeovers::default();
        for _ in 0..5 {
            t.taken_over();
        }
        t.settled();
        assert_eq!(t.streak(), 0);
        assert!(!t.is_flapping());
        assert_eq!(t.taken_over(), RECONNECT_DELAY);
    }

    #[test]
    fn a_close_by_the_broker_is_told_from_other_failures() {
        let disconnect = |reason_code| {
            ConnectionError::MqttState(StateError::ServerDisconnect {
                reason_code,
                reason_string: None,
            })
        };
        let io = |kind| ConnectionError::Io(std::io::Error::from(kind));
        assert_eq!(
            closed_by_broker(&disconnect(DisconnectReasonCode::SessionTakenOver)),
            Some("session_taken_over")
        );
        assert_eq!(
            closed_by_broker(&ConnectionError::MqttState(StateError::ConnectionAborted)),
            Some("closed_without_reason")
        );
        assert_eq!(
            closed_by_broker(&io(std::io::ErrorKind::ConnectionReset)),
            Some("closed_without_reason")
        );
        assert_eq!(
            closed_by_broker(&io(std::io::ErrorKind::ConnectionRefused)),
            None
        );
        assert_eq!(
            closed_by_broker(&disconnect(DisconnectReasonCode::ServerShuttingDown)),
            None
        );
        assert_eq!(closed_by_broker(&ConnectionError::RequestsDone), None);
    }

    #[test]
    fn retries_back_off_and_reset_on_success() {
        let mut r = Retries::default();
        assert_eq!(r.failed(), secs(1));
        assert_eq!(r.failed(), secs(2));
        assert_eq!(r.failed(), secs(4));
        for _ in 0..40 {
            r.failed(); // no overflow however long the refusal lasts
        }
        assert_eq!(r.failed(), MAX_BACKOFF);
        r.succeeded();
        assert_eq!(r.failed(), secs(1));
    }
}
