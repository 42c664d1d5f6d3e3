//! One vehicle's fixes in a batch lie close together (ten fixes a second apart span ~100 m),
//! and its next batch lies next to them: the fences around a vehicle are found in the tree
//! once and kept (its `Neighbourhood`), reaching `REACH_M` past its fixes, and each fix picks
//! its own from that pool by box: what the tree would have answered (for `near`, with a margin
//! at most a fraction of a percent wider; judging asks every candidate exactly). The tree is
//! walked again when the vehicle's fixes leave what the pool covers or the fences changed.
//! At ten fixes a batch this spares the walk for most batches (a cold walk was ~1.5 µs, a
//! sixth of what fences cost ingest per vehicle); at one fix, for most of them.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use super::index::Indexed;
use super::metric::margin_deg;
use super::{Entry, Fenced, Set};
use crate::domain::geofence::judge::Fences;
use crate::domain::LatLon;

/// Fixes spread wider than this (degrees, ~5 km) are not pooled: the pool would hold fences
/// that most fixes are nowhere near.
const MAX_SPAN_DEG: f64 = 0.05;

/// How far past a vehicle's fixes (beyond the largest hysteresis) its pool reaches: a few
/// batches further at city speeds, for a dozen fences more per pool to look through.
const REACH_M: f64 = 250.0;

/// Beyond this many vehicles the neighbourhoods are dropped and refilled as vehicles come. An
/// entry is ~150 bytes plus 40 per fence box in it: ~600 bytes in the benchmark's city (11 boxes
/// each; `benches/fences.rs` prints it), so at most ~120 MB.
const MAX_VEHICLES: usize = 200_000;

/// `[west, south, east, north]`, closed.
type Area = [f64; 4];

/// The fences around one vehicle's last fixes, as of one version of the set.
#[derive(Default)]
pub struct Neighbourhood {
    /// The set's version the pool was taken from (`Set::generation`).
    generation: u64,
    /// What the pool covers: any fence with a box meeting it is in `pool`. `None`: nothing.
    cover: Option<Area>,
    /// The pool: each box of each fence, with its fence, side by side (one allocation, exactly
    /// sized: it is kept per vehicle), so a fix's query scans boxes without reaching into a
    /// fence whose box it does not meet.
    pool: Box<[(Area, Entry)]>,
    /// The largest hysteresis in degrees (`margin_deg` at the cover's most poleward latitude,
    /// so enough anywhere in it): a fix's neighbourhood without a cosine per fix.
    near_deg: NearDeg,
}

/// `(metres, dlon, dlat)`.
type NearDeg = (f64, f64, f64);

/// Every vehicle's neighbourhood on this node, between batches.
#[derive(Default)]
pub struct Neighbourhoods {
    kept: Mutex<Kept>,
}

/// The neighbourhoods taken from the set's latest generation seen; older ones are dropped as
/// soon as a newer one is seen (they would be walked again anyway, and they hold on to
/// fences as they were: an idle vehicle must not keep an edited 100,000-vertex fence alive).
#[derive(Default)]
struct Kept {
    generation: u64,
    /// Boxed, so taking one out and putting it back moves a pointer.
    vehicles: HashMap<Uuid, Box<Neighbourhood>>,
}

/// Neighbourhoods taken out for a batch, in the order of the vehicles asked for.
pub type Taken = Vec<(Uuid, Box<Neighbourhood>)>;

impl Neighbourhoods {
    /// Takes the neighbourhoods of `vehicles` out for a batch's judging (a vehicle in two
    /// batches at once finds none in the second, which walks the tree).
    pub fn take(&self, vehicles: impl IntoIterator<Item = Uuid>) -> Taken {
        let mut kept = self.kept.lock().expect("neighbourhoods lock");
        vehicles
            .into_iter()
            .map(|v| (v, kept.vehicles.remove(&v).unwrap_or_default()))
            .collect()
    }

    /// Puts back what a batch's judging left.
    pub fn put_back(&self, taken: Taken) {
        let mut kept = self.kept.lock().expect("neighbourhoods lock");
        let newest = taken
            .iter()
            .filter(|(_, n)| n.cover.is_some())
            .map(|(_, n)| n.generation)
            .max();
        if newest.is_some_and(|g| g > kept.generation) {
            kept.generation = newest.unwrap_or_default();
            kept.vehicles.clear();
        }
        if kept.vehicles.len() + taken.len() > MAX_VEHICLES {
            kept.vehicles.clear();
        }
        let generation = kept.generation;
        kept.vehicles.extend(
            taken
                .into_iter()
                .filter(|(_, n)| n.cover.is_some() && n.generation == generation),
        );
    }

