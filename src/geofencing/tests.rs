//! Compiled fences against independent answers: `geo`'s robust point-in-polygon for areas
//! (boundaries included), Karney's geodesic for circles; distances and hops on shapes whose
//! answer is known in metres; the index's edits and searches across 180° and near a pole.

use crate::test_rng::Rng;
use std::sync::Arc;

use geo::{CoordinatePosition, Intersects};
use geographiclib_rs::{DirectGeodesic, Geodesic};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{CompiledFence, FenceIndex};
use crate::domain::geofence::Fence;
use crate::domain::LatLon;
use crate::live::geodesy::distance_m;

type Ring = Vec<[f64; 2]>;

/// The ids of the fences holding `p`.
fn holding(index: &FenceIndex, p: LatLon) -> Vec<Uuid> {
    index.containing(p).iter().map(|f| f.id()).collect()
}

fn ll(lon: f64, lat: f64) -> LatLon {
    LatLon::new(lat, lon).unwrap()
}

fn compile(id: u128, body: Value) -> CompiledFence {
    let fence = Fence::from_json(body).unwrap();
    CompiledFence::new(Uuid::from_u128(id), fence.shape())
}

fn polygon(id: u128, rings: &[Ring]) -> CompiledFence {
    let geometry = json!({"type": "Polygon", "coordinates": rings});
    compile(
        id,
        json!({"type": "Feature", "geometry": geometry, "properties": {"name": "p"}}),
    )
}

fn multi(id: u128, polygons: &[Vec<Ring>]) -> CompiledFence {
    let geometry = json!({"type": "MultiPolygon", "coordinates": polygons});
    compile(
        id,
        json!({"type": "Feature", "geometry": geometry, "properties": {"name": "m"}}),
    )
}

fn circle(id: u128, lon: f64, lat: f64, radius_m: f64) -> CompiledFence {
    compile(
        id,
        json!({"name": "c", "center": [lon, lat], "radius_m": radius_m}),
    )
}

fn square(x: f64, y: f64, size: f64) -> Ring {
    vec![
        [x, y],
        [x + size, y],
        [x + size, y + size],
        [x, y + size],
        [x, y],
    ]
}

