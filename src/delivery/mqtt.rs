//! Publishes geofence events to the broker at QoS 1 and reports when the broker has taken
//! each one (its PUBACK), so the outbox forgets an event only once the broker holds it.
//!
//! rumqttc 0.25 says when a publish leaves (`Outgoing::Publish(pkid)`) and when its PUBACK
//! arrives, but not which call a packet id belongs to. A round of publishes is sent by one
//! task at a time (`Publisher` takes `&mut self`), so the next N outgoing ids are the round's,
//! and the round is done when PUBACKs for exactly those ids are in: a late PUBACK of an
//! earlier, abandoned round cannot be mistaken for one of this round.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::MqttSettings;

/// Events in flight at once: the broker's `max_inflight_messages` in our config is larger.
pub const MAX_ROUND: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker did not acknowledge {0} of the events within {1:?}")]
    Timeout(usize, Duration),
    #[error("broker refused an event: {0:?}")]
    Refused(PubAckReason),
    #[error("mqtt client: {0}")]
    Client(String),
}

/// What the event loop saw, in order.
enum Seen {
    Sent(u16),
    Acked(u16, PubAckReason),
}

pub struct Publisher {
    client: AsyncClient,
    seen: mpsc::Receiver<Seen>,
    poller: JoinHandle<()>,
    prefix: String,
}

impl Publisher {
    /// Connects in the background (clean session: nothing of an earlier run is owed).
    pub fn start(settings: &MqttSettings) -> Self {
        let mut options = MqttOptions::new(
            format!("{}-events", settings.client_id),
            settings.host.clone(),
            settings.port,
        );
        options
            .set_clean_start(true)
            .set_keep_alive(settings.keep_alive);
        let (client, eventloop) = AsyncClient::new(options, MAX_ROUND * 2);
        let (tx, seen) = mpsc::channel(MAX_ROUND * 4);
        Self {
            client,
            seen,
            poller: tokio::spawn(poll(eventloop, tx)),
            prefix: settings.topic_prefix.clone(),
        }
    }

    /// `meridian/events/geofence/{fence_id}` (after the node's topic prefix, as ingest's).
    pub fn topic(&self, fence_id: uuid::Uuid) -> String {
        format!("{}meridian/events/geofence/{fence_id}", self.prefix)
    }

    /// Publishes every `(topic, payload)` at QoS 1 and returns once the broker acknowledged
    /// all of them, or fails (the caller retries the whole round; consumers dedupe by id).
    pub async fn publish_all(
        &mut self,
        messages: Vec<(String, Bytes)>,
        within: Duration,
    ) -> Result<(), PublishError> {
        while self.seen.try_recv().is_ok() {} // an abandoned round's leftovers
        let n = messages.len();
        for (topic, payload) in messages {
            self.client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| PublishError::Client(e.to_string()))?;
        }
        let mut sent: HashSet<u16> = HashSet::with_capacity(n);
        let mut acked: HashSet<u16> = HashSet::with_capacity(n);
        let deadline = tokio::time::Instant::now() + within;
        while acked.len() < n {
            let seen = tokio::time::timeout_at(deadline, self.seen.recv())
                .await
                .map_err(|_| PublishError::Timeout(n - acked.len(), within))?
                .ok_or_else(|| PublishError::Client("event loop stopped".into()))?;
            match seen {
                Seen::Sent(pkid) if sent.len() < n => {
                    sent.insert(pkid);
                }
                Seen::Sent(_) => {}
                Seen::Acked(pkid, reason) if sent.contains(&pkid) => {
                    if !matches!(
                        reason,
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                    ) {
                        return Err(PublishError::Refused(reason));
                    }
                    acked.insert(pkid);
                }
                Seen::Acked(..) => {}
            }
        }
        Ok(())
    }

    pub async fn close(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.poller).await;
    }
}

/// Drives the connection; reconnects after a pause when it drops. Only the publishes and
/// their PUBACKs are passed on; if nobody reads them, they are dropped rather than blocking.
async fn poll(mut eventloop: EventLoop, seen: mpsc::Sender<Seen>) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let _ = seen.try_send(Seen::Sent(pkid));
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let _ = seen.try_send(Seen::Acked(ack.pkid, ack.reason));
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                if seen.is_closed() {
                    return;
                }
                tracing::debug!(error = %e, "event publisher lost the broker; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
