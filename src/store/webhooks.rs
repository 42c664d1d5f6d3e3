//! Webhooks and their deliveries: the registry (create, get, list, delete, re-enable), the
//! fan-out of committed geofence events into one delivery row per matching webhook, and the
//! delivery worker's side of the table — claim what is due, record how each try went, give up
//! on a delivery when its retry horizon has passed and disable a webhook that has failed for as
//! long (see `record_failure`).
//!
//! Several nodes run the worker at once: a claim takes rows `FOR UPDATE SKIP LOCKED` and leases
//! them (pushes `next_at` past the request's timeout) in the same statement, so no other node
//! takes them while the request is out, and a node that dies mid-request only delays them by the
//! lease. The claim also counts the attempt; an outcome is recorded only if `attempts` is still
//! what the claim returned, so a late answer from an expired lease cannot overwrite a newer one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::StoreError;
use crate::domain::geofence::event::{EventKind, GeofenceEvent};

/// A registered webhook, without its secret.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// `None`: every fence.
    pub fence_ids: Option<Vec<Uuid>>,
    pub event_types: Vec<EventKind>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A webhook's deliveries by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

#[derive(Debug)]
pub struct NewWebhook<'a> {
    /// Already validated (`domain::webhook::WebhookUrl`).
    pub url: &'a str,
    pub secret: &'a str,
    pub fence_ids: Option<&'a [Uuid]>,
    pub event_types: &'a [EventKind],
}

/// One delivery as the API lists it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: i64,
    pub vehicle_id: Uuid,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

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

const COLUMNS: &str = "w.id, w.url, w.fence_ids, w.event_types, w.enabled, w.disabled_reason, \
                       w.consecutive_failures, w.failing_since, w.created_at, w.updated_at";

fn webhook(r: &Row) -> Webhook {
    let types: Vec<String> = r.get(3);
    Webhook {
        id: r.get(0),
        url: r.get(1),
        fence_ids: r.get(2),
        event_types: types
            .iter()
            .map(|t| {
                t.parse()
                    .expect("the table's CHECK admits only event kinds")
            })
            .collect(),
        enabled: r.get(4),
        disabled_reason: r.get(5),
        consecutive_failures: r.get(6),
        failing_since: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
    }
}

fn kinds(types: &[EventKind]) -> Vec<&'static str> {
    types.iter().map(|k| k.as_str()).collect()
}

pub async fn create(c: &impl GenericClient, new: &NewWebhook<'_>) -> Result<Webhook, StoreError> {
    let sql = format!(
        "INSERT INTO webhooks AS w (url, secret, fence_ids, event_types) VALUES ($1, $2, $3, $4) \
         RETURNING {COLUMNS}"
    );
    let fences = new.fence_ids.map(<[Uuid]>::to_vec);
    let types = kinds(new.event_types);
    let row = c
        .query_one(&sql, &[&new.url, &new.secret, &fences, &types])
        .await?;
    Ok(webhook(&row))
}

/// Which of `ids` name no geofence, in the order given.
pub async fn unknown_fences(c: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
    let rows = c
        .query(
            "SELECT k.id FROM unnest($1::uuid[]) WITH ORDINALITY AS k(id, n) \
             WHERE NOT EXISTS (SELECT 1 FROM geofences f WHERE f.id = k.id) ORDER BY k.n",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A webhook and its deliveries by status. Counting reads the webhook's rows of the primary key
/// (`webhook_id, event_id`), so it grows with its history: an admin's look, not a hot path.
pub async fn get(
    c: &impl GenericClient,
    id: Uuid,
) -> Result<Option<(Webhook, Counts)>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS}, \
           count(d.*) FILTER (WHERE d.status = 'pending'), \
           count(d.*) FILTER (WHERE d.status = 'delivered'), \
           count(d.*) FILTER (WHERE d.status = 'failed') \
         FROM webhooks w LEFT JOIN webhook_deliveries d ON d.webhook_id = w.id \
         WHERE w.id = $1 GROUP BY w.id"
    );
    Ok(c.query_opt(&sql, &[&id]).await?.map(|r| {
        let counts = Counts {
            pending: r.get(10),
            delivered: r.get(11),
            failed: r.get(12),
        };
        (webhook(&r), counts)
    }))
}

