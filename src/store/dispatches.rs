//! Dispatches: one driver, on one shift with its vehicle, sent to one job.
//!
//! An assignment is ONE statement, so it is one transaction with no round trip in between:
//! lock the job, re-check the driver against the database (`driver_availability`, the vehicle's
//! position age and, for automatic dispatch, the job's radius), insert the dispatch, mark the
//! job dispatched, take it off the queue and write the audit rows. The partial unique indexes
//! make a lost race harmless: the loser's insert conflicts, does nothing, and the caller moves on
//! to its next candidate. Rows the view offers are locked `FOR SHARE` (driver, shift, vehicle),
//! so a driver going off duty or a shift ending at the same instant serializes with it.

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::audit::{self, Entity};
use super::StoreError;
use crate::domain::DispatchStatus;

#[derive(Debug, Clone)]
pub struct Dispatch {
    pub id: Uuid,
    pub job_id: Uuid,
    pub driver_id: Uuid,
    pub vehicle_id: Uuid,
    pub status: String,
    pub distance_m: Option<f64>,
    pub dispatched_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, job_id, driver_id, vehicle_id, status, distance_m, dispatched_at, updated_at";

fn dispatch(r: &Row, at: usize) -> Dispatch {
    Dispatch {
        id: r.get(at),
        job_id: r.get(at + 1),
        driver_id: r.get(at + 2),
        vehicle_id: r.get(at + 3),
        status: r.get(at + 4),
        distance_m: r.get(at + 5),
        dispatched_at: r.get(at + 6),
        updated_at: r.get(at + 7),
    }
}

impl Dispatch {
    pub fn audit_json(&self) -> serde_json::Value {
        json!({
            "id": self.id, "job_id": self.job_id, "driver_id": self.driver_id,
            "vehicle_id": self.vehicle_id, "status": self.status, "distance_m": self.distance_m,
            "dispatched_at": self.dispatched_at,
        })
    }
}

/// How an assignment treats a job another transaction holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobLock {
    /// Wait for it (a request for this job).
    Wait,
    /// Skip it (the queue drain: another node is on it).
    SkipLocked,
}

/// What one assignment attempt found.
#[derive(Debug)]
pub enum Attempt {
    Dispatched(Dispatch),
    /// The job is not open (its status is given), or past its time window (`"expired"`).
    JobNotOpen(String),
    /// The driver did not pass the re-check, or lost a race for itself or its vehicle.
    DriverNotAvailable,
    /// No such job, or (with `SkipLocked`) another transaction holds it.
    NoJob,
}

fn assign_sql(lock: JobLock) -> String {
    let lock = match lock {
        JobLock::Wait => "FOR UPDATE",
        JobLock::SkipLocked => "FOR UPDATE SKIP LOCKED",
    };
    format!(
        "WITH job AS (
            SELECT id, status, pickup, vehicle_type, upper(time_window) AS not_after
            FROM jobs WHERE id = $1 {lock}
        ), fit AS (
            SELECT a.shift_id, a.driver_id, a.vehicle_id,
                   ST_Distance(p.location::geography, job.pickup::geography) AS distance_m
            FROM job
            JOIN driver_availability a
              ON a.driver_id = $2 AND a.during @> now() AND a.vehicle_type = job.vehicle_type
            JOIN vehicle_positions p
              ON p.vehicle_id = a.vehicle_id AND p.ts >= now() - make_interval(secs => $4)
            WHERE job.status IN ('pending', 'queued')
              AND (job.not_after IS NULL OR job.not_after > now())
            LIMIT 1
            FOR SHARE OF a
        ), d AS (
            INSERT INTO dispatches (job_id, driver_id, vehicle_id, shift_id, api_key_id, distance_m)
            SELECT $1, driver_id, vehicle_id, shift_id, $3, distance_m FROM fit
            WHERE $5::float8 IS NULL OR distance_m <= $5
            ON CONFLICT DO NOTHING
            RETURNING {COLUMNS}
        ), j AS (
            UPDATE jobs SET status = 'dispatched', updated_at = now()
            FROM d WHERE jobs.id = d.job_id RETURNING jobs.id
        ), q AS (
            DELETE FROM dispatch_queue USING d
            WHERE dispatch_queue.job_id = d.job_id RETURNING dispatch_queue.job_id
        ), audit_dispatch AS (
            INSERT INTO audit_log (entity, entity_id, action, actor, after)
            SELECT 'dispatch', d.id, 'dispatch', $3,
                   jsonb_build_object('id', d.id, 'job_id', d.job_id, 'driver_id', d.driver_id,
                       'vehicle_id', d.vehicle_id, 'status', d.status,
                       'distance_m', d.distance_m, 'dispatched_at', d.dispatched_at)
            FROM d
        ), audit_queue AS (
            INSERT INTO audit_log (entity, entity_id, action, actor)
            SELECT 'queue', q.job_id, 'dequeue', $3 FROM q
        )
        SELECT job.status, job.not_after IS NOT NULL AND job.not_after <= now(),
               d.id, d.job_id, d.driver_id, d.vehicle_id, d.status, d.distance_m,
               d.dispatched_at, d.updated_at
        FROM job LEFT JOIN d ON true"
    )
}

