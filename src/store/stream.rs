//! What the live stream reads: committed geofence events in an order no later commit can
//! slip into, and the position-stream leases.
//!
//! Event ids come from a sequence, so a transaction can commit id 7 after id 8 is already
//! visible; a client resuming "after 8" would then never see 7. The stream instead orders by
//! `(xid, id)` — the writing transaction's id, then the event's — and only hands out events
//! whose transaction is older than every transaction still running (`pg_snapshot_xmin`): any
//! event committed later has a larger `xid`, so it sorts after everything already streamed.
//! The price is latency: an event waits for write transactions that began before its own.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::GenericClient;

use super::geofence_events::event;
use super::prepared::Prepared;
use super::StoreError;
use crate::domain::geofence::event::GeofenceEvent;

/// A position in the stream of events: `<xid>-<id>`, the SSE `id` a client sends back as
/// `Last-Event-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    pub xid: u64,
    pub id: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.xid, self.id)
    }
}

impl FromStr for Cursor {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (xid, id) = s.trim().split_once('-').ok_or(())?;
        Ok(Cursor {
            xid: xid.parse().map_err(|_| ())?,
            id: id.parse().map_err(|_| ())?,
        })
    }
}

const EVENTS_AFTER: &str = "\
SELECT id, fence_id, vehicle_id, external_id, type, ts, lon, lat, recorded_at, xid::text
FROM geofence_events
WHERE (xid, id) > ($1::text::xid8, $2) AND xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xid, id LIMIT $3";

/// Up to `limit` committed events after `after`, in stream order, none of which a later commit
/// can precede.
pub async fn events_after(
    c: &impl GenericClient,
    prepared: &Prepared,
    after: Cursor,
    limit: i64,
) -> Result<Vec<(Cursor, GeofenceEvent)>, StoreError> {
    let statement = prepared.get(c, EVENTS_AFTER).await?;
    let rows = c
        .query(&statement, &[&after.xid.to_string(), &after.id, &limit])
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let xid: &str = r.get(9);
            let cursor = Cursor {
                xid: xid.parse().unwrap_or(0),
                id: r.get(0),
            };
            (cursor, event(r))
        })
        .collect())
}

/// Where the stream stands now: after every event a client could be shown at this moment.
pub async fn head(c: &impl GenericClient) -> Result<Cursor, StoreError> {
    let row = c
        .query_opt(
            "SELECT xid::text, id FROM geofence_events \
             WHERE xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid DESC, id DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(row.map_or(Cursor::default(), |r| Cursor {
        xid: r.get::<_, &str>(0).parse().unwrap_or(0),
        id: r.get(1),
    }))
}

/// This node streams positions to someone until `now() + lease_s`.
pub async fn hold_lease(
    c: &impl GenericClient,
    node: &str,
    lease_s: f64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO position_streams (node, until) VALUES ($1, now() + make_interval(secs => $2)) \
         ON CONFLICT (node) DO UPDATE SET until = EXCLUDED.until",
        &[&node, &lease_s],
    )
    .await?;
    Ok(())
}

/// Whether any node streams positions now.
pub async fn anyone_streaming(c: &impl GenericClient) -> Result<bool, StoreError> {
    let row = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM position_streams WHERE until > now())",
            &[],
        )
        .await?;
    Ok(row.get(0))
}
