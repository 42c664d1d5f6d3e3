//! Maintenance records: a vehicle in the shop. An open record (no `closed_at`) keeps its vehicle
//! out of dispatch — the `driver_availability` view and the dispatch trigger both read
//! `closed_at IS NULL`, and opening or closing one locks the vehicle row (a trigger), so it
//! serializes with a dispatch of that vehicle. Writes take the caller's transaction, which
//! also holds their audit row.

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::StoreError;
use crate::domain::Money;

#[derive(Debug)]
pub struct Record {
    pub id: Uuid,
    pub vehicle_id: Uuid,
    pub kind: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub cost: Option<Money>,
    pub provider: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A record to open; `opened_at` defaults to now.
#[derive(Debug)]
pub struct NewRecord<'a> {
    pub vehicle_id: Uuid,
    pub kind: &'a str,
    pub opened_at: Option<DateTime<Utc>>,
    pub cost: Option<Money>,
    pub provider: Option<&'a str>,
    pub notes: Option<&'a str>,
}

// Money crosses as whole cents (int8) both ways, so no float ever touches it:
// `cents / 100.0` and `cost * 100` are exact in `numeric`.
const COLUMNS: &str = "id, vehicle_id, kind, opened_at, closed_at, (cost * 100)::int8, \
                       provider, notes, created_at, updated_at";

fn record(r: &Row) -> Record {
    let cents: Option<i64> = r.get(5);
    Record {
        id: r.get(0),
        vehicle_id: r.get(1),
        kind: r.get(2),
        opened_at: r.get(3),
        closed_at: r.get(4),
        // The column's CHECK and precision keep it in Money's range.
        cost: cents.and_then(Money::from_cents),
        provider: r.get(6),
        notes: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
    }
}

pub async fn open(c: &impl GenericClient, new: &NewRecord<'_>) -> Result<Record, StoreError> {
    let sql = format!(
        "INSERT INTO maintenance_records (vehicle_id, kind, opened_at, cost, provider, notes) \
         VALUES ($1, $2, COALESCE($3, now()), $4::int8 / 100.0, $5, $6) RETURNING {COLUMNS}"
    );
    let cents = new.cost.map(Money::cents);
    let row = c
        .query_one(
            &sql,
            &[
                &new.vehicle_id,
                &new.kind,
                &new.opened_at,
                &cents,
                &new.provider,
                &new.notes,
            ],
        )
        .await?;
    Ok(record(&row))
}

pub async fn get(c: &impl GenericClient, id: Uuid) -> Result<Option<Record>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM maintenance_records WHERE id = $1");
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(record))
}

/// The record, locked until the transaction ends: a close reads it, decides, then writes.
pub async fn lock(c: &impl GenericClient, id: Uuid) -> Result<Option<Record>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM maintenance_records WHERE id = $1 FOR UPDATE");
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(record))
}

/// Closes a record (locked by `lock`) at `closed_at`, default the database's now — the clock
/// that also dated `opened_at` by default, so an immediate close is never before its opening.
/// A `cost` replaces the estimate; absent keeps it.
pub async fn close(
    c: &impl GenericClient,
    id: Uuid,
    closed_at: Option<DateTime<Utc>>,
    cost: Option<Money>,
) -> Result<Record, StoreError> {
    let sql = format!(
        "UPDATE maintenance_records SET closed_at = COALESCE($2, now()), \
         cost = COALESCE($3::int8 / 100.0, cost), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    );
    let cents = cost.map(Money::cents);
    Ok(record(
        &c.query_one(&sql, &[&id, &closed_at, &cents]).await?,
    ))
}

/// Records by id (keyset pagination), of one vehicle and/or only open or only closed ones.
pub async fn list(
    c: &impl GenericClient,
    vehicle_id: Option<Uuid>,
    open: Option<bool>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Record>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM maintenance_records WHERE ($1::uuid IS NULL OR vehicle_id = $1) \
         AND ($2::bool IS NULL OR (closed_at IS NULL) = $2) AND ($3::uuid IS NULL OR id > $3) \
         ORDER BY id LIMIT $4"
    );
    let rows = c.query(&sql, &[&vehicle_id, &open, &after, &limit]).await?;
    Ok(rows.iter().map(record).collect())
}
