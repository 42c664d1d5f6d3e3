//! Keeps a node's live index current: a full load at start (and after any lost connection),
//! then positions polled by transaction horizon and availability reloaded on notification.
//! One task owns all mutable state; readers only ever see finished, immutable snapshots.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::Client;
use uuid::Uuid;

use super::nearest::{Candidate, Fix, Snapshot};
use super::Live;
use crate::domain::Timestamp;
use crate::observability;
use crate::shutdown::Shutdown;
use crate::store::{self, live as source, StoreError};

const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub fn spawn(live: Arc<Live>, url: String, poll: Duration, shutdown: Shutdown) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let result = session(&live, &url, poll, &shutdown).await;
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
    poll: Duration,
    shutdown: &Shutdown,
) -> Result<(), StoreError> {
    let notified = live.clone();
    let (_listener, closed) = source::listen(url, move |channel| match channel {
        source::AVAILABILITY_CHANNEL => notified.request_reload(),
        source::API_KEYS_CHANNEL => notified.keys.clear(),
        _ => {}
    })
    .await?;
    // Trusted from here: a key change from now on is heard; anything earlier is re-read.
    live.keys.set_trusted(true);
    observability::live_listening(true);
    let client = store::connect(url).await?;

    let mut state = State::default();
    let target = live.requested();
    state.reload_availability(&client).await?;
    state.horizon = source::horizon(&client).await?;
    let started = Timestamp::now();
    state.apply(source::positions_since(&client, 0).await?);
    live.publish(state.build(), started, Some(target));

    tokio::pin!(closed);
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.triggered() => return Ok(()),
            _ = &mut closed => return Err(StoreError::Lost("LISTEN connection")),
            _ = live.reload_wanted() => {
                let target = live.requested();
                let started = Timestamp::now();
                state.reload_availability(&client).await?;
                observability::live_availability_reloaded();
                live.publish(state.build(), started, Some(target));
            }
            _ = tick.tick() => {
                let horizon = source::horizon(&client).await?;
                let started = Timestamp::now();
                let changed = state.apply(source::positions_since(&client, state.horizon).await?);
                state.horizon = horizon;
                if changed {
                    live.publish(state.build(), started, None);
                } else {
                    live.mark_current(started);
                }
            }
        }
    }
}

/// What availability is made of, as the feed holds it between reloads.
struct Shift {
    driver_id: Uuid,
    vehicle_id: Uuid,
    external_id: Arc<str>,
    vehicle_type: Option<Arc<str>>,
    starts_us: i64,
    ends_us: i64,
}

#[derive(Default)]
struct State {
    horizon: i64,
    /// Every vehicle's latest fix: a vehicle whose driver becomes available needs no re-read.
    fixes: HashMap<Uuid, Fix>,
    shifts: Vec<Shift>,
    /// Vehicles with a shift in `shifts`: only their moves change the index.
    shift_vehicles: HashSet<Uuid>,
}

impl State {
    async fn reload_availability(&mut self, client: &Client) -> Result<(), StoreError> {
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
        self.shift_vehicles = self.shifts.iter().map(|s| s.vehicle_id).collect();
        Ok(())
    }

    /// Takes in polled positions; true when one of them belongs to an indexed shift.
    fn apply(&mut self, rows: Vec<source::PositionRow>) -> bool {
        let mut changed = false;
        for r in rows {
            let fix = Fix {
                lat: r.lat,
                lon: r.lon,
                ts_us: r.ts.timestamp_micros(),
                speed_kmh: r.speed_kmh,
                heading_deg: r.heading_deg,
            };
            // Rows of transactions since the previous horizon are read twice; skip those.
            if self.fixes.insert(r.vehicle_id, fix) != Some(fix) {
                changed |= self.shift_vehicles.contains(&r.vehicle_id);
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
                Some(Candidate::new(
                    s.driver_id,
                    s.vehicle_id,
                    s.external_id.clone(),
                    s.vehicle_type.clone(),
                    s.starts_us,
                    s.ends_us,
                    fix,
                ))
            })
            .collect();
        let snapshot = Snapshot::build(candidates);
        observability::live_rebuilt(snapshot.len(), started.elapsed());
        snapshot
    }
}
