//! Keeps a node's fences current: a full load at start (and after any lost connection), then
//! each fence the `geofences` trigger names as it commits, on any node or by hand in psql.
//! A heartbeat on the listening connection dates the set (`Geofences::current`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::shared::Geofences;
use crate::domain::Timestamp;
use crate::shutdown::Shutdown;
use crate::store::{self, geofences, live, StoreError};

pub const CHANNEL: &str = "meridian_geofences";
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Changed fences waiting for the feed; past this it reloads them all instead.
const QUEUE: usize = 1_024;
/// More changed fences than this at once are read by a full load instead.
const BULK: usize = 256;
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

pub fn spawn(
    fences: Arc<Geofences>,
    url: String,
    refresh: Duration,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match session(&fences, &url, refresh, &shutdown).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "geofence feed interrupted; reconnecting"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.triggered() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

/// What a notification asks for.
enum Change {
    One(Uuid),
    All,
}

async fn session(
    fences: &Geofences,
    url: &str,
    refresh: Duration,
    shutdown: &Shutdown,
) -> Result<(), StoreError> {
    let (tx, mut rx) = mpsc::channel::<Change>(QUEUE);
    let overflowed = Arc::new(AtomicBool::new(false));
    let overflow = overflowed.clone();
    let (listener, closed) = live::listen(url, &[CHANNEL], move |_, payload| {
        let change = Uuid::try_parse(payload).map_or(Change::All, Change::One);
        if tx.try_send(change).is_err() {
            overflow.store(true, Ordering::Release);
        }
    })
    .await?;
    // Listening from here: every change committed later is heard, everything before is read.
    let client = store::connect(url).await?;
    let started = Timestamp::now();
    fences.replace_all(geofences::load(&client, None).await?);
    fences.mark_current(started);

    tokio::pin!(closed);
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.triggered() => return Ok(()),
            _ = &mut closed => return Err(StoreError::Lost("geofence LISTEN connection")),
            Some(change) = rx.recv() => {
                let mut all = matches!(change, Change::All);
                let mut ids = Vec::new();
                if let Change::One(id) = change {
                    ids.push(id);
                }
                while let Ok(more) = rx.try_recv() {
                    match more {
                        Change::One(id) => ids.push(id),
                        Change::All => all = true,
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                // A bulk change (an import by SQL) is cheaper read whole than fence by fence.
                if all || ids.len() > BULK || overflowed.swap(false, Ordering::AcqRel) {
                    fences.replace_all(geofences::load(&client, None).await?);
                } else {
                    let mut found = geofences::load(&client, Some(&ids)).await?;
                    for id in ids {
                        let at = found.iter().position(|l| l.row.id == id);
                        fences.apply(id, at.map(|i| found.swap_remove(i)));
                    }
                }
            }
            _ = tick.tick() => {
                // When the round trip returns, every change committed before it started has
                // been heard; once the queue is served the set is current as of `started`.
                let started = Timestamp::now();
                tokio::time::timeout(HEARTBEAT_TIMEOUT, listener.simple_query("SELECT 1"))
                    .await
                    .map_err(|_| StoreError::Timeout(HEARTBEAT_TIMEOUT))??;
                if overflowed.swap(false, Ordering::AcqRel) {
                    fences.replace_all(geofences::load(&client, None).await?);
                } else if !rx.is_empty() {
                    continue; // served next turn, then dated
                }
                fences.mark_current(started);
            }
        }
    }
}
