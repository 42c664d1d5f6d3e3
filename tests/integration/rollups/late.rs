//! A late point re-reads its own vehicle-hour and nothing else; the job inside `serve` does the
//! same on its own.

use chrono::{TimeDelta, Utc};
use meridian::store::rollups;
use uuid::Uuid;

use super::expected::{self, Pt};
use super::{app, assert_tables_match, fleet, hour, insert, publish, run_until_idle};
use crate::helpers::spawn_app_with;

/// Three vehicles, a point every minute for five hours ending two hours ago.
pub(super) fn steady(ids: &[Uuid], end: chrono::DateTime<Utc>) -> Vec<Pt> {
    let start = end - TimeDelta::hours(5);
    let mut out = Vec::new();
    for (k, &vehicle) in ids.iter().enumerate() {
        for i in 0..300 {
            out.push(Pt {
                vehicle,
                ts: start + TimeDelta::minutes(i) + TimeDelta::seconds(k as i64),
                lon: 10.7 + i as f64 * 1e-3,
                lat: 59.9 + k as f64 * 1e-2,
                speed: Some(30.0 + (i % 7) as f64),
                fuel: Some(90.0 - i as f64 * 0.1),
            });
        }
    }
    out
}

#[tokio::test]
async fn a_late_point_recomputes_only_its_own_vehicle_hour() {
    let app = app().await;
    let names = fleet(&app, 3).await;
    let ids: Vec<Uuid> = names.iter().map(|(id, _)| *id).collect();
    let end = hour(Utc::now()) - TimeDelta::hours(2);
    let mut points = steady(&ids, end);
    insert(&app.db, &app.db_url, &points).await;
    run_until_idle(&app.db_url).await;
    let before = expected::read(&app.db, "telemetry_hourly").await;
    let stamps = |sql: &'static str| {
        let db = &app.db;
        async move {
            db.query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| ((r.get::<_, Uuid>(0), r.get(1)), r.get(2)))
                .collect::<std::collections::BTreeMap<(Uuid, chrono::DateTime<Utc>), chrono::DateTime<Utc>>>()
        }
    };
    let computed = stamps("SELECT vehicle_id, bucket, computed_at FROM telemetry_hourly").await;

    // The last point of vehicle 0's third hour, 3 km off: that hour changes, and so does the
    // entry step of its fourth hour (which is corrected from stored rows, not re-read).
    let third = end - TimeDelta::hours(3);
    let late = Pt {
        vehicle: ids[0],
        ts: third + TimeDelta::minutes(59) + TimeDelta::seconds(30),
        lon: 10.9,
        lat: 59.9,
        speed: Some(80.0),
        fuel: None,
    };
    publish(&app, &names, &[late], 0).await;
    let mut client = meridian::store::connect(&app.db_url).await.unwrap();
    let folded = rollups::fold_late(&mut client, 100).await.unwrap();
    assert_eq!((folded.marks, folded.pairs), (1, 1));
    assert_eq!(
        folded.points, 61,
        "the hour's 60 points and the late one: nothing else read"
    );
    assert_eq!(folded.corrected, 1, "the next hour's entry step");

    let after = stamps("SELECT vehicle_id, bucket, computed_at FROM telemetry_hourly").await;
    let recomputed: Vec<_> = after
        .iter()
        .filter(|(k, t)| computed[k] != **t)
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(
        recomputed,
        vec![(ids[0], third)],
        "only the late point's pair was re-aggregated"
    );
    let now = expected::read(&app.db, "telemetry_hourly").await;
    let fourth = (ids[0], third + TimeDelta::hours(1));
    assert!(
        now[&fourth].entry_m > 1_000.0 && before[&fourth].entry_m < 100.0,
        "entry step corrected"
    );
    points.push(late);
    assert_tables_match(&app.db, &points).await;
}

