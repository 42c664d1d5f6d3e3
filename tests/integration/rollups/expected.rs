//! What the rollup tables must hold, computed here from the raw points alone — no SQL, and
//! distances with Vincenty's inverse formula (PostGIS uses Karney's algorithm: an independent
//! check of `distance_m`).

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub struct Pt {
    pub vehicle: Uuid,
    pub ts: DateTime<Utc>,
    pub lon: f64,
    pub lat: f64,
    pub speed: Option<f64>,
    pub fuel: Option<f64>,
}

/// One rollup row, as the tables hold it (bounds aside).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub points: i32,
    pub speed_points: i32,
    pub avg_speed: Option<f64>,
    pub max_speed: Option<f64>,
    pub fuel_points: i32,
    pub avg_fuel: Option<f64>,
    pub min_fuel: Option<f64>,
    pub entry_m: f64,
    pub distance_m: f64,
    pub first_ts: DateTime<Utc>,
    pub last_ts: DateTime<Utc>,
    pub first: (f64, f64),
    pub last: (f64, f64),
}

pub type Rows = BTreeMap<(Uuid, DateTime<Utc>), Row>;

/// Hourly rows: buckets of one hour.
pub fn hourly(points: &[Pt]) -> Rows {
    rows(points, TimeDelta::hours(1))
}

/// Daily rows, straight from the points (not by summing the expected hourly rows).
pub fn daily(points: &[Pt]) -> Rows {
    rows(points, TimeDelta::days(1))
}

/// Every point contributes the step from the vehicle's previous point, except the first point
/// of an hour whose previous point lies more than a day before that hour starts.
fn rows(points: &[Pt], bucket: TimeDelta) -> Rows {
    let mut sorted = points.to_vec();
    sorted.sort_by_key(|p| (p.vehicle, p.ts));
    let mut out: Rows = BTreeMap::new();
    for (i, p) in sorted.iter().enumerate() {
        let prev = i
            .checked_sub(1)
            .map(|j| sorted[j])
            .filter(|q| q.vehicle == p.vehicle);
        let hour = trunc(p.ts, TimeDelta::hours(1));
        let step = match prev {
            Some(q) if q.ts >= hour || q.ts >= hour - TimeDelta::days(1) => {
                vincenty(q.lat, q.lon, p.lat, p.lon)
            }
            _ => 0.0,
        };
        let key = (p.vehicle, trunc(p.ts, bucket));
        let first_in_bucket = prev.is_none_or(|q| trunc(q.ts, bucket) != key.1);
        let row = out.entry(key).or_insert_with(|| Row {
            points: 0,
            speed_points: 0,
            avg_speed: None,
            max_speed: None,
            fuel_points: 0,
            avg_fuel: None,
            min_fuel: None,
            entry_m: step,
            distance_m: 0.0,
            first_ts: p.ts,
            last_ts: p.ts,
            first: (p.lon, p.lat),
            last: (p.lon, p.lat),
        });
        debug_assert!(!first_in_bucket || row.points == 0);
        row.points += 1;
        row.distance_m += step;
        row.last_ts = p.ts;
        row.last = (p.lon, p.lat);
        if let Some(s) = p.speed {
            row.speed_points += 1;
            row.avg_speed = Some(row.avg_speed.unwrap_or(0.0) + s); // a sum until `finish`
            row.max_speed = Some(row.max_speed.map_or(s, |m| m.max(s)));
        }
        if let Some(f) = p.fuel {
            row.fuel_points += 1;
            row.avg_fuel = Some(row.avg_fuel.unwrap_or(0.0) + f);
            row.min_fuel = Some(row.min_fuel.map_or(f, |m| m.min(f)));
        }
    }
    for row in out.values_mut() {
        row.avg_speed = row.avg_speed.map(|s| s / row.speed_points as f64);
        row.avg_fuel = row.avg_fuel.map(|s| s / row.fuel_points as f64);
    }
    out
}

fn trunc(ts: DateTime<Utc>, to: TimeDelta) -> DateTime<Utc> {
    ts.duration_trunc(to).unwrap()
}

/// Reads `telemetry_hourly` or `telemetry_daily` whole.
pub async fn read(db: &Client, table: &str) -> Rows {
    let sql = format!(
        "SELECT vehicle_id, bucket, points, speed_points, avg_speed_kmh, max_speed_kmh,
                fuel_points, avg_fuel_pct, min_fuel_pct, entry_m, distance_m, first_ts, last_ts,
                first_lon, first_lat, last_lon, last_lat FROM {table}"
    );
    db.query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let row = Row {
                points: r.get(2),
                speed_points: r.get(3),
                avg_speed: r.get(4),
                max_speed: r.get(5),
                fuel_points: r.get(6),
                avg_fuel: r.get(7),
                min_fuel: r.get(8),
                entry_m: r.get(9),
                distance_m: r.get(10),
                first_ts: r.get(11),
                last_ts: r.get(12),
                first: (r.get(13), r.get(14)),
                last: (r.get(15), r.get(16)),
            };
            ((r.get(0), r.get(1)), row)
        })
        .collect()
}

