//! The database says no: a persistent error holds acks and fails readiness until it is fixed,
//! then everything lands once; a message refused together with its dead letter costs neither
//! the good messages beside it nor an unbounded retry.

use std::time::Duration;

use crate::helpers::{now_ms, point, spawn_app_with, TestApp};

/// A message whose point carries `speed_kmh`; the tests refuse 666 with a CHECK.
fn point_at_speed(ts_ms: i64, speed: u32) -> String {
    format!(r#"{{"ts":{ts_ms},"lat":47.1,"lon":8.5,"speed_kmh":{speed}}}"#)
}

async fn readyz_failing(app: &TestApp, needle: &str) -> bool {
    let (status, body) = app.get("/readyz").await;
    status == 503 && body.contains("\"ingest_writer\"") && body.contains(needle)
}

/// The value of one sample in the Prometheus text, if present.
async fn metric(app: &TestApp, sample: &str) -> Option<f64> {
    let (_, body) = app.get("/metrics").await;
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
}

async fn batch_sql(app: &TestApp, sql: &str) {
    app.db.batch_execute(sql).await.unwrap();
}

#[tokio::test]
async fn a_persistent_database_error_holds_acks_fails_readiness_and_heals_by_itself() {
    let app = spawn_app_with(&[]).await;
    app.register(&["fault-1", "fault-2"]).await;
    let t0 = now_ms() - 60_000;
    for i in 0..4 {
        app.publisher
            .telemetry("fault-1", point(t0 + i, 47.0, 8.0))
            .await;
    }
    app.wait_settled(4).await;

    // A bad migration: the table the writers copy into is gone (SQLSTATE 42P01).
    batch_sql(
        &app,
        "ALTER TABLE vehicle_telemetry RENAME TO vehicle_telemetry_moved",
    )
    .await;
    for i in 4..24 {
        let vehicle = if i % 2 == 0 { "fault-1" } else { "fault-2" };
        app.publisher
            .telemetry(vehicle, point(t0 + i, 47.0, 8.0))
            .await;
    }
    app.publisher.flush().await;
    app.wait_until("/readyz names the failing writer", || {
        readyz_failing(&app, "42P01")
    })
    .await;
    let (_, body) = app.get("/readyz").await;
    assert!(
        body.contains("does not exist"),
        "reason carries the message: {body}"
    );
    let errors = metric(&app, r#"meridian_ingest_write_errors_total{class="42"}"#).await;
    assert!(
        errors.is_some_and(|n| n >= 1.0),
        "counted by class: {errors:?}"
    );
    // Retried (with backoff) for a while: still nothing acked.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        app.acker.settled(),
        4,
        "nothing acked while nothing commits"
    );
    assert!(readyz_failing(&app, "42P01").await);

    batch_sql(
        &app,
        "ALTER TABLE vehicle_telemetry_moved RENAME TO vehicle_telemetry",
    )
    .await;
    app.wait_settled(24).await;
    app.wait_until("/readyz ready again", || async {
        app.get("/readyz").await.0 == 200
    })
    .await;
    assert_eq!(
        app.count("SELECT count(DISTINCT (vehicle_id, ts)) FROM vehicle_telemetry")
            .await,
        24
    );
    assert_eq!(
        app.count("SELECT count(*) FROM vehicle_telemetry").await,
        24
    );
    assert_eq!(app.count("SELECT count(*) FROM dead_letters").await, 0);
}

/// Four messages in one batch (a long batch age): good, poisoned, good, good.
async fn publish_around_a_poisoned_message(app: &TestApp, t0: i64) {
    app.register(&["poison-1"]).await;
    batch_sql(
        app,
        "ALTER TABLE vehicle_telemetry ADD CONSTRAINT refuse_666 CHECK (speed_kmh IS DISTINCT FROM 666)",
    )
    .await;
    for (i, speed) in [10, 666, 20, 30].into_iter().enumerate() {
        app.publisher
            .telemetry("poison-1", point_at_speed(t0 + i as i64, speed))
            .await;
    }
    app.publisher.flush().await;
}

#[tokio::test]
async fn a_refused_dead_letter_falls_back_to_a_minimal_one_and_the_good_messages_are_kept() {
    let app = spawn_app_with(&[("MERIDIAN_BATCH_AGE_MS", "300")]).await;
    // The full dead letter carries the database's long message; this table refuses it.
    batch_sql(
        &app,
        "ALTER TABLE dead_letters ADD CONSTRAINT short_detail CHECK (length(detail) <= 100)",
    )
    .await;
    let t0 = now_ms() - 60_000;
    publish_around_a_poisoned_message(&app, t0).await;
    app.wait_settled(4).await;

    assert_eq!(app.count("SELECT count(*) FROM vehicle_telemetry").await, 3);
    let row = app
        .db
        .query_one(
            "SELECT reason, detail, payload, topic FROM dead_letters",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "rejected_by_database");
    let detail = row.get::<_, String>(1);
    assert!(
        detail.starts_with("refused by the database (SQLSTATE 23514), and so was its full"),
        "the minimal form: {detail}"
    );
    assert_eq!(
        row.get::<_, Vec<u8>>(2),
        point_at_speed(t0 + 1, 666).into_bytes()
    );
    assert_eq!(
        row.get::<_, String>(3),
        format!("{}fleet/poison-1/telemetry", app.prefix)
    );
    assert_eq!(app.get("/readyz").await.0, 200, "the store is not at fault");
}

#[tokio::test]
async fn a_dead_letter_refused_in_every_form_is_a_store_fault_that_holds_only_that_message() {
    let app = spawn_app_with(&[("MERIDIAN_BATCH_AGE_MS", "300")]).await;
    batch_sql(
        &app,
        "ALTER TABLE dead_letters ADD CONSTRAINT no_refusals CHECK (reason <> 'rejected_by_database')",
    )
    .await;
    let t0 = now_ms() - 60_000;
    publish_around_a_poisoned_message(&app, t0).await;

    app.wait_until("the good messages acked", || async {
        app.acker.settled() >= 3
    })
    .await;
    assert_eq!(app.count("SELECT count(*) FROM vehicle_telemetry").await, 3);
    app.wait_until("/readyz names the refused dead letter", || {
        readyz_failing(&app, "dead_letters")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.acker.settled(),
        3,
        "the refused message is never acked unstored"
    );
    assert_eq!(app.count("SELECT count(*) FROM dead_letters").await, 0);

    batch_sql(&app, "ALTER TABLE dead_letters DROP CONSTRAINT no_refusals").await;
    app.wait_settled(4).await;
    assert_eq!(
        app.count("SELECT count(*) FROM dead_letters WHERE reason = 'rejected_by_database'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM vehicle_telemetry").await, 3);
    app.wait_until("/readyz ready again", || async {
        app.get("/readyz").await.0 == 200
    })
    .await;
}
