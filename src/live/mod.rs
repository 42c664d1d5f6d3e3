//! Each node's in-memory read model for the questions that must be answered in microseconds:
//! nearest available drivers, and API keys. Loaded from PostGIS at start, then kept current
//! in place by LISTEN/NOTIFY: positions as every node's ingest commits them, the drivers and
//! vehicles a dispatch or a maintenance record changed, and (rarely) a full reload when the
//! admin tables change — so every node converges on the database's truth within one refresh
//! interval, and the node that made a change sees it before it answers.

mod feed;
pub mod geodesy;
pub mod keys;
pub mod nearest;
mod requests;
mod state;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use std::sync::Arc;

use tokio::sync::{broadcast, watch, Notify};
use uuid::Uuid;

pub use feed::spawn;
use keys::KeyCache;
use nearest::{Hit, Index, NearestQuery};
use requests::{Requests, Work};

use crate::domain::Timestamp;
pub use crate::store::live::{PositionRow, Watched};

/// Past this, the index is not trusted to answer (its feed has lost the database): a
/// nearest-driver query answers 503 rather than a possibly wrong list.
pub const MAX_STALENESS: Duration = Duration::from_secs(5);

/// How long a writer waits for its own change to show in the index before answering anyway.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(2);

pub struct Live {
    pub keys: KeyCache,
    pub watched: Watched,
    /// Changed in place by the feed task, one write lock per batch of changes; readers hold
    /// the read lock only for a search (microseconds) and copy their hits out. A `RwLock`
    /// rather than swapping immutable snapshots: an update is a few tree edits, where a new
    /// snapshot meant rebuilding all 20k candidates.
    index: RwLock<Index>,
    /// When the data in `index` was last known current (unix µs); 0 until the first load.
    as_of_us: AtomicI64,
    /// What the feed task has been asked to re-read, by handlers and by notifications.
    requests: Mutex<Requests>,
    wake: Notify,
    /// The newest request generation the index reflects.
    done: watch::Sender<u64>,
    /// Bumped whenever a candidate may have joined (see `availability_grew`).
    grew: watch::Sender<u64>,
    full_reloads: AtomicU64,
    refreshes: AtomicU64,
    /// Every position this node hears, for the live stream (`/v1/stream?positions=true`).
    /// Bounded: a stream that falls further behind than this skips ahead (positions are a
    /// snapshot, not a log).
    positions_out: broadcast::Sender<Arc<Vec<PositionRow>>>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            keys: KeyCache::default(),
            watched: Watched::default(),
            index: RwLock::default(),
            as_of_us: AtomicI64::new(0),
            requests: Mutex::default(),
            wake: Notify::new(),
            done: watch::Sender::new(0),
            grew: watch::Sender::new(0),
            full_reloads: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            positions_out: broadcast::Sender::new(POSITIONS_OUT),
        }
    }
}

/// Notification payloads (≈95 positions each) a position stream may fall behind by.
const POSITIONS_OUT: usize = 1_024;

impl Live {
    /// The positions this node hears from now on, as they are committed (every vehicle's while
    /// any node holds a position-stream lease; only the watched ones otherwise).
    pub fn positions(&self) -> broadcast::Receiver<Arc<Vec<PositionRow>>> {
        self.positions_out.subscribe()
    }

    fn heard_positions(&self, rows: &[PositionRow]) {
        if self.positions_out.receiver_count() > 0 {
            let _ = self.positions_out.send(Arc::new(rows.to_vec()));
        }
    }

    /// The `limit` nearest eligible candidates (see `Index::nearest`), copied out.
    pub fn nearest(&self, q: &NearestQuery) -> Vec<Hit> {
        self.read().nearest(q)
    }

    /// Candidates in the index (eligible now or not).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    /// once this node's index has been reloaded from a read made after the call began (the
    /// NOTIFY tells the other nodes), so a dispatcher who makes a driver available finds them
    /// on the next query.
    pub async fn availability_changed(&self) {
        let want = self.ask(|r| r.everything());
        self.caught_up(want).await;
    }

    /// Called by a handler after committing a dispatch (or its end) for these drivers:
    /// returns once this node's index reflects the database's state for them as of a read
    /// made after the call began. The feed task orders it after any reload already running,
    /// so an older read can never bring a just-dispatched driver back. Other nodes follow by
    /// the dispatch trigger's NOTIFY. Waits at most `READ_YOUR_WRITES_WAIT`.
    pub async fn drivers_changed(&self, drivers: &[Uuid]) {
        if !drivers.is_empty() {
            let want = self.ask(|r| r.drivers(drivers));
            self.caught_up(want).await;
        }
    }

    /// As `drivers_changed`, for every shift on these vehicles (maintenance opened or closed).
    pub async fn vehicles_changed(&self, vehicles: &[Uuid]) {
        if !vehicles.is_empty() {
            let want = self.ask(|r| r.vehicles(vehicles));
            self.caught_up(want).await;
        }
    }

    /// Changes whenever availability may have grown: a driver or vehicle became available
    /// again, a full reload ran, a shift in the index started, or a vehicle whose last fix was
    /// older than `GREW_AFTER_SILENCE` reported again. Await `changed()`; the value means
    /// nothing. (It may also fire when nothing grew: callers re-check the database.)
    pub fn availability_grew(&self) -> watch::Receiver<u64> {
        self.grew.subscribe()
    }

    /// Full reloads this node's index has done (at start, after a lost connection, on admin
    /// table changes); per-driver updates do not count. For tests and diagnosis.
    pub fn full_reloads(&self) -> u64 {
        self.full_reloads.load(Ordering::Acquire)
    }

    /// Per-driver (or per-vehicle) refreshes applied.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Acquire)
    }

    async fn caught_up(&self, want: u64) {
        let mut done = self.done.subscribe();
        let caught_up = done.wait_for(|done| *done >= want);
        if tokio::time::timeout(READ_YOUR_WRITES_WAIT, caught_up)
            .await
            .is_err()
        {
            tracing::warn!("live index did not catch up with a write in time");
        }
    }

    /// Records a request and wakes the feed task; returns the generation that satisfies it.
    fn ask(&self, add: impl FnOnce(&mut Requests)) -> u64 {
        let generation = {
            let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            add(&mut requests);
            requests.generation()
        };
        self.wake.notify_one();
        generation
    }

    /// Everything asked so far, for the feed task to read.
    fn take(&self) -> Work {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    async fn work_wanted(&self) {
        self.wake.notified().await
    }

    /// The index now reflects every request up to `generation`.
    fn satisfied(&self, generation: u64) {
        self.done.send_if_modified(|done| {
            let newer = generation > *done;
            if newer {
                *done = generation;
            }
            newer
        });
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Swaps in a whole new index (a full reload); the old one is dropped outside the lock.
    fn replace(&self, index: Index) {
        let old = std::mem::replace(&mut *self.write(), index);
        drop(old);
        self.full_reloads.fetch_add(1, Ordering::AcqRel);
        self.grow();
    }

    fn grow(&self) {
        self.grew.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn mark_current(&self, as_of: Timestamp) {
        self.as_of_us.store(as_of.unix_micros(), Ordering::Release);
    }
}
