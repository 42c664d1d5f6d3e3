//! Stored exactly once: counts, redelivery, latest positions, late registration, OwnTracks.

use crate::helpers::{now_ms, point, spawn_app, spawn_app_with, spawn_node, wait_until};

#[tokio::test]
async fn published_points_are_stored_exactly_once_even_when_published_again() {
    let app = spawn_app().await;
    let vehicles = ["truck-1", "truck-2", "truck-3", "truck-4", "truck-5"];
    app.register(&vehicles).await;
    let t0 = now_ms() - 60_000;
    // 50 messages, alternating a single object and an array of two: 75 points.
    let mut messages = Vec::new();
    for i in 0..50i64 {
        let vehicle = vehicles[i as usize % 5];
        let ts = t0 + i * 10;
        let payload = if i % 2 == 0 {
            point(ts, 40.0 + i as f64 / 1000.0, -74.0)
        } else {
            format!(
                "[{},{}]",
                point(ts, 40.0, -74.0),
                point(ts + 1, 40.001, -74.001)
            )
        };
        messages.push((vehicle, payload));
    }
    for (v, p) in &messages {
        app.publisher.telemetry(v, p.clone()).await;
    }
    app.wait_settled(50).await;
    assert_eq!(
        app.count("SELECT count(*) FROM vehicle_telemetry").await,
        75
    );

    // Redelivered: the same 50 messages again, and 5 more that each carry an already stored
    // point beside a new one. The unique key alone keeps the count from growing; what can
    // fail is a batch that hits that key losing the new points it also holds.
    for (v, p) in &messages {
        app.publisher.telemetry(v, p.clone()).await;
    }
    for i in 0..5i64 {
        let stored = point(t0 + i * 10, 40.0, -74.0); // message i: vehicle i at this ts
        let new = point(t0 + 10_000 + i, 41.0, -74.0);
        app.publisher
            .telemetry(vehicles[i as usize], format!("[{stored},{new}]"))
            .await;
    }
    app.wait_settled(105).await;
    assert_eq!(
        app.count("SELECT count(*) FROM vehicle_telemetry").await,
        80,
        "duplicates absorbed, the new points beside them stored"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM vehicle_telemetry WHERE ST_Y(location) = 41.0")
            .await,
        5
    );
    assert_eq!(app.count("SELECT count(*) FROM dead_letters").await, 0);

    // Every stored field round-trips.
    let row = app
        .db
        .query_one(
            "SELECT ST_X(location), ST_Y(location), ST_SRID(location), speed_kmh, heading_deg, fuel_pct, accuracy_m, \
             engine->>'rpm', (extract(epoch from ts) * 1000)::bigint \
             FROM vehicle_telemetry t JOIN vehicles v ON v.id = t.vehicle_id WHERE v.external_id = 'truck-1' ORDER BY ts LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, f64>(0),
            row.get::<_, f64>(1),
            row.get::<_, i32>(2)
        ),
        (-74.0, 40.0, 4326)
    );
    assert_eq!(
        (
            row.get::<_, f64>(3),
            row.get::<_, f64>(4),
            row.get::<_, f64>(5),
            row.get::<_, f64>(6)
        ),
        (30.5, 90.0, 50.0, 4.0)
    );
    assert_eq!(row.get::<_, String>(7), "1800");
    assert_eq!(row.get::<_, i64>(8), t0);
}

#[tokio::test]
async fn latest_position_tracks_the_newest_point_and_never_moves_back() {
    let app = spawn_app().await;
    let [id] = app.register(&["van-9"]).await[..] else {
        unreachable!()
    };
    let t = now_ms() - 10_000;
    app.publisher.telemetry("van-9", point(t, 10.0, 20.0)).await;
    app.wait_settled(1).await;
    app.publisher
        .telemetry(
            "van-9",
            format!(
                "[{},{}]",
                point(t + 2000, 10.2, 20.2),
                point(t + 1000, 10.1, 20.1)
            ),
        )
        .await;
    app.wait_settled(2).await;
    // A late point arrives after the newer one.
    app.publisher
        .telemetry("van-9", point(t + 500, 9.0, 19.0))
        .await;
    app.wait_settled(3).await;

    let row = app
        .db
        .query_one(
            "SELECT ST_Y(location), ST_X(location), (extract(epoch from ts) * 1000)::bigint FROM vehicle_positions WHERE vehicle_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, f64>(0),
            row.get::<_, f64>(1),
            row.get::<_, i64>(2)
        ),
        (10.2, 20.2, t + 2000)
    );
    assert_eq!(
        app.count("SELECT count(*) FROM vehicle_telemetry").await,
        4,
        "the late point is still history"
    );
}

