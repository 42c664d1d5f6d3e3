//! One fence made ready for per-fix questions: inside or not (exactly as PostGIS answers),
//! how far from the boundary (for hysteresis), and how much of a straight hop lies inside
//! (for a vehicle that jumped over a small fence between two fixes).

use geo::Coord;
use uuid::Uuid;

use super::edges::{Edge, Edges};
use super::metric::{lon_delta, Scale};
use crate::domain::geofence::{Area, Circle, LonLatBox, Shape};
use crate::domain::LatLon;
use crate::live::geodesy;

/// A fence compiled from its shape: immutable, shared behind an `Arc` by the index and by
/// whoever evaluates fixes against it.
#[derive(Debug)]
pub struct CompiledFence {
    id: Uuid,
    bounds: Vec<LonLatBox>,
    form: Form,
}

#[derive(Debug)]
enum Form {
    Area(Edges),
    Circle(Disc),
}

/// A geodesic circle, with its centre's unit normal for a cheap rigorous lower bound on the
/// distance to a point (most candidates from the box index are clearly outside).
#[derive(Debug)]
struct Disc {
    center: LatLon,
    radius_m: f64,
    normal: [f64; 3],
}

/// Below this, a lower bound on the distance to a circle's centre is treated as possibly
/// rounding: the exact geodesic decides (the bound is good to ~10⁻⁶ m).
const BOUND_SLACK_M: f64 = 1e-3;

impl CompiledFence {
    pub fn new(id: Uuid, shape: &Shape) -> Self {
        match shape {
            Shape::Area(area) => CompiledFence {
                id,
                bounds: polygon_boxes(area),
                form: Form::Area(Edges::new(area_edges(area))),
            },
            Shape::Circle(c) => CompiledFence {
                id,
                bounds: c.bounds(),
                form: Form::Circle(Disc::new(c)),
            },
        }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Boxes covering the fence: one per polygon of an area; a circle's one (two across 180°).
    pub fn bounds(&self) -> &[LonLatBox] {
        &self.bounds
    }

    /// Whether `p` is inside, boundary included — the same answer PostGIS gives:
    /// `ST_Intersects(geom, p)` (planar lon/lat) for areas, `ST_DWithin` on geography
    /// (WGS84 geodesic distance ≤ radius) for circles.
    pub fn contains(&self, p: LatLon) -> bool {
        match &self.form {
            Form::Area(edges) => edges.contains(coord(p)),
            Form::Circle(disc) => disc.distance_m(p, 0.0) <= disc.radius_m,
        }
    }

    /// Metres from `p` to the boundary: ≥ 0 exactly when `contains(p)`, negative outside.
    /// Accurate when |d| ≤ `reach_m`; beyond that, some value of the right sign and at least
    /// `reach_m` in magnitude.
    ///
    /// Circles: radius minus the geodesic distance to the centre (exact). Areas: the nearest
    /// edge in the local plane at `p` (see `metric::Scale` for its error; seam edges along 180°
    /// of a fence split there do not count as boundary).
    pub fn signed_distance_m(&self, p: LatLon, reach_m: f64) -> f64 {
        let reach_m = reach_m.max(0.0);
        match &self.form {
            Form::Circle(disc) => disc.radius_m - disc.distance_m(p, reach_m),
            Form::Area(edges) => {
                let d = edges.nearest_m(coord(p), reach_m);
                let d = if d.is_finite() { d } else { reach_m };
                if edges.contains(coord(p)) {
                    d
                } else {
                    -d.max(f64::MIN_POSITIVE)
                }
            }
        }
    }

    /// Whether `p` is at least `m` metres from the boundary, inside or out: `|signed_distance_m|
    /// ≥ m`, answered without measuring the distance when an edge nearer than `m` is found
    /// (or, for a circle, when a cheap bound already puts `p` farther than that outside).
    pub fn clear_of_boundary(&self, p: LatLon, m: f64) -> bool {
        let m = m.max(0.0);
        match &self.form {
            Form::Circle(disc) => (disc.radius_m - disc.distance_m(p, m)).abs() >= m,
            Form::Area(edges) => !edges.within_m(coord(p), m),
        }
    }

    /// Metres of the straight hop `a → b` that lie inside: for areas, the planar lon/lat
    /// segment (RFC 7946 edges are straight in lon/lat too); for circles, the straight segment
    /// in the plane at the centre. 0 when the hop spans more than 180° of longitude (it cannot
    /// be a real hop between two fixes).
    pub fn chord_inside_m(&self, a: LatLon, b: LatLon) -> f64 {
        if (a.lon() - b.lon()).abs() > 180.0 {
            return 0.0;
        }
        match &self.form {
            Form::Area(edges) => area_chord_m(edges, coord(a), coord(b)),
            Form::Circle(disc) => disc.chord_m(a, b),
        }
    }

    #[cfg(test)]
    pub(super) fn bands(&self) -> usize {
        match &self.form {
            Form::Area(edges) => edges.bands(),
            Form::Circle(_) => 0,
        }
    }
}

fn coord(p: LatLon) -> Coord {
    Coord {
        x: p.lon(),
        y: p.lat(),
    }
}

fn polygon_boxes(area: &Area) -> Vec<LonLatBox> {
    let boxes = area.polygons().iter().map(|rings| {
        let mut b = LonLatBox {
            west: f64::INFINITY,
            south: f64::INFINITY,
            east: f64::NEG_INFINITY,
            north: f64::NEG_INFINITY,
        };
        for p in rings.iter().flatten() {
            (b.west, b.east) = (b.west.min(p.lon()), b.east.max(p.lon()));
            (b.south, b.north) = (b.south.min(p.lat()), b.north.max(p.lat()));
        }
        b
    });
    boxes.collect()
}

/// Every ring's edges, with the 180° seam edges marked.
fn area_edges(area: &Area) -> Vec<Edge> {
    let mut edges: Vec<Edge> = area
        .polygons()
        .iter()
        .flatten()
        .flat_map(|ring| ring.windows(2).map(|w| Edge::new(coord(w[0]), coord(w[1]))))
        .collect();
    mark_seams(&mut edges);
    edges
}

/// An edge along +180° (or −180°) is a seam when the other side's edges along −180° (+180°)
/// cover its whole latitude span: the fence continues across, so it is not a boundary a vehicle
/// crosses. An edge along 180° with nothing across is a real boundary and stays one.
fn mark_seams(edges: &mut [Edge]) {
    let on = |e: &Edge, x: f64| e.a.x == x && e.b.x == x;
    let spans = |x: f64, edges: &[Edge]| -> Vec<(f64, f64)> {
        let mut s: Vec<(f64, f64)> = edges
            .iter()
            .filter(|e| on(e, x))
            .map(|e| (e.a.y.min(e.b.y), e.a.y.max(e.b.y)))
            .collect();
        s.sort_by(|p, q| p.0.total_cmp(&q.0));
        s
    };
    let (east, west) = (spans(180.0, edges), spans(-180.0, edges));
    if east.is_empty() || west.is_empty() {
        return;
    }
    for e in edges.iter_mut() {
        let across = if on(e, 180.0) {
            &west
        } else if on(e, -180.0) {
            &east
        } else {
            continue;
        };
        e.seam = covers(across, e.a.y.min(e.b.y), e.a.y.max(e.b.y));
    }
}

/// Whether the union of `spans` (sorted by start) covers `[lo, hi]`.
fn covers(spans: &[(f64, f64)], lo: f64, hi: f64) -> bool {
    let mut reached = lo;
    for &(s, e) in spans {
        if s > reached {
            break;
        }
        reached = reached.max(e);
        if reached >= hi {
            return true;
        }
    }
    false
}

/// Splits the hop where it meets edges and sums the pieces whose midpoints are inside.
fn area_chord_m(edges: &Edges, a: Coord, b: Coord) -> f64 {
    let mut ts = vec![0.0, 1.0];
    edges.crossings(a, b, &mut ts);
    ts.sort_by(f64::total_cmp);
    let r = b - a;
    let inside: f64 = ts
        .windows(2)
        .filter(|w| w[1] > w[0])
        .filter(|w| edges.contains(a + r * ((w[0] + w[1]) / 2.0)))
        .map(|w| w[1] - w[0])
        .sum();
    if inside == 0.0 {
        return 0.0;
    }
    let s = Scale::at((a.y + b.y) / 2.0);
    inside * (r.x * s.x).hypot(r.y * s.y)
}

impl Disc {
    fn new(c: &Circle) -> Self {
        let center = c.center();
        Disc {
            center,
            radius_m: c.radius_m(),
            normal: geodesy::unit_normal(center.lat(), center.lon()),
        }
    }

