//! The in-memory fence index against PostGIS itself: ~300 random fences (polygons with holes,
//! MultiPolygons, circles, one at 78° N and some across 180°) created over HTTP, the same bodies
//! compiled into a `FenceIndex` under the ids the API returned, and every fence holding each of
//! ~2,000 random points, plus vertices, edge midpoints and points along edges, must be the same
//! set both ways.

use std::collections::BTreeSet;
use std::f64::consts::TAU;
use std::sync::Arc;

use meridian::domain::geofence::Fence;
use meridian::domain::{LatLon, Role};
use meridian::geofencing::{CompiledFence, FenceIndex};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{create, feature};
use crate::helpers::{spawn_app, TestApp};

type Ring = Vec<[f64; 2]>;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn within(&mut self, west: f64, south: f64, east: f64, north: f64) -> [f64; 2] {
        [
            west + (east - west) * self.next(),
            south + (north - south) * self.next(),
        ]
    }
}

/// Oslo, where most fences are and overlap.
const CITY: [f64; 4] = [10.6, 59.85, 10.9, 59.97];
const SVALBARD: [f64; 2] = [15.6, 78.2];
const FIJI: [f64; 2] = [179.99, -17.8];

/// Coordinates on a 2⁻²⁴° grid (~7 mm): edge midpoints are then exactly on their edge, so they
/// test the boundary rule rather than rounding in the last bit.
fn snap(v: f64) -> f64 {
    (v * 16_777_216.0).round() / 16_777_216.0
}

