//! 1h and 1d tracks: rollup rows where the job closed the hour (inserted here with values
//! raw points would never give, to prove they are read), raw points for hours it has not
//! closed — the current hour included; and the plan of the 1m query.

use chrono::{DateTime, Duration, DurationRound, Utc};
use meridian::domain::track::Resolution;
use meridian::domain::Role;
use meridian::store::track::statement;
use serde_json::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{
    assert_same, buckets, drive, insert, parse_points, this_hour, track_path, Bucket, Raw,
};
use crate::helpers::{spawn_app_with, TestApp};

/// A rollup row with its aggregates as given (location, averages and counts).
struct Rollup {
    bucket: DateTime<Utc>,
    lon: f64,
    lat: f64,
    speed: Option<f64>,
    speed_points: i32,
    fuel: Option<f64>,
    fuel_points: i32,
    points: i32,
}

impl Rollup {
    fn odd(bucket: DateTime<Utc>, n: i32) -> Self {
        Rollup {
            bucket,
            lon: 10.0 + n as f64,
            lat: 50.0 + n as f64,
            speed: Some(100.0 + n as f64),
            speed_points: 3 + n,
            fuel: Some(7.0 + n as f64),
            fuel_points: 2 + n,
            points: 500 + n,
        }
    }

    fn as_bucket(&self, ts: DateTime<Utc>) -> Bucket {
        Bucket {
            ts,
            lon: self.lon,
            lat: self.lat,
            speed: self.speed,
            fuel: self.fuel,
            count: self.points as i64,
        }
    }
}

async fn insert_rollup(app: &TestApp, table: &str, vehicle: Uuid, width: Duration, r: &Rollup) {
    let last_ts = r.bucket + width - Duration::seconds(1);
    app.db
        .execute(
            &format!(
                "INSERT INTO {table} (vehicle_id, bucket, points, speed_points, avg_speed_kmh, \
                   max_speed_kmh, fuel_points, avg_fuel_pct, min_fuel_pct, entry_m, distance_m, first_ts, \
                   last_ts, first_lon, first_lat, last_lon, last_lat, bounds) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $7, 0, 0, $2, $8, $9, $10, $9, $10, \
                   ST_SetSRID(ST_MakePoint($9, $10), 4326))"
            ),
            &[
                &vehicle,
                &r.bucket,
                &r.points,
                &r.speed_points,
                &r.speed,
                &r.fuel_points,
                &r.fuel,
                &last_ts,
                &r.lon,
                &r.lat,
            ],
        )
        .await
        .unwrap();
}

/// A node whose rollup job is off: these tests write the rollup tables themselves, with values
/// raw points would never give, to prove which table an answer came from.
async fn app() -> TestApp {
    spawn_app_with(&[("MERIDIAN_ROLLUP", "false")]).await
}