/// Asserts that the table holds exactly the expected rows: counts and times exactly, averages
/// to 1e-9 relative, distances to a millimetre per kilometre (Vincenty against Karney).
pub fn assert_rows_match(table: &str, got: &Rows, want: &Rows) {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{table}: {} rows missing (first {:?}), {} unexpected (first {:?})",
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first()
    );
    for (key, w) in want {
        let g = &got[key];
        let what = format!("{table} {key:?}");
        assert_eq!(
            (g.points, g.speed_points, g.fuel_points),
            (w.points, w.speed_points, w.fuel_points),
            "{what}: counts"
        );
        assert_eq!(
            (g.first_ts, g.last_ts),
            (w.first_ts, w.last_ts),
            "{what}: times"
        );
        // MQTT-borne coordinates may come back one ulp off (serde_json's float parsing is not
        // always correctly rounded): 1e-9° is a tenth of a millimetre.
        for (a, b) in [
            (g.first.0, w.first.0),
            (g.first.1, w.first.1),
            (g.last.0, w.last.0),
            (g.last.1, w.last.1),
        ] {
            assert!(
                (a - b).abs() < 1e-9,
                "{what}: first/last positions {g:?} != {w:?}"
            );
        }
        for (name, a, b) in [
            ("avg speed", g.avg_speed, w.avg_speed),
            ("max speed", g.max_speed, w.max_speed),
            ("avg fuel", g.avg_fuel, w.avg_fuel),
            ("min fuel", g.min_fuel, w.min_fuel),
        ] {
            match (a, b) {
                (Some(a), Some(b)) => assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    "{what}: {name} {a} != {b}"
                ),
                (a, b) => assert_eq!(a, b, "{what}: {name}"),
            }
        }
        for (name, a, b) in [
            ("entry_m", g.entry_m, w.entry_m),
            ("distance_m", g.distance_m, w.distance_m),
        ] {
            assert!(
                (a - b).abs() <= 1e-3 + 1e-6 * b,
                "{what}: {name} {a} m != {b} m (Vincenty)"
            );
        }
    }
}

/// Vincenty's inverse formula on WGS84, in metres.
pub fn vincenty(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (a, f) = (6_378_137.0_f64, 1.0 / 298.257_223_563);
    let b = a * (1.0 - f);
    let l = (lon2 - lon1).to_radians();
    let u1 = ((1.0 - f) * lat1.to_radians().tan()).atan();
    let u2 = ((1.0 - f) * lat2.to_radians().tan()).atan();
    let (sin_u1, cos_u1, sin_u2, cos_u2) = (u1.sin(), u1.cos(), u2.sin(), u2.cos());
    let mut lambda = l;
    for _ in 0..200 {
        let (sin_l, cos_l) = lambda.sin_cos();
        let sin_sigma =
            ((cos_u2 * sin_l).powi(2) + (cos_u1 * sin_u2 - sin_u1 * cos_u2 * cos_l).powi(2)).sqrt();
        if sin_sigma == 0.0 {
            return 0.0;
        }
        let cos_sigma = sin_u1 * sin_u2 + cos_u1 * cos_u2 * cos_l;
        let sigma = sin_sigma.atan2(cos_sigma);
        let sin_alpha = cos_u1 * cos_u2 * sin_l / sin_sigma;
        let cos2_alpha = 1.0 - sin_alpha * sin_alpha;
        let cos_2sm = if cos2_alpha == 0.0 {
            0.0
        } else {
            cos_sigma - 2.0 * sin_u1 * sin_u2 / cos2_alpha
        };
        let c = f / 16.0 * cos2_alpha * (4.0 + f * (4.0 - 3.0 * cos2_alpha));
        let previous = lambda;
        lambda = l
            + (1.0 - c)
                * f
                * sin_alpha
                * (sigma
                    + c * sin_sigma * (cos_2sm + c * cos_sigma * (-1.0 + 2.0 * cos_2sm * cos_2sm)));
        if (lambda - previous).abs() < 1e-12 {
            let u2_ = cos2_alpha * (a * a - b * b) / (b * b);
            let big_a =
                1.0 + u2_ / 16384.0 * (4096.0 + u2_ * (-768.0 + u2_ * (320.0 - 175.0 * u2_)));
            let big_b = u2_ / 1024.0 * (256.0 + u2_ * (-128.0 + u2_ * (74.0 - 47.0 * u2_)));
            let delta_sigma = big_b
                * sin_sigma
                * (cos_2sm
                    + big_b / 4.0
                        * (cos_sigma * (-1.0 + 2.0 * cos_2sm * cos_2sm)
                            - big_b / 6.0
                                * cos_2sm
                                * (-3.0 + 4.0 * sin_sigma * sin_sigma)
                                * (-3.0 + 4.0 * cos_2sm * cos_2sm)));
            return b * big_a * (sigma - delta_sigma);
        }
    }
    panic!("Vincenty did not converge (near-antipodal points)")
}

#[test]
fn vincenty_matches_a_published_geodesic() {
    // Flinders Peak → Buninyong (Vincenty 1975's own example): 54,972.271 m.
    let d = vincenty(
        -(37.0 + 57.0 / 60.0 + 3.720_30 / 3600.0),
        144.0 + 25.0 / 60.0 + 29.524_40 / 3600.0,
        -(37.0 + 39.0 / 60.0 + 10.156_10 / 3600.0),
        143.0 + 55.0 / 60.0 + 35.383_90 / 3600.0,
    );
    assert!((d - 54_972.271).abs() < 0.001, "{d}");
}
