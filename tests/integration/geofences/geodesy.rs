//! Containment computed without PostGIS, to check the API against: ray casting for polygons
//! (planar lon/lat, as RFC 7946 edges are) and, for circles, Vincenty's formulae on the WGS84
//! ellipsoid from `crate::geodesy` (accurate to well under a millimetre, far inside the tests'
//! 5 m margins).

pub use crate::geodesy::{destination, distance, Pos};

/// Whether `p` is inside a polygon (ring 0 outer, the rest holes) or on any of its edges.
pub fn covers(rings: &[Vec<Pos>], p: Pos) -> bool {
    if rings.iter().any(|r| on_boundary(r, p)) {
        return true;
    }
    // Even-odd over all rings: inside the outer ring and not inside a hole.
    rings.iter().filter(|r| crosses_odd(r, p)).count() % 2 == 1
}

pub fn covers_any(polygons: &[Vec<Vec<Pos>>], p: Pos) -> bool {
    polygons.iter().any(|rings| covers(rings, p))
}

/// A horizontal ray from `p` to +x crosses the ring an odd number of times.
fn crosses_odd(ring: &[Pos], p: Pos) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let ([x1, y1], [x2, y2]) = (w[0], w[1]);
        if (y1 > p[1]) != (y2 > p[1]) {
            let x = x1 + (p[1] - y1) * (x2 - x1) / (y2 - y1);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    inside
}

fn on_boundary(ring: &[Pos], p: Pos) -> bool {
    ring.windows(2).any(|w| {
        let ([x1, y1], [x2, y2]) = (w[0], w[1]);
        let cross = (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1);
        cross == 0.0
            && (x1.min(x2)..=x1.max(x2)).contains(&p[0])
            && (y1.min(y2)..=y1.max(y2)).contains(&p[1])
    })
}

/// Longitude east of `center_lon`, unwrapped across 180° (for finding a circle's extremes).
pub fn east_of(center_lon: f64, lon: f64) -> f64 {
    (lon - center_lon + 540.0).rem_euclid(360.0) - 180.0
}

#[test]
fn the_independent_geometry_agrees_with_itself() {
    let square = vec![vec![
        [0.0, 0.0],
        [4.0, 0.0],
        [4.0, 4.0],
        [0.0, 4.0],
        [0.0, 0.0],
    ]];
    assert!(
        covers(&square, [2.0, 2.0]) && covers(&square, [4.0, 2.0]) && covers(&square, [0.0, 0.0])
    );
    assert!(!covers(&square, [4.5, 2.0]) && !covers(&square, [-0.1, 0.0]));
    // London → Paris on WGS84 is 343,923.1 m; round trips through direct and inverse hold to a millimetre.
    let (london, paris) = ([-0.1278, 51.5074], [2.3522, 48.8566]);
    assert!(
        (distance(london, paris) - 343_923.1).abs() < 1.0,
        "{}",
        distance(london, paris)
    );
    for (p, bearing, s) in [
        (london, 137.0, 10_000.0),
        ([15.6, 78.2], 80.0, 4_995.0),
        ([179.99, -17.8], 90.0, 5_005.0),
    ] {
        let q = destination(p, bearing, s);
        assert!(
            (distance(p, q) - s).abs() < 1e-3,
            "{p:?} {bearing} {s}: {q:?}"
        );
    }
    assert!(
        destination([179.99, -17.8], 90.0, 5_000.0)[0] < -179.9,
        "wraps past 180°"
    );
}
