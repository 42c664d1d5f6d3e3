//! Shifts: a driver on a vehicle for `[start, end)`; overlap is refused by the database.

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::StoreError;

#[derive(Debug)]
pub struct Shift {
    pub id: Uuid,
    pub driver_id: Uuid,
    pub vehicle_id: Uuid,
    pub start: DateTime<Utc>,
    /// `null` for an open-ended shift.
    pub end: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, driver_id, vehicle_id, lower(during), upper(during), created_at, updated_at";

fn shift(r: &Row) -> Shift {
    Shift {
        id: r.get(0),
        driver_id: r.get(1),
        vehicle_id: r.get(2),
        start: r.get(3),
        end: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
    }
}

pub async fn create(
    c: &impl GenericClient,
    driver_id: Uuid,
    vehicle_id: Uuid,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) -> Result<Shift, StoreError> {
    let sql = format!(
        "INSERT INTO shifts (driver_id, vehicle_id, during) VALUES ($1, $2, tstzrange($3, $4, '[)')) RETURNING {COLUMNS}"
    );
    Ok(shift(
        &c.query_one(&sql, &[&driver_id, &vehicle_id, &start, &end])
            .await?,
    ))
}

pub async fn get(c: &impl GenericClient, id: Uuid) -> Result<Option<Shift>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM shifts WHERE id = $1");
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(shift))
}

/// Ends a shift at `at`, if it was still running then. `None` when there is no such shift
/// or it had already ended by `at`.
pub async fn end(
    c: &impl GenericClient,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<Shift>, StoreError> {
    let sql = format!(
        "UPDATE shifts SET during = tstzrange(lower(during), $2, '[)'), updated_at = now() \
         WHERE id = $1 AND during @> $2::timestamptz AND lower(during) < $2 RETURNING {COLUMNS}"
    );
    Ok(c.query_opt(&sql, &[&id, &at]).await?.as_ref().map(shift))
}

/// Shifts of a driver and/or vehicle, optionally only those active at `active_at`.
pub async fn list(
    c: &impl GenericClient,
    driver_id: Option<Uuid>,
    vehicle_id: Option<Uuid>,
    active_at: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Shift>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM shifts WHERE ($1::uuid IS NULL OR driver_id = $1) AND ($2::uuid IS NULL OR vehicle_id = $2) \
         AND ($3::timestamptz IS NULL OR during @> $3) ORDER BY lower(during) DESC, id LIMIT $4"
    );
    Ok(
        c.query(&sql, &[&driver_id, &vehicle_id, &active_at, &limit])
            .await?
            .iter()
            .map(shift)
            .collect(),
    )
}
