//! Small fences filed by the cells of a fixed lon/lat grid: a vehicle's neighbourhood is one
//! to four cells, each one hash lookup and one contiguous list, where the R*-tree walks several
//! levels of nodes scattered over the heap. Measured in ingest (10k fences, 10 fixes a
//! message) the tree walk cost as much as the exact containment tests it led to. Fences too
//! large for a few cells, and queries too large for a few dozen, stay with the tree.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::RangeInclusive;
use std::sync::Arc;

use uuid::Uuid;

use super::index::Indexed;

/// Cell side in degrees: ~1.1 km of latitude, ~0.55 km of longitude at 60°.
const CELL_DEG: f64 = 0.01;
/// A box spanning more cells than this along either axis is left to the tree.
const MAX_SPAN_CELLS: i64 = 4;
/// A query touching more cells than this is left to the tree.
const MAX_QUERY_CELLS: i64 = 36;

/// `[west, south, east, north]` in degrees, closed, west ≤ east (boxes across 180° are split).
pub(super) type Area = [f64; 4];

pub(super) struct Grid<T> {
    cells: HashMap<(i32, i32), Vec<Filed<T>>, BuildHasherDefault<CellHasher>>,
}

/// Cell keys are two small integers: a multiply-rotate mix (as rustc's FxHasher) spreads them
/// well enough, at a fraction of SipHash's cost per lookup.
#[derive(Default)]
struct CellHasher(u64);

impl Hasher for CellHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_i32(&mut self, i: i32) {
        self.write_u64(u64::from(i as u32));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One box of one fence, in every cell it meets.
struct Filed<T> {
    area: Area,
    fence: Arc<T>,
}

impl<T> Default for Grid<T> {
    fn default() -> Self {
        Self {
            cells: HashMap::default(),
        }
    }
}

/// The cell of a coordinate: floor(deg / CELL_DEG), by hand (`f64::floor` is a library call
/// on the baseline x86-64 target, and this runs for every query).
fn cell(deg: f64) -> i32 {
    let v = deg / CELL_DEG;
    let t = v as i32;
    if f64::from(t) > v {
        t - 1
    } else {
        t
    }
}

fn span(a: &Area) -> (RangeInclusive<i32>, RangeInclusive<i32>) {
    (cell(a[0])..=cell(a[2]), cell(a[1])..=cell(a[3]))
}

fn cells_along(r: &RangeInclusive<i32>) -> i64 {
    i64::from(*r.end()) - i64::from(*r.start()) + 1
}

/// Closed boxes meet, as the tree's `locate_in_envelope_intersecting` counts it.
pub(super) fn meets(a: &Area, q: &Area) -> bool {
    a[0] <= q[2] && a[2] >= q[0] && a[1] <= q[3] && a[3] >= q[1]
}

impl<T: Indexed> Grid<T> {
    /// Whether a fence's box is small enough to be filed here.
    pub fn fits(a: &Area) -> bool {
        let (x, y) = span(a);
        cells_along(&x) <= MAX_SPAN_CELLS && cells_along(&y) <= MAX_SPAN_CELLS
    }

    /// Whether a query is small enough to be answered here.
    pub fn answers(q: &Area) -> bool {
        let (x, y) = span(q);
        cells_along(&x) * cells_along(&y) <= MAX_QUERY_CELLS
    }

    pub fn file(&mut self, area: Area, fence: &Arc<T>) {
        let (xs, ys) = span(&area);
        for x in xs {
            for y in ys.clone() {
                self.cells.entry((x, y)).or_default().push(Filed {
                    area,
                    fence: Arc::clone(fence),
                });
            }
        }
    }

    pub fn unfile(&mut self, area: Area, id: Uuid) {
        let (xs, ys) = span(&area);
        for x in xs {
            for y in ys.clone() {
                if let Some(filed) = self.cells.get_mut(&(x, y)) {
                    filed.retain(|f| !(f.area == area && f.fence.id() == id));
                    if filed.is_empty() {
                        self.cells.remove(&(x, y));
                    }
                }
            }
        }
    }

    /// Calls `f` once for every filed box meeting `q` (`answers(q)` must hold). A box in
    /// several cells is reported from one: the first cell of its overlap with the query.
    pub fn visit<'a>(&'a self, q: &Area, mut f: impl FnMut(&'a Area, &'a T)) {
        let (xs, ys) = span(q);
        for x in xs.clone() {
            for y in ys.clone() {
                let Some(filed) = self.cells.get(&(x, y)) else {
                    continue;
                };
                for e in filed {
                    let first = (
                        cell(e.area[0]).max(*xs.start()),
                        cell(e.area[1]).max(*ys.start()),
                    );
                    if first == (x, y) && meets(&e.area, q) {
                        f(&e.area, &e.fence);
                    }
                }
            }
        }
    }
}
