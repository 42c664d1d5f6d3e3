//! A node's fences in memory, shared by the ingest writers (judging), the API (`contains`,
//! fence vehicles) and the feed that keeps them current. Each entry holds the compiled shape,
//! the event settings and the row as the API shows it, so answering `contains` needs no
//! database at all.
//!
//! One `RwLock`: readers (a batch's judging, a query) hold it for microseconds to a few
//! milliseconds; a fence change takes the write lock for one insert into the tree. Until the
//! first full load the set is `loaded == false`, and ingest waits rather than judge points
//! against no fences (which would miss their events for good).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use super::index::Indexed;
use super::{CompiledFence, FenceIndex};
use crate::domain::geofence::judge::{Fences, Judged};
use crate::domain::geofence::{EventSettings, LonLatBox};
use crate::domain::{LatLon, Timestamp};
use crate::observability;
use crate::store::geofences::{Geofence, Loaded};

/// Past this without hearing from the database, the set is not trusted to answer queries (the
/// API falls back to PostGIS); judging goes on, since a fence changed meanwhile is the lesser
/// harm next to stalling ingest.
pub const MAX_STALENESS: Duration = Duration::from_secs(5);

/// One fence: what judging, `contains` and the API need of it. The index holds it by `Arc`
/// and queries hand out references, so a candidate costs judging nothing to take.
pub type Entry = Arc<Fenced>;

pub struct Fenced {
    pub fence: CompiledFence,
    pub row: Geofence,
    pub settings: EventSettings,
    extent_m: f64,
}

impl Fenced {
    pub fn new(loaded: Loaded) -> Entry {
        let fence = CompiledFence::new(loaded.row.id, loaded.fence.shape());
        let extent_m = extent_m(fence.bounds());
        Arc::new(Fenced {
            settings: *loaded.fence.settings(),
            row: loaded.row,
            fence,
            extent_m,
        })
    }
}

/// The smaller side, in metres, of the fence's smallest box: a fence's size for "too small to
/// be 30 m inside".
fn extent_m(bounds: &[LonLatBox]) -> f64 {
    bounds
        .iter()
        .map(|b| {
            let mid = ((b.south + b.north) / 2.0).to_radians();
            let wide = (b.east - b.west) * mid.cos() * 111_320.0;
            let high = (b.north - b.south) * 110_574.0;
            wide.min(high)
        })
        .fold(f64::INFINITY, f64::min)
}

impl Indexed for Fenced {
    fn id(&self) -> Uuid {
        self.fence.id()
    }
    fn bounds(&self) -> &[LonLatBox] {
        self.fence.bounds()
    }
    fn contains(&self, p: LatLon) -> bool {
        self.fence.contains(p)
    }
}

impl Judged for Fenced {
    fn id(&self) -> Uuid {
        self.fence.id()
    }
    fn settings(&self) -> &EventSettings {
        &self.settings
    }
    fn contains(&self, p: LatLon) -> bool {
        self.fence.contains(p)
    }
    fn clear_of_boundary(&self, p: LatLon, m: f64) -> bool {
        self.fence.clear_of_boundary(p, m)
    }
    fn chord_inside_m(&self, a: LatLon, b: LatLon) -> f64 {
        self.fence.chord_inside_m(a, b)
    }
    fn extent_m(&self) -> f64 {
        self.extent_m
    }
}

#[derive(Default)]
pub struct Set {
    pub(super) index: FenceIndex<Fenced>,
    max_hysteresis_m: f64,
    min_cross_m: f64,
    /// Counts the set's changes: what a vehicle's neighbourhood was taken from is still the
    /// set only while this is unchanged.
    generation: u64,
}

impl Set {
    /// After every change: the derived bounds, and a new generation.
    fn settle(&mut self) {
        self.generation += 1;
        self.max_hysteresis_m = self
            .index
            .iter()
            .map(|e| e.settings.hysteresis_m)
            .fold(0.0, f64::max);
        self.min_cross_m = self
            .index
            .iter()
            .map(|e| e.settings.hysteresis_m.min(e.extent_m / 2.0).max(0.0))
            .fold(f64::INFINITY, f64::min);
        observability::geofences_loaded(self.index.len());
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn get(&self, id: Uuid) -> Option<&Entry> {
        self.index.get(id)
    }

    /// The fences holding `p` (boundary included), by id.
    pub fn containing(&self, p: LatLon) -> Vec<&Fenced> {
        self.index.containing(p)
    }
}

impl Fences for Set {
    type Fence = Fenced;

    fn near<'s>(&'s self, p: LatLon, margin_m: f64, out: &mut Vec<&'s Fenced>) {
        self.index.near(p, margin_m, out);
    }

    fn along<'s>(&'s self, a: LatLon, b: LatLon, out: &mut Vec<&'s Fenced>) {
        self.index.along(a, b, 0.0, out);
    }

    fn get(&self, id: Uuid) -> Option<&Fenced> {
        self.index.get(id).map(|e| &**e)
    }

    fn max_hysteresis_m(&self) -> f64 {
        self.max_hysteresis_m
    }

    fn min_cross_m(&self) -> f64 {
        self.min_cross_m
    }
}

pub struct Geofences {
    set: RwLock<Set>,
    loaded: watch::Sender<bool>,
    /// When the set was last known to match the database (unix µs); 0 before the first load.
    as_of_us: AtomicI64,
}

impl Default for Geofences {
    fn default() -> Self {
        Self {
            set: RwLock::default(),
            loaded: watch::Sender::new(false),
            as_of_us: AtomicI64::new(0),
        }
    }
}

impl Geofences {
    pub fn read(&self) -> RwLockReadGuard<'_, Set> {
        self.set.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The set, if it is current enough to answer a query in place of PostGIS.
    pub fn current(&self) -> Option<RwLockReadGuard<'_, Set>> {
        let us = self.as_of_us.load(Ordering::Acquire);
        let fresh = us != 0
            && Timestamp::from_unix_micros(us).secs_until(Timestamp::now())
                <= MAX_STALENESS.as_secs_f64();
        fresh.then(|| self.read())
    }

    pub fn is_loaded(&self) -> bool {
        *self.loaded.borrow()
    }

    /// Returns once the first full load is in.
    pub async fn loaded(&self) {
        let mut rx = self.loaded.subscribe();
        let _ = rx.wait_for(|l| *l).await;
    }

    /// A full load: replaces everything.
    pub fn replace_all(&self, loaded: Vec<Loaded>) {
        let index = FenceIndex::from_fences(loaded.into_iter().map(Fenced::new));
        let mut set = Set {
            index,
            max_hysteresis_m: 0.0,
            min_cross_m: 0.0,
            generation: 0,
        };
        set.settle();
        // Built and settled outside the lock; only its generation follows the old set's.
        let mut guard = self.write();
        set.generation = guard.generation + 1;
        let old = std::mem::replace(&mut *guard, set);
        drop(guard);
        drop(old);
        self.loaded.send_replace(true);
    }

    /// One fence as committed (a create or replace), or its absence (a delete).
    pub fn apply(&self, id: Uuid, loaded: Option<Loaded>) {
        let entry = loaded.map(Fenced::new);
        let mut set = self.write();
        match entry {
            Some(e) => set.index.insert(e),
            None => {
                set.index.remove(id);
            }
        }
        set.settle();
    }

    pub fn mark_current(&self, as_of: Timestamp) {
        self.as_of_us.store(as_of.unix_micros(), Ordering::Release);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Set> {
        self.set.write().unwrap_or_else(|p| p.into_inner())
    }
}
