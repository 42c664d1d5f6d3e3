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

#[tokio::test]
async fn openapi_describes_every_route_with_bearer_security_on_v1() {
    let app = spawn_app().await;
    let (status, body) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/whoami",
        "/v1/vehicles",
        "/v1/shifts/{id}/end",
    ] {
        assert!(
            paths.contains_key(route),
            "{route} missing from /openapi.json"
        );
    }
    // Every documented operation is really routed: without a key, /v1 answers 401, the rest 200;
    // an undocumented path would be 404 and a wrong method 405.
    for (path, ops) in paths {
        let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
        for method in ops.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = format!("http://127.0.0.1:{}{concrete}", app.port);
            let res = app.http.request(method.clone(), url).send().await.unwrap();
            let expected = if path.starts_with("/v1/") { 401 } else { 200 };
            assert_eq!(res.status().as_u16(), expected, "{method} {path}");
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["paths"]["/v1/whoami"]["get"]["security"].is_array());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn http_metrics_are_labelled_by_route_template_and_responses_compress() {
    let app = spawn_app().await;
    assert_eq!(app.get("/v1/whoami").await.0, 401);
    let (_, metrics) = app.get("/metrics").await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("meridian_http_requests_total")
                && l.contains("route=\"/v1/whoami\"")
                && l.contains("status=\"401\"")
        })
        .unwrap_or_else(|| panic!("no request counter for /v1/whoami 401 in:\n{metrics}"));
    assert!(line.contains("method=\"GET\""));
    assert!(metrics.contains("meridian_http_request_duration_seconds_bucket"));

    let res = app
        .http
        .get(format!("http://127.0.0.1:{}/metrics", app.port))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
}
