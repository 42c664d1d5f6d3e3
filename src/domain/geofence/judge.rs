//! Judges one vehicle's new points against the fences around them: which fences it entered,
//! left, or has dwelt in. Pure: the caller reads the vehicle's previous point and fence state
//! (locked, in the batch's transaction), and writes back what changed and the events raised.
//!
//! The rules, per fence:
//! - Points are taken in their own time order, and only those newer than the vehicle's last
//!   judged point: a late or redelivered point is stored but changes nothing, so it cannot flap
//!   a state that later points already decided.
//! - A change of state needs `confirm_points` consecutive points at least `hysteresis_m` past
//!   the boundary on the other side. The event carries the first of them (when it crossed).
//!   For entering a fence too small to be that deep inside, a quarter of its smaller side is
//!   enough.
//! - A straight step between two fixes, both well outside, that passes through a fence the
//!   vehicle is not in raises `enter` and `exit` at the step's midpoint (a cross), so a fence
//!   smaller than the distance between fixes is not jumped over. Steps longer than
//!   `CROSS_MAX_GAP_S` are not trusted to be straight.
//! - Inside for `dwell_s` (by the points' times) raises one `dwell` per stay.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::event::EventKind;
use super::EventSettings;
use crate::domain::{LatLon, Timestamp};

/// Longest step between two fixes that a cross is judged on: beyond it the vehicle may have
/// gone any way round.
pub const CROSS_MAX_GAP_S: f64 = 900.0;

/// A point as judging sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub ts: Timestamp,
    pub pos: LatLon,
}

/// A vehicle's standing with one fence. No row (outside, no run under way) is `None`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FenceState {
    pub inside: bool,
    /// When the current state began (the event's time).
    pub since: Timestamp,
    pub dwelt: bool,
    /// Consecutive points past the hysteresis on the other side, and the first of them.
    pub streak: u32,
    pub streak_first: Option<Fix>,
}

impl FenceState {
    fn outside() -> Self {
        Self {
            inside: false,
            since: Timestamp::from_unix_micros(0),
            dwelt: false,
            streak: 0,
            streak_first: None,
        }
    }

    /// Whether the row is worth keeping: outside with nothing pending is the absence of a row.
    fn is_resting(&self) -> bool {
        !self.inside && self.streak == 0
    }
}

/// What judging needs of a fence.
pub trait Judged {
    fn id(&self) -> Uuid;
    fn settings(&self) -> &EventSettings;
    /// Whether `p` is inside (boundary included): cheap, so asked before any distance.
    fn contains(&self, p: LatLon) -> bool;
    /// Whether `p` is at least `m` metres from the boundary, on whichever side it is: all
    /// judging asks of distance, and cheaper than measuring it (an edge nearer settles it).
    fn clear_of_boundary(&self, p: LatLon, m: f64) -> bool;
    /// Metres of the straight step a→b inside the fence.
    fn chord_inside_m(&self, a: LatLon, b: LatLon) -> f64;
    /// The fence's smaller extent in metres (a quarter of it caps the depth asked to enter).
    fn extent_m(&self) -> f64;
}

/// Where judging finds fences. Queries hand out references into the set, which judging
/// holds (read-locked) for a whole batch, in any order and possibly more than once (judging
/// sorts and dedups what it collected for a point once).
pub trait Fences {
    type Fence: Judged;
    /// Adds to `out` the fences within `margin_m` of `p` (by their bounds).
    fn near<'s>(&'s self, p: LatLon, margin_m: f64, out: &mut Vec<&'s Self::Fence>);
    /// Adds to `out` the fences whose bounds meet the step a→b.
    fn along<'s>(&'s self, a: LatLon, b: LatLon, out: &mut Vec<&'s Self::Fence>);
    fn get(&self, id: Uuid) -> Option<&Self::Fence>;
    /// The largest hysteresis any fence asks for: how far from a fence a point still matters.
    fn max_hysteresis_m(&self) -> f64;
    /// The least length of a step any fence could count as a cross (see `crossed`): shorter
    /// steps are not looked along at all.
    fn min_cross_m(&self) -> f64;
}

/// An event, before it is stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Raised {
    pub fence_id: Uuid,
    pub kind: EventKind,
    pub at: Fix,
}

