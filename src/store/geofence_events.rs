//! Reading geofence events: by filter for `/v1/geofence-events`, by id for delivery; and
//! deleting those past retention.

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::prepared::Prepared;
use super::StoreError;
use crate::domain::geofence::event::{EventKind, GeofenceEvent};

macro_rules! columns {
    () => {
        "id, fence_id, vehicle_id, external_id, type, ts, lon, lat, recorded_at"
    };
}
const COLUMNS: &str = columns!();
const BY_IDS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM geofence_events WHERE id = ANY($1) ORDER BY id"
);

pub(crate) fn event(r: &Row) -> GeofenceEvent {
    let kind: &str = r.get(4);
    GeofenceEvent {
        id: r.get(0),
        fence_id: r.get(1),
        vehicle_id: r.get(2),
        external_id: r.get(3),
        kind: kind.parse().unwrap_or(EventKind::Enter),
        ts: r.get(5),
        lon: r.get(6),
        lat: r.get(7),
        recorded_at: r.get(8),
    }
}

#[derive(Debug, Default)]
pub struct Filter {
    pub fence_id: Option<Uuid>,
    pub vehicle_id: Option<Uuid>,
    pub kind: Option<EventKind>,
    /// On the events' own time (`ts`): from inclusive, to exclusive.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Events by id (commit order within a node, near enough across nodes), after `after`.
pub async fn list(
    c: &impl GenericClient,
    f: &Filter,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<GeofenceEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM geofence_events WHERE ($1::uuid IS NULL OR fence_id = $1) \
         AND ($2::uuid IS NULL OR vehicle_id = $2) AND ($3::text IS NULL OR type = $3) \
         AND ($4::timestamptz IS NULL OR ts >= $4) AND ($5::timestamptz IS NULL OR ts < $5) \
         AND ($6::int8 IS NULL OR id > $6) ORDER BY id LIMIT $7"
    );
    let kind = f.kind.map(EventKind::as_str);
    let rows = c
        .query(
            &sql,
            &[
                &f.fence_id,
                &f.vehicle_id,
                &kind,
                &f.from,
                &f.to,
                &after,
                &limit,
            ],
        )
        .await?;
    Ok(rows.iter().map(event).collect())
}

/// These events (those that exist), by id.
pub async fn by_ids(
    c: &impl GenericClient,
    prepared: &Prepared,
    ids: &[i64],
) -> Result<Vec<GeofenceEvent>, StoreError> {
    let statement = prepared.get(c, BY_IDS).await?;
    Ok(c.query(&statement, &[&ids])
        .await?
        .iter()
        .map(event)
        .collect())
}

/// Rows deleted per statement: keeps each delete's locks and WAL short next to ingest.
const PRUNE_BATCH: i64 = 10_000;

/// Deletes events whose `ts` is before `before`, except those still in the outbox or with a
/// webhook delivery pending (they go once delivered or failed), and finished deliveries created
/// before it. Returns (events, deliveries) deleted.
pub async fn prune(
    c: &impl GenericClient,
    before: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let events = in_batches(
        c,
        "DELETE FROM geofence_events WHERE (vehicle_id, id) IN (
             SELECT e.vehicle_id, e.id FROM geofence_events e
             WHERE e.ts < $1
               AND NOT EXISTS (SELECT 1 FROM geofence_outbox o
                               WHERE o.vehicle_id = e.vehicle_id AND o.event_id = e.id)
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                               WHERE d.event_id = e.id AND d.status = 'pending')
             LIMIT $2)",
        before,
    )
    .await?;
    let deliveries = in_batches(
        c,
        "DELETE FROM webhook_deliveries WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM webhook_deliveries
             WHERE created_at < $1 AND status <> 'pending' LIMIT $2))",
        before,
    )
    .await?;
    Ok((events, deliveries))
}

async fn in_batches(
    c: &impl GenericClient,
    sql: &str,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let n = c.execute(sql, &[&before, &PRUNE_BATCH]).await?;
        deleted += n;
        if (n as i64) < PRUNE_BATCH {
            return Ok(deleted);
        }
    }
}