#[tokio::test]
async fn a_vehicle_registered_after_start_is_found_without_restart() {
    let app = spawn_app().await;
    let t = now_ms() - 5_000;
    app.publisher
        .telemetry("newcomer", point(t, 1.0, 2.0))
        .await;
    app.wait_settled(1).await;
    assert_eq!(
        app.count("SELECT count(*) FROM dead_letters WHERE reason = 'unknown_vehicle'")
            .await,
        1
    );

    app.register(&["newcomer"]).await;
    // The unknown-id cache lives 200 ms in tests; after that the database is asked again.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.publisher
        .telemetry("newcomer", point(t + 1, 1.0, 2.0))
        .await;
    app.wait_settled(2).await;
    assert_eq!(app.count("SELECT count(*) FROM vehicle_telemetry").await, 1);
}

#[tokio::test]
async fn owntracks_locations_are_stored_and_other_types_only_acknowledged() {
    let app = spawn_app().await;
    let [id] = app.register(&["alice/phone"]).await[..] else {
        unreachable!()
    };
    let tst = now_ms() / 1000 - 30;
    let location = format!(
        r#"{{"_type":"location","lat":69.6496,"lon":18.956,"tst":{tst},"vel":12,"cog":270,"acc":8,"batt":77}}"#
    );
    app.publisher
        .publish("owntracks/alice/phone", location)
        .await;
    app.publisher
        .publish(
            "owntracks/alice/phone",
            r#"{"_type":"transition","event":"enter","tst":1}"#,
        )
        .await;
    app.publisher
        .publish("owntracks/alice/phone", r#"{"_type":"lwt","tst":1}"#)
        .await;
    app.wait_settled(3).await;

    let row = app
        .db
        .query_one("SELECT ST_Y(location), ST_X(location), speed_kmh, heading_deg, accuracy_m FROM vehicle_telemetry WHERE vehicle_id = $1", &[&id])
        .await
        .unwrap();
    assert_eq!(row.get::<_, f64>(0), 69.6496);
    assert_eq!(
        (
            row.get::<_, f64>(2),
            row.get::<_, f64>(3),
            row.get::<_, f64>(4)
        ),
        (12.0, 270.0, 8.0)
    );
    assert_eq!(app.count("SELECT count(*) FROM vehicle_telemetry").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM dead_letters").await,
        0,
        "other _types are not dead letters"
    );
}

#[tokio::test]
async fn two_nodes_on_a_shared_subscription_split_the_stream_without_loss_or_duplicates() {
    let group = format!("g{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let share = [("MQTT_SHARE_GROUP", group.as_str())];
    let a = spawn_app_with(&share).await;
    let b = spawn_node(&a.db_url, &a.prefix, &share).await;
    let vehicles: Vec<String> = (0..20).map(|i| format!("shared-{i}")).collect();
    a.register(&vehicles.iter().map(String::as_str).collect::<Vec<_>>())
        .await;

    let t0 = now_ms() - 60_000;
    for i in 0..400i64 {
        a.publisher
            .telemetry(&vehicles[(i % 20) as usize], point(t0 + i, 50.0, 8.0))
            .await;
    }
    a.publisher.flush().await;
    wait_until("both nodes settled 400", || async {
        a.acker.settled() + b.acker.settled() >= 400
    })
    .await;

    assert_eq!(
        a.acker.settled() + b.acker.settled(),
        400,
        "each message went to exactly one node"
    );
    assert!(
        a.acker.settled() > 0 && b.acker.settled() > 0,
        "both nodes took a share: {} / {}",
        a.acker.settled(),
        b.acker.settled()
    );
    assert_eq!(a.count("SELECT count(*) FROM vehicle_telemetry").await, 400);
    assert_eq!(a.count("SELECT count(*) FROM vehicle_positions").await, 20);
}

#[tokio::test]
async fn database_connections_killed_mid_stream_lose_nothing_and_double_nothing() {
    let app = spawn_app_with(&[("MERIDIAN_BATCH_ROWS", "50")]).await;
    let vehicles: Vec<String> = (0..10).map(|i| format!("outage-{i}")).collect();
    app.register(&vehicles.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let t0 = now_ms() - 60_000;
    let n = 2000i64;
    let pace = (20, std::time::Duration::from_millis(5));
    let publishing = app
        .publisher
        .paced(&vehicles, n, pace, move |i| point(t0 + i, 48.0, 11.0));
    // A database restart or failover, as the writers see it: every connection but ours dies.
    let kill = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                WHERE datname = current_database() AND pid <> pg_backend_pid()";
    let mut killed = 0;
    for _ in 0..3 {
        wait_until("rows arriving", || async {
            app.count("SELECT count(*) FROM vehicle_telemetry").await > 0
        })
        .await;
        killed += app.count(kill).await;
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    assert!(killed > 0, "the writers' connections were terminated");
    publishing.await.unwrap();
    app.wait_settled(n as u64).await;
    assert_eq!(app.count("SELECT count(*) FROM vehicle_telemetry").await, n);
    assert_eq!(app.count("SELECT count(*) FROM dead_letters").await, 0);
}
