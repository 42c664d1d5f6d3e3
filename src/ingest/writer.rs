//! The writer stage: each writer task owns one database connection and turns batches into
//! one committed transaction each, then acknowledges the batch's messages.
//!
//! Failures split three ways (`faults::Fault`). Transient (connection lost, database
//! restarting, timeout) and persistent (permission denied, undefined table): retry the same
//! batch with capped backoff, acking nothing meanwhile, and say so in `/readyz` (persistent at
//! once, transient once it lasts). Rows refused by the database (a value it cannot hold): retry
//! message by message so one poisoned message becomes a dead letter instead of stalling the
//! stream. Redelivered rows: handled inside `store::telemetry`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Mutex};

use super::ack::{AckToken, Acker};
use super::decode::Reject;
use super::faults::{self, Fault, WriterHealth};
use super::fencing::{self, fence_points};
use super::mqtt::Delivery;
use super::resolver::Resolver;
use super::Message;
use crate::domain::{Reason, Timestamp};
use crate::geofencing::{Geofences, Neighbourhoods};
use crate::observability::{self, BatchReport};
use crate::store::copy::CopyBuffer;
use crate::store::dead_letters::DeadLetter;
use crate::store::geofence_state::{Decided, Judging, Prior};
use crate::store::known_states::KnownStates;
use crate::store::live::Watched;
use crate::store::partitions::Partitions;
use crate::store::prepared::Session;
use crate::store::telemetry::{self, PreparedBatch, Written};
use crate::store::{self, rollups, StoreError};

/// COPY ignores `statement_timeout`; a batch that takes longer than this is abandoned
/// (connection dropped, transaction aborted server-side) and retried.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// See `late_candidates_before`.
const LATE_CLOCK_SLACK: Duration = Duration::from_secs(60);

pub struct Writer {
    pub database_url: String,
    pub resolver: Arc<Resolver>,
    pub partitions: Arc<Partitions>,
    pub acker: Acker,
    pub watched: Watched,
    /// Raises `ingest_writer` while batches fail for longer than a blip.
    pub health: WriterHealth,
    /// Mark late points for the rollup job (off only to measure what marking costs).
    pub track_late: bool,
    /// This node's fences: each batch's points are judged against them in its transaction.
    pub fences: Arc<Geofences>,
    /// Vehicles' fence states as this node's writers last committed them.
    pub known: Arc<KnownStates>,
    /// The fences around each vehicle's last points, for judging its next.
    pub around: Arc<Neighbourhoods>,
}

/// One writer task's own state: its connection, and which writer it is (for readiness).
struct Lane {
    id: usize,
    conn: Option<Session>,
}

/// What a refusal of the rows themselves (SQLSTATE class 22/23) means for a write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The data is at fault: hand the error back so the caller can isolate the culprit.
    Isolate,
    /// Even a minimal dead letter was refused: the store is at fault, not the message.
    StoreFault,
}

