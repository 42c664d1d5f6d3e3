//! Keeps a node's live index current: a full load at start (and after any lost connection),
//! then in place — positions as the ingest writers of every node commit them (NOTIFY), the
//! drivers and vehicles that dispatches and maintenance records name (NOTIFY from the
//! changing transaction, or a handler on this node asking), and a full reload only when the
//! admin tables (drivers, shifts, vehicles) change. One task owns the books (`State`) and is
//! the index's only writer, so reloads and per-driver reads are serialised: an older read can
//! never overwrite a newer one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use uuid::Uuid;

use super::requests::Work;
use super::state::{self, Edits, State};
use super::Live;
use crate::domain::Timestamp;
use crate::observability;
use crate::shutdown::Shutdown;
use crate::store::live::AvailabilityChange;
use crate::store::{self, live as source, StoreError};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Notification payloads (≈95 positions each) waiting for the feed task; past this the feed
/// has fallen behind, drops them, and re-reads every position instead.
const QUEUE: usize = 4_096;
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);
/// Tree edits per hold of the write lock (a move is two, ~2–10 µs each): readers wait at
/// most a fraction of a millisecond behind a burst of positions, instead of its whole length.
const MAX_EDITS_PER_LOCK: usize = 64;

pub fn spawn(
    live: Arc<Live>,
    url: String,
    refresh: Duration,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = session(&live, &url, refresh, &shutdown).await;
            live.keys.set_trusted(false);
            observability::live_listening(false);
            match result {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "live index feed interrupted; reconnecting"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.triggered() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

/// One connected stretch: returns `Ok` on shutdown, `Err` when a connection is lost.
async fn session(
    live: &Arc<Live>,
    url: &str,
    refresh: Duration,
    shutdown: &Shutdown,
) -> Result<(), StoreError> {
    let (tx, mut rx) = mpsc::channel::<Vec<source::PositionRow>>(QUEUE);
    let overflowed = Arc::new(AtomicBool::new(false));
    let (notified, overflow) = (live.clone(), overflowed.clone());
    let channels = [
        source::POSITIONS_CHANNEL,
        source::AVAILABILITY_CHANNEL,
        source::API_KEYS_CHANNEL,
    ];
    let (listener, closed) =
        source::listen(url, &channels, move |channel, payload| match channel {
            source::POSITIONS_CHANNEL => {
                let rows: Vec<_> = source::decode_positions(payload).collect();
                notified.heard_positions(&rows);
                if tx.try_send(rows).is_err() {
                    overflow.store(true, Ordering::Release);
                }
            }
            source::AVAILABILITY_CHANNEL => {
                notified.ask(|r| match AvailabilityChange::decode(payload) {
                    AvailabilityChange::Drivers(ids) => r.drivers(&ids),
                    AvailabilityChange::Vehicles(ids) => r.vehicles(&ids),
                    AvailabilityChange::Everything => r.everything(),
                });
            }
            source::API_KEYS_CHANNEL => notified.keys.clear(),
            _ => {}
        })
        .await?;
    // Listening from here: whatever commits from now on is heard; everything before is read.
    live.keys.set_trusted(true);
    observability::live_listening(true);
    let client = store::connect(url).await?;
    let prepared = source::Prepared::new(&client).await?;

    let mut state = State::default();
    let started = Timestamp::now();
    // Every request made so far is covered by this load, which reads after it was made.
    let work = Work {
        everything: true,
        ..live.take()
    };
    serve(live, &client, &prepared, &mut state, work).await?;
    live.mark_current(started);

    tokio::pin!(closed);
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.triggered() => return Ok(()),
            _ = &mut closed => return Err(StoreError::Lost("LISTEN connection")),
            Some(mut rows) = rx.recv() => {
                while let Ok(more) = rx.try_recv() {
                    rows.extend(more);
                }
                apply(live, state.positions(rows, now_us()));
            }
            _ = live.work_wanted() => serve(live, &client, &prepared, &mut state, live.take()).await?,
            _ = tick.tick() => {
                // A round trip on the listening connection: when it returns, every position and
                // availability change committed before it started has been heard, so once the
                // queue and the requests are served the index is current as of `started`.
                let started = Timestamp::now();
                tokio::time::timeout(HEARTBEAT_TIMEOUT, listener.simple_query("SELECT 1"))
                    .await
                    .map_err(|_| StoreError::Timeout(HEARTBEAT_TIMEOUT))??;
                let mut rows = Vec::new();
                while let Ok(more) = rx.try_recv() {
                    rows.extend(more);
                }
                if overflowed.swap(false, Ordering::AcqRel) {
                    tracing::warn!("live index fell behind the position stream; re-reading positions");
                    let watched: Vec<Uuid> = state.watched().iter().copied().collect();
                    rows.extend(prepared.positions_of(&client, &watched).await?);
                }
                apply(live, state.positions(rows, now_us()));
                serve(live, &client, &prepared, &mut state, live.take()).await?;
                if state.started(now_us()) {
                    live.grow();
                }
                live.mark_current(started);
            }
        }
    }
}

