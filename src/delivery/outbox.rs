//! The outbox worker: takes committed geofence events from the outbox in rounds, publishes
//! each to MQTT (`meridian/events/geofence/{fence_id}`, QoS 1), records one webhook delivery
//! per matching webhook, and forgets the round — in one transaction, so a node killed at any
//! point leaves the round in the outbox for the next worker. Delivery is therefore at least
//! once: a round published but not yet committed is published again; consumers dedupe by the
//! event's `id`.
//!
//! Woken by the events' NOTIFY (a batch that raised events), and every `POLL` regardless, for
//! postponed rounds and anything a lost notification left behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::mqtt::{Publisher, MAX_ROUND};
use crate::config::MqttSettings;
use crate::observability;
use crate::shutdown::Shutdown;
use crate::store::prepared::Session;
use crate::store::{self, geofence_events, geofence_state, live, outbox, webhooks, StoreError};

const POLL: Duration = Duration::from_secs(1);
/// How long the broker has to acknowledge a round before it is postponed and retried.
const PUBLISH_WITHIN: Duration = Duration::from_secs(10);
/// Longest pause before a postponed round is tried again.
const MAX_RETRY_DELAY_MS: i64 = 30_000;

/// Runs until shutdown (spawned and watched by the supervisor).
/// Rings `fanned_out` after a round that recorded webhook deliveries (this node's webhook
/// worker sends them at once).
pub async fn run(url: String, mqtt: MqttSettings, fanned_out: Arc<Notify>, shutdown: Shutdown) {
    let wake = Arc::new(Notify::new());
    let mut publisher = Publisher::start(&mqtt);
    let mut session: Option<Session> = None;
    let mut listening: Option<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> = None;
    loop {
        if listening
            .as_ref()
            .is_none_or(|(_, closed)| closed.is_finished())
        {
            let woken = wake.clone();
            listening = live::listen(&url, &[geofence_state::EVENTS_CHANNEL], move |_, _| {
                woken.notify_one()
            })
            .await
            .map_err(|e| tracing::warn!(error = %e, "outbox worker cannot listen; polling"))
            .ok()
            .map(|(c, closed)| (c, tokio::spawn(closed)));
        }
        if session.as_ref().is_none_or(Session::is_closed) {
            session = connect(&url)
                .await
                .map_err(|e| observability::outbox_failed(&e.to_string()))
                .ok();
        }
        if let Some(s) = session.as_mut() {
            loop {
                match round(s, &mut publisher, &fanned_out).await {
                    Ok(n) if n == MAX_ROUND && !shutdown.is_triggered() => continue,
                    Ok(_) => break,
                    Err(Failure::Store(e)) => {
                        observability::outbox_failed(&e.to_string());
                        break;
                    }
                    Err(Failure::Publish) => {
                        // Start afresh: nothing of the failed round may be taken for this one's.
                        publisher.close().await;
                        publisher = Publisher::start(&mqtt);
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = shutdown.triggered() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    publisher.close().await;
}

/// The worker's connection. Its commits do not wait for the disk: a round whose commit a crash
/// loses is still in the outbox and is published again, which the event ids absorb.
async fn connect(url: &str) -> Result<Session, StoreError> {
    store::connect_session(url, None, "-c synchronous_commit=off").await
}

enum Failure {
    Store(StoreError),
    /// The round was postponed in the outbox.
    Publish,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// One round: returns how many events it delivered.
async fn round(
    session: &mut Session,
    publisher: &mut Publisher,
    fanned_out: &Notify,
) -> Result<usize, Failure> {
    let Session { client, prepared } = session;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let claimed = outbox::claim(&tx, prepared, MAX_ROUND as i64).await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let started = Instant::now();
    let ids: Vec<i64> = claimed.iter().map(|c| c.1).collect();
    let events = geofence_events::by_ids(&tx, prepared, &ids).await?;
    let messages: Vec<(String, Bytes)> = events
        .iter()
        .map(|e| (publisher.topic(e.fence_id), Bytes::from(e.to_json())))
        .collect();
    if let Err(e) = publisher.publish_all(messages, PUBLISH_WITHIN).await {
        let reason = e.to_string();
        outbox::postpone(&tx, &claimed, &reason, MAX_RETRY_DELAY_MS).await?;
        tx.commit().await.map_err(StoreError::from)?;
        observability::outbox_postponed(claimed.len(), &reason);
        return Err(Failure::Publish);
    }
    let deliveries = webhooks::fan_out(&tx, prepared, &claimed).await?;
    outbox::done(&tx, prepared, &claimed).await?;
    tx.commit().await.map_err(StoreError::from)?;
    if deliveries > 0 {
        fanned_out.notify_one();
    }
    let lag: Vec<f64> = events
        .iter()
        .map(|e| (chrono::Utc::now() - e.recorded_at).as_seconds_f64())
        .collect();
    observability::outbox_published(events.len(), deliveries, &lag, started.elapsed());
    Ok(claimed.len())
}
