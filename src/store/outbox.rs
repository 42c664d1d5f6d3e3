//! The geofence outbox: events committed with their batch, waiting to be published and fanned
//! out to webhooks. Any node's worker claims a round with `FOR UPDATE SKIP LOCKED`, so nodes
//! share the work without ever holding the same event.

use tokio_postgres::Transaction;
use uuid::Uuid;

use super::prepared::Prepared;
use super::StoreError;

const CLAIM: &str = "SELECT vehicle_id, event_id FROM geofence_outbox WHERE next_at <= now() \
                     ORDER BY event_id LIMIT $1 FOR UPDATE SKIP LOCKED";

const DONE: &str = "DELETE FROM geofence_outbox o USING unnest($1::uuid[], $2::int8[]) AS d(v, e) \
                    WHERE o.vehicle_id = d.v AND o.event_id = d.e";

/// Claims up to `limit` due events, oldest first; they stay locked until `tx` ends.
pub async fn claim(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    limit: i64,
) -> Result<Vec<(Uuid, i64)>, StoreError> {
    let statement = prepared.get(tx, CLAIM).await?;
    let rows = tx.query(&statement, &[&limit]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn columns(events: &[(Uuid, i64)]) -> (Vec<Uuid>, Vec<i64>) {
    events.iter().copied().unzip()
}

/// The events are published and fanned out: forget them.
pub async fn done(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    events: &[(Uuid, i64)],
) -> Result<u64, StoreError> {
    let (v, e) = columns(events);
    let statement = prepared.get(tx, DONE).await?;
    Ok(tx.execute(&statement, &[&v, &e]).await?)
}

/// A round failed: try these again after `delay_ms` (doubling per attempt, capped by the caller).
pub async fn postpone(
    tx: &Transaction<'_>,
    events: &[(Uuid, i64)],
    error: &str,
    max_delay_ms: i64,
) -> Result<u64, StoreError> {
    let (v, e) = columns(events);
    Ok(tx
        .execute(
            "UPDATE geofence_outbox o SET attempts = attempts + 1, last_error = $3, \
             next_at = now() + make_interval(secs => least($4::float8, 250 * 2 ^ least(attempts, 20)) / 1000) \
             FROM unnest($1::uuid[], $2::int8[]) AS d(v, e) \
             WHERE o.vehicle_id = d.v AND o.event_id = d.e",
            &[&v, &e, &error, &(max_delay_ms as f64)],
        )
        .await?)
}

/// Events waiting, and the age in seconds of the oldest (for the metrics).
pub async fn backlog(c: &impl tokio_postgres::GenericClient) -> Result<(i64, f64), StoreError> {
    let r = c
        .query_one(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(e.recorded_at)), 0)::float8 \
             FROM geofence_outbox o JOIN geofence_events e ON e.vehicle_id = o.vehicle_id AND e.id = o.event_id",
            &[],
        )
        .await?;
    Ok((r.get(0), r.get(1)))
}
