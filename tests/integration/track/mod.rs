//! The track endpoint: every resolution's values checked against buckets computed here from
//! the inserted points; rollups read where the job closed the hour and raw points elsewhere;
//! the three formats parsed as their clients would; refusals; the query plan.

mod formats;
mod refusals;
mod rollups;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use meridian::domain::Role;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{now_ms, point, spawn_app, TestApp};
use crate::rollups::expected::Pt;

/// A raw point as inserted.
#[derive(Debug, Clone)]
pub struct Raw {
    pub ts: DateTime<Utc>,
    pub lon: f64,
    pub lat: f64,
    pub speed: Option<f64>,
    pub fuel: Option<f64>,
}

/// A bucket as the API should return it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub ts: DateTime<Utc>,
    pub lon: f64,
    pub lat: f64,
    pub speed: Option<f64>,
    pub fuel: Option<f64>,
    pub count: i64,
}

/// A vehicle driving east from Times Square, a point every `step_s` seconds over
/// `[from, to)`: some points without speed, some without fuel, a few buckets without either.
pub fn drive(from: DateTime<Utc>, to: DateTime<Utc>, step_s: i64) -> Vec<Raw> {
    let mut out = Vec::new();
    let mut t = from;
    let mut i = 0i64;
    while t < to {
        out.push(Raw {
            ts: t,
            lon: -73.9857 + i as f64 * 0.0001,
            lat: 40.7484 + ((i % 17) as f64) * 0.00003,
            speed: (i % 7 != 3).then_some(20.0 + (i % 50) as f64 * 0.75),
            fuel: (i % 5 != 1).then_some(90.0 - i as f64 * 0.01),
        });
        t += Duration::seconds(step_s);
        i += 1;
    }
    out
}

/// Inserts raw points straight into `vehicle_telemetry`, creating their days' partitions.
pub async fn insert(app: &TestApp, vehicle: Uuid, points: &[Raw]) {
    let points: Vec<Pt> = points
        .iter()
        .map(|p| Pt {
            vehicle,
            ts: p.ts,
            lon: p.lon,
            lat: p.lat,
            speed: p.speed,
            fuel: p.fuel,
        })
        .collect();
    crate::rollups::insert(&app.db, &app.db_url, &points).await;
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The buckets of `width` over `points` (ordered by ts): start, last location, means of the
/// values present, count.
pub fn buckets(points: &[Raw], width: Duration) -> Vec<Bucket> {
    let mut groups: BTreeMap<DateTime<Utc>, Vec<&Raw>> = BTreeMap::new();
    for p in points {
        groups
            .entry(p.ts.duration_trunc(width).unwrap())
            .or_default()
            .push(p);
    }
    groups
        .into_iter()
        .map(|(ts, ps)| {
            let last = ps.iter().max_by_key(|p| p.ts).unwrap();
            Bucket {
                ts,
                lon: last.lon,
                lat: last.lat,
                speed: mean(ps.iter().map(|p| p.speed)),
                fuel: mean(ps.iter().map(|p| p.fuel)),
                count: ps.len() as i64,
            }
        })
        .collect()
}

pub fn raw_as_buckets(points: &[Raw]) -> Vec<Bucket> {
    points
        .iter()
        .map(|p| Bucket {
            ts: p.ts,
            lon: p.lon,
            lat: p.lat,
            speed: p.speed,
            fuel: p.fuel,
            count: 1,
        })
        .collect()
}

/// The points of a JSON track body.
pub fn parse_points(body: &Value) -> Vec<Bucket> {
    body["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points in {body}"))
        .iter()
        .map(|p| Bucket {
            ts: p["ts"].as_str().unwrap().parse().unwrap(),
            lon: p["lon"].as_f64().unwrap(),
            lat: p["lat"].as_f64().unwrap(),
            speed: p["speed_kmh"].as_f64(),
            fuel: p["fuel_pct"].as_f64(),
            count: p["count"].as_i64().unwrap(),
        })
        .collect()
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        (None, None) => true,
        _ => false,
    }
}

