//! Alerts over HTTP: raise and resolve with their audit rows one to one, a second resolve 409,
//! lists filtered by subject, severity and open, and unknown subjects or bad input refused.

use meridian::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::code;
use crate::helpers::spawn_app;
use crate::maintenance::{audit_rows, key_id};

#[tokio::test]
async fn alerts_raise_and_resolve_with_one_audit_row_each() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let analyst = app.client(Role::Analyst).await;
    let (_, truck) = desk
        .post("/v1/vehicles", json!({"external_id": "truck-7"}))
        .await;
    let (status, alert) = desk
        .post(
            "/v1/alerts",
            json!({"entity": "vehicle", "entity_id": truck["id"], "kind": "harsh_braking",
                   "severity": "warning", "message": "−0.62 g"}),
        )
        .await;
    assert_eq!(status, 201, "{alert}");
    let id = alert["id"].as_str().unwrap().to_owned();
    assert_eq!(alert["resolved_at"], Value::Null);
    assert_eq!(
        analyst.get(&format!("/v1/alerts/{id}")).await,
        (200, alert.clone())
    );

    let (status, resolved) = desk
        .call(Method::POST, &format!("/v1/alerts/{id}/resolve"), None)
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert!(resolved["resolved_at"].is_string());
    let (status, again) = desk
        .post(&format!("/v1/alerts/{id}/resolve"), Value::Null)
        .await;
    assert_eq!((status, code(&again)), (409, "conflict"), "{again}");

    let actor = key_id(&desk).await;
    assert_eq!(
        audit_rows(&app, &id).await,
        vec![
            json!({"entity": "alert", "action": "raise", "actor": actor, "before": null, "after": alert}),
            json!({"entity": "alert", "action": "resolve", "actor": actor, "before": alert, "after": resolved}),
        ]
    );
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, 2);
}

#[tokio::test]
async fn alerts_list_by_subject_severity_and_open_and_refuse_unknown_subjects() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let (_, truck) = desk
        .post("/v1/vehicles", json!({"external_id": "truck-8"}))
        .await;
    let (_, ada) = desk.post("/v1/drivers", json!({"name": "Ada"})).await;
    let mut ids = Vec::new();
    for (entity, entity_id, severity) in [
        ("vehicle", &truck["id"], "critical"),
        ("vehicle", &truck["id"], "info"),
        ("driver", &ada["id"], "critical"),
    ] {
        let (status, a) = desk
            .post(
                "/v1/alerts",
                json!({"entity": entity, "entity_id": entity_id, "kind": "k", "severity": severity}),
            )
            .await;
        assert_eq!(status, 201, "{a}");
        ids.push(a["id"].clone());
    }
    desk.post(
        &format!("/v1/alerts/{}/resolve", ids[1].as_str().unwrap()),
        Value::Null,
    )
    .await;
    let listed = |query: &'static str| {
        let desk = &desk;
        async move {
            let (status, page) = desk.get(&format!("/v1/alerts?{query}")).await;
            assert_eq!(status, 200, "{query}: {page}");
            let mut got: Vec<Value> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].clone())
                .collect();
            got.sort_by_key(|v| v.to_string());
            got
        }
    };
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(|v| v.to_string());
        v
    };
    let vehicle_alerts = format!("entity=vehicle&entity_id={}", truck["id"].as_str().unwrap());
    let (_, page) = desk.get(&format!("/v1/alerts?{vehicle_alerts}")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        listed("severity=critical").await,
        sorted(vec![ids[0].clone(), ids[2].clone()])
    );
    assert_eq!(listed("open=false").await, vec![ids[1].clone()]);
    assert_eq!(
        listed("entity=driver&open=true").await,
        vec![ids[2].clone()]
    );

    let nobody = Uuid::new_v4();
    for (body, field) in [
        (
            json!({"entity": "job", "entity_id": nobody, "kind": "k", "severity": "info"}),
            "no job",
        ),
        (
            json!({"entity": "truck", "entity_id": nobody, "kind": "k", "severity": "info"}),
            "entity",
        ),
        (
            json!({"entity": "vehicle", "entity_id": truck["id"], "kind": "k", "severity": "fatal"}),
            "severity",
        ),
        (
            json!({"entity": "vehicle", "entity_id": truck["id"], "kind": " ", "severity": "info"}),
            "kind",
        ),
        (
            json!({"entity": "vehicle", "entity_id": truck["id"], "kind": "k", "severity": "info",
                   "message": "a\u{0}b"}),
            "message",
        ),
        (
            json!({"entity": "vehicle", "entity_id": truck["id"], "kind": "k", "severity": "info",
                   "message": "m".repeat(10_001)}),
            "message",
        ),
    ] {
        let (status, answer) = desk.post("/v1/alerts", body.clone()).await;
        assert_eq!(
            (status, code(&answer)),
            (422, "invalid"),
            "{body}: {answer}"
        );
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM alerts").await,
        3,
        "nothing refused stored"
    );
    let (status, body) = desk.get("/v1/alerts?severity=fatal").await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    let (status, body) = desk
        .post(&format!("/v1/alerts/{nobody}/resolve"), Value::Null)
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let analyst = app.client(Role::Analyst).await;
    let (status, _) = analyst
        .post(
            &format!("/v1/alerts/{}/resolve", ids[0].as_str().unwrap()),
            Value::Null,
        )
        .await;
    assert_eq!(status, 403);
}
