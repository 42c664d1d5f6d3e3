//! Webhooks end to end against real PostgreSQL and a real HTTP receiver on loopback: events
//! are inserted as the ingest side will write them and fanned out the way the outbox worker
//! will (`store::webhooks::fan_out` in a transaction); the node's delivery worker does the
//! rest. Here: signed bodies with their ids, fence and type filters, admin-only registration
//! and its refusals. Outages, retries, disabling, the allowlist and redirects are in
//! `webhooks/failures.rs`.

mod failures;
pub mod receiver;

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use meridian::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use crate::client::{code, Client};
use crate::helpers::{connect, spawn_app_with, wait_until, TestApp};
use receiver::Receiver;

pub const SECRET: &str = "a-secret-of-enough-length";

/// Fast retries for every test here: base 50 ms, at most 400 ms apart.
pub const FAST: &[(&str, &str)] = &[
    ("MERIDIAN_WEBHOOK_BACKOFF_BASE_MS", "50"),
    ("MERIDIAN_WEBHOOK_BACKOFF_MAX_MS", "400"),
    ("MERIDIAN_WEBHOOK_TIMEOUT_MS", "2000"),
];

pub async fn fast_app(extra: &[(&str, &str)]) -> TestApp {
    let mut env = FAST.to_vec();
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

/// A circle fence; its id.
pub async fn fence(admin: &Client<'_>, name: &str) -> Uuid {
    let (status, f) = admin
        .post(
            "/v1/geofences",
            json!({"name": name, "center": [10.75, 59.91], "radius_m": 500}),
        )
        .await;
    assert_eq!(status, 201, "{f}");
    f["id"].as_str().unwrap().parse().unwrap()
}

/// Registers a webhook; its id.
pub async fn register(admin: &Client<'_>, body: Value) -> String {
    let (status, w) = admin.post("/v1/webhooks", body).await;
    assert_eq!(status, 201, "{w}");
    w["id"].as_str().unwrap().to_owned()
}

/// Stores events of `vehicle` (one per `(fence, type)`) as ingest will, then fans them out in
/// one transaction as the outbox worker will. Their ids, and how many deliveries were made.
pub async fn raise(app: &TestApp, vehicle: Uuid, events: &[(Uuid, &str)]) -> (Vec<i64>, u64) {
    let mut ids = Vec::new();
    for (fence, kind) in events {
        let row = app
            .db
            .query_one(
                "INSERT INTO geofence_events (vehicle_id, fence_id, external_id, type, ts, lon, lat) \
                 SELECT $1, $2, external_id, $3, now(), 10.75, 59.91 FROM vehicles WHERE id = $1 \
                 RETURNING id",
                &[&vehicle, fence, kind],
            )
            .await
            .unwrap();
        ids.push(row.get(0));
    }
    let pairs: Vec<(Uuid, i64)> = ids.iter().map(|id| (vehicle, *id)).collect();
    (ids, fan_out(app, &pairs).await)
}

pub async fn fan_out(app: &TestApp, pairs: &[(Uuid, i64)]) -> u64 {
    let mut client = connect(&app.db_url).await;
    let tx = client.transaction().await.unwrap();
    let prepared = meridian::store::prepared::Prepared::default();
    let n = meridian::store::webhooks::fan_out(&tx, &prepared, pairs)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

/// What a receiver computes to trust a body: HMAC-SHA256 with the shared secret.
pub fn verifies(secret: &str, body: &[u8], signature_hex: &str) -> bool {
    let Some(sig) = (0..signature_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(signature_hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    signature_hex.len() == 64 && mac.verify_slice(&sig).is_ok()
}

/// Waits until `receiver` has accepted every id in `ids`.
pub async fn wait_delivered(receiver: &Receiver, ids: &[i64]) {
    let want: BTreeSet<String> = ids.iter().map(i64::to_string).collect();
    wait_until(&format!("{} events delivered", ids.len()), || {
        let got: BTreeSet<String> = receiver
            .accepted()
            .into_iter()
            .map(|h| h.event_id)
            .collect();
        let done = want.is_subset(&got);
        async move { done }
    })
    .await;
}

#[tokio::test]
async fn each_event_arrives_once_per_matching_webhook_signed_and_with_its_id() {
    let app = fast_app(&[]).await;
    let admin = app.client(Role::Admin).await;
    let (depot, port) = (fence(&admin, "Depot").await, fence(&admin, "Port").await);
    let vehicle = app.register(&["truck-7"]).await[0];
    let (all, depot_entries) = (
        Receiver::start("127.0.0.1").await,
        Receiver::start("127.0.0.1").await,
    );
    let all_id = register(&admin, json!({"url": all.url("/all"), "secret": SECRET})).await;
    register(
        &admin,
        json!({"url": depot_entries.url("/depot"), "secret": "another-secret-16",
               "fence_ids": [depot], "event_types": ["enter"]}),
    )
    .await;

    let (ids, made) = raise(
        &app,
        vehicle,
        &[
            (depot, "enter"),
            (depot, "exit"),
            (port, "enter"),
            (depot, "dwell"),
        ],
    )
    .await;
    // Four events to the catch-all webhook, one (the depot entry) to the filtered one.
    assert_eq!(made, 5);
    // Fanning out the same events again (the outbox worker retrying) adds nothing.
    let pairs: Vec<(Uuid, i64)> = ids.iter().map(|id| (vehicle, *id)).collect();
    assert_eq!(fan_out(&app, &pairs).await, 0);

    wait_delivered(&all, &ids).await;
    wait_delivered(&depot_entries, &ids[..1]).await;
    for hit in all.accepted() {
        assert!(verifies(SECRET, &hit.body, &hit.signature), "{hit:?}");
        let body: Value = serde_json::from_slice(&hit.body).unwrap();
        // The idempotency key is the event id, in the header and the body alike.
        assert_eq!(body["id"].to_string(), hit.event_id);
        assert_eq!(body["vehicle_id"], vehicle.to_string());
        assert_eq!(body["external_id"], "truck-7");
        let keys: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "external_id",
                "fence_id",
                "id",
                "lat",
                "lon",
                "recorded_at",
                "ts",
                "type",
                "vehicle_id"
            ])
        );
    }
    let depot_hit = &depot_entries.accepted()[0];
    assert!(verifies(
        "another-secret-16",
        &depot_hit.body,
        &depot_hit.signature
    ));
    assert!(!verifies(SECRET, &depot_hit.body, &depot_hit.signature));
    let body: Value = serde_json::from_slice(&depot_hit.body).unwrap();
    assert_eq!(
        (body["type"].as_str(), body["fence_id"].as_str()),
        (Some("enter"), Some(&*depot.to_string()))
    );
    // Nothing arrives twice when nothing failed; nothing else arrives later.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(all.hits().len(), 4);
    assert_eq!(depot_entries.hits().len(), 1);

    let (status, w) = admin.get(&format!("/v1/webhooks/{all_id}")).await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(
        w["deliveries"],
        json!({"pending": 0, "delivered": 4, "failed": 0})
    );
    assert_eq!(
        (w["enabled"].as_bool(), w["consecutive_failures"].as_i64()),
        (Some(true), Some(0))
    );
    let (_, page) = admin
        .get(&format!(
            "/v1/webhooks/{all_id}/deliveries?status=delivered"
        ))
        .await;
    let listed: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, ids);
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["attempts"] == 1 && d["last_status"] == 204));
    // Pages by event id: three, then the last one.
    let path = format!("/v1/webhooks/{all_id}/deliveries?limit=3");
    let (_, first) = admin.get(&path).await;
    assert_eq!(first["next_after"], ids[2]);
    let (_, rest) = admin.get(&format!("{path}&after={}", ids[2])).await;
    assert_eq!(rest["items"][0]["event_id"], ids[3]);
    assert_eq!(rest["next_after"], Value::Null);
    assert_eq!(admin.get(&format!("{path}&after=-1")).await.0, 400);
}