/// A closed star-shaped ring of `n` vertices around `c`, radii in `[0.7, 1]·r` degrees of
/// latitude (longitude stretched by 1/cos φ so it is round on the ground), snapped to a 2⁻²⁴°
/// grid so edge midpoints are exactly representable.
fn star(rng: &mut Rng, c: [f64; 2], r: f64, n: usize) -> Ring {
    let snap = |v: f64| (v * 16_777_216.0).round() / 16_777_216.0;
    let stretch = 1.0 / c[1].to_radians().cos();
    let mut ring: Ring = (0..n)
        .map(|i| {
            let angle = (i as f64 + 0.3 * rng.next()) / n as f64 * std::f64::consts::TAU;
            let radius = r * (0.7 + 0.3 * rng.next());
            [
                snap(c[0] + radius * angle.cos() * stretch),
                snap(c[1] + radius * angle.sin()),
            ]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

fn geo_polygon(rings: &[Ring]) -> geo::Polygon {
    let line = |r: &Ring| geo::LineString::from(r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
    geo::Polygon::new(line(&rings[0]), rings[1..].iter().map(line).collect())
}

/// A concave pentagon (notched at the top) with a rectangular hole.
fn donut() -> Vec<Ring> {
    vec![
        vec![
            [0.0, 0.0],
            [10.0, 0.0],
            [10.0, 10.0],
            [5.0, 5.5],
            [0.0, 10.0],
            [0.0, 0.0],
        ],
        vec![[3.0, 2.0], [7.0, 2.0], [7.0, 4.0], [3.0, 4.0], [3.0, 2.0]],
    ]
}

#[test]
fn boundaries_count_as_inside_and_holes_as_outside() {
    let f = polygon(1, &donut());
    for (p, inside) in [
        ([2.0, 5.0], true),   // in the ring
        ([5.0, 3.0], false),  // in the hole
        ([5.0, 0.0], true),   // on the outer edge
        ([10.0, 10.0], true), // on a vertex
        ([0.0, 0.0], true),   // on the closing vertex
        ([5.0, 5.5], true),   // on the concave vertex
        ([7.5, 7.75], true),  // on the slanted edge (10,10)–(5,5.5)
        ([3.0, 3.0], true),   // on the hole's edge
        ([7.0, 4.0], true),   // on the hole's corner
        ([5.0, 7.0], false),  // in the notch
        ([5.0, 5.50001], false),
        ([10.0, 10.5], false), // above the vertex, level with nothing
        ([-0.1, 0.0], false),  // level with the bottom edge, left of it
    ] {
        assert_eq!(f.contains(ll(p[0], p[1])), inside, "{p:?}");
        assert!(geo_polygon(&donut()).intersects(&geo::coord! {x: p[0], y: p[1]}) == inside);
    }
}

#[test]
fn multipolygons_hold_the_points_of_any_part() {
    let f = multi(
        1,
        &[
            vec![square(20.0, 0.0, 2.0)],
            vec![vec![[30.0, 0.0], [34.0, 0.0], [32.0, 3.0], [30.0, 0.0]]],
        ],
    );
    assert_eq!(f.bounds().len(), 2);
    for (p, inside) in [
        ([21.0, 1.0], true),
        ([32.0, 1.0], true),
        ([31.0, 1.5], true),  // on the triangle's edge
        ([22.0, 2.0], true),  // on the square's corner
        ([26.0, 1.0], false), // between the parts
        ([29.0, 1.5], false), // left of the triangle, level with both
    ] {
        assert_eq!(f.contains(ll(p[0], p[1])), inside, "{p:?}");
    }
}

/// Points just inside and just outside each circle on 72 bearings, against Karney.
fn check_circle(f: &CompiledFence, lon: f64, lat: f64, r: f64) {
    let g = Geodesic::wgs84();
    for i in 0..72 {
        for (d, inside) in [(r - 0.5, true), (r + 0.5, false), (0.0, true)] {
            let (plat, plon): (f64, f64) = g.direct(lat, lon, f64::from(i) * 5.0, d);
            let p = ll(plon, plat);
            assert_eq!(f.contains(p), inside, "{plon},{plat} at {d} of {r}");
            assert_eq!(f.contains(p), distance_m(lat, lon, plat, plon) <= r);
            let sd = f.signed_distance_m(p, 100.0);
            assert!((sd - (r - d)).abs() < 1e-6, "{sd} vs {}", r - d);
        }
    }
}

#[test]
fn circles_are_geodesic_at_78_north_and_across_the_antimeridian() {
    let svalbard = circle(1, 15.6, 78.2, 5_000.0);
    check_circle(&svalbard, 15.6, 78.2, 5_000.0);
    let fiji = circle(2, 179.99, -17.8, 5_000.0);
    check_circle(&fiji, 179.99, -17.8, 5_000.0);
    assert_eq!(fiji.bounds().len(), 2, "{:?}", fiji.bounds());

    // Found from both sides of 180° through the index, and not from farther away.
    let index = FenceIndex::from_fences([Arc::new(svalbard), Arc::new(fiji)]);
    let id = Uuid::from_u128(2);
    assert_eq!(holding(&index, ll(-179.999, -17.8)), vec![id]);
    assert_eq!(holding(&index, ll(179.999, -17.8)), vec![id]);
    assert_eq!(holding(&index, ll(180.0, -17.8)), vec![id]);
    assert_eq!(holding(&index, ll(-180.0, -17.8)), vec![id]);
    assert!(holding(&index, ll(-179.9, -17.8)).is_empty());
    // 15.6°E, 78.2°N: ~22.7 km per degree of longitude; 0.2° east is ~4.5 km, 0.25° ~5.7 km.
    assert_eq!(holding(&index, ll(15.8, 78.2)), vec![Uuid::from_u128(1)]);
    assert!(holding(&index, ll(15.85, 78.2)).is_empty());
}

#[test]
fn banded_large_polygon_agrees_with_brute_force_on_random_vertex_and_midpoint_probes() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (c, r) = ([10.75, 59.91], 0.05);
    let rings = vec![
        star(&mut rng, c, r, 10_000),
        star(&mut rng, c, r * 0.3, 1_000),
    ];
    let f = polygon(1, &rings);
    assert!(f.bands() > 100, "{}", f.bands());
    let reference = geo_polygon(&rings);

    let mut probes: Vec<[f64; 2]> = (0..10_000)
        .map(|_| {
            let x = c[0] + (rng.next() - 0.5) * 2.2 * r / c[1].to_radians().cos();
            [x, c[1] + (rng.next() - 0.5) * 2.2 * r]
        })
        .collect();
    for ring in &rings {
        for w in ring.windows(2).step_by(7) {
            probes.push(w[0]);
            probes.push([(w[0][0] + w[1][0]) / 2.0, (w[0][1] + w[1][1]) / 2.0]);
        }
    }
    let (mut inside, mut boundary) = (0, 0);
    for p in probes {
        let q = geo::coord! {x: p[0], y: p[1]};
        let expected = reference.intersects(&q);
        assert_eq!(f.contains(ll(p[0], p[1])), expected, "{p:?}");
        inside += usize::from(expected);
        boundary += usize::from(
            reference.coordinate_position(&q) == geo::coordinate_position::CoordPos::OnBoundary,
        );
    }
    assert!(
        inside > 3_000 && boundary > 2_000,
        "{inside} inside, {boundary} on the boundary"
    );
}

/// A square of `side_m` metres centred at (lon, 60°N), in planar degrees: at 60°N a degree of
/// latitude is 111,412 m and one of longitude 55,799.5 m.
fn metre_square(lon: f64, side_m: f64) -> Ring {
    let (dlon, dlat, lat) = (side_m / 2.0 / 55_799.5, side_m / 2.0 / 111_412.0, 60.0);
    let (w, e, s, n) = (lon - dlon, lon + dlon, lat - dlat, lat + dlat);
    vec![[w, s], [e, s], [e, n], [w, n], [w, s]]
}

#[test]
fn chords_measure_the_hop_inside() {
    let (lon, lat) = (10.0, 60.0);
    let f = polygon(1, &[metre_square(lon, 100.0)]);
    let (a, b) = (ll(lon - 0.01, lat), ll(lon + 0.01, lat));
    let through = f.chord_inside_m(a, b);
    assert!((through - 100.0).abs() < 1.0, "{through}");
    let (a2, b2) = (ll(lon - 0.01, lat + 0.01), ll(lon + 0.01, lat + 0.01));
    assert_eq!(f.chord_inside_m(a2, b2), 0.0);
    // Starting inside: half the square.
    let half = f.chord_inside_m(ll(lon, lat), b);
    assert!((half - 50.0).abs() < 0.5, "{half}");

    let c = circle(2, lon, lat, 100.0);
    let across = c.chord_inside_m(a, b);
    assert!((across - 200.0).abs() < 1.0, "{across}");
    assert_eq!(c.chord_inside_m(a2, b2), 0.0);
    assert_eq!(c.chord_inside_m(ll(179.0, lat), ll(-179.0, lat)), 0.0);
}

#[test]
fn the_index_edits_one_fence_and_answers_each_fence_once() {
    let mut index = FenceIndex::default();
    // An L and a square in its notch: disjoint parts whose boxes overlap.
    let l_shape = vec![
        [0.0, 0.0],
        [2.0, 0.0],
        [2.0, 1.0],
        [1.0, 1.0],
        [1.0, 2.0],
        [0.0, 2.0],
        [0.0, 0.0],
    ];
    let m = multi(3, &[vec![l_shape], vec![square(1.2, 1.2, 0.5)]]);
    index.insert(Arc::new(polygon(1, &[square(0.0, 0.0, 1.0)])));
    index.insert(Arc::new(polygon(2, &[square(0.5, 0.5, 1.0)])));
    let ids = |v: &[u128]| v.iter().map(|i| Uuid::from_u128(*i)).collect::<Vec<_>>();
    assert_eq!(holding(&index, ll(0.75, 0.75)), ids(&[1, 2]));
    assert_eq!(holding(&index, ll(1.0, 1.0)), ids(&[1, 2]));
    assert_eq!(holding(&index, ll(0.25, 0.25)), ids(&[1]));

    // Replacing moves the fence; the old boxes are gone.
    index.insert(Arc::new(polygon(1, &[square(5.0, 5.0, 1.0)])));
    assert_eq!(index.len(), 2);
    assert_eq!(holding(&index, ll(0.25, 0.25)), ids(&[]));
    assert_eq!(holding(&index, ll(5.5, 5.5)), ids(&[1]));
    assert!(index.remove(Uuid::from_u128(1)) && !index.remove(Uuid::from_u128(1)));
    assert!(index.get(Uuid::from_u128(1)).is_none() && index.get(Uuid::from_u128(2)).is_some());
    assert!(holding(&index, ll(5.5, 5.5)).is_empty());

    // A multipolygon whose boxes overlap is reported once.
    index.insert(Arc::new(m));
    assert_eq!(holding(&index, ll(1.4, 1.4)), ids(&[2, 3]));
    let mut out = Vec::new();
    index.near(ll(1.4, 1.4), 30.0, &mut out);
    assert_eq!(out.iter().map(|f| f.id()).collect::<Vec<_>>(), ids(&[2, 3]));
}

#[test]
fn near_and_along_grow_boxes_by_metres_across_180_and_near_the_pole() {
    let g = Geodesic::wgs84();
    let seam = polygon(
        1,
        &[vec![
            [179.99, 10.0],
            [180.0, 10.0],
            [180.0, 10.1],
            [179.99, 10.0],
        ]],
    );
    let north = circle(2, 0.0, 89.99, 100.0);
    let index = FenceIndex::from_fences([Arc::new(seam), Arc::new(north)]);
    let found = |p: LatLon, m: f64| {
        let mut out = Vec::new();
        index.near(p, m, &mut out);
        out.iter().map(|f| f.id().as_u128()).collect::<Vec<_>>()
    };
    // 30 m east of 180° (across it) at 10.05°N, and 30 m + 1 mm beyond reach.
    let (lat, lon): (f64, f64) = g.direct(10.05, 180.0, 90.0, 29.0);
    assert_eq!(found(ll(lon, lat), 30.0), vec![1]);
    let (lat, lon): (f64, f64) = g.direct(10.05, 180.0, 90.0, 40.0);
    assert!(found(ll(lon, lat), 30.0).is_empty());
    // Near the pole, any longitude within reach: 1.5 km from the circle's centre over the pole.
    let (lat, lon): (f64, f64) = g.direct(89.99, 0.0, 0.0, 1_500.0);
    assert_eq!(found(ll(lon, lat), 1_500.0), vec![2]);

    let mut out = Vec::new();
    index.along(ll(-179.9, 10.05), ll(-179.99999, 10.05), 30.0, &mut out);
    assert_eq!(out.len(), 1);
    out.clear();
    index.along(ll(179.9, 10.05), ll(-179.9, 10.05), 30.0, &mut out);
    assert!(out.is_empty(), "a hop over more than 180° of longitude");
}

#[path = "distance_tests.rs"]
mod distance;
