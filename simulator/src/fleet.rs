//! Vehicle motion model: each vehicle drives towards random waypoints inside a circular area,
//! accelerating and braking, stopping now and then, burning fuel and refuelling.
//!
//! Plausible rather than exact: an equirectangular step is accurate to well under a metre
//! over the few metres a vehicle moves between points, and cheap enough for >100k points/s.

use meridian::domain::LatLon;
use rand::Rng;

/// Metres per degree of latitude (and of longitude at the equator).
const M_PER_DEG: f64 = 111_320.0;
const MAX_SPEED_KMH: f64 = 90.0;
/// Comfortable car acceleration and braking, m/s².
const ACCEL_MS2: f64 = 2.0;
const BRAKE_MS2: f64 = 3.5;
/// Degrees per second; a vehicle turns gradually instead of snapping to the next bearing.
const TURN_RATE_DEG_S: f64 = 35.0;
/// Waypoint reached within this many metres.
const ARRIVAL_M: f64 = 30.0;
/// Tank of ~70 l at ~10 l/100 km: about 0.14 % per km, plus a trickle while idling.
const FUEL_PCT_PER_KM: f64 = 0.14;
const FUEL_PCT_PER_IDLE_S: f64 = 0.0003;
const REFUEL_BELOW_PCT: f64 = 5.0;
const REFUEL_STOP_S: f64 = 180.0;
/// One step is capped so a long pause between points (e.g. a slow --rate) does not teleport a vehicle.
const MAX_STEP_S: f64 = 5.0;

/// The circle vehicles stay in.
#[derive(Debug, Clone, Copy)]
pub struct Area {
    pub center: LatLon,
    pub radius_m: f64,
}

impl Area {
    pub fn new(center: LatLon, radius_km: f64) -> Self {
        Self {
            center,
            radius_m: radius_km * 1000.0,
        }
    }

    /// Uniform over the disc (sqrt keeps the density flat instead of piling up at the centre).
    pub fn random_point(&self, rng: &mut impl Rng) -> LatLon {
        let r = self.radius_m * rng.random::<f64>().sqrt();
        let bearing = rng.random_range(0.0..360.0);
        offset(self.center, bearing, r).unwrap_or(self.center)
    }
}

/// Moves `from` by `dist_m` metres along `heading_deg`; `Err` if that leaves the globe's ranges.
pub fn offset(
    from: LatLon,
    heading_deg: f64,
    dist_m: f64,
) -> Result<LatLon, meridian::domain::PositionError> {
    let h = heading_deg.to_radians();
    let lat = from.lat() + dist_m * h.cos() / M_PER_DEG;
    let lon = from.lon() + dist_m * h.sin() / (M_PER_DEG * from.lat().to_radians().cos().max(1e-6));
    LatLon::new(lat, lon)
}

/// Equirectangular distance (metres) and bearing (degrees, 0 = north, clockwise) from `a` to `b`.
pub fn distance_bearing(a: LatLon, b: LatLon) -> (f64, f64) {
    let mean_lat = ((a.lat() + b.lat()) / 2.0).to_radians();
    let dx = (b.lon() - a.lon()) * M_PER_DEG * mean_lat.cos();
    let dy = (b.lat() - a.lat()) * M_PER_DEG;
    (dx.hypot(dy), dx.atan2(dy).to_degrees().rem_euclid(360.0))
}

/// One vehicle's physical state; the values a telemetry point reports.
#[derive(Debug, Clone)]
pub struct Vehicle {
    pub position: LatLon,
    pub heading_deg: f64,
    pub speed_kmh: f64,
    pub fuel_pct: f64,
    pub rpm: f64,
    pub coolant_c: f64,
    waypoint: LatLon,
    cruise_kmh: f64,
    /// Seconds left standing still (traffic light, delivery, refuelling).
    stop_left_s: f64,
    refuelling: bool,
}

