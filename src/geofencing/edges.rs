//! A polygon fence's edges as planar lon/lat segments (as PostGIS `geometry` sees them), filed
//! in horizontal latitude bands so that containment, distance and crossing questions read only
//! the few edges near the point instead of every edge of a 100,000-vertex fence.
//!
//! Containment is crossing-number parity over the edges of all rings of all polygons at once:
//! PostGIS only stores valid (Multi)Polygons, whose holes lie inside their shell and whose parts
//! have disjoint interiors, so "inside an odd number of rings" is exactly "inside the area".
//! Parity, not winding, because GeoJSON does not fix ring orientation: a hole wound like its
//! shell would add to the winding number instead of cancelling it.

use geo::kernels::{Kernel, Orientation, RobustKernel};
use geo::Coord;

use super::metric::{lon_delta, Scale};

/// At most this many edges are scanned as one list; above it the edges get bands.
const LINEAR_MAX: usize = 64;
/// Bands are sized for about this many edges each on a ring without long spikes...
const EDGES_PER_BAND: usize = 4;
/// ...but never so thin that the edges' band memberships exceed this many per edge on average
/// (a star with long spikes crosses many bands; fewer, taller bands keep memory linear).
const MAX_ENTRIES_PER_EDGE: f64 = 8.0;

#[derive(Debug, Clone, Copy)]
pub(super) struct Edge {
    pub a: Coord,
    pub b: Coord,
    /// Part of a 180° seam (an edge along ±180° matched by one on the other side): a boundary
    /// for containment, as in PostGIS, but not a place the vehicle can cross, so distances
    /// ignore it.
    pub seam: bool,
}

impl Edge {
    fn y_span(&self) -> (f64, f64) {
        (self.a.y.min(self.b.y), self.a.y.max(self.b.y))
    }

    fn x_span(&self) -> (f64, f64) {
        (self.a.x.min(self.b.x), self.a.x.max(self.b.x))
    }
}

/// The edges, a bounding box, and a CSR table of band → edges whose closed latitude span
/// touches the band.
#[derive(Debug)]
pub(super) struct Edges {
    edges: Vec<Edge>,
    west: f64,
    south: f64,
    east: f64,
    north: f64,
    bands: usize,
    /// Bands per degree of latitude.
    per_deg: f64,
    starts: Vec<u32>,
    members: Vec<u32>,
}

impl Edges {
    pub fn new(edges: Vec<Edge>) -> Self {
        let (mut west, mut south) = (f64::INFINITY, f64::INFINITY);
        let (mut east, mut north) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for e in &edges {
            for c in [e.a, e.b] {
                (west, east) = (west.min(c.x), east.max(c.x));
                (south, north) = (south.min(c.y), north.max(c.y));
            }
        }
        let mut this = Edges {
            bands: band_count(&edges, north - south),
            per_deg: 0.0,
            edges,
            west,
            south,
            east,
            north,
            starts: Vec::new(),
            members: Vec::new(),
        };
        this.per_deg = this.bands as f64 / (north - south);
        this.file_edges();
        this
    }

    /// Counts, then fills, each band's members. An edge is filed from the band of its lowest
    /// latitude to the band of its highest, with the same `band_of` queries use: `band_of` is
    /// monotone, so a point whose latitude lies in an edge's span always finds that edge in its
    /// band, with no rounding gap at band borders.
    fn file_edges(&mut self) {
        let mut counts = vec![0u32; self.bands + 1];
        for e in &self.edges {
            let (lo, hi) = e.y_span();
            for count in &mut counts[self.band_of(lo) + 1..=self.band_of(hi) + 1] {
                *count += 1;
            }
        }
        for k in 0..self.bands {
            counts[k + 1] += counts[k];
        }
        let mut next = counts.clone();
        self.members = vec![0; counts[self.bands] as usize];
        for (i, e) in self.edges.iter().enumerate() {
            let (lo, hi) = e.y_span();
            for slot in &mut next[self.band_of(lo)..=self.band_of(hi)] {
                self.members[*slot as usize] = i as u32;
                *slot += 1;
            }
        }
        self.starts = counts;
    }

    fn band_of(&self, y: f64) -> usize {
        if self.bands == 1 {
            return 0;
        }
        let k = ((y - self.south) * self.per_deg).floor();
        (k.max(0.0) as usize).min(self.bands - 1)
    }

    fn band(&self, k: usize) -> impl Iterator<Item = &Edge> {
        let (from, to) = (self.starts[k] as usize, self.starts[k + 1] as usize);
        self.members[from..to]
            .iter()
            .map(|&i| &self.edges[i as usize])
    }

    #[cfg(test)]
    pub fn bands(&self) -> usize {
        self.bands
    }

    /// Inside or on the boundary, exactly: robust orientation decides both "on this edge" and
    /// "left of this edge", so points on edges, vertices and hole edges count as inside, as
    /// with PostGIS' `ST_Intersects`. Crossings follow the half-open rule (an edge counts where
    /// it leaves `p.y` upwards-inclusive, downwards-exclusive), so a ray through a vertex counts
    /// once.
    pub fn contains(&self, p: Coord) -> bool {
        if !(self.west..=self.east).contains(&p.x) || !(self.south..=self.north).contains(&p.y) {
            return false;
        }
        let mut inside = false;
        for e in self.band(self.band_of(p.y)) {
            let (lo, hi) = e.y_span();
            let (left, right) = e.x_span();
            if p.y < lo || p.y > hi || right < p.x {
                continue; // cannot hold p, nor cross the ray to its right
            }
            let crosses = (e.a.y <= p.y) != (e.b.y <= p.y);
            if left > p.x {
                inside ^= crosses; // wholly right of p: no orientation needed
                continue;
            }
            let o = RobustKernel::orient2d(e.a, e.b, p);
            if o == Orientation::Collinear {
                return true; // on the line, and within both spans: on the edge
            }
            let upward = e.a.y < e.b.y;
            if crosses && (o == Orientation::CounterClockwise) == upward {
                inside = !inside;
            }
        }
        inside
    }

