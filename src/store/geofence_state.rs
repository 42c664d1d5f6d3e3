//! The fence side of a telemetry batch, inside the batch's transaction: each moved vehicle's
//! previous point (returned by the position upsert, which locks the vehicle's row) and its
//! fence states are what judging starts from; then the states that changed, the events raised
//! and their outbox rows are written.
//!
//! The lock is the vehicle's `vehicle_positions` row, which the upsert takes in vehicle order
//! (so writers cannot deadlock) and holds to commit: two nodes holding points of one vehicle
//! judge them one after the other, each from what the other committed. A vehicle new to the
//! table is serialised the same way, by the insert's unique index.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::known_states::{KnownStates, States};
use super::prepared::Prepared;
use super::StoreError;
use crate::domain::geofence::judge::{FenceState, Fix, Raised};
use crate::domain::{LatLon, Timestamp};

/// Wakes every node's delivery workers and live streams when events commit.
pub const EVENTS_CHANNEL: &str = "meridian_geofence_events";

/// What judging a batch starts from.
#[derive(Debug, Default)]
pub struct Prior {
    /// The vehicles this batch moved (only their points can be newer than what was stored),
    /// each with its latest point before this batch, if it had one.
    pub moved: HashMap<Uuid, Option<Fix>>,
    /// Each vehicle's fence states, by fence.
    pub states: HashMap<Uuid, States>,
}

/// What judging a batch decided.
#[derive(Debug, Default)]
pub struct Decided {
    pub changed: Vec<Change>,
    pub events: Vec<NewEvent>,
    /// Each judged vehicle's states afterwards (`changed` applied to what it started from).
    pub states: Vec<(Uuid, States)>,
}

/// (vehicle, fence, new state; `None` deletes it).
pub type Change = (Uuid, Uuid, Option<FenceState>);

#[derive(Debug)]
pub struct NewEvent {
    pub vehicle_id: Uuid,
    pub external_id: String,
    pub raised: Raised,
}

/// Judges a batch given what it starts from (ingest supplies it: the fence index lives there).
pub type Judge<'a> = &'a (dyn Fn(&Prior) -> Decided + Send + Sync);

/// What a batch's transaction judges with: the judging, and the states this node remembers.
#[derive(Clone, Copy)]
pub struct Judging<'a> {
    pub judge: Judge<'a>,
    pub known: &'a KnownStates,
}

/// Each moved vehicle's states after `decided` (as judged, or as they were for a vehicle not
/// judged), with the point its row now holds: what the node remembers once the transaction
/// commits.
pub fn after(
    prior: Prior,
    decided: Decided,
    at: impl Fn(Uuid) -> Option<Fix>,
) -> Vec<(Uuid, Fix, States)> {
    let Prior { moved, mut states } = prior;
    states.extend(decided.states);
    moved
        .into_keys()
        .filter_map(|v| Some((v, at(v)?, states.remove(&v).unwrap_or_default())))
        .collect()
}

/// Reads the fence states of `vehicles`. Sent right after the position upsert on the same
/// transaction (pipelined), so it runs once the vehicles' rows are locked.
pub async fn read(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    vehicles: &[Uuid],
) -> Result<HashMap<Uuid, States>, StoreError> {
    if vehicles.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = prepared.get(tx, READ).await?;
    let rows = tx.query(&statement, &[&vehicles]).await?;
    let mut states: HashMap<Uuid, States> = HashMap::new();
    for r in rows {
        let streak_ts: Option<DateTime<Utc>> = r.get(6);
        let streak_first = streak_ts
            .zip(lat_lon(r.get(8), r.get(7)))
            .map(|(ts, pos)| Fix {
                ts: Timestamp::from_unix_micros(ts.timestamp_micros()),
                pos,
            });
        let since: DateTime<Utc> = r.get(3);
        let streak: i32 = r.get(5);
        states.entry(r.get(0)).or_default().push((
            r.get(1),
            FenceState {
                inside: r.get(2),
                since: Timestamp::from_unix_micros(since.timestamp_micros()),
                dwelt: r.get(4),
                streak: u32::try_from(streak).unwrap_or(0),
                streak_first,
            },
        ));
    }
    Ok(states)
}

fn lat_lon(lat: Option<f64>, lon: Option<f64>) -> Option<LatLon> {
    LatLon::new(lat?, lon?).ok()
}

const READ: &str = "\
SELECT vehicle_id, fence_id, inside, since, dwelt, streak, streak_ts, streak_lon, streak_lat
FROM geofence_state WHERE vehicle_id = ANY($1)";

