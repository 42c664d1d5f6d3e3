//! A WGS84 position. Latitude and longitude are range-checked and finite, so every
//! `LatLon` can be encoded as EWKB and compared geodesically without further checks.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatLon {
    lat: f64,
    lon: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("latitude is not a finite number")]
    LatNotFinite,
    #[error("longitude is not a finite number")]
    LonNotFinite,
    #[error("latitude must be within [-90, 90]")]
    LatOutOfRange,
    #[error("longitude must be within [-180, 180]")]
    LonOutOfRange,
}

impl LatLon {
    pub fn new(lat: f64, lon: f64) -> Result<Self, PositionError> {
        if !lat.is_finite() {
            return Err(PositionError::LatNotFinite);
        }
        if !lon.is_finite() {
            return Err(PositionError::LonNotFinite);
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(PositionError::LatOutOfRange);
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(PositionError::LonOutOfRange);
        }
        Ok(Self { lat, lon })
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lon(self) -> f64 {
        self.lon
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_corners_of_the_world() {
        for (lat, lon) in [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0), (69.65, 18.96)] {
            let p = LatLon::new(lat, lon).unwrap();
            assert_eq!((p.lat(), p.lon()), (lat, lon));
        }
    }

    #[test]
    fn rejects_out_of_range_and_non_finite() {
        assert_eq!(LatLon::new(90.0001, 0.0), Err(PositionError::LatOutOfRange));
        assert_eq!(LatLon::new(0.0, -180.5), Err(PositionError::LonOutOfRange));
        assert_eq!(LatLon::new(f64::NAN, 0.0), Err(PositionError::LatNotFinite));
        assert_eq!(
            LatLon::new(0.0, f64::INFINITY),
            Err(PositionError::LonNotFinite)
        );
    }
}
