//! The nearest-available-driver search over the live index.
//!
//! The index holds one candidate per not-yet-ended shift of an available driver whose
//! vehicle has a position. Whether the shift is active *now* and whether the position is
//! fresh enough are judged per query, so time passing needs no update. The feed changes it in
//! place: a candidate is removed and re-inserted when its vehicle moves or its driver changes.

use std::cmp::Ordering;
use std::sync::Arc;

use rstar::{PointDistance, RTree, RTreeObject, AABB};
use uuid::Uuid;

use super::geodesy;
pub use crate::store::live::Fix;

/// An available driver's not-yet-ended shift on a vehicle.
#[derive(Debug, Clone)]
pub struct Shift {
    pub shift_id: Uuid,
    pub driver_id: Uuid,
    pub vehicle_id: Uuid,
    pub external_id: Arc<str>,
    pub vehicle_type: Option<Arc<str>>,
    /// `[starts, ends)` in unix microseconds; `ends` is `i64::MAX` when open.
    pub starts_us: i64,
    pub ends_us: i64,
}

/// A shift with its vehicle's fix, placed in the index by the fix's unit normal.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub shift: Shift,
    pub fix: Fix,
    normal: [f64; 3],
}

impl Candidate {
    pub fn new(shift: Shift, fix: Fix) -> Self {
        let normal = geodesy::unit_normal(fix.lat, fix.lon);
        Self { shift, fix, normal }
    }
}

/// The same shift (the tree finds the entry by the candidate's point, then compares this): a
/// candidate is removed by rebuilding it from the shift and the fix it was inserted with.
impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.shift.shift_id == other.shift.shift_id
    }
}

impl RTreeObject for Candidate {
    type Envelope = AABB<[f64; 3]>;

    fn envelope(&self) -> Self::Envelope {
        AABB::from_point(self.normal)
    }
}

impl PointDistance for Candidate {
    fn distance_2(&self, p: &[f64; 3]) -> f64 {
        (0..3).map(|i| (self.normal[i] - p[i]).powi(2)).sum()
    }
}

/// One question; validated by the API layer.
#[derive(Debug, Clone)]
pub struct NearestQuery {
    pub lat: f64,
    pub lon: f64,
    pub limit: usize,
    pub radius_m: Option<f64>,
    pub max_age_us: i64,
    pub vehicle_type: Option<String>,
    pub now_us: i64,
}

/// An answer, copied out of the index so that the read lock is held only for the search.
#[derive(Debug, Clone)]
pub struct Hit {
    pub candidate: Candidate,
    pub distance_m: f64,
}

#[derive(Debug, Clone, Copy)]
struct Found<'a> {
    candidate: &'a Candidate,
    distance_m: f64,
}

/// Candidates in a spatial index (an R*-tree over unit normals, so chord order is great-circle
/// order everywhere, poles and antimeridian included).
#[derive(Default)]
pub struct Index {
    tree: RTree<Candidate>,
}

impl Index {
    pub fn build(candidates: Vec<Candidate>) -> Self {
        Self {
            tree: RTree::bulk_load(candidates),
        }
    }

    pub fn insert(&mut self, candidate: Candidate) {
        self.tree.insert(candidate);
    }

    /// Removes the entry for `candidate`'s shift at `candidate`'s point; false if absent.
    pub fn remove(&mut self, candidate: &Candidate) -> bool {
        self.tree.remove(candidate).is_some()
    }

    pub fn len(&self) -> usize {
        self.tree.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `limit` nearest eligible candidates by geodesic distance, nearest first (ties by
    /// driver id, so answers are deterministic).
    ///
    /// Candidates come out of the tree by increasing chord; each eligible one gets its exact
    /// distance. The walk stops once the chord's lower bound on distance exceeds the radius, or
    /// the worst distance held when `limit` are held — nothing farther can still qualify.
    pub fn nearest(&self, q: &NearestQuery) -> Vec<Hit> {
        if q.limit == 0 {
            return Vec::new();
        }
        let origin = geodesy::unit_normal(q.lat, q.lon);
        let mut best: Vec<Found<'_>> = Vec::with_capacity(q.limit + 1);
        let oldest_us = q.now_us.saturating_sub(q.max_age_us);
        for (c, chord_2) in self.tree.nearest_neighbor_iter_with_distance_2(&origin) {
            let bound = geodesy::lower_bound_m(chord_2);
            if q.radius_m.is_some_and(|r| bound > r) {
                break;
            }
            if best.len() == q.limit && bound > best[q.limit - 1].distance_m {
                break;
            }
            let eligible = c.shift.starts_us <= q.now_us
                && q.now_us < c.shift.ends_us
                && c.fix.ts_us >= oldest_us
                && q.vehicle_type
                    .as_deref()
                    .is_none_or(|t| c.shift.vehicle_type.as_deref() == Some(t));
            if !eligible {
                continue;
            }
            let distance_m = geodesy::distance_m(q.lat, q.lon, c.fix.lat, c.fix.lon);
            if q.radius_m.is_some_and(|r| distance_m > r) {
                continue;
            }
            let hit = Found {
                candidate: c,
                distance_m,
            };
            let at = best.partition_point(|h| by_distance(h, &hit) == Ordering::Less);
            if at < q.limit {
                best.insert(at, hit);
                best.truncate(q.limit);
            }
        }
        best.into_iter()
            .map(|f| Hit {
                candidate: f.candidate.clone(),
                distance_m: f.distance_m,
            })
            .collect()
    }
}

fn by_distance(a: &Found<'_>, b: &Found<'_>) -> Ordering {
    a.distance_m.total_cmp(&b.distance_m).then(
        a.candidate
            .shift
            .driver_id
            .cmp(&b.candidate.shift.driver_id),
    )
}

#[cfg(test)]
#[path = "nearest_tests.rs"]
mod tests;
