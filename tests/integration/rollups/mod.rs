//! Rollups (issue 9): incremental hourly and daily rows equal a full recomputation from raw
//! points — with late points arriving through MQTT ingest, and with a fold killed halfway.

pub(crate) mod expected;
mod late;
mod maintenance_due;
mod rebuild;
mod retention;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use meridian::config::RollupSettings;
use meridian::store::partitions::Partitions;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, TestApp};
use expected::{assert_rows_match, Pt};

/// The job driven by hand: small folds so that several run.
fn settings() -> RollupSettings {
    RollupSettings {
        enabled: true,
        interval: std::time::Duration::from_millis(10),
        fold_marks: 50,
        track_late: true,
    }
}

/// A node whose own rollup job is off: the test runs rounds itself.
async fn app() -> TestApp {
    spawn_app_with(&[("MERIDIAN_ROLLUP", "false")]).await
}

/// Random tracks: each vehicle drives around Oslo from `from` to `to`, a fix every 20–90 s
/// (whole milliseconds, as MQTT carries them), sometimes without speed or fuel, with gaps of
/// hours and now and then more than a day (the entry step then starts from nothing).
fn tracks(rng: &mut StdRng, vehicles: &[Uuid], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Pt> {
    let mut out = Vec::new();
    for &vehicle in vehicles {
        let (mut lat, mut lon) = (
            59.9 + rng.random_range(-0.1..0.1),
            10.75 + rng.random_range(-0.2..0.2),
        );
        let mut ts = from + TimeDelta::milliseconds(rng.random_range(0..600_000));
        while ts < to {
            out.push(Pt {
                vehicle,
                ts,
                lon,
                lat,
                speed: rng.random_bool(0.9).then(|| rng.random_range(0.0..110.0)),
                fuel: rng.random_bool(0.8).then(|| rng.random_range(5.0..100.0)),
            });
            lat += rng.random_range(-0.002..0.002);
            lon += rng.random_range(-0.004..0.004);
            let gap_ms = match rng.random_range(0..1000) {
                0 => rng.random_range(25 * 3_600_000..30 * 3_600_000),
                1..=4 => rng.random_range(3_600_000..5 * 3_600_000),
                _ => rng.random_range(20_000..90_000),
            };
            ts += TimeDelta::milliseconds(gap_ms);
        }
    }
    out
}

/// Stores points with SQL, creating their days' partitions first (points that were on time).
pub(crate) async fn insert(db: &Client, db_url: &str, points: &[Pt]) {
    let days: std::collections::BTreeSet<i64> = points
        .iter()
        .map(|p| p.ts.timestamp().div_euclid(86_400))
        .collect();
    let mut client = meridian::store::connect(db_url).await.unwrap();
    Partitions::default()
        .ensure(&mut client, days)
        .await
        .unwrap();
    for chunk in points.chunks(5_000) {
        let ts: Vec<DateTime<Utc>> = chunk.iter().map(|p| p.ts).collect();
        let v: Vec<Uuid> = chunk.iter().map(|p| p.vehicle).collect();
        let lon: Vec<f64> = chunk.iter().map(|p| p.lon).collect();
        let lat: Vec<f64> = chunk.iter().map(|p| p.lat).collect();
        let speed: Vec<Option<f64>> = chunk.iter().map(|p| p.speed).collect();
        let fuel: Vec<Option<f64>> = chunk.iter().map(|p| p.fuel).collect();
        db.execute(
            "INSERT INTO vehicle_telemetry (ts, vehicle_id, location, speed_kmh, fuel_pct, received_at)
             SELECT ts, v, ST_SetSRID(ST_MakePoint(lon, lat), 4326), s, f, now()
             FROM unnest($1::timestamptz[], $2::uuid[], $3::float8[], $4::float8[],
                         $5::float8[], $6::float8[]) AS t(ts, v, lon, lat, s, f)",
            &[&ts, &v, &lon, &lat, &speed, &fuel],
        )
        .await
        .unwrap();
    }
}

/// Publishes points through MQTT ingest, one message each (late points), and waits until
/// every message is committed.
async fn publish(app: &TestApp, names: &[(Uuid, String)], points: &[Pt], settled_before: u64) {
    for p in points {
        let name = &names.iter().find(|(id, _)| *id == p.vehicle).unwrap().1;
        let mut fields = format!(
            r#""ts":{},"lat":{},"lon":{}"#,
            p.ts.timestamp_millis(),
            p.lat,
            p.lon
        );
        if let Some(s) = p.speed {
            fields += &format!(r#","speed_kmh":{s}"#);
        }
        if let Some(f) = p.fuel {
            fields += &format!(r#","fuel_pct":{f}"#);
        }
        app.publisher.telemetry(name, format!("{{{fields}}}")).await;
    }
    app.wait_settled(settled_before + points.len() as u64).await;
}

async fn fleet(app: &TestApp, n: usize) -> Vec<(Uuid, String)> {
    let names: Vec<String> = (0..n).map(|i| format!("roll-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    app.register(&refs).await.into_iter().zip(names).collect()
}

fn hour(ts: DateTime<Utc>) -> DateTime<Utc> {
    ts.duration_trunc(TimeDelta::hours(1)).unwrap()
}

async fn run_until_idle(db_url: &str) -> meridian::rollup::Round {
    let mut client = meridian::store::connect(db_url).await.unwrap();
    meridian::rollup::until_idle(&mut client, &settings())
        .await
        .unwrap()
}

async fn assert_tables_match(db: &Client, points: &[Pt]) {
    assert_rows_match(
        "telemetry_hourly",
        &expected::read(db, "telemetry_hourly").await,
        &expected::hourly(points),
    );
    // Only whole days closed so far have daily rows: the test's data ends hours ago, but its
    // last day may still be open.
    let watermark: DateTime<Utc> = db
        .query_one("SELECT max(bucket) FROM rollup_hours", &[])
        .await
        .unwrap()
        .get(0);
    let mut want = expected::daily(points);
    want.retain(|(_, day), _| *day + TimeDelta::hours(23) <= watermark);
    assert_rows_match(
        "telemetry_daily",
        &expected::read(db, "telemetry_daily").await,
        &want,
    );
}

#[tokio::test]
async fn incremental_rollups_equal_a_full_recomputation_despite_late_points_and_a_killed_fold() {
    let app = app().await;
    let names = fleet(&app, 6).await;
    let ids: Vec<Uuid> = names.iter().map(|(id, _)| *id).collect();
    let mut rng = StdRng::seed_from_u64(0x0901);
    let now = Utc::now();
    let to = hour(now) - TimeDelta::hours(3);
    let mut points = tracks(&mut rng, &ids, to - TimeDelta::hours(60), to);
    // 1 % arrive late, plus a few up to 7 days late (days with no partition yet).
    let mut late: Vec<Pt> = Vec::new();
    points.retain(|p| {
        let keep = !rng.random_bool(0.01);
        if !keep {
            late.push(*p);
        }
        keep
    });
    for i in 0..8 {
        let vehicle = ids[i % ids.len()];
        let ts =
            to - TimeDelta::hours(72 + rng.random_range(0..96)) + TimeDelta::milliseconds(i as i64);
        late.push(Pt {
            vehicle,
            ts,
            lon: 10.7 + i as f64 * 0.01,
            lat: 59.9,
            speed: Some(12.5),
            fuel: None,
        });
    }
    assert!(late.len() > 40, "enough late points: {}", late.len());

    insert(&app.db, &app.db_url, &points).await;
    let first = run_until_idle(&app.db_url).await;
    assert!(
        first.hours_closed >= 60,
        "closed {} hours",
        first.hours_closed
    );
    assert_tables_match(&app.db, &points).await;

    publish(&app, &names, &late, 0).await;
    let marked_pairs = app
        .count("SELECT count(DISTINCT (vehicle_id, bucket)) FROM rollup_dirty")
        .await;
    let late_pairs: std::collections::BTreeSet<_> =
        late.iter().map(|p| (p.vehicle, hour(p.ts))).collect();
    assert_eq!(
        marked_pairs,
        late_pairs.len() as i64,
        "each late (vehicle, hour) marked in the batch's transaction"
    );
    let marks = app.count("SELECT count(*) FROM rollup_dirty").await;

    // Kill a fold halfway: it has taken the marks off the table and waits for a vehicle's lock
    // (held here); its backend is terminated. Its transaction rolls back: no mark is lost.
    let blocker = meridian::store::connect(&app.db_url).await.unwrap();
    blocker
        .execute(
            "SELECT pg_advisory_lock(29302, hashtext(v::text)) FROM unnest($1::uuid[]) v",
            &[&ids],
        )
        .await
        .unwrap();
    let mut victim = meridian::store::connect(&app.db_url).await.unwrap();
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let fold =
        tokio::spawn(async move { meridian::store::rollups::fold_late(&mut victim, 10_000).await });
    app.wait_until("the fold waits on a vehicle lock", || async {
        app.db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'advisory'",
                &[&pid],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
    })
    .await;
    app.db
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    assert!(
        fold.await.unwrap().is_err(),
        "the killed fold reports failure"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM rollup_dirty").await,
        marks,
        "marks back after the kill"
    );
    drop(blocker);

    let second = run_until_idle(&app.db_url).await;
    assert_eq!(second.late_pairs, late_pairs.len() as u64);
    assert_eq!(app.count("SELECT count(*) FROM rollup_dirty").await, 0);
    points.extend(late);
    assert_tables_match(&app.db, &points).await;
}
