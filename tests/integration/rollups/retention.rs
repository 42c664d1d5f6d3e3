//! Retention never drops a raw partition whose day is not wholly rolled up.

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use meridian::store::partitions::{self, Partitions};

use super::expected::Pt;
use super::{app, fleet, insert, run_until_idle};

#[tokio::test]
async fn a_day_past_retention_is_kept_until_rolled_up_and_while_a_late_mark_waits() {
    let app = app().await;
    let names = fleet(&app, 1).await;
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    let old_day: DateTime<Utc> = today - TimeDelta::days(40);
    let day_number = old_day.timestamp().div_euclid(86_400);
    let points: Vec<Pt> = (0..24)
        .map(|h| Pt {
            vehicle: names[0].0,
            ts: old_day + TimeDelta::hours(h) + TimeDelta::minutes(5),
            lon: 10.0,
            lat: 59.0 + h as f64 * 1e-3,
            speed: None,
            fuel: None,
        })
        .collect();
    insert(&app.db, &app.db_url, &points).await;
    let table = partitions::name_of(day_number);
    let exists = || async {
        app.count(&format!(
            "SELECT count(*) FROM pg_class WHERE relname = '{table}'"
        ))
        .await
            == 1
    };
    let drop_past_retention = || async {
        let mut client = meridian::store::connect(&app.db_url).await.unwrap();
        Partitions::default()
            .drop_before(&mut client, day_number + 10)
            .await
            .unwrap()
    };

    assert!(
        drop_past_retention().await.is_empty(),
        "nothing closed yet: kept"
    );
    assert!(exists().await);

    run_until_idle(&app.db_url).await;
    // A late mark for the day waits (as if a writer had just stored a late point).
    app.db
        .execute(
            "INSERT INTO rollup_dirty (vehicle_id, bucket) VALUES ($1, $2)",
            &[&names[0].0, &(old_day + TimeDelta::hours(5))],
        )
        .await
        .unwrap();
    assert!(
        drop_past_retention().await.is_empty(),
        "a late mark waits: kept"
    );
    assert!(exists().await);

    run_until_idle(&app.db_url).await;
    assert_eq!(
        app.count("SELECT count(*) FROM telemetry_daily").await,
        1,
        "the day's row exists"
    );
    assert_eq!(drop_past_retention().await, vec![table.clone()]);
    assert!(!exists().await);
    assert_eq!(
        app.count("SELECT points::bigint FROM telemetry_daily")
            .await,
        24,
        "the day's rollup outlives its raw points"
    );
}

/// Retention waits for a long reader of the telemetry (a rollup, an analyst's query); ingest
/// must not wait with it. A plain DROP of the partition would take ACCESS EXCLUSIVE on the
/// parent, and every writer's COPY would queue behind it until its lock timeout gave up.
#[tokio::test]
async fn dropping_a_day_never_holds_ingest_up_behind_a_long_reader() {
    let app = app().await;
    let names = fleet(&app, 1).await;
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    let old_day: DateTime<Utc> = today - TimeDelta::days(40);
    let day_number = old_day.timestamp().div_euclid(86_400);
    let point = Pt {
        vehicle: names[0].0,
        ts: old_day + TimeDelta::hours(3),
        lon: 10.0,
        lat: 59.0,
        speed: None,
        fuel: None,
    };
    insert(&app.db, &app.db_url, &[point]).await;
    run_until_idle(&app.db_url).await;

    let mut reader = meridian::store::connect(&app.db_url).await.unwrap();
    let reading = reader.transaction().await.unwrap();
    reading
        .query_one("SELECT count(*) FROM vehicle_telemetry", &[])
        .await
        .unwrap();
    let db_url = app.db_url.clone();
    let retention = tokio::spawn(async move {
        let mut client = meridian::store::connect(&db_url).await.unwrap();
        Partitions::default()
            .drop_before(&mut client, day_number + 10)
            .await
    });
    app.wait_until("retention waits for the reader", || async {
        app.count(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await
            == 1
    })
    .await;

    app.publisher
        .telemetry(
            &names[0].1,
            crate::helpers::point(crate::helpers::now_ms(), 59.9, 10.7),
        )
        .await;
    app.wait_settled(1).await;
    assert!(
        !retention.is_finished(),
        "the point was stored while retention still waited for the reader"
    );
    reading.commit().await.unwrap();
    let dropped = retention.await.unwrap().unwrap();
    assert_eq!(dropped, vec![partitions::name_of(day_number)]);
}

#[tokio::test]
async fn hourly_rows_past_their_retention_go_and_daily_rows_stay() {
    let app = app().await;
    let vehicle = fleet(&app, 1).await[0].0;
    let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
    let points: Vec<Pt> = [40, 20]
        .iter()
        .flat_map(|&days_ago| {
            (0..3).map(move |h| Pt {
                vehicle,
                ts: today - TimeDelta::days(days_ago) + TimeDelta::hours(h),
                lon: 10.0,
                lat: 59.0 + h as f64 * 1e-3,
                speed: None,
                fuel: None,
            })
        })
        .collect();
    insert(&app.db, &app.db_url, &points).await;
    run_until_idle(&app.db_url).await;
    assert_eq!(app.count("SELECT count(*) FROM telemetry_hourly").await, 6);

    let client = meridian::store::connect(&app.db_url).await.unwrap();
    let pruned = meridian::store::rollups::prune_hourly(&client, today - TimeDelta::days(30))
        .await
        .unwrap();
    assert_eq!(pruned, 3, "the hours 40 days back");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM telemetry_hourly WHERE bucket >= now() - interval '21 days'"
        )
        .await,
        3
    );
    assert_eq!(
        app.count("SELECT count(*) FROM telemetry_daily").await,
        2,
        "daily rows are kept"
    );
}
