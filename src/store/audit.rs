//! The audit trail's storage: monthly partitions of `audit_log`, created ahead by the
//! maintenance task (the SQL function lives in the migration that made the table); one row
//! written per operation, in its transaction; and the read side, in `(at, id)` order.

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, GenericClient, Row};
use uuid::Uuid;

use super::fleet::text_enum_sql;
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit entity {:?}: expected one of {}", .0, Entity::NAMES.join(", "))]
pub struct EntityError(String);

text_enum_sql!(Entity);

impl std::str::FromStr for Entity {
    type Err = EntityError;

    fn from_str(s: &str) -> Result<Self, EntityError> {
        use Entity::*;
        [Customer, Job, Dispatch, Queue, Maintenance, Alert]
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| EntityError(s.to_owned()))
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

/// One audit row as read back.
#[derive(Debug)]
pub struct AuditRow {
    pub id: Uuid,
    pub entity: Entity,
    pub entity_id: Uuid,
    pub action: String,
    pub actor: Option<Uuid>,
    /// The jsonb as PostgreSQL prints it, passed through unparsed (exact numbers).
    pub before: Option<Box<RawValue>>,
    pub after: Option<Box<RawValue>>,
    pub at: DateTime<Utc>,
}

/// Which audit rows to read; `None` is "any". `from` is inclusive, `to` exclusive; `after`
/// is the `(at, id)` of the last row of the previous page.
#[derive(Debug, Default)]
pub struct Filter {
    pub entity: Option<Entity>,
    pub entity_id: Option<Uuid>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// The statement `list` runs and its parameters (tests EXPLAIN exactly this).
///
/// Built with only the conditions asked for, never `($n IS NULL OR …)`: the planner can only
/// prune months whose range a bare `at >= $n` / `at < $n` excludes, and only match
/// `audit_log_entity_idx (entity, entity_id, at)` against a bare `entity = … AND entity_id = …`.
/// An `entity_id` without its entity still gets the index, through `entity = ANY(every
/// entity)`. The page cursor repeats `at >= $at` beside the row comparison for the same reason.
/// Order is `(at, id)`, the primary key: without an entity filter each month is read in key
/// order and the scan stops at `limit`.
pub fn list_query(f: &Filter) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = String::from(
        "SELECT id, entity, entity_id, action, actor, before::text, after::text, at \
         FROM audit_log WHERE true",
    );
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut bind = |sql: &mut String, condition: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        sql.push_str(&condition.replace('?', &format!("${}", params.len())));
        params.len()
    };
    match (f.entity, f.entity_id) {
        (Some(e), _) => {
            bind(&mut sql, " AND entity = ?", Box::new(e.as_str()));
        }
        (None, Some(_)) => {
            bind(&mut sql, " AND entity = ANY(?)", Box::new(Entity::NAMES));
        }
        (None, None) => {}
    }
    if let Some(id) = f.entity_id {
        bind(&mut sql, " AND entity_id = ?", Box::new(id));
    }
    if let Some(action) = &f.action {
        bind(&mut sql, " AND action = ?", Box::new(action.clone()));
    }
    if let Some(from) = f.from {
        bind(&mut sql, " AND at >= ?", Box::new(from));
    }
    if let Some(to) = f.to {
        bind(&mut sql, " AND at < ?", Box::new(to));
    }
    if let Some((at, id)) = f.after {
        let n = bind(&mut sql, " AND at >= ?", Box::new(at));
        bind(
            &mut sql,
            &format!(" AND (at, id) > (${n}, ?)"),
            Box::new(id),
        );
    }
    bind(&mut sql, " ORDER BY at, id LIMIT ?", Box::new(f.limit));
    (sql, params)
}

fn audit_row(r: &Row) -> AuditRow {
    let json = |i: usize| {
        r.get::<_, Option<String>>(i)
            .map(|t| RawValue::from_string(t).expect("jsonb prints JSON"))
    };
    AuditRow {
        id: r.get(0),
        entity: r.get(1),
        entity_id: r.get(2),
        action: r.get(3),
        actor: r.get(4),
        before: json(5),
        after: json(6),
        at: r.get(7),
    }
}

/// A page of audit rows in `(at, id)` order.
pub async fn list(c: &impl GenericClient, f: &Filter) -> Result<Vec<AuditRow>, StoreError> {
    let (sql, params) = list_query(f);
    let params: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    Ok(c.query(&sql, &params)
        .await?
        .iter()
        .map(audit_row)
        .collect())
}
