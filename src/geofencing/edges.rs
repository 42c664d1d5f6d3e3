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

mod distance;
mod grid;

/// At most this many edges are scanned as one list; above it the edges get bands. Low, because
/// bands pay off early: measured on 10,000 50-vertex fences, banding them made `containing`
/// about twice as fast as scanning them (a point's band holds ~8 of the 50 edges).
const LINEAR_MAX: usize = 16;
/// Bands are sized for about this many edges each on a ring without long spikes...
const EDGES_PER_BAND: usize = 4;
/// ...but never so thin that the edges' band memberships exceed this many per edge on average
/// (a star with long spikes crosses many bands; fewer, taller bands keep memory linear).
const MAX_ENTRIES_PER_EDGE: f64 = 8.0;

/// An edge as the fence is compiled; stored compactly in `Edges`.
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
    pub fn new(a: Coord, b: Coord) -> Self {
        Edge { a, b, seam: false }
    }
}

/// The edges as chains of vertices (edge `i` runs from `pts[i]` to `pts[i + 1]` unless `i` ends
/// a chain), a bounding box, and for large fences a CSR table of band → edges whose closed
/// latitude span touches the band.
#[derive(Debug)]
pub(super) struct Edges {
    pts: Vec<Coord>,
    /// One past each chain's last vertex.
    ends: Vec<u32>,
    /// Seam edges, sorted (almost always empty).
    seams: Vec<u32>,
    west: f64,
    south: f64,
    east: f64,
    north: f64,
    bands: usize,
    /// Bands per degree of latitude.
    per_deg: f64,
    starts: Vec<u32>,
    members: Vec<u32>,
    /// Which coarse cells of the box lie wholly inside or outside.
    grid: grid::Grid,
}

/// What one edge says about a point: it lies on it, the ray to its right crosses it, or
/// neither.
#[derive(PartialEq)]
enum Meets {
    Boundary,
    Crosses,
    Misses,
}

impl Edges {
    pub fn new(edges: Vec<Edge>) -> Self {
        let mut this = Edges {
            pts: Vec::with_capacity(edges.len() + 1),
            ends: Vec::new(),
            seams: Vec::new(),
            west: f64::INFINITY,
            south: f64::INFINITY,
            east: f64::NEG_INFINITY,
            north: f64::NEG_INFINITY,
            bands: 1,
            per_deg: 0.0,
            starts: Vec::new(),
            members: Vec::new(),
            grid: grid::Grid::default(),
        };
        // Consecutive edges of a ring share a vertex and become one chain.
        for e in &edges {
            if this.pts.last() != Some(&e.a) {
                if !this.pts.is_empty() {
                    this.ends.push(this.pts.len() as u32);
                }
                this.pts.push(e.a);
            }
            if e.seam {
                this.seams.push(this.pts.len() as u32 - 1);
            }
            this.pts.push(e.b);
        }
        this.ends.push(this.pts.len() as u32);
        for c in &this.pts {
            (this.west, this.east) = (this.west.min(c.x), this.east.max(c.x));
            (this.south, this.north) = (this.south.min(c.y), this.north.max(c.y));
        }
        this.bands = band_count(&this, edges.len());
        this.per_deg = this.bands as f64 / (this.north - this.south);
        if this.bands > 1 {
            this.file_edges();
        }
        this.grid = grid::Grid::of(&this);
        this
    }

