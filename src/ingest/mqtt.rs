//! The MQTT source: one task that does nothing but poll the rumqttc event loop and forward
//! deliveries. It must never block — a blocked event loop stops pings and acks, the broker
//! drops us for missed keepalives, and writers waiting to queue acks deadlock with it.
//!
//! The channel out of it is as large as the receive-maximum we announce, which by protocol
//! bounds our unacked messages. Brokers do not all keep that promise (Mosquitto 2.0.11 was
//! measured letting ~2× through once acks flow), so deliveries that find the channel full
//! wait in a local overflow queue, forwarded as room frees up, while polling continues.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{ConnectProperties, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ack::{AckToken, Acker, Generation};
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
            tx: Some(tx),
            generation: generation.clone(),
            status: status.clone(),
            filters: filters(settings),
            shutdown,
            readiness,
            overflow: VecDeque::new(),
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

struct Poller {
    eventloop: EventLoop,
    client: AsyncClient,
    tx: Option<mpsc::Sender<Delivery>>,
    generation: Generation,
    status: BrokerStatus,
    filters: Vec<String>,
    shutdown: Shutdown,
    /// Where the source says why it is not consuming (no subscription, session taken over).
    readiness: Readiness,
    /// Deliveries beyond the channel's capacity (broker exceeding receive-maximum), in order.
    overflow: VecDeque<Delivery>,
}

impl Poller {
    async fn run(mut self) {
        let mut closing = false;
        loop {
            let event = tokio::select! {
                event = self.eventloop.poll() => event,
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
                    continue;
                }
            };
            match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => self.forward(publish),
                Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                    self.generation.advance();
                    self.status.set(true);
                    observability::broker_connected(connack.session_present);
                    // No session on the broker (first start, expiry, broker restart without
                    // persistence): our subscriptions are gone too.
                    if !connack.session_present {
                        self.subscribe();
                    }
                }
                // Keep reading until the broker closes the connection. Dropping the socket now,
                // with its publishes still unread in our receive buffer, makes the kernel send
                // RST, and the broker may then discard the last PUBACKs it had not read yet
                // (seen in the SIGTERM test: committed, never acked, redelivered).
                Ok(Event::Outgoing(Outgoing::Disconnect)) => closing = true,
                Ok(_) => {}
                Err(e) => {
                    self.status.set(false);
                    if closing {
                        break; // the broker closed the connection after our DISCONNECT
                    }
                    observability::broker_disconnected(&e);
                    if self.tx.is_none() {
                        break; // shutting down: nothing left to ack on a dead connection
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        self.status.set(false);
    }

    fn forward(&mut self, publish: rumqttc::v5::mqttbytes::v5::Publish) {
        let Some(tx) = &self.tx else {
            return; // after shutdown began: left unacked, the broker redelivers it next session
        };
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
        if !self.overflow.is_empty() {
            self.overflow.push_back(delivery); // keep order behind what already waits
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(delivery)) = tx.try_send(delivery) {
            tracing::warn!("delivery channel full: broker exceeds our receive-maximum; buffering");
            self.overflow.push_back(delivery);
            observability::delivery_overflow(self.overflow.len());
        }
    }

    /// Subscribing from a separate task: the request channel is drained by this very loop.
    fn subscribe(&self) {
        let (client, filters) = (self.client.clone(), self.filters.clone());
        tokio::spawn(async move {
            for filter in filters {
                if let Err(e) = client.subscribe(filter.clone(), QoS::AtLeastOnce).await {
                    tracing::error!(%filter, error = %e, "subscribe failed");
                }
            }
        });
    }
}

/// Waits for room in the channel (never resolves once the channel is dropped at shutdown).
async fn reserve(tx: Option<mpsc::Sender<Delivery>>) -> Option<mpsc::OwnedPermit<Delivery>> {
    match tx {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}
