//! One vehicle's fixes in a batch lie close together (ten fixes a second apart span ~100 m):
//! the fences near all of them are found in the tree once, and each fix picks its own from
//! that pool by box, which is what the tree would have answered. At one fix per vehicle per
//! batch this changes nothing; at ten it spares nine tree walks of ten.

use uuid::Uuid;

use super::index::Indexed;
use super::metric::margin_deg;
use super::{Fenced, Set};
use crate::domain::geofence::judge::Fences;
use crate::domain::geofence::LonLatBox;
use crate::domain::LatLon;

/// Fixes spread wider than this (degrees, ~5 km) are not pooled: the pool would hold fences
/// that most fixes are nowhere near.
const MAX_SPAN_DEG: f64 = 0.05;

/// `[west, south, east, north]`, closed.
type Area = [f64; 4];

/// The set, as seen from one vehicle's fixes (`Set::pooled`).
pub struct Pooled<'s> {
    set: &'s Set,
    /// What the pool covers: any fence with a box meeting it is in `pool`.
    cover: Option<Area>,
    /// Sorted by id, each once.
    pool: Vec<&'s Fenced>,
}

impl Set {
    /// The fences around `positions`, for judging a vehicle's fixes: queries whose box lies
    /// within the fixes' box grown by the largest hysteresis are answered from one tree walk.
    pub fn pooled(&self, positions: impl IntoIterator<Item = LatLon>) -> Pooled<'_> {
        let mut span: Option<Area> = None;
        for p in positions {
            let (x, y) = (p.lon(), p.lat());
            span = Some(match span {
                None => [x, y, x, y],
                Some([w, s, e, n]) => [w.min(x), s.min(y), e.max(x), n.max(y)],
            });
        }
        let mut pooled = Pooled {
            set: self,
            cover: None,
            pool: Vec::new(),
        };
        let Some(b @ [w, s, e, n]) = span else {
            return pooled;
        };
        if e - w > MAX_SPAN_DEG || n - s > MAX_SPAN_DEG {
            return pooled;
        }
        let margin = self.max_hysteresis_m();
        let (Some(dlon), dlat) = margin_deg(margin, s, n) else {
            return pooled;
        };
        let cover = [w - dlon, s - dlat, e + dlon, n + dlat];
        // Across ±180° the tree is asked twice; such a neighbourhood is left to it.
        if cover[0] < -180.0 || cover[2] > 180.0 || cover[1] < -90.0 || cover[3] > 90.0 {
            return pooled;
        }
        self.index.collect_around(b, margin, &mut pooled.pool);
        pooled.cover = Some(cover);
        pooled
    }
}

impl Pooled<'_> {
    /// The pool's fences with a box meeting `q`, if the pool covers `q`.
    fn answer(&self, q: Area) -> Option<impl Iterator<Item = &Fenced> + '_> {
        let c = self.cover?;
        let covered = q[0] >= c[0] && q[1] >= c[1] && q[2] <= c[2] && q[3] <= c[3];
        covered.then(|| {
            self.pool
                .iter()
                .copied()
                .filter(move |f| f.bounds().iter().any(|b| meets(b, q)))
        })
    }
}

/// Closed boxes meet, as the tree's `locate_in_envelope_intersecting` counts it.
fn meets(b: &LonLatBox, q: Area) -> bool {
    b.west <= q[2] && b.east >= q[0] && b.south <= q[3] && b.north >= q[1]
}

impl<'p> Fences for Pooled<'p> {
    type Fence = Fenced;

    fn near<'s>(&'s self, p: LatLon, margin_m: f64, out: &mut Vec<&'s Fenced>) {
        let (x, y) = (p.lon(), p.lat());
        if let (Some(dlon), dlat) = margin_deg(margin_m, y, y) {
            if let Some(found) = self.answer([x - dlon, y - dlat, x + dlon, y + dlat]) {
                return out.extend(found);
            }
        }
        self.set.near(p, margin_m, out)
    }

    fn along<'s>(&'s self, a: LatLon, b: LatLon, out: &mut Vec<&'s Fenced>) {
        let q = [
            a.lon().min(b.lon()),
            a.lat().min(b.lat()),
            a.lon().max(b.lon()),
            a.lat().max(b.lat()),
        ];
        match self.answer(q) {
            Some(found) => out.extend(found),
            None => self.set.along(a, b, out),
        }
    }

    fn get(&self, id: Uuid) -> Option<&Fenced> {
        Fences::get(self.set, id)
    }

    fn max_hysteresis_m(&self) -> f64 {
        self.set.max_hysteresis_m()
    }

    fn min_cross_m(&self) -> f64 {
        self.set.min_cross_m()
    }
}

#[cfg(test)]
#[path = "pooled_tests.rs"]
mod tests;
