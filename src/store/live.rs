//! What the live index reads: positions changed since a transaction horizon, the
//! `driver_availability` view, and a LISTEN connection that hears changes made by any node.

use std::future::Future;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, Client, Config, GenericClient, NoTls};
use uuid::Uuid;

use super::StoreError;

/// The oldest transaction still running now. Every row committed after this call was written
/// by a transaction at or after it, so polling `changed_xid >= horizon` next time misses none.
pub async fn horizon(client: &impl GenericClient) -> Result<i64, StoreError> {
    let row = client
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

pub struct PositionRow {
    pub vehicle_id: Uuid,
    pub lat: f64,
    pub lon: f64,
    pub ts: DateTime<Utc>,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
}

/// Latest positions written by transactions at or after `horizon` (index on `changed_xid`).
pub async fn positions_since(
    client: &impl GenericClient,
    horizon: i64,
) -> Result<Vec<PositionRow>, StoreError> {
    let rows = client
        .query(
            "SELECT vehicle_id, ST_Y(location), ST_X(location), ts, speed_kmh, heading_deg \
             FROM vehicle_positions WHERE changed_xid >= $1::bigint::text::xid8",
            &[&horizon],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| PositionRow {
            vehicle_id: r.get(0),
            lat: r.get(1),
            lon: r.get(2),
            ts: r.get(3),
            speed_kmh: r.get(4),
            heading_deg: r.get(5),
        })
        .collect())
}

pub struct AvailableShift {
    pub driver_id: Uuid,
    pub vehicle_id: Uuid,
    pub external_id: String,
    pub vehicle_type: Option<String>,
    pub starts: DateTime<Utc>,
    /// `None`: open-ended.
    pub ends: Option<DateTime<Utc>>,
}

/// Every not-yet-ended shift of an available driver on an active vehicle.
pub async fn available_shifts(
    client: &impl GenericClient,
) -> Result<Vec<AvailableShift>, StoreError> {
    let rows = client
        .query(
            "SELECT driver_id, vehicle_id, external_id, vehicle_type, lower(during), upper(during) \
             FROM driver_availability",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AvailableShift {
            driver_id: r.get(0),
            vehicle_id: r.get(1),
            external_id: r.get(2),
            vehicle_type: r.get(3),
            starts: r.get(4),
            ends: r.get(5),
        })
        .collect())
}

pub const AVAILABILITY_CHANNEL: &str = "meridian_availability";
pub const API_KEYS_CHANNEL: &str = "meridian_api_keys";

/// A connection listening on both channels. `on_notify` gets each notification's channel;
/// the returned future ends when the connection does (the caller then reconnects and, since
/// notifications sent meanwhile are lost, reloads everything).
pub async fn listen(
    url: &str,
    on_notify: impl Fn(&str) + Send + 'static,
) -> Result<(Client, impl Future<Output = ()>), StoreError> {
    let config = Config::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
    let (client, mut connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        let mut messages =
            futures_util::stream::poll_fn(move |cx| connection.poll_message(cx)).boxed();
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => on_notify(n.channel()),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "listen connection lost");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!(
            "LISTEN {AVAILABILITY_CHANNEL}; LISTEN {API_KEYS_CHANNEL}"
        ))
        .await?;
    let closed = async move {
        let _ = driver.await;
    };
    Ok((client, closed))
}
