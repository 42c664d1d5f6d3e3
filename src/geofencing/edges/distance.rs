//! Distances from a point to a fence's edges, in the local plane at the point: the least one
//! (for measuring) and whether any edge lies within a given distance (what judging asks before
//! a change of state, answered by the first edge close enough).

use geo::Coord;

use super::Edges;
use crate::geofencing::metric::{lon_delta, Scale};

/// Distances scan fences up to this many vertices whole: the outward band search meets an
/// edge once per band it spans, and on a small fence those repeats cost more than reading each
/// edge once, in order (the cheap box rejections skip most of them anyway).
const SCAN_FOR_DISTANCE_MAX: usize = 256;

impl Edges {
    /// The least distance in metres, in the local plane at `p`, from `p` to an edge, looking
    /// only at edges that could be within `reach_m`; `INFINITY` when there are none. Exact
    /// (in that plane) whenever the true least distance is within `reach_m`; otherwise some
    /// value above `reach_m`. Seam edges are skipped.
    ///
    /// A small fence is scanned whole. A large one is searched outwards from `p`'s band, and
    /// the search stops at the first band farther (vertically) than the best edge so far: a
    /// point 20 m from its fence's edge reads the bands within 20 m, not within `reach_m`.
    pub fn nearest_m(&self, p: Coord, reach_m: f64) -> f64 {
        let mut near = Nearest::new(p, reach_m);
        let offer = |near: &mut Nearest, i: u32| {
            if !self.is_seam(i) {
                near.offer(self.edge(i));
            }
        };
        if self.pts.len() <= SCAN_FOR_DISTANCE_MAX {
            self.all().for_each(|i| offer(&mut near, i));
            return near.best_m();
        }
        let home = self.band_of(p.y);
        let band_m = Scale::at(p.y).y / self.per_deg; // a band's height in metres
        for step in 0..self.bands {
            // The band `step` away on either side is at least `step − 1` band heights from p
            // (p may sit anywhere in its own band); the slack covers rounding at borders.
            if (step as f64 - 1.0) * band_m > near.limit_m() * (1.0 + 1e-9) + 1e-6 {
                break;
            }
            if let Some(k) = home.checked_sub(step) {
                self.band(k).iter().for_each(|&i| offer(&mut near, i));
            }
            if step > 0 && home + step < self.bands {
                let band = self.band(home + step);
                band.iter().for_each(|&i| offer(&mut near, i));
            }
        }
        near.best_m()
    }

    /// Whether some edge (seams aside) lies nearer than `m` metres to `p`, in the local plane at
    /// `p` — the same distance `nearest_m` measures. Judging asks only this ("at least `m` past
    /// the boundary?"), and the first edge close enough answers it; edges whose box is `m` or
    /// more away are not measured, and of a large fence only the bands within `m` are read.
    pub fn within_m(&self, p: Coord, m: f64) -> bool {
        if m <= 0.0 {
            return false;
        }
        let scale = Scale::at(p.y);
        let limit = m * (1.0 + 1e-9) + 1e-9;
        let near = |i: u32| {
            let (a, b) = self.edge(i);
            !self.is_seam(i)
                && !box_beyond(p, scale, (a, b), limit)
                && segment_distance_2(p, a, b, scale) < m * m
        };
        if self.bands == 1 {
            return self.all().any(near);
        }
        // An edge nearer than m has a point less than m / scale.y degrees of latitude from p,
        // and is filed in that point's band. (Unlike the outward search, this reads a fixed
        // range of bands once, which pays off on small banded fences too.)
        let dlat = limit / scale.y;
        let (from, to) = (self.band_of(p.y - dlat), self.band_of(p.y + dlat));
        (from..=to).any(|k| self.band(k).iter().any(|&i| near(i)))
    }

    /// Whether edge `i` lies along a 180° seam (not a boundary anyone crosses).
    fn is_seam(&self, i: u32) -> bool {
        !self.seams.is_empty() && self.seams.binary_search(&i).is_ok()
    }
}

/// Whether the edge's box lies farther than `limit` metres from `p` (vertically or
/// horizontally, the short way round 180°): then the edge does too, and is not measured.
fn box_beyond(p: Coord, scale: Scale, (a, b): (Coord, Coord), limit: f64) -> bool {
    let dy = (a.y.min(b.y) - p.y).max(p.y - a.y.max(b.y)).max(0.0);
    if dy * scale.y > limit {
        return true;
    }
    let (west, east) = (a.x.min(b.x), a.x.max(b.x));
    let gap = (west - p.x).max(p.x - east).max(0.0);
    let gap = gap.min(360.0 - (east - west) - gap);
    gap * scale.x > limit
}

/// The running minimum of a distance search, with the cheap rejections: an edge whose box is
/// farther (vertically or horizontally, in metres) than the best so far — or than the reach —
/// cannot be nearer, and is not measured.
struct Nearest {
    p: Coord,
    scale: Scale,
    reach_m: f64,
    best_2: f64,
}

impl Nearest {
    fn new(p: Coord, reach_m: f64) -> Self {
        Nearest {
            p,
            scale: Scale::at(p.y),
            reach_m,
            best_2: f64::INFINITY,
        }
    }

    /// The distance beyond which nothing matters: the best so far, or the reach.
    fn limit_m(&self) -> f64 {
        self.best_2.sqrt().min(self.reach_m)
    }

    fn offer(&mut self, (a, b): (Coord, Coord)) {
        // A hair of slack so rounding here never drops an edge at exactly the limit.
        let limit = self.limit_m() * (1.0 + 1e-9) + 1e-9;
        if !box_beyond(self.p, self.scale, (a, b), limit) {
            self.best_2 = self
                .best_2
                .min(segment_distance_2(self.p, a, b, self.scale));
        }
    }

    fn best_m(&self) -> f64 {
        self.best_2.sqrt()
    }
}

/// Squared distance in metres from `p` to the edge `a → b`, all projected into the plane at `p`.
fn segment_distance_2(p: Coord, a: Coord, b: Coord, s: Scale) -> f64 {
    let ax = lon_delta(p.x, a.x) * s.x;
    let ay = (a.y - p.y) * s.y;
    let bx = lon_delta(p.x, b.x) * s.x;
    let by = (b.y - p.y) * s.y;
    let (dx, dy) = (bx - ax, by - ay);
    let len_2 = dx * dx + dy * dy;
    let t = if len_2 > 0.0 {
        (-(ax * dx + ay * dy) / len_2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (x, y) = (ax + t * dx, ay + t * dy);
    x * x + y * y
}
