//! Containment computed without PostGIS, to check the API against: ray casting for polygons
//! (planar lon/lat, as RFC 7946 edges are) and Vincenty's formulae on the WGS84 ellipsoid for
//! circles (accurate to well under a millimetre, far inside the tests' 5 m margins).

/// `[lon, lat]`.
pub type Pos = [f64; 2];

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

const A: f64 = 6_378_137.0;
const F: f64 = 1.0 / 298.257_223_563;
const B: f64 = A * (1.0 - F);

fn coefficients(cos2_alpha: f64) -> (f64, f64) {
    let u2 = cos2_alpha * (A * A - B * B) / (B * B);
    let a = 1.0 + u2 / 16384.0 * (4096.0 + u2 * (-768.0 + u2 * (320.0 - 175.0 * u2)));
    let b = u2 / 1024.0 * (256.0 + u2 * (-128.0 + u2 * (74.0 - 47.0 * u2)));
    (a, b)
}

fn delta_sigma(b: f64, sin_s: f64, cos_s: f64, cos_2sm: f64) -> f64 {
    b * sin_s
        * (cos_2sm
            + b / 4.0
                * (cos_s * (-1.0 + 2.0 * cos_2sm * cos_2sm)
                    - b / 6.0
                        * cos_2sm
                        * (-3.0 + 4.0 * sin_s * sin_s)
                        * (-3.0 + 4.0 * cos_2sm * cos_2sm)))
}

/// Geodesic distance in metres (Vincenty's inverse formula).
pub fn distance(p: Pos, q: Pos) -> f64 {
    let l = (q[0] - p[0] + 540.0).rem_euclid(360.0).to_radians() - std::f64::consts::PI;
    let u1 = ((1.0 - F) * p[1].to_radians().tan()).atan();
    let u2 = ((1.0 - F) * q[1].to_radians().tan()).atan();
    let (sin_u1, cos_u1, sin_u2, cos_u2) = (u1.sin(), u1.cos(), u2.sin(), u2.cos());
    let mut lambda = l;
    for _ in 0..200 {
        let (sin_l, cos_l) = lambda.sin_cos();
        let sin_s =
            ((cos_u2 * sin_l).powi(2) + (cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_l).powi(2)).sqrt();
        if sin_s == 0.0 {
            return 0.0;
        }
        let cos_s = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_l;
        let sigma = sin_s.atan2(cos_s);
        let sin_alpha = cos_u1 * cos_u2 * sin_l / sin_s;
        let cos2_alpha = 1.0 - sin_alpha * sin_alpha;
        let cos_2sm = if cos2_alpha == 0.0 {
            0.0
        } else {
            cos_s - 2.0 * sin_u1 * sin_u2 / cos2_alpha
        };
        let c = F / 16.0 * cos2_alpha * (4.0 + F * (4.0 - 3.0 * cos2_alpha));
        let next = l
            + (1.0 - c)
                * F
                * sin_alpha
                * (sigma + c * sin_s * (cos_2sm + c * cos_s * (-1.0 + 2.0 * cos_2sm * cos_2sm)));
        if (next - lambda).abs() < 1e-12 {
            let (a, b) = coefficients(cos2_alpha);
            return B * a * (sigma - delta_sigma(b, sin_s, cos_s, cos_2sm));
        }
        lambda = next;
    }
    panic!("Vincenty inverse did not converge for {p:?} → {q:?}")
}

/// The point `s` metres from `p` on initial bearing `bearing_deg` (Vincenty's direct formula),
/// longitude normalised to [-180, 180).
pub fn destination(p: Pos, bearing_deg: f64, s: f64) -> Pos {
    let (sin_a1, cos_a1) = bearing_deg.to_radians().sin_cos();
    let tan_u1 = (1.0 - F) * p[1].to_radians().tan();
    let cos_u1 = 1.0 / (1.0 + tan_u1 * tan_u1).sqrt();
    let sin_u1 = tan_u1 * cos_u1;
    let sigma1 = tan_u1.atan2(cos_a1);
    let sin_alpha = cos_u1 * sin_a1;
    let cos2_alpha = 1.0 - sin_alpha * sin_alpha;
    let (a, b) = coefficients(cos2_alpha);
    let mut sigma = s / (B * a);
    let (mut sin_s, mut cos_s, mut cos_2sm);
    loop {
        cos_2sm = (2.0 * sigma1 + sigma).cos();
        (sin_s, cos_s) = sigma.sin_cos();
        let next = s / (B * a) + delta_sigma(b, sin_s, cos_s, cos_2sm);
        if (next - sigma).abs() < 1e-12 {
            break;
        }
        sigma = next;
    }
    let x = sin_u1 * sin_s - cos_u1 * cos_s * cos_a1;
    let lat = (sin_u1 * cos_s + cos_u1 * sin_s * cos_a1)
        .atan2((1.0 - F) * (sin_alpha * sin_alpha + x * x).sqrt());
    let lambda = (sin_s * sin_a1).atan2(cos_u1 * cos_s - sin_u1 * sin_s * cos_a1);
    let c = F / 16.0 * cos2_alpha * (4.0 + F * (4.0 - 3.0 * cos2_alpha));
    let l = lambda
        - (1.0 - c)
            * F
            * sin_alpha
            * (sigma + c * sin_s * (cos_2sm + c * cos_s * (-1.0 + 2.0 * cos_2sm * cos_2sm)));
    let lon = (p[0] + l.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    [lon, lat.to_degrees()]
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