/// What judging one vehicle's points decided.
#[derive(Debug, Default, PartialEq)]
pub struct Judgement {
    pub events: Vec<Raised>,
    /// Fence states that changed: `Some` to write, `None` to delete.
    pub changed: BTreeMap<Uuid, Option<FenceState>>,
    /// The last point judged: the next judgement starts from it.
    pub last: Option<Fix>,
    /// The vehicle's states afterwards, one per fence: those it started from with `changed`
    /// applied.
    pub states: Vec<(Uuid, FenceState)>,
}

/// Judges `points` (any order; those not newer than `prev` are skipped) from `prev` and
/// `states`. Points too inaccurate for a fence's settings must have been left out by the
/// caller via `accuracy`: `None` means unknown (used), `Some(m)` is compared per fence.
pub fn judge<S: Fences>(
    fences: &S,
    prev: Option<Fix>,
    states: &[(Uuid, FenceState)],
    points: &[(Fix, Option<f64>)],
) -> Judgement {
    // A vehicle's points nearly always come in time order; only the rest are copied to sort.
    let sorted: Vec<_>;
    let points = if points.is_sorted_by_key(|(f, _)| f.ts) {
        points
    } else {
        sorted = {
            let mut copy = points.to_vec();
            copy.sort_by_key(|(f, _)| f.ts);
            copy
        };
        &sorted
    };
    // A vehicle is in a fence or two at a time: a list searched in place beats hashing ids.
    let mut current = states.to_vec();
    let mut out = Judgement::default();
    let mut last = prev;
    let mut candidates: Vec<&S::Fence> = Vec::new();
    let margin = fences.max_hysteresis_m();
    for &(p, accuracy) in points.iter() {
        if last.is_some_and(|l| p.ts <= l.ts) {
            continue;
        }
        candidates.clear();
        fences.near(p.pos, margin, &mut candidates);
        if let Some(l) = last {
            if step_at_least(l.pos, p.pos, fences.min_cross_m()) {
                fences.along(l.pos, p.pos, &mut candidates);
            }
        }
        // A fence the vehicle has a state with but is no longer near is judged too (that is
        // how it leaves). One this node does not know (deleted: the delete took its states
        // with it; or created a moment ago and not heard of yet) is left as it stands.
        let near = candidates.len();
        for (id, _) in &current {
            if !candidates[..near].iter().any(|f| f.id() == *id) {
                candidates.extend(fences.get(*id));
            }
        }
        // By id as one integer (the order of the id's bytes, without comparing them one by one).
        candidates.sort_unstable_by_key(|f| f.id().as_u128());
        candidates.dedup_by_key(|f| f.id().as_u128());
        let mut used = false;
        for &fence in &candidates {
            let id = fence.id();
            let settings = *fence.settings();
            if accuracy.is_some_and(|a| a > settings.max_accuracy_m) {
                continue;
            }
            used = true;
            let held = current.iter().position(|(f, _)| *f == id);
            let before = held.map_or_else(FenceState::outside, |k| current[k].1);
            let after = step(fence, &settings, before, last, p, &mut out.events);
            if after != before {
                out.changed
                    .insert(id, (!after.is_resting()).then_some(after));
                match (held, after.is_resting()) {
                    (Some(k), true) => {
                        current.swap_remove(k);
                    }
                    (Some(k), false) => current[k].1 = after,
                    (None, true) => {}
                    (None, false) => current.push((id, after)),
                }
            }
        }
        // A point too vague for every fence it came near is not a place to judge steps from.
        if used || near == 0 {
            last = Some(p);
        }
    }
    out.last = last;
    out.states = current;
    out
}