impl Vehicle {
    pub fn spawn(area: &Area, rng: &mut impl Rng) -> Self {
        let position = area.random_point(rng);
        let waypoint = area.random_point(rng);
        let (_, heading_deg) = distance_bearing(position, waypoint);
        Self {
            position,
            heading_deg,
            speed_kmh: 0.0,
            fuel_pct: rng.random_range(20.0..100.0),
            rpm: 800.0,
            // Some engines start cold, most are already warm.
            coolant_c: rng.random_range(20.0..92.0),
            waypoint,
            cruise_kmh: rng.random_range(25.0..MAX_SPEED_KMH),
            stop_left_s: rng.random_range(0.0..20.0),
            refuelling: false,
        }
    }

    /// Advances the vehicle by `dt_s` seconds of driving.
    pub fn step(&mut self, area: &Area, dt_s: f64, rng: &mut impl Rng) {
        let dt = dt_s.clamp(0.0, MAX_STEP_S);
        if dt == 0.0 {
            return;
        }
        let (dist, bearing) = distance_bearing(self.position, self.waypoint);
        if dist < ARRIVAL_M && self.stop_left_s <= 0.0 {
            self.next_leg(area, rng);
        }
        if self.fuel_pct < REFUEL_BELOW_PCT && !self.refuelling {
            self.refuelling = true;
            self.stop_left_s = REFUEL_STOP_S;
        }

        let target_kmh = if self.stop_left_s > 0.0 {
            0.0
        } else {
            // Slow down for the last stretch and for sharp turns, as a driver would.
            let turn = angle_diff(bearing, self.heading_deg).abs();
            let approach = (dist / 150.0).clamp(0.2, 1.0);
            self.cruise_kmh * approach * if turn > 60.0 { 0.4 } else { 1.0 }
        };
        let v = self.speed_kmh / 3.6;
        let target = target_kmh / 3.6;
        let v_new = if target > v {
            (v + ACCEL_MS2 * dt).min(target)
        } else {
            (v - BRAKE_MS2 * dt).max(target)
        };
        let accelerating = v_new > v;
        self.speed_kmh = (v_new * 3.6).clamp(0.0, MAX_SPEED_KMH);

        if self.speed_kmh > 0.0 {
            let max_turn = TURN_RATE_DEG_S * dt;
            let turn = angle_diff(bearing, self.heading_deg).clamp(-max_turn, max_turn);
            self.heading_deg = (self.heading_deg + turn).rem_euclid(360.0);
            let moved_m = (v + v_new) / 2.0 * dt;
            if let Ok(p) = offset(self.position, self.heading_deg, moved_m) {
                self.position = p;
            }
            self.fuel_pct -= FUEL_PCT_PER_KM * moved_m / 1000.0;
        } else {
            self.stop_left_s -= dt;
            if self.refuelling && self.stop_left_s <= 0.0 {
                self.fuel_pct = 100.0;
                self.refuelling = false;
            }
        }
        self.fuel_pct = (self.fuel_pct - FUEL_PCT_PER_IDLE_S * dt).clamp(0.0, 100.0);
        self.update_engine(dt, accelerating, rng);
    }

    fn next_leg(&mut self, area: &Area, rng: &mut impl Rng) {
        self.waypoint = area.random_point(rng);
        self.cruise_kmh = rng.random_range(25.0..MAX_SPEED_KMH);
        // About a third of arrivals are deliveries or lights: stand still for a while.
        if rng.random_bool(0.35) {
            self.stop_left_s = rng.random_range(5.0..120.0);
        }
    }

    fn update_engine(&mut self, dt: f64, accelerating: bool, rng: &mut impl Rng) {
        // A five-speed box: rpm climbs within a gear band and drops at each shift.
        let rpm = if self.speed_kmh < 1.0 {
            800.0
        } else {
            let band = (self.speed_kmh / 20.0).floor().min(4.0);
            let in_gear = self.speed_kmh - band * 20.0;
            1200.0 + in_gear * 80.0 + band * 150.0 + if accelerating { 400.0 } else { 0.0 }
        };
        self.rpm = (rpm + rng.random_range(-40.0..40.0)).clamp(600.0, 6000.0);
        // Warms towards a thermostat-held 90 °C with a few minutes' time constant.
        let target = 90.0 + if self.rpm > 3000.0 { 4.0 } else { 0.0 };
        self.coolant_c += (target - self.coolant_c) * (dt / 240.0).min(1.0);
    }
}

