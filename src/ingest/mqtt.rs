//! The MQTT source: one task that does nothing but poll the rumqttc event loop and forward
//! deliveries. It must never block — a blocked event loop stops pings and acks, the broker
//! drops us for missed keepalives, and writers waiting to queue acks deadlock with it.
//!
//! The channel out of it is as large as the receive-maximum we announce, which by protocol
//! bounds our unacked messages. Brokers do not all keep that promise (Mosquitto 2.0.11 was
//! measured letting ~2× through once acks flow), so deliveries that find the channel full
//! wait in a bounded overflow queue (`overflow.rs`: what happens at its bound, and why).
//!
//! It also owns what "consuming" means for readiness: the node is ready only once the broker
//! granted every topic filter (`mqtt_subscription`, retried with backoff when refused), and
//! not while another connection with our client id keeps taking the session over
//! (`mqtt_session`, with reconnects backed off; see `session.rs`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{ConnectProperties, Filter, Packet, SubAck, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::ack::{AckToken, Acker, Generation};
use super::overflow::Overflow;
use super::session::{
    closed_by_broker, reason_label, Retries, Takeovers, RECONNECT_DELAY, STABLE_AFTER,
};
use crate::config::MqttSettings;
use crate::domain::Timestamp;
use crate::observability;
use crate::readiness::Readiness;
use crate::shutdown::Shutdown;

/// Largest packet we accept from the broker: above the decoder's payload limit, so an
/// oversized payload becomes a dead letter instead of a dropped connection.
const MAX_INCOMING_PACKET: u32 = 4 * 1024 * 1024;

#[derive(Clone)]
pub struct Delivery {
    pub topic: String,
    pub payload: Bytes,
    pub received_at: Timestamp,
    pub ack: AckToken,
}

/// Whether the broker connection is up, for readiness.
#[derive(Clone, Default)]
pub struct BrokerStatus(Arc<AtomicBool>);

impl BrokerStatus {
    pub fn is_connected(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, up: bool) {
        self.0.store(up, Ordering::Relaxed)
    }
}

pub struct MqttSource {
    pub deliveries: mpsc::Receiver<Delivery>,
    pub acker: Acker,
    pub status: BrokerStatus,
    client: AsyncClient,
    /// The poller; `ingest::Pipeline::start` has the supervisor watch it.
    pub(super) task: JoinHandle<()>,
}

impl MqttSource {
    pub fn start(settings: &MqttSettings, shutdown: Shutdown, readiness: Readiness) -> Self {
        let mut options = MqttOptions::new(
            settings.client_id.clone(),
            settings.host.clone(),
            settings.port,
        );
        let mut props = ConnectProperties::new();
        props.session_expiry_interval = Some(settings.session_expiry.as_secs() as u32);
        props.receive_maximum = Some(settings.receive_maximum);
        props.max_packet_size = Some(MAX_INCOMING_PACKET);
        options
            .set_clean_start(false)
            .set_connect_properties(props)
            .set_manual_acks(true)
            .set_keep_alive(settings.keep_alive);
        // Acks for a whole batch are queued at once; room for them keeps writers from waiting.
        let (client, eventloop) = AsyncClient::new(options, settings.receive_maximum as usize + 64);
        let (tx, deliveries) = mpsc::channel(settings.receive_maximum as usize);
        let generation = Generation::default();
        let status = BrokerStatus::default();
        let poller = Poller {
            eventloop,
            client: client.clone(),
            client_id: settings.client_id.clone(),
            tx: Some(tx),
            generation: generation.clone(),
            status: status.clone(),
            filters: filters(settings),
            shutdown,
            readiness,
            // As much again as the channel: the ~2× Mosquitto was measured sending fits.
            overflow: Overflow::new(settings.receive_maximum as usize),
            discarding: false,
            unacked: HashSet::new(),
            subscribed: false,
            suback_pending: None,
            refusals: Retries::default(),
            resubscribe_at: None,
            takeovers: Takeovers::default(),
            reconnect_at: None,
            stable_at: None,
        };
        let task = tokio::spawn(poller.run());
        Self {
            deliveries,
            acker: Acker::new(client.clone(), generation),
            status,
            client,
            task,
        }
    }

