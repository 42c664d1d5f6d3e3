//! Retention of the hourly rollups (daily rows are kept forever).

use chrono::{DateTime, Utc};
use tokio_postgres::Client;

use crate::store::StoreError;

/// Rows deleted per transaction: short transactions, so a fold waiting on one of these rows
/// waits milliseconds, and autovacuum keeps up.
const BATCH: i64 = 50_000;

/// Deletes hourly rows of buckets before `before`, in batches; returns how many.
pub async fn prune_hourly(client: &Client, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let n = client
            .execute(
                "DELETE FROM telemetry_hourly WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM telemetry_hourly WHERE bucket < $1 LIMIT $2))",
                &[&before, &BATCH],
            )
            .await?;
        deleted += n;
        if (n as i64) < BATCH {
            return Ok(deleted);
        }
    }
}