#[tokio::test]
async fn the_job_in_serve_closes_hours_and_folds_late_points_by_itself() {
    let app = spawn_app_with(&[("MERIDIAN_ROLLUP_INTERVAL_MS", "50")]).await;
    let names = fleet(&app, 3).await;
    let ids: Vec<Uuid> = names.iter().map(|(id, _)| *id).collect();
    let end = hour(Utc::now()) - TimeDelta::hours(2);
    let mut points = steady(&ids, end);
    insert(&app.db, &app.db_url, &points).await;
    let want = expected::hourly(&points).len() as i64;
    app.wait_until("the job closed the hours", || async {
        app.count("SELECT count(*) FROM telemetry_hourly").await == want
    })
    .await;
    let late = Pt {
        vehicle: ids[1],
        ts: end - TimeDelta::minutes(30) + TimeDelta::milliseconds(7),
        lon: 11.0,
        lat: 60.0,
        speed: None,
        fuel: Some(1.0),
    };
    publish(&app, &names, &[late], 0).await;
    points.push(late);
    app.wait_until("the job folded the late point", || async {
        app.count("SELECT count(*) FROM rollup_dirty").await == 0
            && app
                .count("SELECT count(*) FROM telemetry_hourly WHERE min_fuel_pct = 1")
                .await
                == 1
    })
    .await;
    assert_tables_match(&app.db, &points).await;
}

/// Two nodes run the job on one database while late points arrive through both (one shared
/// subscription): every hour
/// is closed once (`rollup_hours` has one row per hour by its key; a double close would have
/// failed on it) and the tables equal the recomputation.
#[tokio::test]
async fn two_nodes_running_the_job_close_each_hour_once_and_agree_with_the_recomputation() {
    let group = format!("g{}", &Uuid::new_v4().simple().to_string()[..8]);
    let fast = [
        ("MERIDIAN_ROLLUP_INTERVAL_MS", "20"),
        ("MERIDIAN_ROLLUP_FOLD_MARKS", "3"),
        ("MQTT_SHARE_GROUP", group.as_str()),
    ];
    let a = spawn_app_with(&fast).await;
    let b = crate::helpers::spawn_node(&a.db_url, &a.prefix, &fast).await;
    let names = fleet(&a, 3).await;
    let ids: Vec<Uuid> = names.iter().map(|(id, _)| *id).collect();
    let end = hour(Utc::now()) - TimeDelta::hours(2);
    let mut points = steady(&ids, end);
    let late: Vec<Pt> = points.iter().step_by(37).copied().collect();
    points.retain(|p| !late.iter().any(|l| l.vehicle == p.vehicle && l.ts == p.ts));
    insert(&a.db, &a.db_url, &points).await;
    let want = expected::hourly(&points).len() as i64;
    a.wait_until("the hours closed", || async {
        a.count("SELECT count(*) FROM telemetry_hourly").await == want
    })
    .await;
    // Through the shared subscription: the two nodes' writers split the late points.
    for p in &late {
        let name = &names.iter().find(|(id, _)| *id == p.vehicle).unwrap().1;
        let json = format!(
            r#"{{"ts":{},"lat":{},"lon":{},"speed_kmh":{},"fuel_pct":{}}}"#,
            p.ts.timestamp_millis(),
            p.lat,
            p.lon,
            p.speed.unwrap(),
            p.fuel.unwrap()
        );
        a.publisher.telemetry(name, json).await;
    }
    points.extend(late.iter().copied());
    a.wait_until("every late point stored and folded", || async {
        a.count("SELECT count(*) FROM rollup_dirty").await == 0
            && a.count("SELECT sum(points)::bigint FROM telemetry_hourly")
                .await
                == points.len() as i64
    })
    .await;
    let (by_a, by_b) = (a.acker.settled(), b.acker.settled());
    assert_eq!(by_a + by_b, late.len() as u64);
    assert!(
        by_a > 0 && by_b > 0,
        "both nodes' writers marked late points: {by_a} / {by_b}"
    );
    assert_tables_match(&a.db, &points).await;
}
