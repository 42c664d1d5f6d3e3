//! Maintenance due (issue 9, item 5): the rollup job raises an alert once a vehicle passes its
//! type's schedule — by distance from the rollups or by time — once per interval; and the
//! odometer endpoint reads distance per day from the same rollups.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use meridian::domain::Role;
use uuid::Uuid;

use super::expected::{self, Pt};
use super::{app, fleet, insert, run_until_idle};
use crate::client::code;

/// 200 points 100 m apart (about 20 km) from 10:00 on `day`.
fn drive(vehicle: Uuid, day: DateTime<Utc>) -> Vec<Pt> {
    (0..200)
        .map(|i| Pt {
            vehicle,
            ts: day + TimeDelta::hours(10) + TimeDelta::seconds(30 * i),
            lon: 10.0,
            lat: 59.0 + i as f64 * 0.0009,
            speed: Some(40.0),
            fuel: Some(60.0),
        })
        .collect()
}

async fn raise(db_url: &str) -> u64 {
    let mut client = meridian::store::connect(db_url).await.unwrap();
    let tx = client.transaction().await.unwrap();
    let raised = meridian::store::rollups::raise_maintenance_due(&tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    raised
}

#[tokio::test]
async fn a_vehicle_past_its_schedule_gets_one_alert_per_interval() {
    let app = app().await;
    let names = fleet(&app, 2).await;
    let (truck, van) = (names[0].0, names[1].0);
    app.db
        .batch_execute(&format!(
            "UPDATE vehicles SET vehicle_type = 'truck', created_at = now() - interval '3 days' WHERE id = '{truck}';
             UPDATE vehicles SET vehicle_type = 'van', created_at = now() - interval '3 days' WHERE id = '{van}';
             INSERT INTO maintenance_schedules (vehicle_type, kind, interval_km) VALUES ('truck', 'oil change', 15);
             INSERT INTO maintenance_schedules (vehicle_type, kind, interval_months) VALUES ('truck', 'inspection', 1);"
        ))
        .await
        .unwrap();
    // Two days back, so that the day has closed whatever the time of day the test runs at.
    let yesterday = Utc::now().duration_trunc(TimeDelta::days(1)).unwrap() - TimeDelta::days(2);
    let mut points = drive(truck, yesterday);
    points.extend(drive(van, yesterday));
    insert(&app.db, &app.db_url, &points).await;
    run_until_idle(&app.db_url).await;

    let alerts = |sql: &'static str| {
        let db = &app.db;
        async move {
            db.query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r.get::<_, Uuid>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let raised = alerts("SELECT entity_id, kind, message FROM alerts ORDER BY created_at").await;
    assert_eq!(raised.len(), 1, "{raised:?}");
    let (id, kind, message) = &raised[0];
    assert_eq!((id, kind.as_str()), (&truck, "maintenance_due:oil change"));
    let km = expected::daily(&points)[&(truck, yesterday)].distance_m / 1000.0;
    assert!(km > 15.0, "the truck drove {km} km");
    assert!(message.contains(&format!("{km:.1} km")), "{message}");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE entity = 'alert' AND action = 'raise' AND actor IS NULL").await,
        1,
        "the raise is audited, by the node"
    );

    assert_eq!(
        raise(&app.db_url).await,
        0,
        "not raised twice for one interval"
    );
    // The oil is changed: the interval starts again from the record's close.
    app.db
        .execute(
            "INSERT INTO maintenance_records (vehicle_id, kind, opened_at, closed_at)
             VALUES ($1, 'oil change', now() - interval '1 hour', now())",
            &[&truck],
        )
        .await
        .unwrap();
    assert_eq!(raise(&app.db_url).await, 0);
    // Two months on the road: the monthly inspection is due (the oil change, just done, is not).
    app.db
        .execute(
            "UPDATE vehicles SET created_at = now() - interval '2 months' WHERE id = $1",
            &[&truck],
        )
        .await
        .unwrap();
    assert_eq!(raise(&app.db_url).await, 1);
    let raised = alerts("SELECT entity_id, kind, message FROM alerts ORDER BY created_at").await;
    assert_eq!(raised[1].1, "maintenance_due:inspection");
}

#[tokio::test]
async fn the_odometer_gives_distance_per_day_from_the_rollups() {
    let app = app().await;
    let names = fleet(&app, 1).await;
    let vehicle = names[0].0;
    // Two days back, so that the day has closed whatever the time of day the test runs at.
    let yesterday = Utc::now().duration_trunc(TimeDelta::days(1)).unwrap() - TimeDelta::days(2);
    let mut points = drive(vehicle, yesterday - TimeDelta::days(1));
    points.extend(drive(vehicle, yesterday));
    insert(&app.db, &app.db_url, &points).await;
    run_until_idle(&app.db_url).await;

    let analyst = app.client(Role::Analyst).await;
    let from = (yesterday - TimeDelta::days(1)).to_rfc3339();
    let path = format!(
        "/v1/vehicles/{vehicle}/odometer?from={from}&to={}",
        Utc::now().to_rfc3339()
    );
    let (status, body) = analyst.get(&path.replace('+', "%2B")).await;
    assert_eq!(status, 200, "{body}");
    let want = expected::daily(&points);
    let days = body["days"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{body}");
    let mut total = 0.0;
    for (day, got) in [yesterday - TimeDelta::days(1), yesterday].iter().zip(days) {
        let w = &want[&(vehicle, *day)];
        assert_eq!(got["day"], day.date_naive().to_string());
        assert_eq!(got["points"], w.points);
        assert_eq!(got["closed"], true);
        let d = got["distance_m"].as_f64().unwrap();
        assert!(
            (d - w.distance_m).abs() < 1e-3 + 1e-6 * w.distance_m,
            "{d} != {}",
            w.distance_m
        );
        total += d;
    }
    assert!((body["total_m"].as_f64().unwrap() - total).abs() < 1e-6);
    assert!(
        days[1]["distance_m"].as_f64().unwrap() > 17_000.0,
        "includes the day's 20 km"
    );

    let (status, body) = analyst
        .get(&format!("/v1/vehicles/{}/odometer", Uuid::new_v4()))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = analyst
        .get(&format!(
            "/v1/vehicles/{vehicle}/odometer?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z"
        ))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = analyst
        .get(&format!(
            "/v1/vehicles/{vehicle}/odometer?from=2000-01-01T00:00:00Z&to=2026-12-01T00:00:00Z"
        ))
        .await;
    assert_eq!((status, code(&body)), (422, "range_too_large"), "{body}");
}
