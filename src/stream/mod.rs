//! The node's side of the live stream (`/v1/stream`): a tailer that reads committed geofence
//! events in stream order (`store::stream`) and hands each to every connected client, and the
//! position-stream lease that makes every node announce all positions while a client here
//! watches them.
//!
//! One tailer per node, not one per client: clients share its reads through a broadcast
//! channel, and only a client resuming from an older `Last-Event-ID` (or one that fell behind)
//! reads the table itself, until it has caught up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Notify};
use tokio_postgres::Client;

use crate::domain::geofence::event::GeofenceEvent;
use crate::shutdown::Shutdown;
use crate::store::live::Watched;
use crate::store::prepared::{Prepared, Session};
use crate::store::stream::{self, Cursor};
use crate::store::{self, geofence_state, live, StoreError};

/// How often the tailer looks even without a notification: an event held back behind an older
/// transaction becomes streamable when that one ends, which notifies nobody.
const POLL: Duration = Duration::from_millis(200);
/// Events a client may fall behind the tailer by before it re-reads them from the table.
const BROADCAST: usize = 4_096;
/// Events per read.
pub const READ: i64 = 1_000;
/// How long a position-stream lease lasts; renewed every `LEASE_EVERY`.
const LEASE_S: f64 = 5.0;
const LEASE_EVERY: Duration = Duration::from_secs(1);

pub type Item = Arc<(Cursor, GeofenceEvent)>;

pub struct Hub {
    events: broadcast::Sender<Item>,
    /// Clients streaming positions from this node now.
    position_clients: AtomicUsize,
    /// This node's lease name.
    node: String,
}

impl Hub {
    pub fn new(node: String) -> Self {
        Self {
            events: broadcast::Sender::new(BROADCAST),
            position_clients: AtomicUsize::new(0),
            node,
        }
    }

    pub fn events(&self) -> broadcast::Receiver<Item> {
        self.events.subscribe()
    }

    /// Held while a client streams positions.
    pub fn watching_positions(self: &Arc<Self>) -> PositionClient {
        self.position_clients.fetch_add(1, Ordering::AcqRel);
        PositionClient(self.clone())
    }
}

pub struct PositionClient(Arc<Hub>);

impl Drop for PositionClient {
    fn drop(&mut self) {
        self.0.position_clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs the tailer and the leases until shutdown; reconnects when the database is lost.
pub async fn run(hub: Arc<Hub>, url: String, watched: Watched, shutdown: Shutdown) {
    let wake = Arc::new(Notify::new());
    let mut cursor: Option<Cursor> = None;
    let mut lease = tokio::time::interval(LEASE_EVERY);
    lease.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let result = session(
            &hub,
            &url,
            &watched,
            &wake,
            &mut cursor,
            &mut lease,
            &shutdown,
        )
        .await;
        match result {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "event stream tailer interrupted; reconnecting"),
        }
        tokio::select! {
            _ = shutdown.triggered() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn session(
    hub: &Hub,
    url: &str,
    watched: &Watched,
    wake: &Arc<Notify>,
    cursor: &mut Option<Cursor>,
    lease: &mut tokio::time::Interval,
    shutdown: &Shutdown,
) -> Result<(), StoreError> {
    let woken = wake.clone();
    let (_listener, closed) = live::listen(url, &[geofence_state::EVENTS_CHANNEL], move |_, _| {
        woken.notify_one()
    })
    .await?;
    tokio::pin!(closed);
    let Session { client, prepared } = store::connect_session(url, None, "").await?;
    // A node starts streaming from now; a client wanting older events says so (Last-Event-ID).
    let mut at = match *cursor {
        Some(c) => c,
        None => stream::head(&client).await?,
    };
    loop {
        tail(hub, &client, &prepared, &mut at).await?;
        *cursor = Some(at);
        tokio::select! {
            _ = shutdown.triggered() => return Ok(()),
            _ = &mut closed => return Err(StoreError::Lost("event stream LISTEN connection")),
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = lease.tick() => renew(hub, &client, watched).await?,
        }
    }
}

/// Hands every newly streamable event to the clients.
async fn tail(
    hub: &Hub,
    client: &Client,
    prepared: &Prepared,
    at: &mut Cursor,
) -> Result<(), StoreError> {
    loop {
        let read = stream::events_after(client, prepared, *at, READ).await?;
        let n = read.len() as i64;
        for item in read {
            *at = item.0;
            let _ = hub.events.send(Arc::new(item));
        }
        if n < READ {
            return Ok(());
        }
    }
}

/// Holds this node's lease while it has position clients, and tells the writers whether any
/// node does.
async fn renew(hub: &Hub, client: &Client, watched: &Watched) -> Result<(), StoreError> {
    if hub.position_clients.load(Ordering::Acquire) > 0 {
        stream::hold_lease(client, &hub.node, LEASE_S).await?;
    }
    watched.set_everything(stream::anyone_streaming(client).await?);
    Ok(())
}
