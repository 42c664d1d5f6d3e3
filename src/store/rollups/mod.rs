//! Rollups (issue 9): hourly and daily rows per vehicle, kept incrementally.
//!
//! The protocol between the ingest writers and the rollup job, on every node:
//! - An hour `H` *closes* `CLOSE_AFTER` after it ends. A writer transaction that starts at or
//!   after that moment appends each (vehicle, `H`) it writes to `rollup_dirty`, in the same
//!   transaction as the points (`mark_late`).
//! - The job closes `H` in bulk (every vehicle, one statement) only once every writer
//!   transaction that started before `H` closed has ended (`pg_stat_activity`, by the writers'
//!   application name), so the bulk read sees every point that was not marked.
//! - The job folds marked pairs (`fold_late`): recompute that vehicle-hour from its own points,
//!   correct the entry step of the vehicle's next bucket from stored rows, re-derive the days.
//!
//! Concurrency between nodes: closing takes an exclusive advisory lock and folding a shared
//! one, so a fold never races a close of the hour after it; folds lock their vehicles, so two
//! nodes never write one vehicle's rows from different snapshots. Ingest takes none of these
//! locks, and the job holds only row locks on rollup tables: it never blocks a writer.

mod prune;
mod rebuild;
mod sql;

pub use prune::prune_hourly;
pub use rebuild::{rebuild_day, rebuild_hour};

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient, Transaction};
use uuid::Uuid;

use super::StoreError;
use crate::domain::track::floor;

/// How long after its end an hour is closed. Points arriving later than this are late. A
/// protocol constant, not a setting: writers and jobs on every node must agree on it.
pub const CLOSE_AFTER: Duration = Duration::from_secs(120);

/// `application_name` of the ingest writers' connections: the job waits for those of their
/// transactions that started before an hour closed.
pub const WRITER_APPLICATION: &str = "meridian writer";

/// Advisory lock class of the job; key 0 is held exclusive while closing, shared while folding.
const LOCK_CLASS: i32 = 0x726f; // "ro"
/// Advisory lock class of one vehicle's rows while folding (key: hash of its id).
const VEHICLE_LOCK_CLASS: i32 = 0x7276; // "rv"

/// One hour, as the tables hold it (the hour's start, UTC).
pub fn hour_of(ts: DateTime<Utc>) -> DateTime<Utc> {
    floor(ts, TimeDelta::hours(1))
}

/// One UTC day (its midnight).
pub fn day_of(ts: DateTime<Utc>) -> DateTime<Utc> {
    floor(ts, TimeDelta::days(1))
}

/// In the writer's transaction: marks these (vehicle, hour) pairs late when their hour has
/// closed by the database's clock. Returns the pairs marked.
pub async fn mark_late(
    tx: &Transaction<'_>,
    pairs: &[(Uuid, DateTime<Utc>)],
) -> Result<u64, StoreError> {
    if pairs.is_empty() {
        return Ok(0);
    }
    let (vehicles, hours): (Vec<Uuid>, Vec<DateTime<Utc>>) = pairs.iter().copied().unzip();
    let close_after = CLOSE_AFTER.as_secs_f64();
    Ok(tx
        .execute(
            "INSERT INTO rollup_dirty (vehicle_id, bucket)
             SELECT vehicle_id, bucket FROM unnest($1::uuid[], $2::timestamptz[]) AS l(vehicle_id, bucket)
             WHERE bucket + interval '1 hour' + make_interval(secs => $3) <= now()",
            &[&vehicles, &hours, &close_after],
        )
        .await?)
}

/// The newest hour closed in bulk; every hour up to it counts as rolled up (later points in
/// them are marked late).
pub async fn watermark(c: &impl GenericClient) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(c.query_one("SELECT max(bucket) FROM rollup_hours", &[])
        .await?
        .get(0))
}

