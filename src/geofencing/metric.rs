//! Metres and degrees near a point of the WGS84 ellipsoid: the local scale used to measure
//! distances to polygon edges, and the conservative degree margins the box index grows by.

/// WGS84 semi-major axis and first eccentricity squared.
const A_M: f64 = 6_378_137.0;
const E2: f64 = 0.006_694_379_990_14;
const M_PER_RAD_TO_DEG: f64 = std::f64::consts::PI / 180.0;
/// The fewest metres per degree of latitude anywhere, π/180 · a(1 − e²) (the meridian at the
/// equator), rounded down: dividing by it can only overstate a latitude margin.
const MIN_M_PER_DEG_LAT: f64 = 110_574.0;
/// π/180 · a, rounded down. The parallel's radius is N·cos φ with N ≥ a, so a·cos φ
/// understates metres per degree of longitude and overstates a longitude margin.
const MIN_M_PER_DEG_LON_AT_EQUATOR: f64 = 111_319.0;
/// Relative slack on margins, for rounding in the conversions above.
const SLACK: f64 = 1.01;

/// Metres per degree of longitude (`x`) and of latitude (`y`) at one latitude: the
/// ellipsoid's exact local scale (N·cos φ and M, the radii of the parallel and the meridian).
///
/// Measuring in this plane (an equirectangular projection centred at the point) is exact at
/// the centre and off by a relative error of about tan φ · Δφ (the parallel's scale changes
/// with latitude), plus the chord-vs-geodesic difference: for a point 500 m from an edge at
/// 60° N that is ~1.4·10⁻⁴, i.e. 7 cm. Fences are judged at a few hundred metres, so this is
/// far below GPS noise; at 5 km and 78° N it grows to ~0.4 % (20 m).
#[derive(Debug, Clone, Copy)]
pub(super) struct Scale {
    pub x: f64,
    pub y: f64,
}

impl Scale {
    pub fn at(lat: f64) -> Self {
        let (sin, cos) = lat.to_radians().sin_cos();
        let w2 = 1.0 - E2 * sin * sin;
        let n = A_M / w2.sqrt();
        let m = A_M * (1.0 - E2) / (w2 * w2.sqrt());
        Scale {
            x: n * cos.max(0.0) * M_PER_RAD_TO_DEG,
            y: m * M_PER_RAD_TO_DEG,
        }
    }
}

/// Longitude difference `to − from` in (−180, 180]: the short way round, so an edge on one
/// side of 180° is measured as near a point just across it.
pub(super) fn lon_delta(from: f64, to: f64) -> f64 {
    let d = to - from;
    if d > 180.0 {
        d - 360.0
    } else if d <= -180.0 {
        d + 360.0
    } else {
        d
    }
}

/// Degree margins `(dlon, dlat)` such that every point within `m` metres (geodesic) of a point
/// with latitude in `[south, north]` lies within `dlon`/`dlat` of it; `dlon` is `None` when
/// the margin reaches a pole or half the world and the box must span every longitude.
///
/// Latitude: a path of length m changes latitude by at most m / M_min. Longitude: along it
/// dλ/ds ≤ 1/(N cos φ) ≤ 1/(a cos φ_max), φ_max the most poleward latitude it can reach.
pub(super) fn margin_deg(m: f64, south: f64, north: f64) -> (Option<f64>, f64) {
    let m = m.max(0.0) * SLACK;
    let dlat = m / MIN_M_PER_DEG_LAT;
    let poleward = south.abs().max(north.abs()) + dlat;
    if poleward >= 89.999 {
        return (None, dlat);
    }
    let dlon = m / (MIN_M_PER_DEG_LON_AT_EQUATOR * poleward.to_radians().cos());
    (Some(dlon).filter(|d| *d < 180.0), dlat)
}
