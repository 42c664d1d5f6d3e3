//! The dispatch queue: jobs nobody could take yet. Offered in priority order, then by age (the
//! job's `requested_at`, so a recalled job keeps its place); dequeue is a DELETE, so the table
//! is as small as the backlog. Every node drains it: a job is taken with `FOR UPDATE SKIP
//! LOCKED` on its `jobs` row (the lock every assignment takes first, so the drain and a request
//! for the same job lock in the same order and never deadlock).

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::StoreError;

/// What enqueueing a job found.
#[derive(Debug, PartialEq)]
pub enum Enqueued {
    /// In the queue (now, or already), at this 1-based position.
    At(i64),
    /// The job is not pending or queued (its status is given): nothing was queued.
    NotOpen(String),
    NoJob,
}

/// Puts a pending job in the queue with its `enqueue` audit row, in one statement; a job that
/// is already queued stays where it is.
pub async fn enqueue(
    c: &impl GenericClient,
    job_id: Uuid,
    actor: Option<Uuid>,
) -> Result<Enqueued, StoreError> {
    let row = c
        .query_opt(
            "WITH job AS (
                SELECT id, status, priority, requested_at, upper(time_window) AS not_after
                FROM jobs WHERE id = $1 FOR UPDATE
            ), q AS (
                INSERT INTO dispatch_queue (job_id, priority, enqueued_at, not_after)
                SELECT id, priority, requested_at, not_after FROM job WHERE status = 'pending'
                ON CONFLICT (job_id) DO NOTHING
                RETURNING job_id, priority, enqueued_at
            ), j AS (
                UPDATE jobs SET status = 'queued', updated_at = now()
                FROM q WHERE jobs.id = q.job_id RETURNING jobs.id
            ), a AS (
                INSERT INTO audit_log (entity, entity_id, action, actor, after)
                SELECT 'queue', q.job_id, 'enqueue', $2,
                       jsonb_build_object('priority', q.priority, 'enqueued_at', q.enqueued_at)
                FROM q
            )
            SELECT job.status, q.job_id IS NOT NULL FROM job LEFT JOIN q ON true",
            &[&job_id, &actor],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Enqueued::NoJob);
    };
    let (status, queued_now): (String, bool) = (row.get(0), row.get(1));
    if !queued_now && status != "queued" {
        return Ok(Enqueued::NotOpen(status));
    }
    Ok(match position(c, job_id).await? {
        Some(at) => Enqueued::At(at),
        // Taken off the queue (dispatched) between the two statements.
        None => Enqueued::NotOpen("dispatched".into()),
    })
}

/// Re-queues a job inside the caller's transaction (a recalled dispatch), with its audit row.
/// The caller has set the job's status to `queued`.
pub async fn enqueue_locked(
    c: &impl GenericClient,
    job_id: Uuid,
    actor: Option<Uuid>,
) -> Result<(), StoreError> {
    c.execute(
        "WITH q AS (
            INSERT INTO dispatch_queue (job_id, priority, enqueued_at, not_after)
            SELECT id, priority, requested_at, upper(time_window) FROM jobs WHERE id = $1
            ON CONFLICT (job_id) DO NOTHING
            RETURNING job_id, priority, enqueued_at
        )
        INSERT INTO audit_log (entity, entity_id, action, actor, after)
        SELECT 'queue', q.job_id, 'enqueue', $2,
               jsonb_build_object('priority', q.priority, 'enqueued_at', q.enqueued_at)
        FROM q",
        &[&job_id, &actor],
    )
    .await?;
    Ok(())
}

/// The job's 1-based place in the queue, or `None` when it is not queued.
pub async fn position(c: &impl GenericClient, job_id: Uuid) -> Result<Option<i64>, StoreError> {
    let row = c
        .query_one(
            "SELECT CASE WHEN me.job_id IS NULL THEN NULL ELSE 1 + (
                 SELECT count(*) FROM dispatch_queue o
                 WHERE o.priority > me.priority
                    OR (o.priority = me.priority
                        AND (o.enqueued_at, o.job_id) < (me.enqueued_at, me.job_id))) END
             FROM (SELECT 1) one LEFT JOIN dispatch_queue me ON me.job_id = $1",
            &[&job_id],
        )
        .await?;
    Ok(row.get(0))
}

/// A queued job as the drain sees it: enough to ask the live index for candidates.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub job_id: Uuid,
    pub priority: i16,
    pub enqueued_at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub vehicle_type: String,
    pub max_radius_m: Option<f64>,
}

/// The next `limit` queued jobs in offer order, after `after` (the last one of the previous
/// batch); jobs past their time window are left to `expire`. Reads without locking: the
/// assignment itself takes the job with SKIP LOCKED.
pub async fn waiting(
    c: &impl GenericClient,
    after: Option<&Waiting>,
    limit: i64,
) -> Result<Vec<Waiting>, StoreError> {
    let (p, e, id) = match after {
        Some(w) => (Some(w.priority), Some(w.enqueued_at), Some(w.job_id)),
        None => (None, None, None),
    };
    let rows = c
        .query(
            "SELECT q.job_id, q.priority, q.enqueued_at, ST_Y(j.pickup), ST_X(j.pickup),
                    j.vehicle_type, j.max_radius_m
             FROM dispatch_queue q JOIN jobs j ON j.id = q.job_id
             WHERE (q.not_after IS NULL OR q.not_after > now())
               AND ($1::int2 IS NULL OR q.priority < $1
                    OR (q.priority = $1 AND (q.enqueued_at, q.job_id) > ($2, $3)))
             ORDER BY q.priority DESC, q.enqueued_at, q.job_id
             LIMIT $4",
            &[&p, &e, &id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Waiting {
            job_id: r.get(0),
            priority: r.get(1),
            enqueued_at: r.get(2),
            lat: r.get(3),
            lon: r.get(4),
            vehicle_type: r.get(5),
            max_radius_m: r.get(6),
        })
        .collect())
}

/// Cancels queued jobs whose time window has ended, each with its `dequeue` and `expire`
/// audit rows; jobs another node holds are left to it. Returns how many it cancelled.
pub async fn expire(c: &impl GenericClient) -> Result<i64, StoreError> {
    let row = c
        .query_one(
            "WITH x AS (
                SELECT j.id FROM dispatch_queue q JOIN jobs j ON j.id = q.job_id
                WHERE q.not_after <= now()
                LIMIT 1000
                FOR UPDATE OF j SKIP LOCKED
            ), dq AS (
                DELETE FROM dispatch_queue USING x
                WHERE dispatch_queue.job_id = x.id RETURNING dispatch_queue.job_id
            ), j AS (
                UPDATE jobs SET status = 'cancelled', updated_at = now()
                FROM dq WHERE jobs.id = dq.job_id RETURNING jobs.id
            ), audit_queue AS (
                INSERT INTO audit_log (entity, entity_id, action)
                SELECT 'queue', job_id, 'dequeue' FROM dq
            ), audit_job AS (
                INSERT INTO audit_log (entity, entity_id, action, before, after)
                SELECT 'job', id, 'expire', jsonb_build_object('status', 'queued'),
                       jsonb_build_object('status', 'cancelled')
                FROM j
            )
            SELECT count(*) FROM j",
            &[],
        )
        .await?;
    Ok(row.get(0))
}