/// The SQL of one assignment attempt, for the benchmark's pgbench floor (same statement).
pub fn assign_statement() -> String {
    assign_sql(JobLock::Wait)
}

/// Tries to give `job_id` to `driver_id`. `max_radius_m` is enforced when given (automatic
/// dispatch passes the job's own); `max_age_s` bounds the vehicle's position age.
pub async fn assign(
    c: &deadpool_postgres::ClientWrapper,
    lock: JobLock,
    job_id: Uuid,
    driver_id: Uuid,
    actor: Option<Uuid>,
    max_age_s: f64,
    max_radius_m: Option<f64>,
) -> Result<Attempt, StoreError> {
    let statement = c.prepare_cached(&assign_sql(lock)).await?;
    let result = c
        .query_opt(
            &statement,
            &[&job_id, &driver_id, &actor, &max_age_s, &max_radius_m],
        )
        .await;
    let row = match result {
        Ok(row) => row,
        // The vehicle went into maintenance (or out of `active`) between the view's snapshot and
        // the insert: the trigger refused it. This driver is not available; the next may be.
        Err(e) if is_vehicle_refusal(&e) => return Ok(Attempt::DriverNotAvailable),
        Err(e) => return Err(e.into()),
    };
    let Some(row) = row else {
        return Ok(Attempt::NoJob);
    };
    let status: String = row.get(0);
    if row.get::<_, Option<Uuid>>(2).is_some() {
        return Ok(Attempt::Dispatched(dispatch(&row, 2)));
    }
    if row.get::<_, bool>(1) {
        return Ok(Attempt::JobNotOpen("expired".into()));
    }
    Ok(match status.as_str() {
        "pending" | "queued" => Attempt::DriverNotAvailable,
        _ => Attempt::JobNotOpen(status),
    })
}

fn is_vehicle_refusal(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .and_then(|d| d.constraint())
        .is_some_and(|c| c.starts_with("dispatches_vehicle_"))
}

/// Why a named driver could not take a job, read after the attempt failed. Only a diagnosis:
/// the decision was the attempt's.
#[derive(Debug, Clone)]
pub struct DriverState {
    pub status: String,
    pub busy: bool,
    pub on_shift: bool,
    pub vehicle_active: bool,
    pub vehicle_in_maintenance: bool,
    pub vehicle_busy: bool,
    pub vehicle_type: Option<String>,
    pub position_age_s: Option<f64>,
}

/// `None` when there is no such driver.
pub async fn driver_state(
    c: &impl GenericClient,
    driver_id: Uuid,
) -> Result<Option<DriverState>, StoreError> {
    let row = c
        .query_opt(
            "SELECT d.status,
                EXISTS (SELECT 1 FROM dispatches x WHERE x.driver_id = d.id
                        AND x.status IN ('dispatched', 'en_route', 'on_site', 'returning')),
                s.id IS NOT NULL,
                coalesce(v.status = 'active', false),
                EXISTS (SELECT 1 FROM maintenance_records m
                        WHERE m.vehicle_id = v.id AND m.closed_at IS NULL),
                EXISTS (SELECT 1 FROM dispatches x WHERE x.vehicle_id = v.id
                        AND x.status IN ('dispatched', 'en_route', 'on_site', 'returning')),
                v.vehicle_type,
                extract(epoch FROM now() - p.ts)::float8
             FROM drivers d
             LEFT JOIN shifts s ON s.driver_id = d.id AND s.during @> now()
             LEFT JOIN vehicles v ON v.id = s.vehicle_id
             LEFT JOIN vehicle_positions p ON p.vehicle_id = v.id
             WHERE d.id = $1
             LIMIT 1",
            &[&driver_id],
        )
        .await?;
    Ok(row.map(|r| DriverState {
        status: r.get(0),
        busy: r.get(1),
        on_shift: r.get(2),
        vehicle_active: r.get(3),
        vehicle_in_maintenance: r.get(4),
        vehicle_busy: r.get(5),
        vehicle_type: r.get(6),
        position_age_s: r.get(7),
    }))
}

