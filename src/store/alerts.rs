//! Alerts: something about a vehicle, driver, job, dispatch, geofence or customer that needs a
//! look, open until resolved. `entity_id` has no foreign key (it points into six tables), so
//! `subject_exists` checks it when an alert is raised; the alert outlives its subject.

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::fleet::text_enum_sql;
use super::StoreError;
use crate::domain::alert::{AlertSubject, Severity};

text_enum_sql!(AlertSubject);
text_enum_sql!(Severity);

#[derive(Debug)]
pub struct Alert {
    pub id: Uuid,
    pub entity: AlertSubject,
    pub entity_id: Uuid,
    pub kind: String,
    pub severity: Severity,
    pub message: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct NewAlert<'a> {
    pub entity: AlertSubject,
    pub entity_id: Uuid,
    pub kind: &'a str,
    pub severity: Severity,
    pub message: Option<&'a str>,
}

/// Which alerts a list shows; `None` is "any".
#[derive(Debug, Default)]
pub struct Filter {
    pub entity: Option<AlertSubject>,
    pub entity_id: Option<Uuid>,
    pub severity: Option<Severity>,
    pub open: Option<bool>,
}

const COLUMNS: &str =
    "id, entity, entity_id, kind, severity, message, resolved_at, created_at, updated_at";

fn alert(r: &Row) -> Alert {
    Alert {
        id: r.get(0),
        entity: r.get(1),
        entity_id: r.get(2),
        kind: r.get(3),
        severity: r.get(4),
        message: r.get(5),
        resolved_at: r.get(6),
        created_at: r.get(7),
        updated_at: r.get(8),
    }
}

/// The table an alert subject's id points into.
fn table(subject: AlertSubject) -> &'static str {
    match subject {
        AlertSubject::Vehicle => "vehicles",
        AlertSubject::Driver => "drivers",
        AlertSubject::Job => "jobs",
        AlertSubject::Dispatch => "dispatches",
        AlertSubject::Geofence => "geofences",
        AlertSubject::Customer => "customers",
    }
}

pub async fn subject_exists(
    c: &impl GenericClient,
    subject: AlertSubject,
    id: Uuid,
) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE id = $1)",
        table(subject)
    );
    Ok(c.query_one(&sql, &[&id]).await?.get(0))
}

pub async fn raise(c: &impl GenericClient, new: &NewAlert<'_>) -> Result<Alert, StoreError> {
    let sql = format!(
        "INSERT INTO alerts (entity, entity_id, kind, severity, message) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    );
    let row = c
        .query_one(
            &sql,
            &[
                &new.entity,
                &new.entity_id,
                &new.kind,
                &new.severity,
                &new.message,
            ],
        )
        .await?;
    Ok(alert(&row))
}

pub async fn get(c: &impl GenericClient, id: Uuid) -> Result<Option<Alert>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM alerts WHERE id = $1");
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(alert))
}

/// The alert, locked until the transaction ends (resolve reads, decides, writes).
pub async fn lock(c: &impl GenericClient, id: Uuid) -> Result<Option<Alert>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM alerts WHERE id = $1 FOR UPDATE");
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(alert))
}

pub async fn resolve(c: &impl GenericClient, id: Uuid) -> Result<Alert, StoreError> {
    let sql = format!(
        "UPDATE alerts SET resolved_at = now(), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(alert(&c.query_one(&sql, &[&id]).await?))
}

/// Alerts by id (keyset pagination), filtered. With `entity` and `entity_id` the lookup is
/// `alerts_entity_idx`; the lists stay small enough that ordering by id costs a sort of few rows.
pub async fn list(
    c: &impl GenericClient,
    f: &Filter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Alert>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM alerts WHERE ($1::text IS NULL OR entity = $1) \
         AND ($2::uuid IS NULL OR entity_id = $2) AND ($3::text IS NULL OR severity = $3) \
         AND ($4::bool IS NULL OR (resolved_at IS NULL) = $4) AND ($5::uuid IS NULL OR id > $5) \
         ORDER BY id LIMIT $6"
    );
    let rows = c
        .query(
            &sql,
            &[
                &f.entity,
                &f.entity_id,
                &f.severity,
                &f.open,
                &after,
                &limit,
            ],
        )
        .await?;
    Ok(rows.iter().map(alert).collect())
}
