//! Maintenance records over HTTP: open and close with their audit rows one to one, the vehicle
//! out of nearest-driver answers while a record is open (at once, on this node), and every
//! kind of bad input answered with a JSON error. (A direct INSERT of a dispatch for a vehicle
//! in maintenance failing is `dispatch_schema::a_vehicle_in_maintenance_or_not_active_…`.)

use chrono::{Duration as ChronoDuration, Utc};
use meridian::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{code, Client};
use crate::helpers::{now_ms, point, spawn_app, TestApp};
use crate::nearest::{external_ids, nearest, on_shift, wait_for_index};

/// The id of the key `client` calls with.
pub async fn key_id(client: &Client<'_>) -> Value {
    let (status, me) = client.get("/v1/whoami").await;
    assert_eq!(status, 200, "{me}");
    me["id"].clone()
}

/// The audit rows of one entity, oldest first, as the API's items would show them.
pub async fn audit_rows(app: &TestApp, entity_id: &str) -> Vec<Value> {
    app.db
        .query(
            "SELECT jsonb_build_object('entity', entity, 'action', action, 'actor', actor, \
             'before', before, 'after', after)::text FROM audit_log \
             WHERE entity_id = $1::text::uuid ORDER BY at, id",
            &[&entity_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(r.get(0)).unwrap())
        .collect()
}

async fn vehicle(desk: &Client<'_>, external_id: &str) -> String {
    let (status, v) = desk
        .post("/v1/vehicles", json!({"external_id": external_id}))
        .await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn open_and_close_round_trip_with_one_audit_row_each() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let analyst = app.client(Role::Analyst).await;
    let truck = vehicle(&desk, "truck-1").await;
    let opened_at = (Utc::now() - ChronoDuration::hours(2)).to_rfc3339();

    let (status, opened) = desk
        .post(
            "/v1/maintenance",
            json!({"vehicle_id": truck, "kind": "  brakes ", "opened_at": opened_at,
                   "cost": "1249.9", "provider": "Midtown Truck Service", "notes": "pads"}),
        )
        .await;
    assert_eq!(status, 201, "{opened}");
    let id = opened["id"].as_str().unwrap().to_owned();
    assert_eq!(opened["kind"], "brakes", "stored trimmed");
    assert_eq!(
        opened["cost"], "1249.90",
        "money comes back exact, two decimals"
    );
    assert_eq!(opened["closed_at"], Value::Null);
    let (status, read) = analyst.get(&format!("/v1/maintenance/{id}")).await;
    assert_eq!(
        (status, &read),
        (200, &opened),
        "analysts read what was written"
    );

    let (status, closed) = desk
        .post(
            &format!("/v1/maintenance/{id}/close"),
            json!({"cost": "1312.40"}),
        )
        .await;
    assert_eq!(status, 200, "{closed}");
    assert!(closed["closed_at"].is_string());
    assert_eq!(closed["cost"], "1312.40");
    assert_eq!(closed["opened_at"], opened["opened_at"]);

    // One audit row per operation, holding exactly the bodies the client was shown.
    let actor = key_id(&desk).await;
    let rows = audit_rows(&app, &id).await;
    assert_eq!(
        rows,
        vec![
            json!({"entity": "maintenance", "action": "open", "actor": actor,
                   "before": null, "after": opened}),
            json!({"entity": "maintenance", "action": "close", "actor": actor,
                   "before": opened, "after": closed}),
        ]
    );
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, 2);

    // Closing again changes nothing and writes nothing.
    let (status, body) = desk
        .post(&format!("/v1/maintenance/{id}/close"), json!({}))
        .await;
    assert_eq!((status, code(&body)), (409, "conflict"), "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already closed"));
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, 2);
    let (_, still) = desk.get(&format!("/v1/maintenance/{id}")).await;
    assert_eq!(still, closed);
}

#[tokio::test]
async fn of_ten_racing_closes_exactly_one_wins_and_writes_the_one_close_row() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let truck = vehicle(&desk, "truck-race").await;
    let (_, record) = desk
        .post(
            "/v1/maintenance",
            json!({"vehicle_id": truck, "kind": "tyres"}),
        )
        .await;
    let close = format!("/v1/maintenance/{}/close", record["id"].as_str().unwrap());
    let attempts = (0..10).map(|_| desk.post(&close, json!({})));
    let mut statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'close'")
            .await,
        1
    );
}

#[tokio::test]
async fn lists_filter_by_vehicle_and_open_and_page_by_id() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let (a, b) = (vehicle(&desk, "a").await, vehicle(&desk, "b").await);
    let mut ids = Vec::new();
    for (v, kind) in [(&a, "tyres"), (&a, "oil"), (&a, "glass"), (&b, "brakes")] {
        let (status, r) = desk
            .post("/v1/maintenance", json!({"vehicle_id": v, "kind": kind}))
            .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_str().unwrap().to_owned());
    }
    let close = format!("/v1/maintenance/{}/close", ids[0]);
    let (status, _) = desk.call(Method::POST, &close, None).await;
    assert_eq!(status, 200, "no body closes now");
    let (status, _) = desk.post(&close, Value::Null).await;
    assert_eq!(status, 409, "a null body is no body too");

    let kinds = |page: &Value| -> Vec<String> {
        let mut k: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap().to_owned())
            .collect();
        k.sort();
        k
    };
    let (_, open_a) = desk
        .get(&format!("/v1/maintenance?vehicle_id={a}&open=true"))
        .await;
    assert_eq!(kinds(&open_a), ["glass", "oil"]);
    let (_, closed) = desk.get("/v1/maintenance?open=false").await;
    assert_eq!(kinds(&closed), ["tyres"]);

    let mut seen = Vec::new();
    let mut path = "/v1/maintenance?limit=3".to_owned();
    loop {
        let (status, page) = desk.get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].clone()),
        );
        match page["next_after"].as_str() {
            Some(after) => path = format!("/v1/maintenance?limit=3&after={after}"),
            None => break,
        }
    }
    ids.sort();
    assert_eq!(seen, ids, "every record once, by id");
}