    /// The least distance in metres, in the local plane at `p`, from `p` to an edge, looking
    /// only at edges that could be within `reach_m`; `INFINITY` when there are none. Exact
    /// (in that plane) whenever the true least distance is within `reach_m`; otherwise some
    /// value above `reach_m`. Seam edges are skipped.
    pub fn nearest_m(&self, p: Coord, reach_m: f64) -> f64 {
        let scale = Scale::at(p.y);
        // A hair of slack so rounding here never drops an edge at exactly `reach_m`.
        let (ry, rx) = (reach_m * (1.0 + 1e-9) / scale.y, reach_m * (1.0 + 1e-9));
        let (y0, y1) = (p.y - ry, p.y + ry);
        if y1 < self.south || y0 > self.north {
            return f64::INFINITY;
        }
        let (k0, k1) = (self.band_of(y0), self.band_of(y1));
        let mut best_2 = f64::INFINITY;
        for k in k0..=k1 {
            for e in self.band(k) {
                let (lo, hi) = e.y_span();
                // Each edge once: in the first band of the query range that files it.
                if e.seam || hi < y0 || lo > y1 || (k > k0 && self.band_of(lo) < k) {
                    continue;
                }
                let (left, right) = e.x_span();
                let gap = if p.x < left {
                    left - p.x
                } else if p.x > right {
                    p.x - right
                } else {
                    0.0
                };
                if gap.min(360.0 - (right - left) - gap) * scale.x > rx {
                    continue;
                }
                best_2 = best_2.min(segment_distance_2(p, e, scale));
            }
        }
        best_2.sqrt()
    }

    /// Pushes the parameters t ∈ [0, 1] along `a → b` (a planar lon/lat segment) where it
    /// meets an edge; where it runs along an edge, the ends of the shared part. Approximate in
    /// the last bits: the pieces between are classified with the exact `contains`.
    pub fn crossings(&self, a: Coord, b: Coord, out: &mut Vec<f64>) {
        let (y0, y1) = (a.y.min(b.y), a.y.max(b.y));
        if y1 < self.south || y0 > self.north {
            return;
        }
        let (k0, k1) = (self.band_of(y0), self.band_of(y1));
        let r = b - a;
        for k in k0..=k1 {
            for e in self.band(k) {
                let (lo, hi) = e.y_span();
                if hi < y0 || lo > y1 || (k > k0 && self.band_of(lo) < k) {
                    continue;
                }
                meet(a, r, e, out);
            }
        }
    }
}

/// How many bands: one for a small fence, otherwise about `EDGES_PER_BAND` edges per band,
/// fewer when the edges are tall relative to the fence (see `MAX_ENTRIES_PER_EDGE`).
fn band_count(edges: &[Edge], height: f64) -> usize {
    let n = edges.len();
    if n <= LINEAR_MAX || height <= 0.0 {
        return 1;
    }
    let spans: f64 = edges.iter().map(|e| e.y_span().1 - e.y_span().0).sum();
    let by_count = n / EDGES_PER_BAND;
    let by_spread = if spans > 0.0 {
        (MAX_ENTRIES_PER_EDGE - 1.0) * n as f64 * height / spans
    } else {
        f64::INFINITY
    };
    (by_count as f64).min(by_spread).max(1.0) as usize
}

/// Squared distance in metres from `p` to the edge, both projected into the plane at `p`.
fn segment_distance_2(p: Coord, e: &Edge, s: Scale) -> f64 {
    let ax = lon_delta(p.x, e.a.x) * s.x;
    let ay = (e.a.y - p.y) * s.y;
    let bx = lon_delta(p.x, e.b.x) * s.x;
    let by = (e.b.y - p.y) * s.y;
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

fn cross(u: Coord, v: Coord) -> f64 {
    u.x * v.y - u.y * v.x
}

/// Where `a + t·r` (t ∈ [0, 1]) meets edge `e`, pushed onto `out`.
fn meet(a: Coord, r: Coord, e: &Edge, out: &mut Vec<f64>) {
    let s = e.b - e.a;
    let ac = e.a - a;
    let denom = cross(r, s);
    if denom != 0.0 {
        let t = cross(ac, s) / denom;
        let u = cross(ac, r) / denom;
        if (0.0..=1.0).contains(&t) && (0.0..=1.0).contains(&u) {
            out.push(t);
        }
        return;
    }
    let rr = r.x * r.x + r.y * r.y;
    if rr == 0.0 || cross(ac, r) != 0.0 {
        return; // parallel, apart
    }
    for c in [e.a, e.b] {
        let d = c - a;
        let t = (d.x * r.x + d.y * r.y) / rr;
        if (0.0..=1.0).contains(&t) {
            out.push(t);
        }
    }
}
