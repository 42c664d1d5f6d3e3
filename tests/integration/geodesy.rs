//! Distances computed in the tests, independently of the code under test (which uses Karney's
//! algorithm via geographiclib) and of PostGIS: Vincenty's inverse formula on WGS84, accurate
//! to well under a millimetre for the non-antipodal distances the tests use. The direct formula
//! (`destination`) lets geofence tests place points a given distance from a circle's centre.

/// `[lon, lat]`.
pub type Pos = [f64; 2];

/// Geodesic distance in metres between two latitude/longitude pairs.
pub fn vincenty_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    distance([lon1, lat1], [lon2, lat2])
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

#[test]
fn vincenty_reproduces_known_distances() {
    // Flinders Peak → Buninyong, Vincenty's (1975) own worked example: 54 972.271 m.
    let d = vincenty_m(
        -37.951_033_417,
        144.424_867_889,
        -37.652_821_139,
        143.926_495_528,
    );
    assert!((d - 54_972.271).abs() < 0.01, "{d}");
    // One degree of longitude on the equator is a·π/180, also across 180°.
    let d = vincenty_m(0.0, 179.5, 0.0, -179.5);
    assert!((d - 111_319.490_793).abs() < 1e-3, "{d}");
}
