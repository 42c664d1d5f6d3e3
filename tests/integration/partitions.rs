//! Daily partitions: rows land in their UTC day; late points inside retention create their day.

use crate::helpers::{now_ms, point, spawn_app};

#[tokio::test]
async fn points_spanning_three_utc_days_land_in_three_partitions() {
    let app = spawn_app().await;
    app.register(&["bus-1"]).await;
    let day = 86_400_000i64;
    let t = now_ms() - 60_000;
    let payload = format!(
        "[{},{},{}]",
        point(t - 2 * day, 1.0, 1.0),
        point(t - day, 1.0, 1.0),
        point(t, 1.0, 1.0)
    );
    app.publisher.telemetry("bus-1", payload).await;
    app.wait_settled(1).await;

    let rows = app
        .db
        .query("SELECT tableoid::regclass::text, count(*) FROM vehicle_telemetry GROUP BY 1 ORDER BY 1", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "one partition per UTC day");
    for (row, days_ago) in rows.iter().zip([2, 1, 0]) {
        let date = chrono::DateTime::from_timestamp_millis(t - days_ago * day)
            .unwrap()
            .format("%Y%m%d");
        assert_eq!(
            row.get::<_, String>(0),
            format!("vehicle_telemetry_p{date}")
        );
        assert_eq!(row.get::<_, i64>(1), 1);
    }
}

#[tokio::test]
async fn a_late_point_inside_retention_is_stored_in_a_partition_made_on_demand() {
    let app = spawn_app().await;
    app.register(&["bus-2"]).await;
    let late = now_ms() - 20 * 86_400_000;
    let name = format!(
        "vehicle_telemetry_p{}",
        chrono::DateTime::from_timestamp_millis(late)
            .unwrap()
            .format("%Y%m%d")
    );
    let exists = "SELECT count(*) FROM pg_class WHERE relname = ";
    assert_eq!(
        app.count(&format!("{exists}'{name}'")).await,
        0,
        "not created ahead"
    );

    app.publisher
        .telemetry("bus-2", point(late, 1.0, 1.0))
        .await;
    app.wait_settled(1).await;
    assert_eq!(app.count(&format!("{exists}'{name}'")).await, 1);
    assert_eq!(app.count(&format!("SELECT count(*) FROM {name}")).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM dead_letters").await, 0);
}

#[tokio::test]
async fn partitions_exist_ahead_and_history_has_no_default_partition_or_gist() {
    let app = spawn_app().await;
    let today = chrono::Utc::now().date_naive();
    for ahead in 0..=3 {
        let name = format!(
            "vehicle_telemetry_p{}",
            (today + chrono::Days::new(ahead)).format("%Y%m%d")
        );
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM pg_class WHERE relname = '{name}'"
            ))
            .await,
            1,
            "{name}"
        );
    }
    let defaults =
        "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid \
                    WHERE c.relname = 'vehicle_telemetry' AND p.partdefid <> 0";
    assert_eq!(app.count(defaults).await, 0);
    let gist = "SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'vehicle_telemetry%' AND indexdef ILIKE '%USING gist%'";
    assert_eq!(app.count(gist).await, 0);
}