/// Keyset pagination by id, like every list.
pub async fn list(
    c: &impl GenericClient,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Webhook>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhooks w WHERE ($1::uuid IS NULL OR w.id > $1) ORDER BY w.id LIMIT $2"
    );
    let rows = c.query(&sql, &[&after, &limit]).await?;
    Ok(rows.iter().map(webhook).collect())
}

/// Whether a webhook existed (and is now gone, with its deliveries).
pub async fn delete(c: &impl GenericClient, id: Uuid) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM webhooks WHERE id = $1", &[&id])
        .await?
        == 1)
}

/// Re-enables a webhook after its endpoint was fixed: clears the failure record and makes its
/// pending deliveries (held while it was disabled) due now. Failed ones stay failed.
pub async fn enable(c: &impl GenericClient, id: Uuid) -> Result<Option<Webhook>, StoreError> {
    let sql = format!(
        "WITH w AS ( \
           UPDATE webhooks SET enabled = true, disabled_reason = NULL, consecutive_failures = 0, \
             failing_since = NULL, updated_at = now() WHERE id = $1 RETURNING *), \
         due AS ( \
           UPDATE webhook_deliveries SET next_at = now() \
           WHERE webhook_id = $1 AND status = 'pending' AND EXISTS (SELECT 1 FROM w)) \
         SELECT {COLUMNS} FROM w"
    );
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(webhook))
}

/// A webhook's deliveries by event id, optionally of one status; `None` if no such webhook.
pub async fn deliveries(
    c: &impl GenericClient,
    webhook_id: Uuid,
    status: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> Result<Option<Vec<Delivery>>, StoreError> {
    let exists = c
        .query_opt("SELECT 1 FROM webhooks WHERE id = $1", &[&webhook_id])
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = c
        .query(
            "SELECT event_id, vehicle_id, status, attempts, next_at, last_status, last_error, \
               created_at, delivered_at \
             FROM webhook_deliveries \
             WHERE webhook_id = $1 AND ($2::text IS NULL OR status = $2) \
               AND ($3::int8 IS NULL OR event_id > $3) \
             ORDER BY event_id LIMIT $4",
            &[&webhook_id, &status, &after, &limit],
        )
        .await?;
    Ok(Some(
        rows.iter()
            .map(|r| Delivery {
                event_id: r.get(0),
                vehicle_id: r.get(1),
                status: r.get(2),
                attempts: r.get(3),
                next_at: r.get(4),
                last_status: r.get(5),
                last_error: r.get(6),
                created_at: r.get(7),
                delivered_at: r.get(8),
            })
            .collect(),
    ))
}

/// One delivery per (enabled webhook whose fences and event types match, event) for the given
/// `(vehicle_id, event_id)` pairs, in the caller's transaction (the outbox worker's, so the
/// outbox row goes and the deliveries appear together). Idempotent: a pair fanned out twice
/// adds nothing. Returns how many deliveries were added.
pub async fn fan_out(
    tx: &tokio_postgres::Transaction<'_>,
    events: &[(Uuid, i64)],
) -> Result<u64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let (vehicles, ids): (Vec<Uuid>, Vec<i64>) = events.iter().copied().unzip();
    Ok(tx
        .execute(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, vehicle_id) \
             SELECT w.id, e.id, e.vehicle_id \
             FROM unnest($1::uuid[], $2::int8[]) AS k(vehicle_id, event_id) \
             JOIN geofence_events e ON e.vehicle_id = k.vehicle_id AND e.id = k.event_id \
             JOIN webhooks w ON w.enabled AND e.type = ANY (w.event_types) \
                            AND (w.fence_ids IS NULL OR e.fence_id = ANY (w.fence_ids)) \
             ON CONFLICT DO NOTHING",
            &[&vehicles, &ids],
        )
        .await?)
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
                   failing_since, consecutive_failures + 1, $5::text) \
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