/// One point against one fence. Containment is asked first and the distance to the boundary
/// only when it can change something: a point inside a fence the vehicle is in (or outside one
/// it is out of) moves no state, and that is nearly every point.
fn step<F: Judged>(
    fence: &F,
    s: &EventSettings,
    mut state: FenceState,
    last: Option<Fix>,
    p: Fix,
    events: &mut Vec<Raised>,
) -> FenceState {
    let h = s.hysteresis_m;
    let inside_now = fence.contains(p.pos);
    let id = fence.id();
    let raise = |events: &mut Vec<Raised>, kind, at| {
        events.push(Raised {
            fence_id: id,
            kind,
            at,
        })
    };
    if !state.inside {
        let enter_depth = h.min(fence.extent_m() / 4.0);
        if inside_now && fence.clear_of_boundary(p.pos, enter_depth) {
            state.streak += 1;
            let first = *state.streak_first.get_or_insert(p);
            if state.streak >= s.confirm_points {
                raise(events, EventKind::Enter, first);
                state = FenceState {
                    inside: true,
                    since: first.ts,
                    dwelt: false,
                    streak: 0,
                    streak_first: None,
                };
            }
        } else {
            let pending = state.streak > 0;
            state.streak = 0;
            state.streak_first = None;
            if !pending && !inside_now {
                if let Some(l) = last {
                    if crossed(fence, h, l, p) {
                        let mid = midpoint(l, p);
                        raise(events, EventKind::Enter, mid);
                        raise(events, EventKind::Exit, mid);
                    }
                }
            }
        }
    } else if !inside_now && fence.clear_of_boundary(p.pos, h) {
        state.streak += 1;
        let first = *state.streak_first.get_or_insert(p);
        if state.streak >= s.confirm_points {
            raise(events, EventKind::Exit, first);
            return FenceState::outside();
        }
    } else {
        state.streak = 0;
        state.streak_first = None;
    }
    if state.inside && !state.dwelt {
        if let Some(dwell) = s.dwell_s {
            if state.since.secs_until(p.ts) >= f64::from(dwell) {
                raise(events, EventKind::Dwell, p);
                state.dwelt = true;
            }
        }
    }
    state
}

/// Both ends well outside (`p` is known to be outside), close enough in time to trust the
/// straight line, and enough of it inside the fence. The cheap tests first: a step shorter
/// than what must lie inside cannot cross (at 1 Hz and city speeds, no step is).
fn crossed<F: Judged>(fence: &F, h: f64, l: Fix, p: Fix) -> bool {
    let need = h.min(fence.extent_m() / 2.0).max(0.0);
    if l.ts.secs_until(p.ts) > CROSS_MAX_GAP_S || !step_at_least(l.pos, p.pos, need) {
        return false;
    }
    let chord = fence.chord_inside_m(l.pos, p.pos);
    chord > 0.0
        && chord >= need
        && fence.clear_of_boundary(p.pos, h)
        && !fence.contains(l.pos)
        && fence.clear_of_boundary(l.pos, h)
}

/// Whether the step is at least `m` long (by `step_m`). Most steps are far shorter than any
/// fence's crossing length, and a bound with no trigonometry says so: along a meridian and
/// then a parallel is never shorter than the great circle, and is at most R·(|Δφ| + |Δλ|).
fn step_at_least(a: LatLon, b: LatLon, m: f64) -> bool {
    let dlat = (b.lat() - a.lat()).abs();
    let dlon = (b.lon() - a.lon()).abs();
    let dlon = dlon.min(360.0 - dlon);
    let longest = EARTH_RADIUS_M * (dlat + dlon).to_radians() * (1.0 + 1e-9);
    longest >= m && step_m(a, b) >= m
}

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A step's length in metres, on a sphere (plenty for "is it longer than 30 m"), never more
/// than the ellipsoid's by over 0.5 %.
fn step_m(a: LatLon, b: LatLon) -> f64 {
    let (la, lb) = (a.lat().to_radians(), b.lat().to_radians());
    let dlat = lb - la;
    let dlon = (b.lon() - a.lon()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la.cos() * lb.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Halfway along the step, in time and (lon/lat, which is what a short step is) in place.
fn midpoint(a: Fix, b: Fix) -> Fix {
    let ts = Timestamp::from_unix_micros(
        a.ts.unix_micros() + (b.ts.unix_micros() - a.ts.unix_micros()) / 2,
    );
    let pos = LatLon::new(
        (a.pos.lat() + b.pos.lat()) / 2.0,
        (a.pos.lon() + b.pos.lon()) / 2.0,
    )
    .expect("the midpoint of two valid positions is valid");
    Fix { ts, pos }
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;
