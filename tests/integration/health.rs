//! Health, readiness and metrics endpoints.

use crate::helpers::{now_ms, point, spawn_app};

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, 200);
    assert!(body.contains("ok"));

    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["checks"]["database"], true);
    assert_eq!(ready["checks"]["migrations"], true);
    assert_eq!(ready["checks"]["broker"], true);

    app.register(&["m-1"]).await;
    app.publisher
        .telemetry("m-1", point(now_ms(), 1.0, 1.0))
        .await;
    app.publisher.telemetry("m-1", "not json").await;
    app.wait_settled(2).await;
    let (status, metrics) = app.get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "meridian_ingest_messages_received_total",
        "meridian_ingest_points_stored_total",
        "meridian_ingest_dead_letters_total{reason=\"invalid_json\"}",
        "meridian_ingest_batch_rows_bucket",
        "meridian_ingest_batch_duration_seconds_bucket",
        "meridian_ingest_lag_seconds_bucket",
        "meridian_mqtt_reconnects_total",
    ] {
        assert!(metrics.contains(name), "missing {name} in /metrics");
    }
}

#[tokio::test]
async fn readiness_fails_when_migrations_are_behind() {
    let app = spawn_app().await;
    app.db
        .batch_execute("DELETE FROM refinery_schema_history")
        .await
        .unwrap();
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"migrations\":false"), "{body}");
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/nothing-here").await;
    assert_eq!(status, 404);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "not_found");
}