/// What one attempt to close the next hour did.
#[derive(Debug, Clone, PartialEq)]
pub enum Close {
    Closed(ClosedHour),
    /// The next hour has not closed yet (or there is no telemetry at all).
    NotYet,
    /// A writer transaction that started before the hour closed is still running.
    WritersInFlight,
    /// Another node holds the job's lock.
    Busy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClosedHour {
    pub bucket: DateTime<Utc>,
    pub vehicles: u64,
    pub points: u64,
    pub took: Duration,
    /// The hour was the last of its UTC day, whose daily rows were written too.
    pub day_closed: bool,
    /// Maintenance alerts raised when the day closed.
    pub alerts_raised: u64,
}

/// Closes the hour after the watermark if it may be: every vehicle's row in one statement,
/// the day's rows when it is the day's last hour, and its `rollup_hours` entry — one
/// transaction, so a node killed halfway leaves nothing behind.
pub async fn close_next_hour(client: &mut Client) -> Result<Close, StoreError> {
    let tx = client.transaction().await?;
    // Waits for folds running now (new ones queue behind); gives up rather than wait long.
    tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
    match tx
        .execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_CLASS])
        .await
    {
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Ok(Close::Busy),
        other => other?,
    };
    let Some(bucket) = next_hour(&tx).await? else {
        return Ok(Close::NotYet);
    };
    let closes_at = bucket + TimeDelta::hours(1) + close_after();
    let row = tx
        .query_one(
            "SELECT $1::timestamptz <= now(),
                    EXISTS (SELECT 1 FROM pg_stat_activity
                            WHERE datname = current_database() AND application_name = $2
                              AND (xact_start < $1::timestamptz
                                   -- A writer of another role whose transaction this role
                                   -- may not see: assume it is in flight (the hour waits and
                                   -- the lag metric shows it) rather than risk missing points.
                                   OR query = '<insufficient privilege>'))",
            &[&closes_at, &WRITER_APPLICATION],
        )
        .await?;
    let (due, in_flight): (bool, bool) = (row.get(0), row.get(1));
    if !due {
        return Ok(Close::NotYet);
    }
    if in_flight {
        return Ok(Close::WritersInFlight);
    }
    let started = Instant::now();
    let hour = aggregate_hour(&tx, bucket).await?;
    let day_closed = bucket + TimeDelta::hours(1) == day_of(bucket) + TimeDelta::days(1);
    let mut alerts_raised = 0;
    if day_closed {
        tx.execute(sql::day().as_str(), &[&day_of(bucket)]).await?;
        alerts_raised = raise_maintenance_due(&tx).await?;
    }
    let closed = record_hour(&tx, bucket, &hour, started.elapsed()).await?;
    tx.commit().await?;
    Ok(Close::Closed(ClosedHour {
        day_closed,
        alerts_raised,
        ..closed
    }))
}

/// Every vehicle's hourly row of `bucket`, from raw points (`sql::hour`).
struct HourRows {
    vehicles: Vec<Uuid>,
    buckets: Vec<DateTime<Utc>>,
    points: i64,
}

async fn aggregate_hour(
    tx: &Transaction<'_>,
    bucket: DateTime<Utc>,
) -> Result<HourRows, StoreError> {
    tune(tx).await?;
    let rows = tx.query(sql::hour().as_str(), &[&bucket]).await?;
    let points = rows.iter().map(|r| i64::from(r.get::<_, i32>(2))).sum();
    let (vehicles, buckets) = rows
        .iter()
        .map(|r| (r.get::<_, Uuid>(0), r.get::<_, DateTime<Utc>>(1)))
        .unzip();
    Ok(HourRows {
        vehicles,
        buckets,
        points,
    })
}

/// Records `bucket` as rolled up in `rollup_hours` (again, for a rebuild).
async fn record_hour(
    tx: &Transaction<'_>,
    bucket: DateTime<Utc>,
    hour: &HourRows,
    took: Duration,
) -> Result<ClosedHour, StoreError> {
    tx.execute(
        "INSERT INTO rollup_hours (bucket, points, vehicles, took_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (bucket) DO UPDATE SET points = EXCLUDED.points,
             vehicles = EXCLUDED.vehicles, took_ms = EXCLUDED.took_ms, rolled_at = now()",
        &[
            &bucket,
            &hour.points,
            &(hour.vehicles.len() as i32),
            &(took.as_secs_f64() * 1e3),
        ],
    )
    .await?;
    Ok(ClosedHour {
        bucket,
        vehicles: hour.vehicles.len() as u64,
        points: hour.points as u64,
        took,
        day_closed: false,
        alerts_raised: 0,
    })
}

/// Raises the maintenance alerts now due (`sql::MAINTENANCE_DUE`); returns how many. The job
/// runs it when a day closes, under its exclusive lock.
pub async fn raise_maintenance_due(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let raised: i64 = tx.query_one(sql::MAINTENANCE_DUE, &[]).await?.get(0);
    Ok(raised as u64)
}

/// The hour after the watermark; with nothing closed yet, the first hour of the oldest
/// telemetry partition (reading `min(ts)` would scan every partition).
async fn next_hour(c: &impl GenericClient) -> Result<Option<DateTime<Utc>>, StoreError> {
    if let Some(last) = watermark(c).await? {
        return Ok(Some(last + TimeDelta::hours(1)));
    }
    super::partitions::oldest_day(c).await
}

/// What one fold of late marks did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Folded {
    /// Marks taken off `rollup_dirty` (duplicates included).
    pub marks: u64,
    /// Distinct (vehicle, hour) pairs recomputed from their points.
    pub pairs: u64,
    /// Raw points those pairs hold (all that was read, besides one entry probe per pair).
    pub points: u64,
    /// Next buckets whose entry step was corrected from stored rows.
    pub corrected: u64,
    /// (vehicle, day) daily rows re-derived.
    pub days: u64,
    /// How long each mark waited, from the commit that stored its point to this fold.
    pub waited_s: Vec<f64>,
}

