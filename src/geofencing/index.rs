//! Every fence in memory, found by box: an R*-tree over the fences' bounding boxes (a fence
//! with several boxes has several entries) and a map by id for edits.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use rstar::{RTree, RTreeObject, AABB};
use uuid::Uuid;

use super::metric::margin_deg;
use super::CompiledFence;
use crate::domain::geofence::LonLatBox;
use crate::domain::LatLon;

/// What the index holds: anything with an id, boxes and an exact containment test. The
/// node's set indexes its full entries (shape, settings, row), so a query hands judging and
/// the API the entry itself: no map lookup and no reference count touched per candidate.
pub trait Indexed {
    fn id(&self) -> Uuid;
    fn bounds(&self) -> &[LonLatBox];
    fn contains(&self, p: LatLon) -> bool;
}

impl Indexed for CompiledFence {
    fn id(&self) -> Uuid {
        CompiledFence::id(self)
    }
    fn bounds(&self) -> &[LonLatBox] {
        CompiledFence::bounds(self)
    }
    fn contains(&self, p: LatLon) -> bool {
        CompiledFence::contains(self, p)
    }
}

/// One box of one fence. The slot carries the fence itself, so a query reaches the fence
/// without a map lookup per candidate.
struct Slot<T> {
    bbox: AABB<[f64; 2]>,
    fence: Arc<T>,
}

/// The same box of the same fence: how `RTree::remove` finds a slot once the envelope has
/// led it there.
impl<T: Indexed> PartialEq for Slot<T> {
    fn eq(&self, other: &Self) -> bool {
        self.fence.id() == other.fence.id() && self.bbox == other.bbox
    }
}

impl<T> RTreeObject for Slot<T> {
    type Envelope = AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        self.bbox
    }
}

fn slots<T: Indexed>(fence: &Arc<T>) -> impl Iterator<Item = Slot<T>> + '_ {
    fence.bounds().iter().map(|b| Slot {
        bbox: AABB::from_corners([b.west, b.south], [b.east, b.north]),
        fence: Arc::clone(fence),
    })
}

/// The fences, searchable by point, by neighbourhood and by hop.
///
/// Plain data, `Send + Sync`: one writer edits it (or builds a new one and swaps it in) while
/// readers share it behind a lock or a swap. Editing one fence is a few tree operations
/// (O(log n)); a full reload is a bulk load.
pub struct FenceIndex<T = CompiledFence> {
    tree: RTree<Slot<T>>,
    by_id: HashMap<Uuid, Arc<T>>,
}

impl<T> Default for FenceIndex<T> {
    fn default() -> Self {
        Self {
            tree: RTree::new(),
            by_id: HashMap::new(),
        }
    }
}

/// Readers on many tasks, one writer: the index must cross threads and be shared by reference.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<FenceIndex>();
};

impl<T: Indexed> FenceIndex<T> {
    /// Bulk-loads the tree (packed, faster to build and to query than one insert at a time).
    /// A repeated id keeps its last fence.
    pub fn from_fences(fences: impl IntoIterator<Item = Arc<T>>) -> Self {
        let by_id: HashMap<Uuid, Arc<T>> = fences.into_iter().map(|f| (f.id(), f)).collect();
        let tree = RTree::bulk_load(by_id.values().flat_map(slots).collect());
        FenceIndex { tree, by_id }
    }

    /// Adds a fence, replacing any fence with its id.
    pub fn insert(&mut self, fence: Arc<T>) {
        // The old slots go before the new ones arrive: an unchanged box would otherwise
        // match (same id, same box) and the new slot could be the one removed.
        self.remove(fence.id());
        for e in slots(&fence) {
            self.tree.insert(e);
        }
        self.by_id.insert(fence.id(), fence);
    }

    /// Removes the fence with this id; false if there was none.
    pub fn remove(&mut self, id: Uuid) -> bool {
        let Some(old) = self.by_id.remove(&id) else {
            return false;
        };
        for e in slots(&old) {
            self.tree.remove(&e);
        }
        true
    }

    pub fn get(&self, id: Uuid) -> Option<&Arc<T>> {
        self.by_id.get(&id)
    }

    /// Every fence, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<T>> {
        self.by_id.values()
    }

    /// How many fences (not boxes).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The fences containing `p` (boundary included, as PostGIS answers), sorted by id, each
    /// once.
    pub fn containing(&self, p: LatLon) -> Vec<&T> {
        let at = AABB::from_point([p.lon(), p.lat()]);
        let mut hits: Vec<&T> = self
            .tree
            .locate_in_envelope_intersecting(&at)
            .map(|e| &*e.fence)
            .collect();
        hits.sort_unstable_by_key(|f| f.id());
        hits.dedup_by_key(|f| f.id());
        hits.retain(|f| f.contains(p));
        hits
    }

    /// Adds to `out` the fences whose boxes, grown by `margin_m` metres, hold `p`, then leaves
    /// `out` sorted by id with each fence once: every fence `p` is inside of or within
    /// `margin_m` of, and some more. The growth is converted to degrees conservatively, spans
    /// every longitude near a pole, and wraps at ±180°.
    pub fn near<'a>(&'a self, p: LatLon, margin_m: f64, out: &mut Vec<&'a T>) {
        let b = [p.lon(), p.lat(), p.lon(), p.lat()];
        self.collect_around(b, margin_m, out, |e| &**e);
    }

    /// Adds to `out` the fences whose boxes meet the box of the hop `a → b` grown by
    /// `margin_m` metres, then leaves `out` sorted by id with each fence once. Adds nothing
    /// when the hop spans more than 180° of longitude.
    pub fn along<'a>(&'a self, a: LatLon, b: LatLon, margin_m: f64, out: &mut Vec<&'a T>) {
        if (a.lon() - b.lon()).abs() > 180.0 {
            return;
        }
        let (west, east) = (a.lon().min(b.lon()), a.lon().max(b.lon()));
        let (south, north) = (a.lat().min(b.lat()), a.lat().max(b.lat()));
        self.collect_around([west, south, east, north], margin_m, out, |e| &**e);
    }

    /// Fences meeting `[west, south, east, north]` grown by `margin_m`: one query box, or two
    /// when the growth runs past ±180°. Each is added as `take` makes it (a reference, or a
    /// counted one to keep).
    pub(super) fn collect_around<'a, R: Deref<Target = T>>(
        &'a self,
        b: [f64; 4],
        margin_m: f64,
        out: &mut Vec<R>,
        take: impl Fn(&'a Arc<T>) -> R,
    ) {
        let (dlon, dlat) = margin_deg(margin_m, b[1], b[3]);
        let (south, north) = ((b[1] - dlat).max(-90.0), (b[3] + dlat).min(90.0));
        let (west, east) = match dlon {
            Some(d) => (b[0] - d, b[2] + d),
            None => (-180.0, 180.0),
        };
        let mut add = |w: f64, e: f64| {
            let q = AABB::from_corners([w, south], [e, north]);
            out.extend(
                self.tree
                    .locate_in_envelope_intersecting(&q)
                    .map(|e| take(&e.fence)),
            );
        };
        add(west.max(-180.0), east.min(180.0));
        if west < -180.0 {
            add(west + 360.0, 180.0);
        }
        if east > 180.0 {
            add(-180.0, east - 360.0);
        }
        if out.len() > 1 {
            out.sort_unstable_by_key(|f| f.id());
            out.dedup_by_key(|f| f.id());
        }
    }
}
