//! Jobs: what has to be picked up where, by which kind of vehicle, how urgently. Created with
//! their audit row in one transaction; read with their dispatch history.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::audit::{self, Entity};
use super::StoreError;

/// A job as stored. Points are `(lon, lat)`.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub reference: String,
    pub customer_id: Option<Uuid>,
    pub pickup: (f64, f64),
    pub dropoff: Option<(f64, f64)>,
    pub priority: i16,
    pub vehicle_type: String,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub max_radius_m: Option<f64>,
    pub notes: Option<String>,
    pub metadata: Value,
    pub status: String,
    pub requested_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A job to create, already validated by the caller.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub reference: String,
    pub customer_id: Option<Uuid>,
    pub pickup: (f64, f64),
    pub dropoff: Option<(f64, f64)>,
    pub priority: i16,
    pub vehicle_type: String,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub max_radius_m: Option<f64>,
    pub notes: Option<String>,
    pub metadata: Value,
}

pub(super) const COLUMNS: &str = "id, reference, customer_id, ST_X(pickup), ST_Y(pickup), \
     ST_X(dropoff), ST_Y(dropoff), priority, vehicle_type, lower(time_window), upper(time_window), \
     max_radius_m, notes, metadata, status, requested_at, created_at, updated_at";

pub(super) fn job(r: &Row) -> Job {
    let dropoff = match (r.get::<_, Option<f64>>(5), r.get::<_, Option<f64>>(6)) {
        (Some(lon), Some(lat)) => Some((lon, lat)),
        _ => None,
    };
    Job {
        id: r.get(0),
        reference: r.get(1),
        customer_id: r.get(2),
        pickup: (r.get(3), r.get(4)),
        dropoff,
        priority: r.get(7),
        vehicle_type: r.get(8),
        window_start: r.get(9),
        window_end: r.get(10),
        max_radius_m: r.get(11),
        notes: r.get(12),
        metadata: r.get(13),
        status: r.get(14),
        requested_at: r.get(15),
        created_at: r.get(16),
        updated_at: r.get(17),
    }
}

impl Job {
    /// What the audit trail keeps of a job.
    pub fn audit_json(&self) -> Value {
        json!({
            "id": self.id, "reference": self.reference, "customer_id": self.customer_id,
            "pickup": [self.pickup.0, self.pickup.1],
            "dropoff": self.dropoff.map(|(lon, lat)| [lon, lat]),
            "priority": self.priority, "vehicle_type": self.vehicle_type,
            "window_start": self.window_start, "window_end": self.window_end,
            "max_radius_m": self.max_radius_m, "status": self.status,
            "requested_at": self.requested_at,
        })
    }
}

/// Creates a job and its `create` audit row in one transaction.
pub async fn create(
    client: &mut tokio_postgres::Client,
    new: &NewJob,
    actor: Uuid,
) -> Result<Job, StoreError> {
    let tx = client.transaction().await?;
    let sql = format!(
        "INSERT INTO jobs (reference, customer_id, pickup, dropoff, priority, vehicle_type, \
         time_window, max_radius_m, notes, metadata) \
         VALUES ($1, $2, ST_SetSRID(ST_MakePoint($3, $4), 4326), \
           CASE WHEN $5::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint($5, $6), 4326) END, \
           $7, $8, \
           CASE WHEN $9::timestamptz IS NULL AND $10::timestamptz IS NULL THEN NULL \
                ELSE tstzrange($9, $10, '[)') END, \
           $11, $12, $13) RETURNING {COLUMNS}"
    );
    let (dropoff_lon, dropoff_lat) = (new.dropoff.map(|p| p.0), new.dropoff.map(|p| p.1));
    let row = tx
        .query_one(
            &sql,
            &[
                &new.reference,
                &new.customer_id,
                &new.pickup.0,
                &new.pickup.1,
                &dropoff_lon,
                &dropoff_lat,
                &new.priority,
                &new.vehicle_type,
                &new.window_start,
                &new.window_end,
                &new.max_radius_m,
                &new.notes,
                &new.metadata,
            ],
        )
        .await?;
    let created = job(&row);
    let after = created.audit_json();
    audit::record(
        &tx,
        Entity::Job,
        created.id,
        "create",
        Some(actor),
        None,
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// One job; the statement is prepared once per pooled connection (dispatch reads every job).
pub async fn get(
    c: &deadpool_postgres::ClientWrapper,
    id: Uuid,
) -> Result<Option<Job>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    let statement = c.prepare_cached(&sql).await?;
    Ok(c.query_opt(&statement, &[&id]).await?.as_ref().map(job))
}

/// Jobs by id, optionally of one status, after `after`.
pub async fn list(
    c: &impl GenericClient,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Job>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    Ok(c.query(&sql, &[&status, &after, &limit])
        .await?
        .iter()
        .map(job)
        .collect())
}

/// Cancels a job nobody is on yet (pending or queued), leaving the queue, with its audit rows.
/// `Ok(None)` when there is no such job; `Err`-free `Some(job)` with the job unchanged when it
/// was not cancellable (the caller compares the status).
pub async fn cancel(
    client: &mut tokio_postgres::Client,
    id: Uuid,
    actor: Uuid,
) -> Result<Option<(Job, bool)>, StoreError> {
    let tx = client.transaction().await?;
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE");
    let Some(before) = tx.query_opt(&sql, &[&id]).await?.as_ref().map(job) else {
        return Ok(None);
    };
    if !matches!(before.status.as_str(), "pending" | "queued") {
        return Ok(Some((before, false)));
    }
    let sql = format!(
        "UPDATE jobs SET status = 'cancelled', updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    );
    let after = job(&tx.query_one(&sql, &[&id]).await?);
    let dequeued = tx
        .execute("DELETE FROM dispatch_queue WHERE job_id = $1", &[&id])
        .await?;
    if dequeued > 0 {
        audit::record(&tx, Entity::Queue, id, "dequeue", Some(actor), None, None).await?;
    }
    let (b, a) = (before.audit_json(), after.audit_json());
    audit::record(
        &tx,
        Entity::Job,
        id,
        "cancel",
        Some(actor),
        Some(&b),
        Some(&a),
    )
    .await?;
    tx.commit().await?;
    Ok(Some((after, true)))
}
