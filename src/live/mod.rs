//! Each node's in-memory read model for the questions that must be answered in microseconds:
//! nearest available drivers, and API keys. Built from PostGIS at start, kept current by
//! LISTEN/NOTIFY: positions as every node's ingest commits them, and changes to what
//! availability is made of, so every node converges on the database's truth within one
//! refresh interval.

mod feed;
pub mod geodesy;
pub mod keys;
pub mod nearest;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Notify};

pub use feed::spawn;
use keys::KeyCache;
use nearest::Snapshot;

use crate::domain::Timestamp;
pub use crate::store::live::Watched;

/// Past this, the index is not trusted to answer (its feed has lost the database): a
/// nearest-driver query answers 503 rather than a possibly wrong list.
pub const MAX_STALENESS: Duration = Duration::from_secs(5);

/// How long a writer waits for its own change to show in the index before answering anyway.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(2);

pub struct Live {
    pub keys: KeyCache,
    pub watched: Watched,
    snapshot: RwLock<Arc<Snapshot>>,
    /// When the data in `snapshot` was last known current (unix µs); 0 until the first load.
    as_of_us: AtomicI64,
    requested: AtomicU64,
    wake: Notify,
    reloaded: watch::Sender<u64>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            keys: KeyCache::default(),
            watched: Watched::default(),
            snapshot: RwLock::default(),
            as_of_us: AtomicI64::new(0),
            requested: AtomicU64::new(0),
            wake: Notify::new(),
            reloaded: watch::Sender::new(0),
        }
    }
}

impl Live {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// When the index was last known to match the database, if it is loaded and that was
    /// within `MAX_STALENESS`; `None` means it must not answer.
    pub fn current_as_of(&self) -> Option<Timestamp> {
        let as_of = match self.as_of_us.load(Ordering::Acquire) {
            0 => return None,
            us => Timestamp::from_unix_micros(us),
        };
        (as_of.secs_until(Timestamp::now()) <= MAX_STALENESS.as_secs_f64()).then_some(as_of)
    }

    /// Loaded, and refreshed within `MAX_STALENESS`.
    pub fn is_current(&self) -> bool {
        self.current_as_of().is_some()
    }

    /// Called by a handler after committing a change to drivers, shifts or vehicles: returns
    /// once this node's index reflects it (the NOTIFY tells the other nodes), so a dispatcher
    /// who makes a driver available finds them on the next query.
    pub async fn availability_changed(&self) {
        let want = self.request();
        let mut reloaded = self.reloaded.subscribe();
        let caught_up = reloaded.wait_for(|done| *done >= want);
        if tokio::time::timeout(READ_YOUR_WRITES_WAIT, caught_up)
            .await
            .is_err()
        {
            tracing::warn!("live index did not catch up with a write in time");
        }
    }

    fn request(&self) -> u64 {
        let want = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.wake.notify_one();
        want
    }

    fn requested(&self) -> u64 {
        self.requested.load(Ordering::Acquire)
    }

    async fn reload_wanted(&self) {
        self.wake.notified().await
    }

    /// Swaps in a new snapshot; `reload` is the request generation it satisfies, if any.
    fn publish(&self, snapshot: Snapshot, as_of: Timestamp, reload: Option<u64>) {
        match self.snapshot.write() {
            Ok(mut s) => *s = Arc::new(snapshot),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(snapshot),
        }
        self.mark_current(as_of);
        if let Some(generation) = reload {
            self.reloaded.send_if_modified(|done| {
                let newer = generation > *done;
                if newer {
                    *done = generation;
                }
                newer
            });
        }
    }

    fn mark_current(&self, as_of: Timestamp) {
        self.as_of_us.store(as_of.unix_micros(), Ordering::Release);
    }
}