/// Equal up to floating-point summation order in the averages.
pub fn assert_same(got: &[Bucket], want: &[Bucket], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: bucket count");
    for (g, w) in got.iter().zip(want) {
        let same = g.ts == w.ts
            && g.lon == w.lon
            && g.lat == w.lat
            && g.count == w.count
            && close(g.speed, w.speed)
            && close(g.fuel, w.fuel);
        assert!(same, "{what}:\n got {g:?}\nwant {w:?}");
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn track_path(vehicle: Uuid, from: DateTime<Utc>, to: DateTime<Utc>, extra: &str) -> String {
    format!(
        "/v1/vehicles/{vehicle}/track?from={}&to={}{extra}",
        rfc3339(from),
        rfc3339(to)
    )
}

pub fn this_hour() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::hours(1)).unwrap()
}

#[tokio::test]
async fn raw_1m_and_5m_tracks_match_buckets_computed_from_the_points() {
    let app = spawn_app().await;
    let [vehicle, other] = app.register(&["track-1", "track-2"]).await[..] else {
        unreachable!()
    };
    // Two days ago, across a UTC midnight (two partitions), a point every 7 s.
    let midnight = Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(1);
    let (from, to) = (
        midnight - Duration::minutes(47),
        midnight + Duration::minutes(33),
    );
    let points = drive(from, to, 7);
    insert(&app, vehicle, &points).await;
    // Another vehicle at the same instants must not leak in.
    insert(&app, other, &drive(from, to, 11)).await;
    let analyst = app.client(Role::Analyst).await;

    let (status, body) = analyst.get(&track_path(vehicle, from, to, "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["vehicle_id"], vehicle.to_string());
    assert_eq!(body["resolution"], "raw");
    assert_same(&parse_points(&body), &raw_as_buckets(&points), "raw");

    // A raw range is taken as asked: [from + 10 s, to - 10 s).
    let (a, b) = (from + Duration::seconds(10), to - Duration::seconds(10));
    let inner: Vec<_> = points
        .iter()
        .filter(|p| p.ts >= a && p.ts < b)
        .cloned()
        .collect();
    let (_, body) = analyst.get(&track_path(vehicle, a, b, "")).await;
    assert_same(
        &parse_points(&body),
        &raw_as_buckets(&inner),
        "raw, inner range",
    );

    for (name, minutes) in [("1m", 1), ("5m", 5)] {
        let path = track_path(vehicle, from, to, &format!("&resolution={name}"));
        let (status, body) = analyst.get(&path).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["resolution"], name);
        let want = buckets(&points, Duration::minutes(minutes));
        assert!(want.len() >= 16, "{name}: {} buckets", want.len());
        assert!(
            want.iter().any(|b| b.speed.is_some() && b.count > 1),
            "the data exercises averages"
        );
        assert_same(&parse_points(&body), &want, name);
    }

    // Buckets are whole: asking 5m from 10:03 returns the 10:00 bucket with all its points.
    let (status, body) = analyst
        .get(&track_path(
            vehicle,
            midnight + Duration::minutes(3),
            midnight + Duration::minutes(9),
            "&resolution=5m",
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["from"], rfc3339(midnight));
    let want = buckets(&points, Duration::minutes(5));
    let want: Vec<_> = want
        .into_iter()
        .filter(|b| b.ts >= midnight && b.ts < midnight + Duration::minutes(10))
        .collect();
    assert_same(&parse_points(&body), &want, "5m, widened");
}

#[tokio::test]
async fn a_point_published_over_mqtt_is_in_the_track() {
    let app = spawn_app().await;
    let [vehicle] = app.register(&["track-mqtt"]).await[..] else {
        unreachable!()
    };
    let t = now_ms() - 30_000;
    let payload = format!(
        "[{},{}]",
        point(t - 1000, 60.1, 24.9),
        point(t, 60.2, 24.95)
    );
    app.publisher.telemetry("track-mqtt", payload).await;
    app.wait_settled(1).await;

    let at = DateTime::from_timestamp_millis(t).unwrap();
    let (from, to) = (at - Duration::minutes(1), at + Duration::minutes(1));
    let (status, body) = app
        .client(Role::Dispatcher)
        .await
        .get(&track_path(vehicle, from, to, ""))
        .await;
    assert_eq!(status, 200, "{body}");
    let got = parse_points(&body);
    assert_eq!(got.len(), 2, "{body}");
    assert_eq!((got[1].lon, got[1].lat), (24.95, 60.2));
    assert_eq!(got[1].ts, at);
    assert_eq!(
        (got[1].speed, got[1].fuel, got[1].count),
        (Some(30.5), Some(50.0), 1)
    );
}