/// Does one turn's requested work and reports it done: a full reload, or a re-read of the
/// named drivers and vehicles.
async fn serve(
    live: &Live,
    client: &Client,
    prepared: &source::Prepared,
    state: &mut State,
    work: Work,
) -> Result<(), StoreError> {
    if work.everything {
        reload(live, client, prepared, state).await?;
    } else if !work.is_empty() {
        refresh(live, client, prepared, state, &work.drivers, &work.vehicles).await?;
    }
    live.satisfied(work.generation);
    Ok(())
}

/// Reloads who is available, tells the ingest writers which vehicles to announce from now
/// on, then reads the positions of vehicles that just joined (announcements for them were
/// skipped until now), and swaps in a new index.
async fn reload(
    live: &Live,
    client: &Client,
    prepared: &source::Prepared,
    state: &mut State,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let rows = source::available_shifts(client).await?;
    let joined = state.reset(rows, now_us());
    live.watched.set(state.watched().clone());
    if !joined.is_empty() {
        state.record(prepared.positions_of(client, &joined).await?);
    }
    let index = state.build();
    let candidates = index.len();
    live.replace(index);
    observability::live_reloaded(candidates, started.elapsed());
    Ok(())
}

/// Re-reads availability for these drivers and vehicles only and replaces what the index
/// holds for them; vehicles new to the watched set have their positions read.
async fn refresh(
    live: &Live,
    client: &Client,
    prepared: &source::Prepared,
    state: &mut State,
    drivers: &[Uuid],
    vehicles: &[Uuid],
) -> Result<(), StoreError> {
    let rows = prepared
        .available_shifts_of(client, drivers, vehicles)
        .await?;
    let (mut edits, joined) = state.refresh(drivers, vehicles, rows, now_us());
    if !joined.is_empty() {
        live.watched.add(&joined);
        let fixes = prepared.positions_of(client, &joined).await?;
        edits.merge(state.positions(fixes, now_us()));
    }
    apply(live, edits);
    live.refreshes.fetch_add(1, Ordering::AcqRel);
    observability::live_refreshed(drivers.len(), vehicles.len());
    Ok(())
}

/// Applies a batch of edits under the write lock, `MAX_EDITS_PER_LOCK` at a time.
fn apply(live: &Live, edits: Edits) {
    if edits.is_empty() {
        return;
    }
    let (grew, moved) = (edits.grew, edits.moved);
    let (mut missing, mut candidates) = (0, 0);
    for batch in edits.batches(MAX_EDITS_PER_LOCK) {
        let started = Instant::now();
        let mut index = live.write();
        missing += state::apply(batch, &mut index);
        candidates = index.len();
        drop(index);
        observability::live_locked(started.elapsed());
    }
    observability::live_updated(candidates, moved);
    if missing > 0 {
        // A bug, not a state of the world: heal it with a full reload rather than serve it.
        tracing::error!(
            missing,
            "live index lost track of candidates; reloading it whole"
        );
        live.ask(|r| r.everything());
    }
    if grew {
        live.grow();
    }
}

fn now_us() -> i64 {
    Timestamp::now().unix_micros()
}
