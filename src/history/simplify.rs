//! Line simplification with a tolerance in metres. Ramer–Douglas–Peucker (`geo`'s
//! `SimplifyIdx`) works in the plane of its coordinates, where a degree of longitude is not a
//! fixed length, so the track is first projected onto a local metric plane: an equirectangular
//! projection around the track's mean latitude (x = R·Δλ·cos φ₀, y = R·Δφ). Over the few
//! hundred kilometres a track spans its error is far below any sensible tolerance; longitudes
//! are unwrapped step by step, so a track across the antimeridian stays one line.

use geo::{Coord, LineString, SimplifyIdx};

/// Mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The indices of `lon_lat` to keep so no dropped point lies farther than `tolerance_m`
/// metres from the simplified line; always the first and the last, in order.
pub fn keep(lon_lat: &[(f64, f64)], tolerance_m: f64) -> Vec<usize> {
    if lon_lat.len() < 3 {
        return (0..lon_lat.len()).collect();
    }
    let mean_lat = lon_lat.iter().map(|p| p.1).sum::<f64>() / lon_lat.len() as f64;
    let x_scale = EARTH_RADIUS_M * mean_lat.to_radians().cos();
    let (mut lon, mut prev) = (0.0, lon_lat[0].0);
    let line: LineString<f64> = lon_lat
        .iter()
        .map(|&(raw_lon, lat)| {
            // The shortest way round from the previous point: ±180° jumps are crossings.
            let step = (raw_lon - prev + 540.0).rem_euclid(360.0) - 180.0;
            prev = raw_lon;
            lon += step;
            Coord {
                x: x_scale * lon.to_radians(),
                y: EARTH_RADIUS_M * (lat - mean_lat).to_radians(),
            }
        })
        .collect();
    line.simplify_idx(tolerance_m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metres per degree of latitude.
    const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

    /// A point `east_m`, `north_m` metres from (lon0, lat0).
    fn offset(lon0: f64, lat0: f64, east_m: f64, north_m: f64) -> (f64, f64) {
        (
            lon0 + east_m / (M_PER_DEG * lat0.to_radians().cos()),
            lat0 + north_m / M_PER_DEG,
        )
    }

    #[test]
    fn a_straight_line_with_one_metre_of_noise_collapses_to_its_ends_at_5_m() {
        // 2 km due east, a point every 20 m, wobbling ±1 m north and south.
        let line: Vec<_> = (0..=100)
            .map(|i| {
                let wobble = if i % 2 == 0 { 1.0 } else { -1.0 };
                offset(-73.98, 40.75, 20.0 * i as f64, wobble)
            })
            .collect();
        assert_eq!(keep(&line, 5.0), vec![0, 100]);
        assert!(keep(&line, 0.5).len() > 50, "below the noise, points stay");
    }

    #[test]
    fn a_right_angle_corner_survives() {
        let mut line: Vec<_> = (0..=50)
            .map(|i| offset(13.4, 52.5, 20.0 * i as f64, 0.0))
            .collect();
        line.extend((1..=50).map(|i| offset(13.4, 52.5, 1000.0, 20.0 * i as f64)));
        assert_eq!(keep(&line, 5.0), vec![0, 50, 100]);
    }

    #[test]
    fn metres_hold_at_60_degrees_north() {
        // A 1 km east-west line with its middle point 8 m north: kept at 5 m, dropped at 10 m.
        // In raw degrees the 8 m would compare against longitudes twice as long as at the
        // equator; in metres it is 8 m at any latitude.
        for lat in [0.0, 60.0] {
            let line = [
                offset(10.0, lat, 0.0, 0.0),
                offset(10.0, lat, 500.0, 8.0),
                offset(10.0, lat, 1000.0, 0.0),
            ];
            assert_eq!(keep(&line, 5.0), vec![0, 1, 2], "at {lat}°");
            assert_eq!(keep(&line, 10.0), vec![0, 2], "at {lat}°");
        }
        // And a 8 m sideways step east-west at 60°N: a degree of longitude is ~55.6 km there.
        let line = [
            offset(10.0, 60.0, 0.0, 0.0),
            offset(10.0, 60.0, 8.0, 500.0),
            offset(10.0, 60.0, 0.0, 1000.0),
        ];
        assert_eq!(keep(&line, 5.0), vec![0, 1, 2]);
        assert_eq!(keep(&line, 10.0), vec![0, 2]);
    }

    #[test]
    fn a_track_across_the_antimeridian_is_one_line() {
        let line = [(179.999, -17.0), (-179.9995, -17.0), (-179.999, -17.0)];
        assert_eq!(keep(&line, 5.0), vec![0, 2]);
    }

    #[test]
    fn short_tracks_are_kept_whole() {
        assert_eq!(keep(&[], 5.0), Vec::<usize>::new());
        assert_eq!(keep(&[(1.0, 2.0)], 5.0), vec![0]);
        assert_eq!(keep(&[(1.0, 2.0), (1.0, 2.0)], 5.0), vec![0, 1]);
    }
}
