//! The audit trail's storage: monthly partitions of `audit_log`, created ahead by the
//! maintenance task (the SQL function lives in the migration that made the table).

use tokio_postgres::Client;

use super::StoreError;

/// Months of `audit_log` partitions kept ready from the current one: an audit row must never
/// find its month missing, or the dispatch operation writing it fails.
const MONTHS_AHEAD: i32 = 3;

/// Creates this month's and the next months' partitions if missing; returns how many it made.
pub async fn ensure_partitions(client: &Client) -> Result<i32, StoreError> {
    let row = client
        .query_one(
            "SELECT meridian_ensure_audit_partitions(now(), $1)",
            &[&MONTHS_AHEAD],
        )
        .await?;
    Ok(row.get(0))
}