    /// Every edge, by index, in storage order.
    fn all(&self) -> impl Iterator<Item = u32> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .flat_map(|(from, to)| from..to - 1)
    }

    fn edge(&self, i: u32) -> (Coord, Coord) {
        (self.pts[i as usize], self.pts[i as usize + 1])
    }

    /// Counts, then fills, each band's members. An edge is filed from the band of its lowest
    /// latitude to the band of its highest, with the same `band_of` queries use: `band_of` is
    /// monotone, so a point whose latitude lies in an edge's span always finds that edge in its
    /// band, with no rounding gap at band borders.
    fn file_edges(&mut self) {
        let span = |(a, b): (Coord, Coord)| (a.y.min(b.y), a.y.max(b.y));
        let mut counts = vec![0u32; self.bands + 1];
        for i in self.all() {
            let (lo, hi) = span(self.edge(i));
            for count in &mut counts[self.band_of(lo) + 1..=self.band_of(hi) + 1] {
                *count += 1;
            }
        }
        for k in 0..self.bands {
            counts[k + 1] += counts[k];
        }
        let mut next = counts.clone();
        let mut members = vec![0; counts[self.bands] as usize];
        for i in self.all() {
            let (lo, hi) = span(self.edge(i));
            for slot in &mut next[self.band_of(lo)..=self.band_of(hi)] {
                members[*slot as usize] = i;
                *slot += 1;
            }
        }
        (self.starts, self.members) = (counts, members);
    }

    fn band_of(&self, y: f64) -> usize {
        if self.bands == 1 {
            return 0;
        }
        // Truncation is the floor for k ≥ 0 (and `f64::floor` a library call on baseline
        // x86-64); below the fence, and for NaN, band 0.
        let k = (y - self.south) * self.per_deg;
        if k > 0.0 {
            (k as usize).min(self.bands - 1)
        } else {
            0
        }
    }

    fn band(&self, k: usize) -> &[u32] {
        &self.members[self.starts[k] as usize..self.starts[k + 1] as usize]
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
        self.grid
            .inside(self, p)
            .unwrap_or_else(|| self.by_edges(p))
    }

    /// `contains` for a point within the box, from the edges alone.
    fn by_edges(&self, p: Coord) -> bool {
        let mut inside = false;
        let mut verdict = |(a, b): (Coord, Coord)| match meets(a, b, p) {
            Meets::Boundary => true,
            Meets::Crosses => {
                inside = !inside;
                false
            }
            Meets::Misses => false,
        };
        let on_boundary = if self.bands == 1 {
            let mut from = 0;
            self.ends.iter().any(|&to| {
                let chain = &self.pts[from..to as usize];
                from = to as usize;
                chain.windows(2).any(|w| verdict((w[0], w[1])))
            })
        } else {
            let band = self.band(self.band_of(p.y));
            band.iter().any(|&i| verdict(self.edge(i)))
        };
        on_boundary || inside
    }
    /// Pushes the parameters t ∈ [0, 1] along `a → b` (a planar lon/lat segment) where it
    /// meets an edge; where it runs along an edge, the ends of the shared part. Approximate in
    /// the last bits: the pieces between are classified with the exact `contains`. (An edge in
    /// several bands is met several times; the repeats are harmless.)
    pub fn crossings(&self, a: Coord, b: Coord, out: &mut Vec<f64>) {
        let (y0, y1) = (a.y.min(b.y), a.y.max(b.y));
        if y1 < self.south || y0 > self.north {
            return;
        }
        let r = b - a;
        if self.bands == 1 {
            self.all().for_each(|i| meet(a, r, self.edge(i), out));
            return;
        }
        for k in self.band_of(y0)..=self.band_of(y1) {
            self.band(k)
                .iter()
                .for_each(|&i| meet(a, r, self.edge(i), out));
        }
    }
}

/// Whether `p` is on the edge `a → b`, or the ray from `p` towards +x crosses it.
fn meets(a: Coord, b: Coord, p: Coord) -> Meets {
    if p.y < a.y.min(b.y) || p.y > a.y.max(b.y) || a.x.max(b.x) < p.x {
        return Meets::Misses; // cannot hold p, nor cross the ray to its right
    }
    let crosses = (a.y <= p.y) != (b.y <= p.y);
    if a.x.min(b.x) > p.x {
        // Wholly right of p: no orientation needed.
        return if crosses {
            Meets::Crosses
        } else {
            Meets::Misses
        };
    }
    let o = RobustKernel::orient2d(a, b, p);
    if o == Orientation::Collinear {
        return Meets::Boundary; // on the line, and within both spans: on the edge
    }
    if crosses && (o == Orientation::CounterClockwise) == (a.y < b.y) {
        Meets::Crosses
    } else {
        Meets::Misses
    }
}

/// How many bands: one for a small fence, otherwise about `EDGES_PER_BAND` edges per band,
/// fewer when the edges are tall relative to the fence (see `MAX_ENTRIES_PER_EDGE`).
fn band_count(edges: &Edges, n: usize) -> usize {
    let height = edges.north - edges.south;
    if n <= LINEAR_MAX || height <= 0.0 {
        return 1;
    }
    let spans: f64 = edges
        .all()
        .map(|i| {
            let (a, b) = edges.edge(i);
            (a.y - b.y).abs()
        })
        .sum();
    let by_count = n / EDGES_PER_BAND;
    let by_spread = if spans > 0.0 {
        (MAX_ENTRIES_PER_EDGE - 1.0) * n as f64 * height / spans
    } else {
        f64::INFINITY
    };
    (by_count as f64).min(by_spread).max(1.0) as usize
}

fn cross(u: Coord, v: Coord) -> f64 {
    u.x * v.y - u.y * v.x
}

/// Where `a + t·r` (t ∈ [0, 1]) meets the edge `c → d`, pushed onto `out`.
fn meet(a: Coord, r: Coord, (c, d): (Coord, Coord), out: &mut Vec<f64>) {
    let s = d - c;
    let ac = c - a;
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
    for end in [c, d] {
        let q = end - a;
        let t = (q.x * r.x + q.y * r.y) / rr;
        if (0.0..=1.0).contains(&t) {
            out.push(t);
        }
    }
}
