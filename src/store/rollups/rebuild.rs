//! Rebuilding rollups from raw points by hand (`meridian rollup`), under the job's lock.

use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

use super::{sql, tune, ClosedHour, LOCK_CLASS};
use crate::store::StoreError;

/// Rebuilds one hour from raw points (the `meridian rollup` command calls it for each hour of
/// its range, in order, then `rebuild_day` for each day): in its own transaction under the
/// job's exclusive lock, recorded in `rollup_hours`, with the entry step of each vehicle's
/// next bucket corrected.
pub async fn rebuild_hour(
    client: &mut Client,
    bucket: DateTime<Utc>,
) -> Result<ClosedHour, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_CLASS])
        .await?;
    let started = Instant::now();
    tune(&tx).await?;
    let rows = tx.query(sql::hour().as_str(), &[&bucket]).await?;
    let points: i64 = rows.iter().map(|r| i64::from(r.get::<_, i32>(2))).sum();
    // Pairs that held points before but none now (raw rows deleted by hand) keep no stale row.
    tx.execute(
        "DELETE FROM telemetry_hourly h WHERE h.bucket = $1::timestamptz AND NOT EXISTS (
             SELECT 1 FROM vehicle_telemetry t WHERE t.vehicle_id = h.vehicle_id
               AND t.ts >= $1::timestamptz AND t.ts < $1::timestamptz + interval '1 hour')",
        &[&bucket],
    )
    .await?;
    let (vehicles, hours): (Vec<Uuid>, Vec<DateTime<Utc>>) = rows
        .iter()
        .map(|r| (r.get::<_, Uuid>(0), r.get::<_, DateTime<Utc>>(1)))
        .unzip();
    tx.query(sql::FIX_NEXT, &[&vehicles, &hours]).await?;
    let took = started.elapsed();
    tx.execute(
        "INSERT INTO rollup_hours (bucket, points, vehicles, took_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (bucket) DO UPDATE SET points = EXCLUDED.points,
             vehicles = EXCLUDED.vehicles, took_ms = EXCLUDED.took_ms, rolled_at = now()",
        &[
            &bucket,
            &points,
            &(rows.len() as i32),
            &(took.as_secs_f64() * 1e3),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(ClosedHour {
        bucket,
        vehicles: rows.len() as u64,
        points: points as u64,
        took,
        day_closed: false,
        alerts_raised: 0,
    })
}

/// Re-derives every vehicle's daily row of the UTC day starting at `day` from its hourly rows.
pub async fn rebuild_day(client: &Client, day: DateTime<Utc>) -> Result<u64, StoreError> {
    client
        .execute(
            "DELETE FROM telemetry_daily d WHERE d.bucket = $1::timestamptz AND NOT EXISTS (
                 SELECT 1 FROM telemetry_hourly h WHERE h.vehicle_id = d.vehicle_id
                   AND h.bucket >= $1::timestamptz AND h.bucket < $1::timestamptz + interval '1 day')",
            &[&day],
        )
        .await?;
    Ok(client.execute(sql::day().as_str(), &[&day]).await?)
}
