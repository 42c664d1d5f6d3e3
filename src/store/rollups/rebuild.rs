//! Rebuilding rollups from raw points by hand (`meridian rollup`), under the job's lock.

use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use super::{aggregate_hour, record_hour, sql, ClosedHour, LOCK_CLASS};
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
    let hour = aggregate_hour(&tx, bucket).await?;
    // Pairs that held points before but none now (raw rows deleted by hand) keep no stale row.
    tx.execute(
        "DELETE FROM telemetry_hourly h WHERE h.bucket = $1::timestamptz AND NOT EXISTS (
             SELECT 1 FROM vehicle_telemetry t WHERE t.vehicle_id = h.vehicle_id
               AND t.ts >= $1::timestamptz AND t.ts < $1::timestamptz + interval '1 hour')",
        &[&bucket],
    )
    .await?;
    tx.query(sql::FIX_NEXT, &[&hour.vehicles, &hour.buckets])
        .await?;
    let rebuilt = record_hour(&tx, bucket, &hour, started.elapsed()).await?;
    tx.commit().await?;
    Ok(rebuilt)
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