/// Signed smallest rotation from `from` to `to`, in (-180, 180].
fn angle_diff(to: f64, from: f64) -> f64 {
    let d = (to - from).rem_euclid(360.0);
    if d > 180.0 {
        d - 360.0
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    fn nyc() -> Area {
        Area::new(LatLon::new(40.7128, -74.0060).unwrap(), 5.0)
    }

    #[test]
    fn random_points_fall_inside_the_area() {
        let area = nyc();
        let mut rng = SmallRng::seed_from_u64(1);
        for _ in 0..10_000 {
            let (d, _) = distance_bearing(area.center, area.random_point(&mut rng));
            assert!(d <= area.radius_m * 1.001, "{d} m from centre");
        }
    }

    #[test]
    fn bearing_points_the_way_offset_moves() {
        let a = LatLon::new(59.9, 10.7).unwrap();
        for heading in [0.0, 45.0, 90.0, 200.0, 359.0] {
            let b = offset(a, heading, 500.0).unwrap();
            let (d, h) = distance_bearing(a, b);
            assert!((d - 500.0).abs() < 1.0, "distance {d}");
            assert!(
                angle_diff(h, heading).abs() < 0.5,
                "heading {heading} came back as {h}"
            );
        }
    }

    #[test]
    fn driving_for_hours_stays_in_the_area_with_values_in_range() {
        let area = nyc();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut fleet: Vec<Vehicle> = (0..20).map(|_| Vehicle::spawn(&area, &mut rng)).collect();
        // A few nearly empty tanks so the refuelling stop happens within the test.
        for v in fleet.iter_mut().take(3) {
            v.fuel_pct = 6.0;
        }
        let (mut moved, mut stood, mut refuelled) = (0, 0, 0);
        for _ in 0..20_000 {
            for v in &mut fleet {
                let before = (v.position, v.fuel_pct);
                v.step(&area, 1.0, &mut rng);
                let (d, _) = distance_bearing(area.center, v.position);
                assert!(d <= area.radius_m + 500.0, "{d} m from centre");
                assert!((0.0..=MAX_SPEED_KMH).contains(&v.speed_kmh));
                assert!((0.0..360.0).contains(&v.heading_deg));
                assert!((0.0..=100.0).contains(&v.fuel_pct));
                assert!((600.0..=6000.0).contains(&v.rpm));
                assert!((0.0..=100.0).contains(&v.coolant_c));
                if v.position != before.0 {
                    moved += 1;
                    // Moving means the heading is the direction of travel.
                    let (_, h) = distance_bearing(before.0, v.position);
                    assert!(angle_diff(h, v.heading_deg).abs() < 1.0);
                } else {
                    stood += 1;
                }
                refuelled += usize::from(v.fuel_pct > before.1);
            }
        }
        assert!(
            moved > stood,
            "vehicles should mostly drive ({moved} moving vs {stood} standing)"
        );
        assert!(stood > 1000, "vehicles should stop now and then");
        assert!(
            refuelled >= 3,
            "nearly empty tanks should be refilled ({refuelled})"
        );
    }

    #[test]
    fn speed_changes_no_faster_than_a_car_can() {
        let area = nyc();
        let mut rng = SmallRng::seed_from_u64(3);
        let mut v = Vehicle::spawn(&area, &mut rng);
        for _ in 0..5_000 {
            let before = v.speed_kmh;
            v.step(&area, 0.5, &mut rng);
            let dv_ms = (v.speed_kmh - before).abs() / 3.6;
            assert!(
                dv_ms <= BRAKE_MS2 * 0.5 + 1e-9,
                "jumped {dv_ms} m/s in 0.5 s"
            );
        }
    }
}
