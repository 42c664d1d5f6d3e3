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

/// What an audit row is about (the table's `entity` CHECK lists the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Customer,
    Job,
    Dispatch,
    Queue,
    Maintenance,
    Alert,
}

impl Entity {
    pub const NAMES: &'static [&'static str] = &[
        "customer",
        "job",
        "dispatch",
        "queue",
        "maintenance",
        "alert",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Customer => "customer",
            Entity::Job => "job",
            Entity::Dispatch => "dispatch",
            Entity::Queue => "queue",
            Entity::Maintenance => "maintenance",
            Entity::Alert => "alert",
        }
    }
}

/// One audit row, written by the caller inside the transaction of the operation it records
/// (pass the transaction): if the operation rolls back, so does its audit row.
/// `actor` is the API key that acted, `None` for the node itself (queue drain, expiry).
pub async fn record(
    c: &impl tokio_postgres::GenericClient,
    entity: Entity,
    entity_id: uuid::Uuid,
    action: &str,
    actor: Option<uuid::Uuid>,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO audit_log (entity, entity_id, action, actor, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &entity.as_str(),
            &entity_id,
            &action,
            &actor,
            &before,
            &after,
        ],
    )
    .await?;
    Ok(())
}