    /// After the pipeline has drained and acked: sends DISCONNECT behind the queued acks
    /// (requests leave in order) and waits for the event loop to finish.
    pub async fn close(self, deadline: Duration) {
        let _ = self.client.disconnect().await;
        let mut task = self.task;
        if tokio::time::timeout(deadline, &mut task).await.is_err() {
            task.abort();
        }
    }
}

fn filters(settings: &MqttSettings) -> Vec<String> {
    ["fleet/+/telemetry", "owntracks/+/+"]
        .iter()
        .map(|t| {
            let topic = format!("{}{t}", settings.topic_prefix);
            match &settings.share_group {
                Some(group) => format!("$share/{group}/{topic}"),
                None => topic,
            }
        })
        .collect()
}

/// Readiness check raised until the broker granted every topic filter on the current session.
pub const SUBSCRIPTION_CHECK: &str = "mqtt_subscription";
/// Readiness check raised while our session keeps being taken over by another connection.
pub const SESSION_CHECK: &str = "mqtt_session";

struct Poller {
    eventloop: EventLoop,
    client: AsyncClient,
    client_id: String,
    tx: Option<mpsc::Sender<Delivery>>,
    generation: Generation,
    status: BrokerStatus,
    filters: Vec<String>,
    shutdown: Shutdown,
    /// Where the source says why it is not consuming (no subscription, session taken over).
    readiness: Readiness,
    /// Deliveries beyond the channel's capacity (broker exceeding receive-maximum), in order.
    overflow: Overflow<Delivery>,
    /// Set at the overflow bound: until the next CONNACK every new publish is dropped unacked
    /// (see `overflow.rs`), and once `unacked` is empty we reconnect to have them redelivered.
    discarding: bool,
    /// Packet ids forwarded (QoS 1) on this connection whose PUBACK has not gone out yet.
    unacked: HashSet<u16>,
    /// Every filter was granted on the current session.
    subscribed: bool,
    /// The SUBSCRIBE whose SUBACK decides `subscribed` (an older one's answer is ignored).
    suback_pending: Option<u16>,
    refusals: Retries,
    resubscribe_at: Option<Instant>,
    takeovers: Takeovers,
    /// While disconnected: when to connect again (the event loop is not polled until then).
    reconnect_at: Option<Instant>,
    /// When the current connection will have lasted long enough to end a takeover streak.
    stable_at: Option<Instant>,
}

impl Poller {
    async fn run(mut self) {
        let mut closing = false;
        loop {
            let event = tokio::select! {
                event = self.eventloop.poll(), if self.reconnect_at.is_none() => event,
                permit = reserve(self.tx.clone()), if !self.overflow.is_empty() => {
                    if let (Some(permit), Some(delivery)) = (permit, self.overflow.pop_front()) {
                        permit.send(delivery);
                    }
                    observability::delivery_overflow(self.overflow.len());
                    continue;
                }
                // Stop taking input: closing the channel lets the batcher flush and finish.
                // We keep polling so the acks of the drained batches still go out.
                _ = self.shutdown.triggered(), if self.tx.is_some() => {
                    self.tx = None;
                    self.overflow.clear(); // unacked: redelivered to the next session
                    observability::delivery_overflow(0);
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
        match self.overflow.push(delivery) {
            Ok(()) if self.overflow.len() == 1 => {
                tracing::warn!(
                    "delivery channel full: broker exceeds our receive-maximum; buffering"
                );
            }
            Ok(()) => {}
            Err(refused) => {
                self.unacked.remove(&refused.ack.pkid);
                // At the bound: see overflow.rs for why drop-and-redeliver is the way.
                observability::delivery_overflow_full(self.overflow.limit());
                observability::delivery_overflow_dropped(1);
                self.discarding = true;
                return;
            }
        }
        observability::delivery_overflow(self.overflow.len());
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
