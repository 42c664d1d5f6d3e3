//! Schema migrations (refinery, SQL files in `migrations/`), applied under a session
//! advisory lock so two nodes starting together take turns instead of racing.

use tokio_postgres::Client;

use super::StoreError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Arbitrary but fixed: every Meridian node must use the same key.
const MIGRATION_LOCK_KEY: i64 = 0x6d65_7269_6469_616e; // "meridian"

pub async fn run(client: &mut Client) -> Result<usize, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let report = embedded::migrations::runner().run_async(client).await;
    // Unlock even when a migration failed; the lock would otherwise live as long as the connection.
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let report = report?;
    for m in report.applied_migrations() {
        tracing::info!(version = m.version(), name = m.name(), "migration applied");
    }
    Ok(report.applied_migrations().len())
}

/// The newest migration this binary carries.
pub fn latest_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// Whether the database is at this binary's schema version (readiness).
pub async fn is_current(client: &Client) -> Result<bool, StoreError> {
    let applied: Option<i32> = client
        .query_one("SELECT max(version) FROM refinery_schema_history", &[])
        .await?
        .get(0);
    Ok(applied.map(i64::from) == Some(latest_version()))
}