const DELETE: &str = "\
DELETE FROM geofence_state s USING unnest($1::uuid[], $2::uuid[]) AS g(v, f)
WHERE s.vehicle_id = g.v AND s.fence_id = g.f";

const NOTIFY: &str = "SELECT pg_notify($1, '')";

const UPSERT: &str = "\
INSERT INTO geofence_state AS s (vehicle_id, fence_id, inside, since, dwelt, streak, streak_ts, streak_lon, streak_lat)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::timestamptz[], $5::bool[], $6::int4[],
                     $7::timestamptz[], $8::float8[], $9::float8[])
ON CONFLICT (vehicle_id, fence_id) DO UPDATE SET inside = EXCLUDED.inside, since = EXCLUDED.since,
    dwelt = EXCLUDED.dwelt, streak = EXCLUDED.streak, streak_ts = EXCLUDED.streak_ts,
    streak_lon = EXCLUDED.streak_lon, streak_lat = EXCLUDED.streak_lat";

const EVENTS: &str = "\
WITH e AS (
    INSERT INTO geofence_events (vehicle_id, fence_id, external_id, type, ts, lon, lat)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                         $6::float8[], $7::float8[])
    RETURNING vehicle_id, id)
INSERT INTO geofence_outbox (vehicle_id, event_id) SELECT vehicle_id, id FROM e";

/// Writes what judging decided; returns how many events it raised.
pub async fn write(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    decided: &Decided,
) -> Result<u64, StoreError> {
    let (gone, kept): (Vec<&Change>, Vec<_>) = decided.changed.iter().partition(|c| c.2.is_none());
    if !gone.is_empty() {
        let v: Vec<Uuid> = gone.iter().map(|c| c.0).collect();
        let f: Vec<Uuid> = gone.iter().map(|c| c.1).collect();
        let statement = prepared.get(tx, DELETE).await?;
        tx.execute(&statement, &[&v, &f]).await?;
    }
    if !kept.is_empty() {
        let n = kept.len();
        let (mut v, mut f, mut inside, mut since, mut dwelt, mut streak) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut sts, mut slon, mut slat) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (vehicle, fence, state) in kept {
            let s = state.expect("partitioned on Some");
            v.push(*vehicle);
            f.push(*fence);
            inside.push(s.inside);
            since.push(s.since.to_datetime());
            dwelt.push(s.dwelt);
            streak.push(i32::try_from(s.streak).unwrap_or(i32::MAX));
            sts.push(s.streak_first.map(|p| p.ts.to_datetime()));
            slon.push(s.streak_first.map(|p| p.pos.lon()));
            slat.push(s.streak_first.map(|p| p.pos.lat()));
        }
        let statement = prepared.get(tx, UPSERT).await?;
        tx.execute(
            &statement,
            &[&v, &f, &inside, &since, &dwelt, &streak, &sts, &slon, &slat],
        )
        .await?;
    }
    if decided.events.is_empty() {
        return Ok(0);
    }
    let n = decided.events.len();
    let (mut v, mut f, mut ext, mut kind) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut ts, mut lon, mut lat) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in &decided.events {
        v.push(e.vehicle_id);
        f.push(e.raised.fence_id);
        ext.push(e.external_id.as_str());
        kind.push(e.raised.kind.as_str());
        ts.push(e.raised.at.ts.to_datetime());
        lon.push(e.raised.at.pos.lon());
        lat.push(e.raised.at.pos.lat());
    }
    let statement = prepared.get(tx, EVENTS).await?;
    tx.execute(&statement, &[&v, &f, &ext, &kind, &ts, &lon, &lat])
        .await?;
    // Heard at commit, and only if it commits.
    let statement = prepared.get(tx, NOTIFY).await?;
    tx.execute(&statement, &[&EVENTS_CHANNEL]).await?;
    Ok(n as u64)
}

/// States of fences that no longer exist. Deleting a fence deletes its states, but a writer
/// judging at that moment may write one back (judging reads the fences from memory); such a
/// row is never judged again, and this sweep (in the maintenance loop) removes it.
pub async fn drop_orphans(c: &impl tokio_postgres::GenericClient) -> Result<u64, StoreError> {
    Ok(c.execute(
        "DELETE FROM geofence_state s WHERE NOT EXISTS (SELECT 1 FROM geofences f WHERE f.id = s.fence_id)",
        &[],
    )
    .await?)
}