/// What a status change did.
#[derive(Debug)]
pub enum Transition {
    Done {
        before: Dispatch,
        after: Dispatch,
    },
    /// Not allowed from the current status (given).
    Refused(Dispatch),
    NotFound,
}

/// Moves a dispatch to `next` if the state machine allows it from its current status, with the
/// job following an end state (completed → completed, cancelled → cancelled, recalled → back in
/// the queue so the next driver gets it) and the audit rows, in one transaction.
pub async fn transition(
    client: &mut tokio_postgres::Client,
    id: Uuid,
    next: DispatchStatus,
    actor: Uuid,
) -> Result<Transition, StoreError> {
    let tx = client.transaction().await?;
    let sql = format!("SELECT {COLUMNS} FROM dispatches WHERE id = $1 FOR UPDATE");
    let Some(before) = tx.query_opt(&sql, &[&id]).await?.map(|r| dispatch(&r, 0)) else {
        return Ok(Transition::NotFound);
    };
    let allowed = before
        .status
        .parse::<DispatchStatus>()
        .is_ok_and(|current| current.can_become(next));
    if !allowed {
        return Ok(Transition::Refused(before));
    }
    let sql = format!(
        "UPDATE dispatches SET status = $2, {} = now(), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
        next.reached_at_column()
    );
    let after = dispatch(&tx.query_one(&sql, &[&id, &next.as_str()]).await?, 0);
    let job_status = match next {
        DispatchStatus::Completed => Some("completed"),
        DispatchStatus::Cancelled => Some("cancelled"),
        DispatchStatus::Recalled => Some("queued"),
        _ => None,
    };
    if let Some(status) = job_status {
        tx.execute(
            "UPDATE jobs SET status = $2, updated_at = now() WHERE id = $1",
            &[&after.job_id, &status],
        )
        .await?;
    }
    if next == DispatchStatus::Recalled {
        super::queue::enqueue_locked(&tx, after.job_id, Some(actor)).await?;
    }
    let (b, a) = (before.audit_json(), after.audit_json());
    audit::record(
        &tx,
        Entity::Dispatch,
        id,
        next.as_str(),
        Some(actor),
        Some(&b),
        Some(&a),
    )
    .await?;
    tx.commit().await?;
    Ok(Transition::Done { before, after })
}

pub async fn get(c: &impl GenericClient, id: Uuid) -> Result<Option<Dispatch>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM dispatches WHERE id = $1");
    Ok(c.query_opt(&sql, &[&id]).await?.map(|r| dispatch(&r, 0)))
}

/// A job's dispatches, oldest first.
pub async fn of_job(c: &impl GenericClient, job_id: Uuid) -> Result<Vec<Dispatch>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM dispatches WHERE job_id = $1 ORDER BY dispatched_at, id");
    Ok(c.query(&sql, &[&job_id])
        .await?
        .iter()
        .map(|r| dispatch(r, 0))
        .collect())
}

/// Dispatches by id, filtered.
pub async fn list(
    c: &impl GenericClient,
    status: Option<&str>,
    driver_id: Option<Uuid>,
    job_id: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Dispatch>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM dispatches WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::uuid IS NULL OR driver_id = $2) AND ($3::uuid IS NULL OR job_id = $3) \
         AND ($4::uuid IS NULL OR id > $4) ORDER BY id LIMIT $5"
    );
    Ok(
        c.query(&sql, &[&status, &driver_id, &job_id, &after, &limit])
            .await?
            .iter()
            .map(|r| dispatch(r, 0))
            .collect(),
    )
}
