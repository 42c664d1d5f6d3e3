//! Every fence in memory, found by box: an R*-tree over the fences' bounding boxes (a fence
//! with several boxes has several entries) and a map by id for edits.

use std::collections::HashMap;
use std::sync::Arc;

use rstar::{RTree, RTreeObject, AABB};
use uuid::Uuid;

use super::metric::margin_deg;
use super::CompiledFence;
use crate::domain::LatLon;

/// One box of one fence. The entry carries the fence itself, so a query reaches the fence
/// without a map lookup per candidate.
#[derive(Debug, Clone)]
struct Entry {
    bbox: AABB<[f64; 2]>,
    fence: Arc<CompiledFence>,
}

/// The same box of the same fence: how `RTree::remove` finds an entry once the envelope has
/// led it there.
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.fence.id() == other.fence.id() && self.bbox == other.bbox
    }
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        self.bbox
    }
}

fn entries(fence: &Arc<CompiledFence>) -> impl Iterator<Item = Entry> + '_ {
    fence.bounds().iter().map(|b| Entry {
        bbox: AABB::from_corners([b.west, b.south], [b.east, b.north]),
        fence: Arc::clone(fence),
    })
}

/// The fences, searchable by point, by neighbourhood and by hop.
///
/// Plain data, `Send + Sync`: one writer edits it (or builds a new one and swaps it in) while
/// readers share it behind a lock or a swap. Editing one fence is a few tree operations
/// (O(log n)); a full reload is a bulk load.
#[derive(Debug, Default)]
pub struct FenceIndex {
    tree: RTree<Entry>,
    by_id: HashMap<Uuid, Arc<CompiledFence>>,
}

/// Readers on many tasks, one writer: the index must cross threads and be shared by reference.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<FenceIndex>();
};

impl FenceIndex {
    /// Bulk-loads the tree (packed, faster to build and to query than one insert at a time).
    /// A repeated id keeps its last fence.
    pub fn from_fences(fences: impl IntoIterator<Item = Arc<CompiledFence>>) -> Self {
        let by_id: HashMap<Uuid, Arc<CompiledFence>> =
            fences.into_iter().map(|f| (f.id(), f)).collect();
        let tree = RTree::bulk_load(by_id.values().flat_map(entries).collect());
        FenceIndex { tree, by_id }
    }

    /// Adds a fence, replacing any fence with its id.
    pub fn insert(&mut self, fence: Arc<CompiledFence>) {
        // The old entries go before the new ones arrive: an unchanged box would otherwise
        // match (same id, same box) and the new entry could be the one removed.
        self.remove(fence.id());
        for e in entries(&fence) {
            self.tree.insert(e);
        }
        self.by_id.insert(fence.id(), fence);
    }

    /// Removes the fence with this id; false if there was none.
    pub fn remove(&mut self, id: Uuid) -> bool {
        let Some(old) = self.by_id.remove(&id) else {
            return false;
        };
        for e in entries(&old) {
            self.tree.remove(&e);
        }
        true
    }

    pub fn get(&self, id: Uuid) -> Option<&Arc<CompiledFence>> {
        self.by_id.get(&id)
    }

    /// How many fences (not boxes).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Ids of the fences containing `p` (boundary included, as PostGIS answers), sorted, each
    /// once.
    pub fn containing(&self, p: LatLon) -> Vec<Uuid> {
        let at = AABB::from_point([p.lon(), p.lat()]);
        let mut hits: Vec<&Arc<CompiledFence>> = self
            .tree
            .locate_in_envelope_intersecting(&at)
            .map(|e| &e.fence)
            .collect();
        hits.sort_unstable_by_key(|f| f.id());
        hits.dedup_by_key(|f| f.id());
        hits.retain(|f| f.contains(p));
        hits.into_iter().map(|f| f.id()).collect()
    }

    /// Replaces `out` with the fences whose boxes, grown by `margin_m` metres, hold `p`
    /// (sorted by id, each once): every fence `p` is inside of or within `margin_m` of, and
    /// some more. The growth is converted to degrees conservatively, spans every longitude
    /// near a pole, and wraps at ±180°.
    pub fn near(&self, p: LatLon, margin_m: f64, out: &mut Vec<Arc<CompiledFence>>) {
        out.clear();
        let b = [p.lon(), p.lat(), p.lon(), p.lat()];
        self.collect_around(b, margin_m, out);
    }

    /// Replaces `out` with the fences whose boxes meet the box of the hop `a → b` grown by
    /// `margin_m` metres (sorted by id, each once). Nothing when the hop spans more than 180° of
    /// longitude.
    pub fn along(&self, a: LatLon, b: LatLon, margin_m: f64, out: &mut Vec<Arc<CompiledFence>>) {
        out.clear();
        if (a.lon() - b.lon()).abs() > 180.0 {
            return;
        }
        let (west, east) = (a.lon().min(b.lon()), a.lon().max(b.lon()));
        let (south, north) = (a.lat().min(b.lat()), a.lat().max(b.lat()));
        self.collect_around([west, south, east, north], margin_m, out);
    }

    /// Fences meeting `[west, south, east, north]` grown by `margin_m`: one query box, or two
    /// when the growth runs past ±180°.
    fn collect_around(&self, b: [f64; 4], margin_m: f64, out: &mut Vec<Arc<CompiledFence>>) {
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
                    .map(|e| Arc::clone(&e.fence)),
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