    /// What the kept neighbourhoods hold: vehicles, fence boxes in all, and bytes (entries,
    /// their arrays and map slots; not the fences, which the set holds).
    pub fn held(&self) -> (usize, usize, usize) {
        let kept = self.kept.lock().expect("neighbourhoods lock");
        let boxes: usize = kept.vehicles.values().map(|n| n.pool.len()).sum();
        let slot = size_of::<(Uuid, Box<Neighbourhood>)>() + 1;
        let entries = kept.vehicles.len() * size_of::<Neighbourhood>();
        let bytes = kept.vehicles.capacity() * slot + entries + boxes * size_of::<(Area, Entry)>();
        (kept.vehicles.len(), boxes, bytes)
    }
}

/// The set, as seen from one vehicle's fixes (`Neighbourhood::around`).
pub struct Pooled<'s> {
    set: &'s Set,
    cover: Option<Area>,
    pool: &'s [(Area, Entry)],
    near_deg: NearDeg,
}

impl Neighbourhood {
    /// The set as seen from `positions`: from the pool already held if it covers them (with
    /// the largest hysteresis around each) and the set has not changed since; otherwise from
    /// one tree walk, which the neighbourhood then holds.
    pub fn around<'s>(
        &'s mut self,
        set: &'s Set,
        positions: impl IntoIterator<Item = LatLon>,
    ) -> Pooled<'s> {
        let cover = self.cover(set, positions);
        Pooled {
            set,
            cover,
            pool: if cover.is_some() { &self.pool } else { &[] },
            near_deg: self.near_deg,
        }
    }

    fn cover(&mut self, set: &Set, positions: impl IntoIterator<Item = LatLon>) -> Option<Area> {
        let mut span: Option<Area> = None;
        for p in positions {
            let (x, y) = (p.lon(), p.lat());
            span = Some(match span {
                None => [x, y, x, y],
                Some([w, s, e, n]) => [w.min(x), s.min(y), e.max(x), n.max(y)],
            });
        }
        let b @ [w, s, e, n] = span?;
        if e - w > MAX_SPAN_DEG || n - s > MAX_SPAN_DEG {
            return None;
        }
        let margin = set.max_hysteresis_m();
        let need = grown(b, margin)?;
        if let Some(c) = self.cover {
            if self.generation == set.generation() && within(need, c) {
                return Some(c);
            }
        }
        // Across ±180° (or near a pole) the tree is asked directly; such a neighbourhood is
        // left to it.
        let cover = grown(b, margin + REACH_M)?;
        let (Some(dlon), dlat) = margin_deg(margin, cover[1], cover[3]) else {
            return None;
        };
        let mut found: Vec<Entry> = Vec::new();
        set.index
            .collect_around(b, margin + REACH_M, &mut found, Entry::clone);
        self.pool = found
            .iter()
            .flat_map(|f| {
                let boxes = f.bounds().iter();
                boxes.map(|b| ([b.west, b.south, b.east, b.north], Entry::clone(f)))
            })
            .collect();
        self.near_deg = (margin, dlon, dlat);
        self.generation = set.generation();
        self.cover = Some(cover);
        self.cover
    }
}

/// `b` grown by `m` metres, if that stays within ±180° and short of the poles.
fn grown(b: Area, m: f64) -> Option<Area> {
    let [w, s, e, n] = b;
    let (Some(dlon), dlat) = margin_deg(m, s, n) else {
        return None;
    };
    let g = [w - dlon, s - dlat, e + dlon, n + dlat];
    let inside = g[0] >= -180.0 && g[2] <= 180.0 && g[1] >= -90.0 && g[3] <= 90.0;
    inside.then_some(g)
}

/// Whether `q` lies within `c`.
fn within(q: Area, c: Area) -> bool {
    q[0] >= c[0] && q[1] >= c[1] && q[2] <= c[2] && q[3] <= c[3]
}

impl Pooled<'_> {
    /// The pool's fences with a box meeting `q`, if the pool covers `q`.
    fn answer(&self, q: Area) -> Option<impl Iterator<Item = &Fenced> + '_> {
        let c = self.cover?;
        // A fence with several boxes meeting `q` comes out once per box (judging dedups).
        within(q, c).then(|| {
            self.pool
                .iter()
                .filter(move |(b, _)| meets(b, q))
                .map(|(_, f)| &**f)
        })
    }
}

/// Closed boxes meet, as the tree's `locate_in_envelope_intersecting` counts it.
fn meets(b: &Area, q: Area) -> bool {
    b[0] <= q[2] && b[2] >= q[0] && b[1] <= q[3] && b[3] >= q[1]
}

impl<'p> Fences for Pooled<'p> {
    type Fence = Fenced;

    fn near<'s>(&'s self, p: LatLon, margin_m: f64, out: &mut Vec<&'s Fenced>) {
        let (x, y) = (p.lon(), p.lat());
        let (m, dlon, dlat) = self.near_deg;
        let deg = if m == margin_m {
            (Some(dlon), dlat)
        } else {
            margin_deg(margin_m, y, y)
        };
        if let (Some(dlon), dlat) = deg {
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