/// Takes up to `max_marks` late marks of closed hours and folds them in, in one transaction
/// (a node killed halfway puts them back). `Folded::marks == 0`: nothing was waiting.
pub async fn fold_late(client: &mut Client, max_marks: i64) -> Result<Folded, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock_shared($1, 0)", &[&LOCK_CLASS])
        .await?;
    // Read under the shared lock: no close can move it until this fold commits.
    let Some(watermark) = watermark(&tx).await? else {
        return Ok(Folded::default());
    };
    let marks = tx
        .query(
            "DELETE FROM rollup_dirty WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM rollup_dirty WHERE bucket <= $1
                 LIMIT $2 FOR UPDATE SKIP LOCKED))
             RETURNING vehicle_id, bucket,
                       extract(epoch FROM clock_timestamp() - marked_at)::float8",
            &[&watermark, &max_marks],
        )
        .await?;
    if marks.is_empty() {
        return Ok(Folded::default());
    }
    let pairs: BTreeSet<(Uuid, DateTime<Utc>)> =
        marks.iter().map(|r| (r.get(0), r.get(1))).collect();
    let (vehicles, hours): (Vec<Uuid>, Vec<DateTime<Utc>>) = pairs.iter().copied().unzip();
    lock_vehicles(&tx, &vehicles).await?;
    tune(&tx).await?;
    let mut folded = Folded {
        marks: marks.len() as u64,
        pairs: pairs.len() as u64,
        waited_s: marks.iter().map(|r| r.get(2)).collect(),
        ..Folded::default()
    };
    let written = tx
        .query(sql::pairs().as_str(), &[&vehicles, &hours])
        .await?;
    folded.points = written.iter().map(|r| r.get::<_, i32>(2) as u64).sum();
    let corrected = tx.query(sql::FIX_NEXT, &[&vehicles, &hours]).await?;
    folded.corrected = corrected.len() as u64;
    let days: BTreeSet<(Uuid, DateTime<Utc>)> = pairs
        .iter()
        .copied()
        .chain(corrected.iter().map(|r| (r.get(0), r.get(1))))
        .map(|(v, h)| (v, day_of(h)))
        .collect();
    folded.days = rederive_days(&tx, &days, watermark).await?;
    tx.commit().await?;
    Ok(folded)
}

/// Daily rows for these (vehicle, day) pairs, from their hourly rows — only for days whose
/// last hour is closed (earlier, the day has no daily row yet: the close of its last hour
/// writes it).
async fn rederive_days(
    tx: &Transaction<'_>,
    days: &BTreeSet<(Uuid, DateTime<Utc>)>,
    watermark: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let (vehicles, days): (Vec<Uuid>, Vec<DateTime<Utc>>) = days
        .iter()
        .copied()
        .filter(|(_, d)| *d + TimeDelta::hours(23) <= watermark)
        .unzip();
    if days.is_empty() {
        return Ok(0);
    }
    Ok(tx
        .execute(sql::day_pairs().as_str(), &[&vehicles, &days])
        .await?)
}

/// Takes each vehicle's fold lock, in key order (two folds never wait on each other in a
/// cycle).
async fn lock_vehicles(tx: &Transaction<'_>, vehicles: &[Uuid]) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, k)
         FROM (SELECT DISTINCT hashtext(v::text) AS k FROM unnest($2::uuid[]) v ORDER BY 1) s",
        &[&VEHICLE_LOCK_CLASS, &vehicles],
    )
    .await?;
    Ok(())
}

/// Whether the UTC day starting at `day` is wholly rolled up: its last hour is at or before
/// the watermark and none of its hours has a late mark waiting. Retention drops a day's raw
/// partition only then.
pub async fn day_is_rolled_up(
    c: &impl GenericClient,
    day: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(c.query_one(
        "SELECT coalesce((SELECT max(bucket) FROM rollup_hours)
                         >= $1::timestamptz + interval '23 hours', false)
            AND NOT EXISTS (SELECT 1 FROM rollup_dirty
                            WHERE bucket >= $1::timestamptz
                              AND bucket < $1::timestamptz + interval '1 day')",
        &[&day],
    )
    .await?
    .get(0))
}

/// For the aggregating statements: the planner's cost of a geodesic per point makes a million
/// points look expensive enough to JIT-compile, which took 0.7 s of a 1.4 s close (measured,
/// 100k points) and saves nothing; and the window's sort of an hour's points (a million rows
/// of ~100 bytes) stays in memory.
async fn tune(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.batch_execute("SET LOCAL jit = off; SET LOCAL work_mem = '256MB'")
        .await?;
    Ok(())
}

fn close_after() -> TimeDelta {
    TimeDelta::from_std(CLOSE_AFTER).expect("a small constant")
}

#[cfg(test)]
mod tests;