/// A closed star-shaped ring (simple by construction), radii in [0.7, 1]·r degrees of
/// latitude, round on the ground.
fn star(rng: &mut Rng, c: [f64; 2], r: f64, n: usize) -> Ring {
    let stretch = 1.0 / c[1].to_radians().cos();
    let mut ring: Ring = (0..n)
        .map(|i| {
            let angle = (i as f64 + 0.3 * rng.next()) / n as f64 * TAU;
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

/// A polygon, with a hole (a star within the shell's inscribed circle) every third time.
fn star_polygon(rng: &mut Rng, c: [f64; 2], r: f64, k: usize) -> Vec<Ring> {
    let n = 8 + (rng.next() * 32.0) as usize;
    let mut rings = vec![star(rng, c, r, n)];
    if k.is_multiple_of(3) {
        rings.push(star(rng, c, r * 0.3, 5 + k % 7));
    }
    rings
}

/// A fence split at 180°: a part east of it and one west, sharing the seam.
fn split_at_180(south: f64, north: f64) -> Value {
    let east = vec![
        [179.98, south],
        [180.0, south],
        [180.0, north],
        [179.985, north],
        [179.98, south],
    ];
    let west = vec![
        [-180.0, south],
        [-179.97, south + 0.005],
        [-179.975, north],
        [-180.0, north],
        [-180.0, south],
    ];
    json!({"type": "MultiPolygon", "coordinates": [[east], [west]]})
}

/// The request bodies, in the order they are created.
fn bodies(rng: &mut Rng) -> Vec<Value> {
    let mut out = Vec::new();
    for k in 0..200 {
        let c = rng.within(CITY[0], CITY[1], CITY[2], CITY[3]);
        let r = 0.002 + 0.02 * rng.next();
        let rings = star_polygon(rng, c, r, k);
        out.push(feature(
            "p",
            json!({"type": "Polygon", "coordinates": rings}),
        ));
    }
    for k in 0..50 {
        let c = rng.within(CITY[0], CITY[1], CITY[2], CITY[3]);
        let r = 0.002 + 0.008 * rng.next();
        let parts: Vec<Vec<Ring>> = (0..2 + k % 2)
            .map(|i| {
                let at = [c[0] + 3.2 * r * i as f64 * 2.0, c[1]];
                star_polygon(rng, at, r, k + i)
            })
            .collect();
        out.push(feature(
            "m",
            json!({"type": "MultiPolygon", "coordinates": parts}),
        ));
    }
    for _ in 0..40 {
        let c = rng.within(CITY[0], CITY[1], CITY[2], CITY[3]);
        let radius_m = 100.0 + 1_900.0 * rng.next();
        out.push(json!({"name": "c", "center": c, "radius_m": radius_m}));
    }
    out.push(json!({"name": "svalbard", "center": SVALBARD, "radius_m": 5_000.0}));
    out.push(json!({"name": "fiji", "center": FIJI, "radius_m": 5_000.0}));
    out.push(feature("seam", split_at_180(-17.83, -17.79)));
    out.push(feature("seam2", split_at_180(-17.81, -17.77)));
    for k in 0..6 {
        let c = rng.within(15.2, 78.15, 16.0, 78.25);
        let r = 0.01 + 0.02 * rng.next();
        let rings = star_polygon(rng, c, r, k);
        out.push(feature(
            "arctic",
            json!({"type": "Polygon", "coordinates": rings}),
        ));
    }
    out
}

/// Random points where the fences are, and on their boundaries: every vertex, every edge's
/// midpoint, and a point part-way along each edge (off it by rounding, or not).
fn probes(rng: &mut Rng, bodies: &[Value]) -> Vec<[f64; 2]> {
    let mut out: Vec<[f64; 2]> = (0..1_600)
        .map(|_| rng.within(CITY[0], CITY[1], CITY[2], CITY[3]))
        .collect();
    out.extend((0..200).map(|_| rng.within(15.3, 78.14, 15.9, 78.26)));
    out.extend((0..100).map(|_| rng.within(179.9, -17.9, 180.0, -17.7)));
    out.extend((0..100).map(|_| rng.within(-180.0, -17.9, -179.9, -17.7)));
    for body in bodies.iter().step_by(3) {
        let Some(geometry) = body.get("geometry") else {
            continue;
        };
        let rings: Vec<Ring> = match geometry["type"].as_str() {
            Some("Polygon") => serde_json::from_value(geometry["coordinates"].clone()).unwrap(),
            _ => serde_json::from_value::<Vec<Vec<Ring>>>(geometry["coordinates"].clone())
                .unwrap()
                .concat(),
        };
        for w in rings.iter().flat_map(|r| r.windows(2)) {
            let t = rng.next();
            out.push(w[0]);
            out.push([(w[0][0] + w[1][0]) / 2.0, (w[0][1] + w[1][1]) / 2.0]);
            out.push([
                w[0][0] + t * (w[1][0] - w[0][0]),
                w[0][1] + t * (w[1][1] - w[0][1]),
            ]);
        }
    }
    out
}

/// PostGIS' answer for every point at once, with the predicate `store::geofences` uses.
async fn postgis_containing(app: &TestApp, points: &[[f64; 2]]) -> Vec<BTreeSet<Uuid>> {
    let (lons, lats): (Vec<f64>, Vec<f64>) = points.iter().map(|p| (p[0], p[1])).unzip();
    let p = "ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326)";
    let sql = format!(
        "SELECT q.i, f.id FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS q(lon, lat, i) \
         JOIN geofences f ON f.bounds && {p} AND \
         CASE f.kind WHEN 'polygon' THEN ST_Intersects(f.geom, {p}) \
         ELSE ST_DWithin(f.center::geography, {p}::geography, f.radius_m) END"
    );
    let rows = app.db.query(&sql, &[&lons, &lats]).await.unwrap();
    let mut out = vec![BTreeSet::new(); points.len()];
    for row in rows {
        let i: i64 = row.get(0);
        out[i as usize - 1].insert(row.get::<_, Uuid>(1));
    }
    out
}

#[tokio::test]
async fn the_fence_index_holds_exactly_the_points_postgis_says_each_fence_holds() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let bodies = bodies(&mut rng);
    // The index gets the bodies as the API reads them: parsed from the JSON text. (serde_json,
    // built without `float_roundtrip`, can read a 17-digit coordinate 1 ulp off the double
    // that printed it; the API then stores that neighbour, so the index must too, and the
    // vertices probed below are the stored ones.)
    let bodies: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_str(&b.to_string()).unwrap())
        .collect();
    let mut compiled = Vec::new();
    for body in &bodies {
        let id: Uuid = create(&desk, body.clone()).await.parse().unwrap();
        let fence = Fence::from_json(body.clone()).unwrap();
        compiled.push(Arc::new(CompiledFence::new(id, fence.shape())));
    }
    let index = FenceIndex::from_fences(compiled);
    assert_eq!(index.len(), bodies.len());

    let points = probes(&mut rng, &bodies);
    let expected = postgis_containing(&app, &points).await;
    let mut mismatches = Vec::new();
    let mut hits = 0;
    for (p, want) in points.iter().zip(&expected) {
        let got: Vec<Uuid> = index
            .containing(LatLon::new(p[1], p[0]).unwrap())
            .iter()
            .map(|f| f.id())
            .collect();
        if got.iter().copied().collect::<BTreeSet<_>>() != *want {
            mismatches.push(format!("{p:?}: index {got:?}, PostGIS {want:?}"));
        }
        hits += want.len();
    }
    println!("{} points, {hits} (point, fence) hits", points.len());
    assert!(
        mismatches.is_empty(),
        "{} of {} points differ:\n{}",
        mismatches.len(),
        points.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    assert!(
        points.len() > 3_000 && hits > 2_000,
        "{} points, {hits} hits",
        points.len()
    );
}
