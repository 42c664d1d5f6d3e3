//! Distances on the WGS84 ellipsoid, and the bound that lets a Euclidean index find them.
//!
//! Positions are indexed as unit vectors of their geodetic normal (x, y, z), so neighbours
//! across the antimeridian or over a pole are neighbours in the index too: there is no seam.
//! The index orders by chord length, i.e. by the angle θ between the two normals. Along any
//! curve on the ellipsoid the normal turns at most 1/M_min radians per metre, where M_min =
//! a(1 − e²) is the smallest radius of curvature (meridional, at the equator). So the true
//! geodesic distance d ≥ M_min·θ: a rigorous lower bound that tells the search when no
//! farther candidate can still beat the ones it holds. Exact distances are Karney's.

use geographiclib_rs::{Geodesic, InverseGeodesic};
use std::sync::OnceLock;

/// a(1 − e²) for WGS84, rounded down: 6 378 137 m × (1 − 0.006 694 379 990 14).
const MIN_RADIUS_OF_CURVATURE_M: f64 = 6_335_439.0;

fn wgs84() -> &'static Geodesic {
    static G: OnceLock<Geodesic> = OnceLock::new();
    G.get_or_init(Geodesic::wgs84)
}

/// Geodesic distance in metres on WGS84 (Karney's algorithm, the one PostGIS uses for
/// `geography`), accurate to nanometres.
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    wgs84().inverse(lat1, lon1, lat2, lon2)
}

/// The unit normal of the ellipsoid at a geodetic latitude/longitude.
pub fn unit_normal(lat: f64, lon: f64) -> [f64; 3] {
    let (sin_lat, cos_lat) = lat.to_radians().sin_cos();
    let (sin_lon, cos_lon) = lon.to_radians().sin_cos();
    [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat]
}

/// The least geodesic distance two points can be apart when their unit normals are
/// `chord_2.sqrt()` apart.
pub fn lower_bound_m(chord_2: f64) -> f64 {
    let half_chord = (chord_2.sqrt() / 2.0).min(1.0);
    MIN_RADIUS_OF_CURVATURE_M * 2.0 * half_chord.asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chord_2(a: [f64; 3], b: [f64; 3]) -> f64 {
        (0..3).map(|i| (a[i] - b[i]).powi(2)).sum()
    }

    #[test]
    fn known_distances() {
        // Berkeley → Port Moresby, GeographicLib's own example.
        let d = distance_m(37.87622, -122.23558, -9.4047, 147.1597);
        assert!((d - 10_700_471.955_233_702).abs() < 1e-3, "{d}");
        // One degree of longitude at the equator: a·π/180.
        let d = distance_m(0.0, 179.5, 0.0, -179.5);
        assert!((d - 111_319.490_793).abs() < 1e-3, "{d}");
    }

    #[test]
    fn the_bound_never_exceeds_the_true_distance_anywhere() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for i in 0..20_000 {
            let (lat1, lon1) = (next() * 180.0 - 90.0, next() * 360.0 - 180.0);
            // Half the pairs close together (where the ellipsoid's shape matters most).
            let spread = if i % 2 == 0 { 0.05 } else { 180.0 };
            let lat2 = (lat1 + (next() - 0.5) * spread).clamp(-90.0, 90.0);
            let lon2 = lon1 + (next() - 0.5) * spread;
            let d = distance_m(lat1, lon1, lat2, lon2);
            let bound = lower_bound_m(chord_2(unit_normal(lat1, lon1), unit_normal(lat2, lon2)));
            assert!(
                bound <= d + 1e-6,
                "({lat1},{lon1})→({lat2},{lon2}): {bound} > {d}"
            );
            // And it is tight enough to prune: within 1.5% of the truth.
            assert!(
                bound >= d * 0.985 - 1e-6,
                "({lat1},{lon1})→({lat2},{lon2}): {bound} ≪ {d}"
            );
        }
    }
}