impl Writer {
    /// Takes batches until the channel closes (the batcher has flushed its last one).
    pub async fn run(
        self: Arc<Self>,
        id: usize,
        batches: Arc<Mutex<mpsc::Receiver<Vec<Message>>>>,
    ) {
        let mut lane = Lane { id, conn: None };
        // Judging against no fences before they are loaded would lose those points' events.
        self.fences.loaded().await;
        loop {
            let Some(batch) = batches.lock().await.recv().await else {
                break;
            };
            observability::messages_received(batch.len() as u64);
            let started = Instant::now();
            let written = self.commit(&mut lane, &batch).await;
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

    /// Commits the batch (or, if its data is refused, each of its messages) and acks what
    /// committed. Returns only once every message of the batch is stored and acked.
    async fn commit(&self, lane: &mut Lane, batch: &[Message]) -> Written {
        match self.retry(lane, batch, Refusal::Isolate).await {
            Ok(written) => {
                self.acker.ack_committed(&tokens(batch)).await;
                written
            }
            Err(_) => self.isolate(lane, batch).await,
        }
    }

    /// Retries the same batch with capped exponential backoff until it commits; returns the
    /// error only for a refusal of its data under `Refusal::Isolate`.
    async fn retry(
        &self,
        lane: &mut Lane,
        batch: &[Message],
        refusal: Refusal,
    ) -> Result<Written, StoreError> {
        let mut backoff = FIRST_BACKOFF;
        let since = Instant::now();
        loop {
            let error = match self.attempt(&mut lane.conn, batch).await {
                Ok(written) => {
                    self.health.committed(lane.id);
                    return Ok(written);
                }
                Err(e) => e,
            };
            observability::write_failed(faults::class(&error));
            let (fault, reason) = match Fault::of(&error) {
                Fault::Data if refusal == Refusal::Isolate => return Err(error),
                Fault::Data => (
                    Fault::Persistent,
                    format!("dead letters refused: {}", faults::describe(&error)),
                ),
                fault => (fault, faults::describe(&error)),
            };
            self.health.failed(lane.id, fault, reason, since.elapsed());
            if fault == Fault::Transient {
                lane.conn = None; // the server answered nothing: start again on a new connection
            }
            observability::write_retried(&faults::describe(&error));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn attempt(
        &self,
        conn: &mut Option<Session>,
        batch: &[Message],
    ) -> Result<Written, StoreError> {
        if conn.as_ref().is_none_or(Session::is_closed) {
            let url = &self.database_url;
            *conn = Some(store::connect_session(url, Some(rollups::WRITER_APPLICATION), "").await?);
        }
        let session = conn.as_mut().expect("connected above");
        let client = &mut session.client;
        let ids: Vec<&str> = batch
            .iter()
            .map(|m| m.decoded.external_id.as_deref().unwrap_or(""))
            .collect();
        let vehicles = self.resolver.resolve(client, &ids).await?;
        let mut prepared = prepare(batch, &vehicles, self.track_late);
        prepared.notices = prepared.latest.notices(&self.watched);
        self.partitions
            .ensure(client, prepared.days.iter().copied())
            .await?;
        let points = (!self.fences.read().is_empty()).then(|| fence_points(batch, &vehicles));
        let (fences, around) = (&self.fences, &self.around);
        let judge = points
            .as_ref()
            .map(|points| move |prior: &Prior| fencing::judge(fences, around, prior, points));
        let judging = judge.as_ref().map(|j| Judging {
            judge: j as &(dyn Fn(&Prior) -> Decided + Send + Sync),
            known: &self.known,
        });
        let written =
            tokio::time::timeout(WRITE_TIMEOUT, telemetry::write(session, &prepared, judging))
                .await
                .map_err(|_| StoreError::Timeout(WRITE_TIMEOUT))??;
        observe_commit(batch, &vehicles, &prepared);
        Ok(written)
    }

    /// Writes message by message, so a message the database refuses holds back no other:
    /// those that commit are acked first, then each refused one is stored as a dead letter.
    async fn isolate(&self, lane: &mut Lane, batch: &[Message]) -> Written {
        tracing::warn!(
            messages = batch.len(),
            "database refused a batch; isolating the culprit"
        );
        let mut total = Written::default();
        let mut committed = Vec::new();
        let mut refused = Vec::new();
        for message in batch {
            match self
                .retry(lane, std::slice::from_ref(message), Refusal::Isolate)
                .await
            {
                Ok(written) => {
                    add(&mut total, written);
                    committed.push(message.delivery.ack);
                }
                Err(e) => refused.push((message, e)),
            }
        }
        self.acker.ack_committed(&committed).await;
        for (message, error) in refused {
            add(&mut total, self.dead_letter(lane, message, &error).await);
            self.acker.ack_committed(&[message.delivery.ack]).await;
        }
        total
    }

    /// Stores a message the database refused, in at most two forms, so isolation has a fixed
    /// depth: its dead letter with the database's reason; if that is refused too, a minimal
    /// dead letter (`Message::minimal_dead_letter`) that no content of the message can make
    /// invalid. If even that is refused, the fault is in the store (a constraint or trigger on
    /// `dead_letters`, say), which every later bad message would hit too; so it is handled like
    /// any persistent failure: `ingest_writer` fails naming it, this writer retries with
    /// backoff until `dead_letters` takes the letter, and the message stays unacked meanwhile.
    /// Leaving just this message unacked and moving on was the alternative; but it would hold
    /// one of the broker's in-flight slots per such message until they all were taken, with
    /// nothing in `/readyz` to say why ingest stopped.
    async fn dead_letter(&self, lane: &mut Lane, message: &Message, error: &StoreError) -> Written {
        let full = [message.poisoned(faults::describe_in_full(error))];
        match self.retry(lane, &full, Refusal::Isolate).await {
            Ok(written) => return written,
            Err(e) => {
                tracing::warn!(
                    error = faults::describe(&e),
                    "database refused a dead letter; storing a minimal one"
                )
            }
        }
        let code = error.sqlstate().map_or("", |s| s.code());
        let minimal = [message.minimal_dead_letter(code)];
        match self.retry(lane, &minimal, Refusal::StoreFault).await {
            Ok(written) => written,
            Err(_) => unreachable!("a store fault is retried until it commits"),
        }
    }
}

fn tokens(batch: &[Message]) -> Vec<AckToken> {
    batch.iter().map(|m| m.delivery.ack).collect()
}

fn add(total: &mut Written, one: Written) {
    total.stored += one.stored;
    total.duplicates += one.duplicates;
    total.dead_letters += one.dead_letters;
}

/// Points older than this may be late for the rollup job: those in hours that end before
/// `now + LATE_CLOCK_SLACK` by this node's clock. The database's clock decides
/// (`rollups::mark_late`), so this only spares the statement for batches of current points; it
/// stays right while the two clocks differ by less than `CLOSE_AFTER + LATE_CLOCK_SLACK`.
fn late_candidates_before(now: Timestamp) -> Timestamp {
    const HOUR_US: i64 = 3_600_000_000;
    let horizon = now
        .plus_secs(LATE_CLOCK_SLACK.as_secs() as i64)
        .unix_micros();
    Timestamp::from_unix_micros(horizon.div_euclid(HOUR_US) * HOUR_US)
}

/// Builds the COPY stream, latest positions and dead letters for a batch.
fn prepare(batch: &[Message], vehicles: &[Option<uuid::Uuid>], track_late: bool) -> PreparedBatch {
    let rows: usize = batch.iter().map(|m| m.decoded.points.len()).sum();
    let late_before = if track_late {
        late_candidates_before(Timestamp::now())
    } else {
        Timestamp::from_unix_micros(i64::MIN)
    };
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
                    if p.ts < late_before {
                        out.maybe_late
                            .insert((*id, rollups::hour_of(p.ts.to_datetime())));
                    }
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
