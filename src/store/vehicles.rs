//! Vehicle lookups the ingest path needs: external id → vehicle id.

use tokio_postgres::Client;
use uuid::Uuid;

use super::StoreError;

/// Resolves many external ids in one round trip; ids with no vehicle are simply absent.
pub async fn ids_by_external_id(
    client: &Client,
    external_ids: &[&str],
) -> Result<Vec<(String, Uuid)>, StoreError> {
    let rows = client
        .query(
            "SELECT external_id, id FROM vehicles WHERE external_id = ANY($1)",
            &[&external_ids],
        )
        .await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}
