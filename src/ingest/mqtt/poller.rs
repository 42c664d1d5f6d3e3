//! The poller: the one task that drives the rumqttc event loop. It forwards deliveries,
//! follows PUBACKs for the overflow bound, answers SUBACKs for readiness, and paces reconnects
//! and resubscriptions (`session.rs`) — all without ever awaiting anything but the loop itself.

use std::collections::HashSet;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Filter, Packet, SubAck, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop};
use rumqttc::Outgoing;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::overflow::Overflow;
use super::session::{
    closed_by_broker, reason_label, Retries, Takeovers, RECONNECT_DELAY, STABLE_AFTER,
};
use super::{BrokerStatus, Delivery, SESSION_CHECK, SUBSCRIPTION_CHECK};
use crate::domain::Timestamp;
use crate::ingest::ack::{AckToken, Generation};
use crate::observability;
use crate::readiness::Readiness;
use crate::shutdown::Shutdown;

pub(super) struct Poller {
    pub(super) eventloop: EventLoop,
    pub(super) client: AsyncClient,
    pub(super) client_id: String,
    pub(super) tx: Option<mpsc::Sender<Delivery>>,
    pub(super) generation: Generation,
    pub(super) status: BrokerStatus,
    pub(super) filters: Vec<String>,
    pub(super) shutdown: Shutdown,
    /// Where the source says why it is not consuming (no subscription, session taken over).
    pub(super) readiness: Readiness,
    /// Deliveries beyond the channel's capacity (broker exceeding receive-maximum), in order.
    pub(super) overflow: Overflow<Delivery>,
    /// Set at the overflow bound: until the next CONNACK every new publish is dropped unacked
    /// (see `overflow.rs`), and once `unacked` is empty we reconnect to have them redelivered.
    pub(super) discarding: bool,
    /// Packet ids forwarded (QoS 1) on this connection whose PUBACK has not gone out yet.
    pub(super) unacked: HashSet<u16>,
    /// Every filter was granted on the current session.
    pub(super) subscribed: bool,
    /// The SUBSCRIBE whose SUBACK decides `subscribed` (an older one's answer is ignored).
    pub(super) suback_pending: Option<u16>,
    pub(super) refusals: Retries,
    pub(super) resubscribe_at: Option<Instant>,
    pub(super) takeovers: Takeovers,
    /// While disconnected: when to connect again (the event loop is not polled until then).
    pub(super) reconnect_at: Option<Instant>,
    /// When the current connection will have lasted long enough to end a takeover streak.
    pub(super) stable_at: Option<Instant>,
}

