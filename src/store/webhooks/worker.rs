//! The delivery worker's side of `webhook_deliveries`: claim what is due, record how each try
//! went, give up on a delivery when its retry horizon has passed and disable a webhook that has
//! failed for as long (see `record_failure`).
//!
//! Several nodes run the worker at once: a claim takes rows `FOR UPDATE SKIP LOCKED` and leases
//! them (pushes `next_at` past the request's timeout) in the same statement, so no other node
//! takes them while the request is out, and a node that dies mid-request only delays them by the
//! lease. The claim also counts the attempt; an outcome is recorded only if `attempts` is still
//! what the claim returned, so a late answer from an expired lease cannot overwrite a newer one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::domain::geofence::event::GeofenceEvent;
use crate::store::StoreError;

/// A claimed delivery: where to send which event, and the attempt number that identifies this
/// try when its outcome is recorded.
#[derive(Debug, Clone)]
pub struct Due {
    pub webhook_id: Uuid,
    pub url: String,
    pub secret: String,
    pub attempt: i32,
    pub event: GeofenceEvent,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Takes up to `limit` due deliveries of enabled webhooks, earliest first, leases them for
/// `lease` and counts the attempt. Rows another node holds are skipped, not waited for.
pub async fn claim(
    c: &impl GenericClient,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Due>, StoreError> {
    let rows = c
        .query(
            "WITH due AS ( \
               SELECT d.webhook_id, d.event_id FROM webhook_deliveries d \
               JOIN webhooks w ON w.id = d.webhook_id AND w.enabled \
               WHERE d.status = 'pending' AND d.next_at <= now() \
               ORDER BY d.next_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED) \
             UPDATE webhook_deliveries d \
             SET attempts = d.attempts + 1, next_at = now() + make_interval(secs => $2) \
             FROM due, webhooks w, geofence_events e \
             WHERE d.webhook_id = due.webhook_id AND d.event_id = due.event_id \
               AND w.id = d.webhook_id AND e.vehicle_id = d.vehicle_id AND e.id = d.event_id \
             RETURNING d.webhook_id, w.url, w.secret, d.attempts, \
               e.id, e.fence_id, e.vehicle_id, e.external_id, e.type, e.ts, e.lon, e.lat, e.recorded_at",
            &[&limit, &secs(lease)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let kind: String = r.get(8);
            Due {
                webhook_id: r.get(0),
                url: r.get(1),
                secret: r.get(2),
                attempt: r.get(3),
                event: GeofenceEvent {
                    id: r.get(4),
                    fence_id: r.get(5),
                    vehicle_id: r.get(6),
                    external_id: r.get(7),
                    kind: kind
                        .parse()
                        .expect("the table's CHECK admits only event kinds"),
                    ts: r.get(9),
                    lon: r.get(10),
                    lat: r.get(11),
                    recorded_at: r.get(12),
                },
            }
        })
        .collect())
}

/// A 2xx: the delivery is done and the webhook's failure record cleared. `false` if this try's
/// lease had already been taken over (nothing recorded).
pub async fn record_success(
    c: &impl GenericClient,
    due: &Due,
    http_status: u16,
) -> Result<bool, StoreError> {
    let row = c
        .query_one(
            "WITH d AS ( \
               UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(), \
                 last_status = $4, last_error = NULL \
               WHERE webhook_id = $1 AND event_id = $2 AND attempts = $3 AND status = 'pending' \
               RETURNING webhook_id), \
             w AS ( \
               UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL \
               WHERE id IN (SELECT webhook_id FROM d) \
                 AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)) \
             SELECT count(*) FROM d",
            &[
                &due.webhook_id,
                &due.event.id,
                &due.attempt,
                &i32::from(http_status),
            ],
        )
        .await?;
    Ok(row.get::<_, i64>(0) == 1)
}

/// How a recorded failure left things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Tried again at `next_at`.
    Retry { next_at: DateTime<Utc> },
    /// The retry horizon has passed: given up.
    Failed,
    /// The lease had been taken over by another try; nothing recorded.
    Stale,
}

/// When a webhook is disabled: its last tries, at least this many, all failed, *and* either no
/// try has succeeded for the whole retry horizon or one of its deliveries has just run out of
/// retries (which also means a horizon of failure for that event). Both, so neither a burst of
/// failures in a short outage nor one lone failure a day disables it.
pub const DISABLE_AFTER_FAILURES: i32 = 10;

/// The policy a failure is recorded under.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay before the next try (backoff with jitter, drawn by the caller).
    pub retry_in: Duration,
    /// A delivery is tried until `created_at + horizon` (its last try is at that instant), and
    /// a webhook failing for that long is disabled.
    pub horizon: Duration,
}

/// A failed try (`http_status` if the endpoint answered). Retries at `min(now + retry_in,
/// created_at + horizon)`, or marks the delivery failed once the horizon has passed; counts
/// the failure on the webhook and disables it per `DISABLE_AFTER_FAILURES`. Returns the
/// delivery's outcome and, if this failure disabled the webhook, the reason given.
pub async fn record_failure(
    c: &impl GenericClient,
    due: &Due,
    http_status: Option<u16>,
    error: &str,
    policy: RetryPolicy,
) -> Result<(Failure, Option<String>), StoreError> {
    let status = http_status.map(i32::from);
    let row = c
        .query_opt(
            "WITH d AS ( \
               UPDATE webhook_deliveries SET last_status = $4, last_error = $5, \
                 status = CASE WHEN now() >= created_at + make_interval(secs => $7) \
                          THEN 'failed' ELSE 'pending' END, \
                 next_at = LEAST(now() + make_interval(secs => $6), \
                                 created_at + make_interval(secs => $7)) \
               WHERE webhook_id = $1 AND event_id = $2 AND attempts = $3 AND status = 'pending' \
               RETURNING webhook_id, status, next_at), \
             w AS ( \
               UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, \
                 failing_since = coalesce(failing_since, now()), \
                 enabled = false, updated_at = now(), \
                 disabled_reason = format('no successful delivery since %s (%s failed tries in a row); last error: %s', \
                   coalesce(failing_since, now()), consecutive_failures + 1, $5::text) \
               WHERE id IN (SELECT webhook_id FROM d) AND enabled \
                 AND consecutive_failures + 1 >= $8 \
                 AND (failing_since <= now() - make_interval(secs => $7) \
                      OR (SELECT status FROM d) = 'failed') \
               RETURNING disabled_reason), \
             counted AS ( \
               UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, \
                 failing_since = coalesce(failing_since, now()) \
               WHERE id IN (SELECT webhook_id FROM d) AND NOT EXISTS (SELECT 1 FROM w)) \
             SELECT d.status, d.next_at, (SELECT disabled_reason FROM w) FROM d",
            &[
                &due.webhook_id,
                &due.event.id,
                &due.attempt,
                &status,
                &error,
                &secs(policy.retry_in),
                &secs(policy.horizon),
                &DISABLE_AFTER_FAILURES,
            ],
        )
        .await?;
    let Some(row) = row else {
        return Ok((Failure::Stale, None));
    };
    let outcome = match row.get::<_, &str>(0) {
        "failed" => Failure::Failed,
        _ => Failure::Retry {
            next_at: row.get(1),
        },
    };
    Ok((outcome, row.get(2)))
}

/// Deliveries waiting (including those of disabled webhooks), and the age of the oldest.
pub async fn pending(c: &impl GenericClient) -> Result<(i64, f64), StoreError> {
    let row = c
        .query_one(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0) \
             FROM webhook_deliveries WHERE status = 'pending'",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}
