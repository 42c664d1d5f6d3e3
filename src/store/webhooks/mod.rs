//! Webhooks and their deliveries: the registry (create, get, list, delete, re-enable), the
//! fan-out of committed geofence events into one delivery row per matching webhook, and the
//! listing of a webhook's deliveries. The delivery worker's side — claim, record, give up,
//! disable — is in `worker.rs`.

mod worker;

pub use worker::{
    claim, pending, record_failure, record_success, Due, Failure, RetryPolicy,
    DISABLE_AFTER_FAILURES,
};

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::prepared::Prepared;
use super::StoreError;
use crate::domain::geofence::event::EventKind;

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
    prepared: &Prepared,
    events: &[(Uuid, i64)],
) -> Result<u64, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let (vehicles, ids): (Vec<Uuid>, Vec<i64>) = events.iter().copied().unzip();
    let statement = prepared.get(tx, FAN_OUT).await?;
    Ok(tx.execute(&statement, &[&vehicles, &ids]).await?)
}

const FAN_OUT: &str = "\
INSERT INTO webhook_deliveries (webhook_id, event_id, vehicle_id)
SELECT w.id, e.id, e.vehicle_id
FROM unnest($1::uuid[], $2::int8[]) AS k(vehicle_id, event_id)
JOIN geofence_events e ON e.vehicle_id = k.vehicle_id AND e.id = k.event_id
JOIN webhooks w ON w.enabled AND e.type = ANY (w.event_types)
               AND (w.fence_ids IS NULL OR e.fence_id = ANY (w.fence_ids))
ON CONFLICT DO NOTHING";
