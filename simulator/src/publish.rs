//! MQTT publishing: one rumqttc client per connection, an event-loop task that does nothing
//! but poll and count broker acknowledgements, and a producer loop that paces messages.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::report::Counters;
use crate::traffic::Traffic;

/// Requests queued between the producer and the event loop. Large enough that the producer
/// rarely waits on the event loop, small enough (a few MB of payloads) to bound memory.
const REQUEST_CHANNEL: usize = 10_000;
/// Unacknowledged publishes per connection. rumqttc's default of 100 caps a connection at
/// 100 messages per round trip; 1000 keeps loopback and LAN brokers busy.
const INFLIGHT: u16 = 1_000;
/// The contract allows arrays of 1000 points (~170 kB); the oversized-array fault is a bit more.
const MAX_PACKET: usize = 2 * 1024 * 1024;
/// Messages generated between checks of the stop condition when unthrottled.
const BATCH: u64 = 256;
/// Pacing granularity when throttled: messages due are sent in one burst per tick.
const TICK: Duration = Duration::from_millis(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// A connected client and the task polling its event loop.
pub struct Link {
    pub client: AsyncClient,
    events: JoinHandle<()>,
}

/// Connects and waits for the broker's CONNACK, so a wrong URL fails fast instead of
/// silently queueing messages.
pub async fn connect(
    host: &str,
    port: u16,
    client_id: String,
    counters: Arc<Counters>,
) -> Result<Link> {
    let mut opts = MqttOptions::new(client_id.clone(), host, port);
    opts.set_clean_session(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(INFLIGHT)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    let (client, eventloop) = AsyncClient::new(opts, REQUEST_CHANNEL);
    let (ready_tx, ready_rx) = oneshot::channel();
    let events = tokio::spawn(pump(eventloop, counters, ready_tx));
    match tokio::time::timeout(CONNECT_TIMEOUT, ready_rx).await {
        Ok(Ok(Ok(()))) => Ok(Link { client, events }),
        Ok(Ok(Err(e))) => Err(anyhow!("MQTT connection to {host}:{port} failed: {e}")),
        Ok(Err(_)) => Err(anyhow!(
            "MQTT event loop for {client_id} ended before connecting"
        )),
        Err(_) => {
            events.abort();
            Err(anyhow!(
                "no CONNACK from {host}:{port} within {CONNECT_TIMEOUT:?}"
            ))
        }
    }
}

impl Link {
    /// Sends DISCONNECT and lets the event loop flush it; gives up after a couple of seconds.
    pub async fn close(self) {
        if self.client.disconnect().await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.events).await;
        } else {
            self.events.abort();
        }
    }
}

/// Polls the event loop forever (rumqttc only makes progress while polled) and counts what
/// the broker confirmed. With a clean session, publishes in flight during a reconnect are
/// lost; they show up as unacknowledged in the report rather than being hidden.
async fn pump(
    mut eventloop: EventLoop,
    counters: Arc<Counters>,
    ready: oneshot::Sender<Result<(), String>>,
) {
    let mut ready = Some(ready);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => match ready.take() {
                Some(tx) => {
                    let _ = tx.send(Ok(()));
                }
                None => {
                    counters.reconnects.fetch_add(1, Relaxed);
                    tracing::info!("reconnected to the broker");
                }
            },
            Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                counters.acked.fetch_add(1, Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Publish(_))) => {
                counters.sent.fetch_add(1, Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(ConnectionError::RequestsDone) => {
                return
            }
            Ok(_) => {}
            Err(e) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
                tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// When to stop, shared by all producers: an interrupt, a deadline, a total message budget.
pub struct Stop {
    interrupted: AtomicBool,
    deadline: Option<Instant>,
    budget: Option<AtomicU64>,
}

impl Stop {
    pub fn new(duration: Option<Duration>, messages: Option<u64>) -> Self {
        Self {
            interrupted: AtomicBool::new(false),
            deadline: duration.map(|d| Instant::now() + d),
            budget: messages.map(AtomicU64::new),
        }
    }

    pub fn interrupt(&self) {
        self.interrupted.store(true, Relaxed);
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Relaxed)
    }

    pub fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub fn budget_spent(&self) -> bool {
        self.budget.as_ref().is_some_and(|b| b.load(Relaxed) == 0)
    }

    pub fn should_stop(&self) -> bool {
        self.interrupted() || self.deadline_passed() || self.budget_spent()
    }

    /// Claims up to `want` messages to send; 0 means stop. Claiming in batches keeps the
    /// shared counter off the per-message path.
    pub fn take(&self, want: u64) -> u64 {
        if self.interrupted() || self.deadline_passed() {
            return 0;
        }
        // fetch_update fails only when the budget is already 0.
        match &self.budget {
            None => want,
            Some(b) => match b.fetch_update(Relaxed, Relaxed, |left| {
                (left > 0).then(|| left - want.min(left))
            }) {
                Ok(left) => want.min(left),
                Err(_) => 0,
            },
        }
    }
}

pub fn wall_ms() -> i64 {
    meridian::domain::Timestamp::now().unix_micros() / 1000
}

/// Publishes `traffic` at `rate` messages/s for this connection (0 = as fast as possible)
/// until `stop` says so. Counters are updated per batch, not per message.
pub async fn produce(
    mut traffic: Traffic,
    client: AsyncClient,
    qos: QoS,
    rate: f64,
    stop: Arc<Stop>,
    counters: Arc<Counters>,
) -> Result<()> {
    let started = Instant::now();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = 0u64;
    loop {
        let want = if rate > 0.0 {
            interval.tick().await;
            let due = (started.elapsed().as_secs_f64() * rate) as u64;
            // Bounded so a producer that fell behind still checks the stop condition often.
            due.saturating_sub(sent).min(16 * BATCH)
        } else {
            BATCH
        };
        if want == 0 {
            if stop.should_stop() {
                break;
            }
            continue;
        }
        let n = stop.take(want);
        if n == 0 {
            break;
        }
        let mut now_ms = wall_ms();
        for _ in 0..n {
            if let Some(wait) = traffic.wait_before_next(now_ms) {
                // Few vehicles, no throttle: let wall time catch up rather than stamp the future.
                // At least a tick, so the whole round of vehicles gains budget and one sleep
                // serves many messages instead of sleeping per message.
                counters.absorb(&mut traffic.tally);
                tokio::time::sleep(Duration::from_millis(wait).max(TICK)).await;
                now_ms = wall_ms();
            }
            let msg = traffic.next_message(now_ms);
            client
                .publish_bytes(msg.topic, qos, false, msg.payload)
                .await
                .context("MQTT event loop stopped")?;
        }
        sent += n;
        counters.absorb(&mut traffic.tally);
    }
    counters.absorb(&mut traffic.tally);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_budget_is_shared_exactly() {
        let stop = Stop::new(None, Some(1_000));
        let mut total = 0;
        loop {
            let n = stop.take(300);
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 1_000);
        assert!(stop.budget_spent());
    }

    #[test]
    fn interrupt_and_deadline_stop_claims() {
        let stop = Stop::new(None, None);
        assert_eq!(stop.take(5), 5);
        stop.interrupt();
        assert_eq!(stop.take(5), 0);
        let stop = Stop::new(Some(Duration::ZERO), None);
        assert_eq!(stop.take(5), 0);
    }
}