impl Poller {
    pub(super) async fn run(mut self) {
        let mut closing = false;
        loop {
            let event = tokio::select! {
                event = self.eventloop.poll(), if self.reconnect_at.is_none() => event,
                permit = reserve(self.tx.clone()), if !self.overflow.is_empty() => {
                    if let (Some(permit), Some(delivery)) = (permit, self.overflow.pop_front()) {
                        permit.send(delivery);
                    }
                    observability::delivery_overflow(self.overflow.len(), self.overflow.bytes());
                    continue;
                }
                // Stop taking input: closing the channel lets the batcher flush and finish.
                // We keep polling so the acks of the drained batches still go out.
                _ = self.shutdown.triggered(), if self.tx.is_some() => {
                    self.tx = None;
                    self.overflow.clear(); // unacked: redelivered to the next session
                    observability::delivery_overflow(0, 0);
                    if self.reconnect_at.is_some() {
                        break; // no connection to ack on: the broker redelivers instead
                    }
                    continue;
                }
                _ = sleep_until(self.reconnect_at) => {
                    self.reconnect_at = None;
                    continue;
                }
                _ = sleep_until(self.resubscribe_at) => {
                    self.resubscribe_at = None;
                    self.subscribe();
                    continue;
                }
                _ = sleep_until(self.stable_at) => {
                    self.stable_at = None;
                    self.takeovers.settled();
                    self.readiness.clear(SESSION_CHECK);
                    continue;
                }
            };
            match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => self.forward(publish),
                Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                    self.connected(connack.session_present)
                }
                Ok(Event::Outgoing(Outgoing::Subscribe(pkid))) => self.suback_pending = Some(pkid),
                Ok(Event::Outgoing(Outgoing::PubAck(pkid))) => self.acked(pkid),
                Ok(Event::Incoming(Packet::SubAck(suback))) => self.subscription_answered(&suback),
                // Keep reading until the broker closes the connection. Dropping the socket now,
                // with its publishes still unread in our receive buffer, makes the kernel send
                // RST, and the broker may then discard the last PUBACKs it had not read yet
                // (seen in the SIGTERM test: committed, never acked, redelivered).
                Ok(Event::Outgoing(Outgoing::Disconnect)) => closing = true,
                Ok(_) => {}
                Err(e) => {
                    self.status.set(false);
                    // Acks committed from now on must not reach the next connection, where
                    // the packet id may already name another message.
                    self.generation.advance();
                    self.unacked.clear();
                    (self.stable_at, self.suback_pending, self.resubscribe_at) = (None, None, None);
                    if closing {
                        break; // the broker closed the connection after our DISCONNECT
                    }
                    observability::broker_disconnected(&e);
                    if self.tx.is_none() {
                        break; // shutting down: nothing left to ack on a dead connection
                    }
                    let delay = self.reconnect_delay(&e);
                    self.reconnect_at = Some(Instant::now() + delay);
                }
            }
        }
        self.status.set(false);
    }

    fn connected(&mut self, session_present: bool) {
        self.generation.advance();
        self.discarding = false;
        self.unacked.clear();
        // The broker keeps subscriptions in the session. Without one (first start, expiry,
        // broker restart without persistence) ours are gone; and a session this process has
        // not seen granted (after a restart) may hold a refused one. Raised before the status
        // flips, so `/readyz` never sees "connected" without it.
        if !session_present || !self.subscribed {
            self.subscribed = false;
            self.readiness.pending(
                SUBSCRIPTION_CHECK,
                format!("waiting for the broker to grant {:?}", self.filters),
            );
            self.subscribe();
        }
        self.status.set(true);
        observability::broker_connected(session_present);
        if self.takeovers.streak() > 0 {
            self.stable_at = Some(Instant::now() + STABLE_AFTER);
        }
    }

    /// How long to wait before reconnecting. The broker closing an established connection is
    /// counted and, when it happens again and again, reported and backed off: it is what two
    /// nodes sharing a client id look like.
    fn reconnect_delay(&mut self, error: &ConnectionError) -> Duration {
        let Some(how) = closed_by_broker(error) else {
            return RECONNECT_DELAY;
        };
        let delay = self.takeovers.taken_over();
        let (streak, flapping) = (self.takeovers.streak(), self.takeovers.is_flapping());
        observability::closed_by_broker(&self.client_id, how, streak, flapping, delay);
        if flapping {
            self.readiness.raise(
                SESSION_CHECK,
                format!(
                    "the broker closed our connection {streak} times in a row soon after \
                     accepting it ({how}): another node probably uses the same MQTT_CLIENT_ID \
                     {:?} and takes the session over; reconnecting with backoff",
                    self.client_id
                ),
            );
        }
        delay
    }

    fn forward(&mut self, publish: rumqttc::v5::mqttbytes::v5::Publish) {
        let Some(tx) = &self.tx else {
            return; // after shutdown began: left unacked, the broker redelivers it next session
        };
        if self.discarding {
            observability::delivery_overflow_dropped(1);
            return; // unacked: redelivered after the reconnect that `acked` starts
        }
        if publish.dup {
            observability::messages_redelivered(1);
        }
        let delivery = Delivery {
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
            received_at: Timestamp::now(),
            ack: AckToken {
                pkid: publish.pkid,
                qos: publish.qos,
                generation: self.generation.current(),
            },
            payload: publish.payload,
        };
        if publish.qos == QoS::AtLeastOnce {
            self.unacked.insert(publish.pkid);
        }
        let delivery = if self.overflow.is_empty() {
            match tx.try_send(delivery) {
                Err(mpsc::error::TrySendError::Full(delivery)) => delivery,
                _ => return,
            }
        } else {
            delivery // keep order behind what already waits
        };
        let bytes = std::mem::size_of::<Delivery>() + delivery.topic.len() + delivery.payload.len();
        match self.overflow.push(delivery, bytes) {
            Ok(()) if self.overflow.len() == 1 => {
                tracing::warn!(
                    "delivery channel full: broker exceeds our receive-maximum; buffering"
                );
            }
            Ok(()) => {}
            Err(refused) => {
                self.unacked.remove(&refused.ack.pkid);
                // At the bound: see overflow.rs for why drop-and-redeliver is the way.
                observability::delivery_overflow_full(self.overflow.limit_bytes());
                observability::delivery_overflow_dropped(1);
                self.discarding = true;
                return;
            }
        }
        observability::delivery_overflow(self.overflow.len(), self.overflow.bytes());
    }

    /// A PUBACK went out. Once everything kept at the overflow bound is acked, reconnect: the
    /// broker then redelivers what was dropped, and nothing kept is wasted as stale.
    fn acked(&mut self, pkid: u16) {
        self.unacked.remove(&pkid);
        if self.discarding && self.unacked.is_empty() && self.reconnect_at.is_none() {
            self.eventloop.clean();
            self.status.set(false);
            self.generation.advance();
            self.reconnect_at = Some(Instant::now() + RECONNECT_DELAY);
        }
    }

    fn subscription_answered(&mut self, suback: &SubAck) {
        if self.suback_pending != Some(suback.pkid) {
            return; // answers a SUBSCRIBE superseded by a newer one
        }
        self.suback_pending = None;
        let refused: Vec<(&str, &'static str)> = self
            .filters
            .iter()
            .enumerate()
            .filter_map(|(i, filter)| match suback.return_codes.get(i) {
                Some(SubscribeReasonCode::Success(_)) => None,
                code => Some((filter.as_str(), code.map_or("missing", reason_label))),
            })
            .collect();
        if refused.is_empty() {
            self.subscribed = true;
            self.refusals.succeeded();
            self.readiness.clear(SUBSCRIPTION_CHECK);
            tracing::info!(filters = ?self.filters, "subscription granted");
            return;
        }
        for (filter, reason) in &refused {
            observability::subscription_refused(filter, reason);
        }
        let delay = self.refusals.failed();
        self.resubscribe_at = Some(Instant::now() + delay);
        let refused: Vec<String> = refused.iter().map(|(f, r)| format!("{f} ({r})")).collect();
        self.readiness.raise(
            SUBSCRIPTION_CHECK,
            format!(
                "broker refused the subscription to {}; retrying in {delay:?}",
                refused.join(", ")
            ),
        );
    }

    /// Subscribing from a separate task: the request channel is drained by this very loop.
    /// One SUBSCRIBE for every filter, so one SUBACK tells whether we consume everything.
    fn subscribe(&self) {
        let (client, filters) = (self.client.clone(), self.filters.clone());
        tokio::spawn(async move {
            let filters = filters
                .into_iter()
                .map(|f| Filter::new(f, QoS::AtLeastOnce));
            if let Err(e) = client.subscribe_many(filters).await {
                tracing::error!(error = %e, "subscribe failed");
            }
        });
    }
}

/// Sleeps until `at`; never resolves for `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Waits for room in the channel (never resolves once the channel is dropped at shutdown).
async fn reserve(tx: Option<mpsc::Sender<Delivery>>) -> Option<mpsc::OwnedPermit<Delivery>> {
    match tx {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}
