//! The writer stage: each writer task owns one database connection and turns batches into
//! one committed transaction each, then acknowledges the batch's messages.
//!
//! Failures split three ways. Transient (connection lost, database restarting, timeout):
//! retry the same batch with backoff, acking nothing meanwhile. Rows refused by the database
//! (a value it cannot hold): retry message by message so one poisoned message becomes a dead
//! letter instead of stalling the stream. Redelivered rows: handled inside `store::telemetry`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex};
use tokio_postgres::Client;

use super::ack::{AckToken, Acker};
use super::decode::Reject;
use super::mqtt::Delivery;
use super::resolver::Resolver;
use super::Message;
use crate::domain::{Reason, Timestamp};
use crate::observability::{self, BatchReport};
use crate::readiness::Readiness;
use crate::store::copy::CopyBuffer;
use crate::store::dead_letters::DeadLetter;
use crate::store::live::Watched;
use crate::store::partitions::Partitions;
use crate::store::telemetry::{self, PreparedBatch, Written};
use crate::store::{self, StoreError};

/// COPY ignores `statement_timeout`; a batch that takes longer than this is abandoned
/// (connection dropped, transaction aborted server-side) and retried.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct Writer {
    pub database_url: String,
    pub resolver: Arc<Resolver>,
    pub partitions: Arc<Partitions>,
    pub acker: Acker,
    pub watched: Watched,
    /// Raised while batches fail for a reason retrying alone may not fix.
    pub readiness: Readiness,
}

impl Writer {
    /// Takes batches until the channel closes (the batcher has flushed its last one).
    pub async fn run(self: Arc<Self>, batches: Arc<Mutex<mpsc::Receiver<Vec<Message>>>>) {
        let mut conn = None;
        loop {
            let Some(batch) = batches.lock().await.recv().await else {
                break;
            };
            observability::messages_received(batch.len() as u64);
            let started = Instant::now();
            let written = self.commit(&mut conn, &batch).await;
            let tokens: Vec<AckToken> = batch.iter().map(|m| m.delivery.ack).collect();
            self.acker.ack_committed(&tokens).await;
            observability::batch_committed(&BatchReport {
                messages: batch.len() as u64,
                ignored: batch.iter().filter(|m| m.decoded.ignored).count() as u64,
                rows: written.stored + written.duplicates + written.dead_letters,
                stored: written.stored,
                duplicates: written.duplicates,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }

    async fn commit(&self, conn: &mut Option<Client>, batch: &[Message]) -> Written {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.attempt(conn, batch).await {
                Ok(written) => return written,
                Err(e) if e.is_data_error() => return self.isolate(conn, batch).await,
                Err(e) => {
                    observability::write_retried(&e);
                    *conn = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn attempt(
        &self,
        conn: &mut Option<Client>,
        batch: &[Message],
    ) -> Result<Written, StoreError> {
        if conn.as_ref().is_none_or(Client::is_closed) {
            *conn = Some(store::connect(&self.database_url).await?);
        }
        let client = conn.as_mut().expect("connected above");
        let ids: Vec<&str> = batch
            .iter()
            .map(|m| m.decoded.external_id.as_deref().unwrap_or(""))
            .collect();
        let vehicles = self.resolver.resolve(client, &ids).await?;
        let mut prepared = prepare(batch, &vehicles);
        prepared.notices = prepared.latest.notices(&self.watched.get());
        self.partitions
            .ensure(client, prepared.days.iter().copied())
            .await?;
        let written = tokio::time::timeout(WRITE_TIMEOUT, telemetry::write(client, &prepared))
            .await
            .map_err(|_| StoreError::Timeout(WRITE_TIMEOUT))??;
        observe_commit(batch, &vehicles, &prepared);
        Ok(written)
    }

    /// Writes message by message; a message the database refuses becomes one dead letter.
    async fn isolate(&self, conn: &mut Option<Client>, batch: &[Message]) -> Written {
        tracing::warn!(
            messages = batch.len(),
            "database refused a batch; isolating the culprit"
        );
        let mut total = Written::default();
        for message in batch {
            let one = std::slice::from_ref(message);
            let written = match self.attempt(conn, one).await {
                Ok(w) => w,
                Err(e) if e.is_data_error() => {
                    let poisoned = [message.poisoned(e.to_string())];
                    Box::pin(self.commit(conn, &poisoned)).await
                }
                Err(_) => Box::pin(self.commit(conn, one)).await,
            };
            total.stored += written.stored;
            total.duplicates += written.duplicates;
            total.dead_letters += written.dead_letters;
        }
        total
    }
}

/// Builds the COPY stream, latest positions and dead letters for a batch.
fn prepare(batch: &[Message], vehicles: &[Option<uuid::Uuid>]) -> PreparedBatch {
    let rows: usize = batch.iter().map(|m| m.decoded.points.len()).sum();
    let mut copy = CopyBuffer::with_capacity(rows);
    let mut out = PreparedBatch::default();
    for (message, vehicle) in batch.iter().zip(vehicles) {
        let d = &message.delivery;
        for Reject { error, payload } in &message.decoded.rejects {
            out.dead_letters.push(dead_letter(
                d,
                error.reason,
                error.detail.clone(),
                payload.clone(),
            ));
        }
        let points = &message.decoded.points;
        match vehicle {
            _ if points.is_empty() => {}
            Some(id) => {
                for p in points {
                    copy.push(id, p, d.received_at);
                    out.latest.offer(*id, p, d.received_at);
                    out.days.insert(p.ts.utc_day());
                }
            }
            None => {
                let external_id = message.decoded.external_id.as_deref().unwrap_or_default();
                let detail = format!(
                    "no vehicle with external_id {external_id:?} ({} points)",
                    points.len()
                );
                out.dead_letters.push(dead_letter(
                    d,
                    Reason::UnknownVehicle,
                    detail,
                    d.payload.clone(),
                ));
            }
        }
    }
    out.rows = copy.rows() as u64;
    out.copy = (copy.rows() > 0).then(|| copy.finish());
    out
}

fn dead_letter(d: &Delivery, reason: Reason, detail: String, payload: bytes::Bytes) -> DeadLetter {
    DeadLetter {
        received_at: d.received_at,
        topic: d.topic.clone(),
        payload,
        reason,
        detail,
    }
}

/// Metrics for what one transaction committed: dead letters by reason, optional fields dropped
/// by field, and per-point lag.
fn observe_commit(batch: &[Message], vehicles: &[Option<uuid::Uuid>], prepared: &PreparedBatch) {
    let mut reasons: HashMap<Reason, u64> = HashMap::new();
    for letter in &prepared.dead_letters {
        *reasons.entry(letter.reason).or_default() += 1;
    }
    for (reason, n) in reasons {
        observability::dead_letters(reason.as_str(), n);
    }
    let committed = Timestamp::now();
    let mut dropped: HashMap<&'static str, u64> = HashMap::new();
    for (m, _) in batch.iter().zip(vehicles).filter(|(_, v)| v.is_some()) {
        for p in &m.decoded.points {
            observability::lag_seconds(p.ts.secs_until(committed));
        }
        for field in &m.decoded.dropped {
            *dropped.entry(field).or_default() += 1;
        }
    }
    for (field, n) in dropped {
        observability::fields_dropped(field, n);
    }
}
