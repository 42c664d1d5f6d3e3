//! Keeps a node's live index current: a full load at start (and after any lost connection),
//! then positions as the ingest writers of every node commit them (NOTIFY), and availability
//! reloaded on notification. One task owns all mutable state; readers only ever see finished,
//! immutable snapshots, rebuilt at most once per refresh interval.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use uuid::Uuid;

use super::nearest::{Candidate, Fix, Shift, Snapshot};
use super::Live;
use crate::domain::Timestamp;
use crate::observability;
use crate::shutdown::Shutdown;
use crate::store::{self, live as source, StoreError};

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Notification payloads (≈95 positions each) waiting for the feed task; past this the feed
/// has fallen behind, drops them, and re-reads every position instead.
const QUEUE: usize = 4_096;
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

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
    let (listener, closed) = source::listen(url, move |channel, payload| match channel {
        source::POSITIONS_CHANNEL => {
            let rows = source::decode_positions(payload).collect();
            if tx.try_send(rows).is_err() {
                overflow.store(true, Ordering::Release);
            }
        }
        source::AVAILABILITY_CHANNEL => {
            notified.request();
        }
        source::API_KEYS_CHANNEL => notified.keys.clear(),
        _ => {}
    })
    .await?;
    // Listening from here: whatever commits from now on is heard; everything before is read.
    live.keys.set_trusted(true);
    observability::live_listening(true);
    let client = store::connect(url).await?;

    let mut state = State::default();
    let target = live.requested();
    let started = Timestamp::now();
    // Every watched vehicle joins the (empty) set here, so this reads their positions too.
    state.reload_availability(&client, &live.watched).await?;
    live.publish(state.build(), started, Some(target));

    tokio::pin!(closed);
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    loop {
        tokio::select! {
            _ = shutdown.triggered() => return Ok(()),
            _ = &mut closed => return Err(StoreError::Lost("LISTEN connection")),
            Some(rows) = rx.recv() => dirty |= state.apply(rows),
            _ = live.reload_wanted() => {
                let target = live.requested();
                let started = Timestamp::now();
                state.reload_availability(&client, &live.watched).await?;
                observability::live_availability_reloaded();
                live.publish(state.build(), started, Some(target));
                dirty = false;
            }
            _ = tick.tick() => {
                // A round trip on the listening connection: when it returns, every position
                // committed before it started has been queued, so after draining the queue the
                // index is current as of `started`.
                let started = Timestamp::now();
                tokio::time::timeout(HEARTBEAT_TIMEOUT, listener.simple_query("SELECT 1"))
                    .await
                    .map_err(|_| StoreError::Timeout(HEARTBEAT_TIMEOUT))??;
                while let Ok(rows) = rx.try_recv() {
                    dirty |= state.apply(rows);
                }
                if overflowed.swap(false, Ordering::AcqRel) {
                    tracing::warn!("live index fell behind the position stream; re-reading positions");
                    let watched: Vec<Uuid> = state.shift_vehicles.iter().copied().collect();
                    dirty |= state.apply(source::positions_of(&client, &watched).await?);
                }
                if dirty {
                    live.publish(state.build(), started, None);
                    dirty = false;
                } else {
                    live.mark_current(started);
                }
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// Latest fixes of watched vehicles (and of vehicles watched earlier).
    fixes: HashMap<Uuid, Fix>,
    /// What availability is made of, as of the last reload.
    shifts: Vec<Shift>,
    /// Vehicles with a shift in `shifts`: only their moves change the index.
    shift_vehicles: HashSet<Uuid>,
}

impl State {
    /// Reloads who is available, tells the ingest writers which vehicles to announce from now
    /// on, then reads the positions of vehicles that just joined (announcements for them were
    /// skipped until now).
    async fn reload_availability(
        &mut self,
        client: &Client,
        watched: &super::Watched,
    ) -> Result<(), StoreError> {
        let rows = source::available_shifts(client).await?;
        // One shared string per distinct vehicle type, not one per shift.
        let mut types: HashMap<String, Arc<str>> = HashMap::new();
        self.shifts = rows
            .into_iter()
            .map(|r| Shift {
                driver_id: r.driver_id,
                vehicle_id: r.vehicle_id,
                external_id: r.external_id.into(),
                vehicle_type: r.vehicle_type.map(|t| {
                    types
                        .entry(t)
                        .or_insert_with_key(|t| Arc::from(t.as_str()))
                        .clone()
                }),
                starts_us: r.starts.timestamp_micros(),
                ends_us: r.ends.map_or(i64::MAX, |e| e.timestamp_micros()),
            })
            .collect();
        let now_watched: HashSet<Uuid> = self.shifts.iter().map(|s| s.vehicle_id).collect();
        watched.set(now_watched.clone());
        let joined: Vec<Uuid> = now_watched
            .difference(&self.shift_vehicles)
            .copied()
            .collect();
        self.shift_vehicles = now_watched;
        if !joined.is_empty() {
            self.apply(source::positions_of(client, &joined).await?);
        }
        Ok(())
    }

    /// Takes in positions; true when one of an indexed shift's vehicles moved. A position never
    /// goes back in time (as in the table): an older or repeated one is ignored.
    fn apply(&mut self, rows: Vec<source::PositionRow>) -> bool {
        let mut changed = false;
        for source::PositionRow { vehicle_id, fix } in rows {
            let newer = self
                .fixes
                .get(&vehicle_id)
                .is_none_or(|held: &Fix| held.ts_us < fix.ts_us);
            if newer {
                self.fixes.insert(vehicle_id, fix);
                changed |= self.shift_vehicles.contains(&vehicle_id);
            }
        }
        changed
    }

    fn build(&self) -> Snapshot {
        let started = Instant::now();
        let candidates: Vec<Candidate> = self
            .shifts
            .iter()
            .filter_map(|s| {
                let fix = *self.fixes.get(&s.vehicle_id)?;
                Some(Candidate::new(s.clone(), fix))
            })
            .collect();
        let snapshot = Snapshot::build(candidates);
        observability::live_rebuilt(snapshot.len(), started.elapsed());
        snapshot
    }
}
