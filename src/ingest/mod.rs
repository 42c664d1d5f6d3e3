//! The ingest pipeline: MQTT source → decode + batch → writers → commit → ack.
//!
//! ```text
//! event loop ──(≤ receive-maximum)──▶ batcher ──(WRITER_QUEUE batches)──▶ writer × N ──▶ PostgreSQL
//!     ▲                                                                       │
//!     └──────────────────────────── acks after commit ───────────────────────┘
//! ```
//! Shutdown runs the same path to its end: the source stops forwarding, the batcher flushes,
//! writers drain and ack, then the MQTT connection is closed behind the last ack.

pub mod ack;
pub mod batcher;
pub mod decode;
pub mod faults;
pub mod fencing;
pub mod mqtt;
pub mod resolver;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::domain::Reason;
use crate::readiness::Readiness;
use crate::shutdown::Shutdown;
use crate::store::live::Watched;
use crate::store::partitions::Partitions;
use crate::supervisor::Supervisor;
use ack::Acker;
use decode::{DecodeError, Decoded, Decoder, Reject, Window};
use faults::WriterHealth;
use mqtt::{BrokerStatus, Delivery, MqttSource};
use resolver::Resolver;
use writer::Writer;

/// Batches waiting for a writer. Small on purpose: backpressure should reach the broker
/// (through unacked messages) rather than pile up decoded points in memory.
const WRITER_QUEUE: usize = 2;

/// A delivery and what it decoded to: the unit that is acked.
pub struct Message {
    pub delivery: Delivery,
    pub decoded: Decoded,
}

impl Message {
    /// The same delivery, now to be stored only as a dead letter the database refused.
    fn poisoned(&self, detail: String) -> Message {
        let error = DecodeError::new(Reason::RejectedByDatabase, detail);
        Message {
            delivery: self.delivery.clone(),
            decoded: Decoded {
                external_id: self.decoded.external_id.clone(),
                rejects: vec![Reject {
                    error,
                    payload: self.delivery.payload.clone(),
                }],
                ..Decoded::default()
            },
        }
    }

    /// The last form a refused message is stored in: its payload as received (a bytea takes
    /// any bytes), its topic stripped of control characters and cut to `MAX_TOPIC_CHARS`, and a
    /// detail made only of this text and the SQLSTATE. Nothing of it depends on what the device
    /// sent, so only a fault in the store itself can refuse it.
    fn minimal_dead_letter(&self, sqlstate: &str) -> Message {
        let mut delivery = self.delivery.clone();
        delivery.topic = sanitized_topic(&delivery.topic);
        let detail = format!(
            "refused by the database (SQLSTATE {sqlstate}), and so was its full dead letter"
        );
        Message {
            decoded: Decoded {
                rejects: vec![Reject {
                    error: DecodeError::new(Reason::RejectedByDatabase, detail),
                    payload: delivery.payload.clone(),
                }],
                ..Decoded::default()
            },
            delivery,
        }
    }
}

/// Longest topic kept in a minimal dead letter (MQTT allows 65,535 bytes).
const MAX_TOPIC_CHARS: usize = 256;

fn sanitized_topic(topic: &str) -> String {
    topic
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_TOPIC_CHARS)
        .collect()
}

pub struct Pipeline {
    source: MqttSource,
    batcher: JoinHandle<()>,
    writers: Vec<JoinHandle<()>>,
    acker: Acker,
}

impl Pipeline {
    pub fn start(
        settings: &Settings,
        partitions: Arc<Partitions>,
        watched: Watched,
        fences: Arc<crate::geofencing::Geofences>,
        shutdown: Shutdown,
        readiness: Readiness,
        supervisor: &Supervisor,
    ) -> Self {
        let mut source = MqttSource::start(&settings.mqtt, shutdown, readiness.clone());
        // Swapped for its watched stand-in; `MqttSource::close` drains and aborts it as before.
        let poller = std::mem::replace(&mut source.task, tokio::spawn(async {}));
        source.task = supervisor.watch("mqtt poller", poller);
        let deliveries = std::mem::replace(&mut source.deliveries, mpsc::channel(1).1);
        let (batch_tx, batch_rx) = mpsc::channel(WRITER_QUEUE);

        let decoder = Decoder {
            topic_prefix: settings.mqtt.topic_prefix.clone(),
            max_payload_bytes: settings.ingest.max_payload_bytes,
        };
        let retention_days = settings.retention.raw_days;
        let max_future = settings.ingest.max_future_skew.as_secs() as i64;
        let prepare = move |delivery: Delivery| {
            // Judged from receipt, not from whenever the batcher gets to it.
            let window = Window::around(delivery.received_at, retention_days, max_future);
            let decoded = decoder.decode(&delivery.topic, &delivery.payload, window);
            Message { delivery, decoded }
        };
        let weight = |m: &Message| m.decoded.points.len() + m.decoded.rejects.len();
        let limits = batcher::Limits {
            rows: settings.ingest.batch_rows,
            age: settings.ingest.batch_age,
        };
        let batcher = supervisor.spawn(
            "batcher",
            batcher::run(deliveries, batch_tx, limits, prepare, weight),
        );

        let writer = Arc::new(Writer {
            database_url: settings.database_url.clone(),
            resolver: Arc::new(Resolver::new(settings.ingest.unknown_vehicle_ttl)),
            partitions,
            acker: source.acker.clone(),
            watched,
            health: WriterHealth::new(readiness),
            track_late: settings.rollup.track_late,
            fences,
            known: Arc::default(),
            around: Arc::default(),
        });
        let batch_rx = Arc::new(Mutex::new(batch_rx));
        let writers = (0..settings.ingest.writers)
            .map(|id| supervisor.spawn("writer", writer.clone().run(id, batch_rx.clone())))
            .collect();
        Self {
            acker: source.acker.clone(),
            source,
            batcher,
            writers,
        }
    }

    pub fn broker_status(&self) -> BrokerStatus {
        self.source.status.clone()
    }

    pub fn acker(&self) -> Acker {
        self.acker.clone()
    }

    /// Waits for the drain that shutdown started; whatever is not committed by the deadline
    /// stays unacked and is redelivered to the next session.
    pub async fn drain(self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        let mut tasks = vec![self.batcher];
        tasks.extend(self.writers);
        for task in &mut tasks {
            if tokio::time::timeout_at(until, task).await.is_err() {
                tracing::warn!(
                    ?deadline,
                    "ingest did not drain in time; unacked messages will be redelivered"
                );
                tasks.iter().for_each(JoinHandle::abort);
                break;
            }
        }
        self.source.close(Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_dead_letter_topic_has_no_control_characters_and_a_bounded_length() {
        assert_eq!(
            sanitized_topic("fleet/a\0b\n/telemetry"),
            "fleet/a?b?/telemetry"
        );
        let long = "x".repeat(10_000);
        assert_eq!(sanitized_topic(&long).chars().count(), MAX_TOPIC_CHARS);
        assert_eq!(
            sanitized_topic("fleet/ünïcode/telemetry"),
            "fleet/ünïcode/telemetry"
        );
    }
}
