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
use rumqttc::v5::mqttbytes::v5::ConnectProperties;
use rumqttc::v5::{AsyncClient, MqttOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ack::{AckToken, Acker, Generation};
use crate::config::MqttSettings;
use crate::domain::Timestamp;
use crate::readiness::Readiness;
use crate::shutdown::Shutdown;
use overflow::Overflow;
use poller::Poller;
use session::{Retries, Takeovers};

mod overflow;
mod poller;
mod session;

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

    pub(super) fn set(&self, up: bool) {
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
            overflow: Overflow::new(settings.overflow_max_bytes),
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
