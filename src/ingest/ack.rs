//! Ack bookkeeping: a message is acknowledged to the broker only after what it became
//! (rows or a dead letter) committed, and only on the connection that delivered it.
//!
//! Packet ids are per connection. After a reconnect the broker resends everything unacked
//! and may reuse a packet id for another message once the old one is acked; an ack from an
//! older connection could then acknowledge a message we have not stored. So tokens carry the
//! connection generation they arrived on, and stale ones are dropped: the broker's
//! redelivered copy is stored (idempotently) and acked instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rumqttc::v5::mqttbytes::{v5::Publish, QoS};
use rumqttc::v5::AsyncClient;

use crate::observability;

/// What is needed to acknowledge one delivery later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckToken {
    pub pkid: u16,
    pub qos: QoS,
    pub generation: u64,
}

/// The current connection generation, bumped by the event loop on every CONNACK.
#[derive(Clone, Default)]
pub struct Generation(Arc<AtomicU64>);

impl Generation {
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub fn advance(&self) -> u64 {
        self.0.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// Splits tokens into those to send now and how many are stale (or QoS 0, which need none).
pub fn sendable(tokens: &[AckToken], generation: u64) -> (Vec<AckToken>, usize) {
    let fresh: Vec<AckToken> = tokens
        .iter()
        .filter(|t| t.generation == generation && t.qos != QoS::AtMostOnce)
        .copied()
        .collect();
    let skipped = tokens.len() - fresh.len();
    (fresh, skipped)
}

/// Sends acknowledgements through the MQTT client; counts what it acknowledged.
#[derive(Clone)]
pub struct Acker {
    client: AsyncClient,
    generation: Generation,
    acked: Arc<AtomicU64>,
}

impl Acker {
    pub fn new(client: AsyncClient, generation: Generation) -> Self {
        Self {
            client,
            generation,
            acked: Arc::default(),
        }
    }

    /// Call only after the transaction holding these messages' rows has committed.
    pub async fn ack_committed(&self, tokens: &[AckToken]) {
        let (fresh, skipped) = sendable(tokens, self.generation.current());
        if skipped > 0 {
            tracing::debug!(
                skipped,
                "not acking deliveries from an earlier connection or QoS 0"
            );
        }
        let mut sent = 0;
        for t in &fresh {
            let mut publish = Publish::new("", t.qos, Vec::new(), None);
            publish.pkid = t.pkid;
            // Fails only when the event loop is gone (shutdown after the deadline, or the source
            // task died): the rest would fail the same way. The broker then redelivers these,
            // which the idempotent store absorbs; they are committed all the same, so they
            // count as settled — otherwise a wait on `settled` would hang instead of failing.
            if let Err(e) = self.client.ack(&publish).await {
                observability::acks_failed((fresh.len() - sent) as u64, &e);
                break;
            }
            sent += 1;
        }
        self.acked.fetch_add(tokens.len() as u64, Ordering::Relaxed);
        observability::messages_acked(sent as u64);
    }

    /// Messages settled so far: acked, or committed and deliberately not acked (stale connection,
    /// QoS 0). Tests wait on it; the Prometheus counter counts only acks actually sent.
    pub fn settled(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(pkid: u16, qos: QoS, generation: u64) -> AckToken {
        AckToken {
            pkid,
            qos,
            generation,
        }
    }

    #[test]
    fn only_current_generation_qos1_and_qos2_are_sent() {
        let tokens = [
            token(1, QoS::AtLeastOnce, 2),
            token(2, QoS::AtLeastOnce, 1),
            token(3, QoS::AtMostOnce, 2),
            token(4, QoS::ExactlyOnce, 2),
        ];
        let (fresh, skipped) = sendable(&tokens, 2);
        assert_eq!(fresh.iter().map(|t| t.pkid).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(skipped, 2);
    }

    #[tokio::test]
    async fn committed_messages_settle_even_when_the_ack_cannot_be_sent() {
        let handle = observability::metrics_handle();
        let options = rumqttc::v5::MqttOptions::new("ack-test", "127.0.0.1", 1);
        let (client, eventloop) = AsyncClient::new(options, 10);
        drop(eventloop); // the event loop is gone: every ack fails
        let acker = Acker::new(client, Generation::default());
        let tokens: Vec<AckToken> = (1..=3).map(|p| token(p, QoS::AtLeastOnce, 0)).collect();

        acker.ack_committed(&tokens).await;

        assert_eq!(acker.settled(), 3, "committed, so settled although unacked");
        let failed = handle.render().lines().find_map(|l| {
            l.strip_prefix(observability::ACKS_FAILED)?
                .trim()
                .parse::<u64>()
                .ok()
        });
        assert!(failed >= Some(3), "failed acks are counted: {failed:?}");
    }

    #[test]
    fn generation_advances_monotonically() {
        let g = Generation::default();
        assert_eq!(g.current(), 0);
        assert_eq!(g.advance(), 1);
        assert_eq!(g.advance(), 2);
        assert_eq!(g.current(), 2);
    }
}