/// Marks hours as closed by the rollup job.
async fn close_hours(app: &TestApp, hours: impl IntoIterator<Item = DateTime<Utc>>) {
    for h in hours {
        app.db
            .execute(
                "INSERT INTO rollup_hours (bucket, points, vehicles, took_ms) VALUES ($1, 0, 0, 1)",
                &[&h],
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_1h_track_reads_closed_hours_from_rollups_and_the_rest_up_to_now_from_raw() {
    let app = app().await;
    let [vehicle] = app.register(&["track-h"]).await[..] else {
        unreachable!()
    };
    let h = this_hour();
    let points = drive(h - Duration::hours(3), Utc::now(), 20);
    insert(&app, vehicle, &points).await;
    // The job closed the two oldest hours; the last full hour and the current one are open.
    let closed = [h - Duration::hours(3), h - Duration::hours(2)];
    close_hours(&app, closed).await;
    for (n, bucket) in closed.iter().enumerate() {
        insert_rollup(
            &app,
            "telemetry_hourly",
            vehicle,
            Duration::hours(1),
            &Rollup::odd(*bucket, n as i32),
        )
        .await;
    }

    let path = track_path(
        vehicle,
        h - Duration::hours(3),
        Utc::now(),
        "&resolution=1h",
    );
    let (status, body) = app.client(Role::Analyst).await.get(&path).await;
    assert_eq!(status, 200, "{body}");
    let mut want: Vec<Bucket> = closed
        .iter()
        .enumerate()
        .map(|(n, b)| Rollup::odd(*b, n as i32).as_bucket(*b))
        .collect();
    let open: Vec<Raw> = points
        .iter()
        .filter(|p| p.ts >= h - Duration::hours(1))
        .cloned()
        .collect();
    want.extend(buckets(&open, Duration::hours(1)));
    assert_eq!(
        want.last().unwrap().ts,
        h,
        "the current hour is in the track"
    );
    assert_same(&parse_points(&body), &want, "1h");
    assert_eq!(body["to"], super::rfc3339(h + Duration::hours(1)));
}

/// A day folded from hour parts, as the rollup job folds hours: last location, averages
/// weighted by the points that carried a value.
fn fold(day: DateTime<Utc>, parts: &[(DateTime<Utc>, Rollup)]) -> Bucket {
    let (_, last) = parts.iter().max_by_key(|(t, _)| *t).unwrap();
    let weighted = |f: &dyn Fn(&Rollup) -> (Option<f64>, i32)| {
        let (sum, n) = parts.iter().fold((0.0, 0), |(s, n), (_, r)| match f(r) {
            (Some(v), k) => (s + v * k as f64, n + k),
            (None, _) => (s, n),
        });
        (n > 0).then(|| sum / n as f64)
    };
    Bucket {
        ts: day,
        lon: last.lon,
        lat: last.lat,
        speed: weighted(&|r| (r.speed, r.speed_points)),
        fuel: weighted(&|r| (r.fuel, r.fuel_points)),
        count: parts.iter().map(|(_, r)| r.points as i64).sum(),
    }
}

/// Raw points of one hour as a rollup part (what the job would have written).
fn raw_part(points: &[Raw]) -> (DateTime<Utc>, Rollup) {
    let b = &buckets(points, Duration::hours(1))[0];
    let last_ts = points.iter().map(|p| p.ts).max().unwrap();
    let part = Rollup {
        bucket: b.ts,
        lon: b.lon,
        lat: b.lat,
        speed: b.speed,
        speed_points: points.iter().filter(|p| p.speed.is_some()).count() as i32,
        fuel: b.fuel,
        fuel_points: points.iter().filter(|p| p.fuel.is_some()).count() as i32,
        points: points.len() as i32,
    };
    (last_ts, part)
}

#[tokio::test]
async fn a_1d_track_reads_closed_days_and_folds_days_with_open_hours_from_hours_and_raw() {
    let app = app().await;
    let [vehicle] = app.register(&["track-d"]).await[..] else {
        unreachable!()
    };
    let today = Utc::now().duration_trunc(Duration::days(1)).unwrap();
    let day = |n: i64| today - Duration::days(n);
    let hour = |d: i64, h: i64| day(d) + Duration::hours(h);
    let span = |d, h0, h1| drive(hour(d, h0), hour(d, h1), 30);
    // Four days back: nothing closed, raw only. Three: closed, a daily row unlike its raw
    // points. Two: hours 0–11 closed (rows for 5 and 6, raw points in 5 that must be ignored),
    // raw points in the open hours 13 and 14.
    let (d4, d3) = (span(4, 8, 10), span(3, 9, 11));
    let (d2_closed, d2_13, d2_14) = (span(2, 5, 6), span(2, 13, 14), span(2, 14, 15));
    for p in [&d4, &d3, &d2_closed, &d2_13, &d2_14] {
        insert(&app, vehicle, p).await;
    }
    close_hours(&app, (0..24).map(|h| hour(3, h))).await;
    close_hours(&app, (0..12).map(|h| hour(2, h))).await;
    let daily = Rollup::odd(day(3), 4);
    insert_rollup(&app, "telemetry_daily", vehicle, Duration::days(1), &daily).await;
    let (h5, h6) = (Rollup::odd(hour(2, 5), 1), Rollup::odd(hour(2, 6), 2));
    for r in [&h5, &h6] {
        insert_rollup(&app, "telemetry_hourly", vehicle, Duration::hours(1), r).await;
    }

    let path = track_path(vehicle, day(4), Utc::now(), "&resolution=1d");
    let (status, body) = app.client(Role::Analyst).await.get(&path).await;
    assert_eq!(status, 200, "{body}");
    let parts = [
        (hour(2, 6) - Duration::seconds(1), h5),
        (hour(2, 7) - Duration::seconds(1), h6),
        raw_part(&d2_13),
        raw_part(&d2_14),
    ];
    let want = vec![
        buckets(&d4, Duration::days(1)).remove(0),
        daily.as_bucket(day(3)),
        fold(day(2), &parts),
    ];
    assert_same(&parse_points(&body), &want, "1d");
}

/// Each table scan of an EXPLAIN (FORMAT JSON) plan: the relation and how it is read.
fn scans(node: &Value, out: &mut Vec<(String, String)>) {
    if let Some(relation) = node["Relation Name"].as_str() {
        let index = node["Index Name"]
            .as_str()
            .or_else(|| node["Plans"][0]["Index Name"].as_str());
        let how = index.or(node["Node Type"].as_str()).unwrap();
        out.push((relation.to_owned(), how.to_owned()));
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        scans(child, out);
    }
}

#[tokio::test]
async fn the_1m_and_raw_queries_read_only_the_days_asked_for_through_the_vehicle_index() {
    let app = app().await;
    let ids = app
        .register(&["plan-0", "plan-1", "plan-2", "plan-3", "plan-4", "plan-5"])
        .await;
    let today = Utc::now().duration_trunc(Duration::days(1)).unwrap();
    let from = today - Duration::days(3);
    for id in &ids {
        insert(&app, *id, &drive(from, today, 60)).await;
    }
    app.db
        .batch_execute("ANALYZE vehicle_telemetry")
        .await
        .unwrap();

    let day = today - Duration::days(2);
    let partition = day.format("vehicle_telemetry_p%Y%m%d").to_string();
    let next = Duration::days(1);
    let width = 60.0f64;
    let limit = 100_001i64;
    let cases: [(Resolution, &(dyn ToSql + Sync)); 2] =
        [(Resolution::Minute, &width), (Resolution::Raw, &limit)];
    for (resolution, fourth) in cases {
        let sql = format!("EXPLAIN (FORMAT JSON) {}", statement(resolution));
        let to = day + next;
        let row = app
            .db
            .query_one(&sql, &[&ids[0], &day, &to, fourth])
            .await
            .unwrap();
        let mut found = Vec::new();
        scans(&row.get::<_, Value>(0)[0]["Plan"], &mut found);
        assert_eq!(
            found.len(),
            1,
            "{resolution}: one day, one partition: {found:?}"
        );
        assert_eq!(found[0].0, partition, "{resolution}");
        assert!(
            found[0].1.ends_with("vehicle_id_ts_key"),
            "{resolution}: read through the (vehicle_id, ts) index: {found:?}"
        );
    }
}