#[tokio::test]
async fn webhooks_are_admin_only_and_bad_registrations_are_422_naming_the_field() {
    let app = fast_app(&[("MERIDIAN_DELIVERY", "false")]).await;
    let admin = app.client(Role::Admin).await;
    let desk = app.client(Role::Dispatcher).await;
    let analyst = app.client(Role::Analyst).await;
    let fence_id = fence(&admin, "Yard").await;
    let good = json!({"url": "https://hooks.example.com/m", "secret": SECRET});

    for (client, method, path) in [
        (&desk, Method::POST, "/v1/webhooks"),
        (&desk, Method::GET, "/v1/webhooks"),
        (&analyst, Method::GET, "/v1/webhooks"),
    ] {
        let body = (method == Method::POST).then(|| good.clone());
        let (status, err) = client.call(method.clone(), path, body).await;
        assert_eq!(
            (status, code(&err)),
            (403, "forbidden"),
            "{method} {path}: {err}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM webhooks").await, 0);

    let long = format!("https://example.com/{}", "a".repeat(2000));
    let unknown = Uuid::new_v4();
    for (body, field) in [
        (
            json!({"url": "ftp://example.com/x", "secret": SECRET}),
            "url: scheme",
        ),
        (
            json!({"url": "http://user:pw@example.com/", "secret": SECRET}),
            "url: must not carry credentials",
        ),
        (json!({"url": "http://", "secret": SECRET}), "url: "),
        (
            json!({"url": "example.com/hook", "secret": SECRET}),
            "url: not a URL",
        ),
        (
            json!({"url": long, "secret": SECRET}),
            "url: longer than 2000",
        ),
        (
            json!({"url": "https://example.com/", "secret": "too-short"}),
            "secret: at least 16",
        ),
        (
            json!({"url": "https://example.com/", "secret": SECRET, "event_types": ["leave"]}),
            "event_types[0]: ",
        ),
        (
            json!({"url": "https://example.com/", "secret": SECRET, "event_types": []}),
            "event_types: ",
        ),
        (
            json!({"url": "https://example.com/", "secret": SECRET, "fence_ids": [fence_id, unknown]}),
            &*format!("fence_ids: no geofence {unknown}"),
        ),
    ] {
        let (status, err) = admin.post("/v1/webhooks", body.clone()).await;
        assert_eq!((status, code(&err)), (422, "invalid"), "{body}: {err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(field),
            "{body}: {message:?} does not start with {field:?}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM webhooks").await, 0);

    // Registered, listed and read: the secret is never shown again.
    let first = register(
        &admin,
        json!({"url": "HTTPS://Hooks.Example.com/a", "secret": SECRET,
        "fence_ids": [fence_id], "event_types": ["exit", "enter", "exit"]}),
    )
    .await;
    let second = register(&admin, good.clone()).await;
    let (_, w) = admin.get(&format!("/v1/webhooks/{first}")).await;
    assert_eq!(w["url"], "https://hooks.example.com/a");
    assert_eq!(w["event_types"], json!(["enter", "exit"]));
    assert_eq!(w["fence_ids"], json!([fence_id]));
    let mut seen = BTreeSet::new();
    let mut after = String::new();
    loop {
        let (status, page) = admin.get(&format!("/v1/webhooks?limit=1{after}")).await;
        assert_eq!(status, 200, "{page}");
        assert!(!page.to_string().contains(SECRET), "{page}");
        for item in page["items"].as_array().unwrap() {
            assert!(item.get("secret").is_none());
            seen.insert(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(id) => after = format!("&after={id}"),
            None => break,
        }
    }
    assert_eq!(seen, BTreeSet::from([first.clone(), second.clone()]));
    assert_eq!(
        desk.call(Method::DELETE, &format!("/v1/webhooks/{first}"), None)
            .await
            .0,
        403
    );
    assert_eq!(
        admin
            .call(Method::DELETE, &format!("/v1/webhooks/{first}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        admin
            .call(Method::DELETE, &format!("/v1/webhooks/{first}"), None)
            .await
            .0,
        404
    );
    assert_eq!(admin.get(&format!("/v1/webhooks/{first}")).await.0, 404);
    assert_eq!(
        admin
            .get(&format!("/v1/webhooks/{first}/deliveries"))
            .await
            .0,
        404
    );
    assert_eq!(
        admin
            .post(&format!("/v1/webhooks/{first}/enable"), json!(null))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn two_nodes_share_the_deliveries_and_send_each_event_once() {
    let app = fast_app(&[]).await;
    let other = crate::helpers::spawn_node(&app.db_url, &app.prefix, FAST).await;
    let admin = app.client(Role::Admin).await;
    let fence_id = fence(&admin, "Depot").await;
    let vehicle = app.register(&["v-1"]).await[0];
    let receiver = Receiver::start("127.0.0.1").await;
    register(
        &admin,
        json!({"url": receiver.url("/hook"), "secret": SECRET}),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let kinds = [(fence_id, "enter"), (fence_id, "exit"), (fence_id, "dwell")];
        ids.extend(raise(&other, vehicle, &kinds).await.0);
    }
    wait_delivered(&receiver, &ids).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Claims skip what the other node holds: no event went out twice.
    let mut sent: Vec<String> = receiver.hits().into_iter().map(|h| h.event_id).collect();
    sent.sort();
    let mut want: Vec<String> = ids.iter().map(i64::to_string).collect();
    want.sort();
    assert_eq!(sent, want);
}