#[tokio::test]
async fn an_open_record_takes_the_driver_out_of_nearest_at_once_and_closing_brings_them_back() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let zero = ChronoDuration::zero();
    let van = on_shift(&desk, "van-in-shop", Some("van"), zero).await;
    on_shift(&desk, "van-other", Some("van"), zero).await;
    let now = now_ms();
    for (external_id, lat) in [("van-in-shop", 59.910), ("van-other", 59.912)] {
        app.publisher
            .telemetry(external_id, point(now - 5_000, lat, 10.75))
            .await;
    }
    app.wait_settled(2).await;
    let query = "lat=59.91&lon=10.75&limit=10";
    wait_for_index(&app, &desk, query, 2).await;

    let (status, record) = desk
        .post(
            "/v1/maintenance",
            json!({"vehicle_id": van.vehicle, "kind": "inspection"}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    // Read-your-writes: the very next query on this node no longer offers the driver.
    assert_eq!(external_ids(&nearest(&desk, query).await), ["van-other"]);
    assert_eq!(
        app.count("SELECT count(*) FROM driver_availability").await,
        1,
        "the database agrees"
    );

    let (status, _) = desk
        .post(
            &format!("/v1/maintenance/{}/close", record["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let back = nearest(&desk, query).await;
    assert_eq!(external_ids(&back), ["van-in-shop", "van-other"]);
    assert_eq!(back[0]["driver_id"].as_str(), Some(van.id.as_str()));
}

#[tokio::test]
async fn bad_input_is_refused_with_a_json_error_naming_the_field() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let analyst = app.client(Role::Analyst).await;
    let truck = vehicle(&desk, "truck-9").await;
    let unknown = uuid::Uuid::new_v4();
    let future = (Utc::now() + ChronoDuration::hours(1)).to_rfc3339();
    let open = |extra: Value| {
        let mut body = json!({"vehicle_id": truck, "kind": "brakes"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        (
            json!({"vehicle_id": unknown, "kind": "brakes"}),
            "vehicle_id: no vehicle",
        ),
        (open(json!({"cost": 12.5})), "not a number"),
        (open(json!({"cost": "12.345"})), "cost"),
        (open(json!({"cost": "-1"})), "cost"),
        (open(json!({"cost": "12345678901"})), "cost"),
        (open(json!({"opened_at": future})), "opened_at"),
        (open(json!({"kind": "   "})), "kind"),
        (open(json!({"kind": "x".repeat(201)})), "kind"),
        (open(json!({"notes": "n".repeat(10_001)})), "notes"),
        (open(json!({"provider": "a\u{0}b"})), "provider"),
        (open(json!({"colour": "red"})), "colour"),
        (json!({"kind": "brakes"}), "vehicle_id"),
    ];
    for (body, field) in cases {
        let (status, answer) = desk.post("/v1/maintenance", body.clone()).await;
        assert_eq!(
            (status, code(&answer)),
            (422, "invalid"),
            "{body}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    assert!(
        desk.post(
            "/v1/maintenance",
            json!({"vehicle_id": unknown, "kind": "x"})
        )
        .await
        .1["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&unknown.to_string()),
        "the unknown vehicle is named"
    );
    let (status, body) = desk
        .post_raw("/v1/maintenance", "application/json", "{\"vehicle_id\":")
        .await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    let (status, body) = analyst.post("/v1/maintenance", open(json!({}))).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));

    let (_, record) = desk
        .post(
            "/v1/maintenance",
            open(json!({"opened_at": (Utc::now() - ChronoDuration::hours(1)).to_rfc3339()})),
        )
        .await;
    let close = format!("/v1/maintenance/{}/close", record["id"].as_str().unwrap());
    let early = (Utc::now() - ChronoDuration::hours(2)).to_rfc3339();
    for (body, field) in [
        (json!({"closed_at": early}), "before opened_at"),
        (json!({"closed_at": future}), "in the future"),
        (json!({"cost": 1}), "cost"),
    ] {
        let (status, answer) = desk.post(&close, body.clone()).await;
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
    let (status, body) = desk
        .post(&format!("/v1/maintenance/{unknown}/close"), json!({}))
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = desk.get(&format!("/v1/maintenance/{unknown}")).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = desk.get("/v1/maintenance?open=maybe").await;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    assert_eq!(
        app.count("SELECT count(*) FROM maintenance_records").await,
        1,
        "nothing refused was stored"
    );
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, 1);
}