    /// Geodesic distance from the centre to `p` — or, when a rigorous lower bound already puts
    /// `p` more than `reach_m` outside, that bound (a cheaper answer with the same meaning).
    fn distance_m(&self, p: LatLon, reach_m: f64) -> f64 {
        let n = geodesy::unit_normal(p.lat(), p.lon());
        let chord_2 = (0..3).map(|i| (self.normal[i] - n[i]).powi(2)).sum();
        let bound = geodesy::lower_bound_m(chord_2);
        if bound > self.radius_m + reach_m + BOUND_SLACK_M {
            return bound;
        }
        let c = self.center;
        geodesy::distance_m(c.lat(), c.lon(), p.lat(), p.lon())
    }

    /// Length of `a → b` inside the disc, both projected into the plane at the centre.
    fn chord_m(&self, a: LatLon, b: LatLon) -> f64 {
        let s = Scale::at(self.center.lat());
        let at = |q: LatLon| Coord {
            x: lon_delta(self.center.lon(), q.lon()) * s.x,
            y: (q.lat() - self.center.lat()) * s.y,
        };
        let (a, b) = (at(a), at(b));
        let d = b - a;
        let len_2 = d.x * d.x + d.y * d.y;
        if len_2 == 0.0 {
            return 0.0;
        }
        // |a + t·d|² = r²  ⇔  len²·t² + 2(a·d)·t + |a|² − r² = 0
        let half_b = a.x * d.x + a.y * d.y;
        let c = a.x * a.x + a.y * a.y - self.radius_m * self.radius_m;
        let disc = half_b * half_b - len_2 * c;
        if disc <= 0.0 {
            return 0.0;
        }
        let root = disc.sqrt();
        let t0 = ((-half_b - root) / len_2).max(0.0);
        let t1 = ((-half_b + root) / len_2).min(1.0);
        (t1 - t0).max(0.0) * len_2.sqrt()
    }
}
