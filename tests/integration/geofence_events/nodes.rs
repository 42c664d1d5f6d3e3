//! More than one node, and nodes that stop: a fence changed through another node takes effect
//! in this node's judging; a vehicle judged by two nodes in turn is judged from what the other
//! committed, not from what this node remembers; a restart between two points neither repeats nor misses an event
//! (the state, including a run of points not yet confirming, is in the database); a node
//! killed between committing events and delivering them loses none — every event reaches the
//! webhook receiver with its idempotency key, and MQTT.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use meridian::domain::Role;
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use uuid::Uuid;

use super::{at, events_of, fix, kinds, send, square, Listener};

/// Every event, as the API lists them.
async fn all_events(app: &TestApp) -> Vec<Value> {
    let (status, page) = app
        .client(Role::Analyst)
        .await
        .get("/v1/geofence-events?limit=1000")
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}
use crate::helpers::{
    connect, fresh_database, mqtt_url, now_ms, spawn_app, spawn_app_with, spawn_node, test_env,
    wait_until, Publisher, TestApp,
};
use crate::webhooks::receiver::Receiver;

#[tokio::test]
async fn a_fence_created_and_moved_through_another_node_takes_effect_in_judging() {
    let group = format!("g{}", &Uuid::new_v4().simple().to_string()[..8]);
    let share = [("MQTT_SHARE_GROUP", group.as_str())];
    let a = spawn_app_with(&share).await;
    let b = spawn_node(&a.db_url, &a.prefix, &share).await;
    let vehicle = a.register(&["bus-1"]).await[0];
    let t0 = now_ms() - 600_000;
    // Created through B; A hears of it by NOTIFY (A's own `contains` shows it has).
    let depot = square(&b, "depot", (0.0, 0.0, 1000.0, 1000.0), json!({})).await;
    let (lon, lat) = at(500.0, 500.0);
    let probe = format!("/v1/geofences?contains={lon},{lat}");
    let reader = a.client(Role::Analyst).await;
    wait_until("node A knows the fence", || async {
        reader.get(&probe).await.1["items"]
            .as_array()
            .is_some_and(|i| i.len() == 1)
    })
    .await;
    send(
        &a,
        "bus-1",
        &(0..3).map(|s| fix(t0, s, 500.0, 500.0)).collect::<Vec<_>>(),
    )
    .await;
    a.wait_until("enter", || async {
        events_of(&a, vehicle).await.len() == 1
    })
    .await;

    // Moved through B, 5 km east: the bus, standing still, is now outside it.
    let (w, s) = at(5000.0, 0.0);
    let (e, n) = at(6000.0, 1000.0);
    let moved = json!({"type": "Feature", "properties": {"name": "depot"},
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}});
    let writer = b.client(Role::Dispatcher).await;
    let (status, body) = writer
        .call(
            reqwest::Method::PUT,
            &format!("/v1/geofences/{depot}"),
            Some(moved),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until("node A knows the fence moved", || async {
        reader.get(&probe).await.1["items"]
            .as_array()
            .is_some_and(|i| i.is_empty())
    })
    .await;
    send(
        &a,
        "bus-1",
        &(10..13)
            .map(|s| fix(t0, s, 500.0, 500.0))
            .collect::<Vec<_>>(),
    )
    .await;
    a.wait_until("exit", || async { events_of(&a, vehicle).await.len() == 2 })
        .await;
    assert_eq!(kinds(&events_of(&a, vehicle).await), ["enter", "exit"]);
}

/// Node A remembers the vehicle inside, node B takes it out: A's next points must be judged
/// from B's commit (outside, so a second enter), not from A's memory (inside, no event); and
/// the same for B. The nodes share the database but not the topics, so each point goes to the
/// node the test chose.
#[tokio::test]
async fn a_vehicle_judged_by_two_nodes_in_turn_is_judged_from_the_other_nodes_commit() {
    let a = spawn_app().await;
    let b = spawn_node(&a.db_url, &format!("{}b/", a.prefix), &[]).await;
    let vehicle = a.register(&["van-7"]).await[0];
    square(&a, "yard", (0.0, 0.0, 1000.0, 1000.0), json!({})).await;
    for node in [&a, &b] {
        let reader = node.client(Role::Analyst).await;
        let (lon, lat) = at(500.0, 500.0);
        let probe = format!("/v1/geofences?contains={lon},{lat}");
        wait_until("both nodes know the fence", || async {
            reader.get(&probe).await.1["items"]
                .as_array()
                .is_some_and(|i| i.len() == 1)
        })
        .await;
    }
    let t0 = now_ms() - 600_000;
    let rounds = [(&a, 500.0), (&b, 5_000.0), (&a, 500.0), (&b, 5_000.0)];
    for (k, (node, x)) in rounds.into_iter().enumerate() {
        let s0 = 10 * k as i64;
        let points: Vec<Value> = (s0..s0 + 3).map(|s| fix(t0, s, x, 500.0)).collect();
        send(node, "van-7", &points).await;
        a.wait_until("the round's event", || async {
            events_of(&a, vehicle).await.len() == k + 1
        })
        .await;
    }
    assert_eq!(
        kinds(&events_of(&a, vehicle).await),
        ["enter", "exit", "enter", "exit"]
    );
}

/// The real binary on the test's database and topics.
struct Binary {
    env: std::collections::HashMap<String, String>,
    addr: String,
}

impl Binary {
    fn new(db_url: &str, prefix: &str, overrides: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let id = Uuid::new_v4().simple().to_string();
        let mut all = vec![("MERIDIAN_HTTP_ADDR", addr.as_str())];
        all.extend_from_slice(overrides);
        let env = test_env(db_url, prefix, &format!("meridian-ev-{}", &id[..12]), &all);
        Self { env, addr }
    }

    async fn start(&self) -> Child {
        let child = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("serve")
            .envs(&self.env)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("meridian binary starts");
        let url = format!("http://{}/readyz", self.addr);
        wait_until("node ready", || {
            let url = url.clone();
            async move { reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        child
    }
}

/// SIGTERM, and wait for the exit (ingest drains, commits, acks).
async fn stop(mut child: Child) {
    let pid = child.id().expect("running") as i32;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// Events of a vehicle straight from the table: (type, ts in ms).
async fn stored(db: &tokio_postgres::Client, vehicle: Uuid) -> Vec<(String, i64)> {
    db.query(
        "SELECT type, (extract(epoch FROM ts) * 1000)::int8 FROM geofence_events \
         WHERE vehicle_id = $1 ORDER BY id",
        &[&vehicle],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test]
async fn a_restart_between_two_points_neither_repeats_nor_misses_an_event() {
    // Only the binary ingests here, so its restarts are the only ones.
    let (_, db_url) = fresh_database().await;
    let db = connect(&db_url).await;
    let (w, s) = at(0.0, 0.0);
    let (e, n) = at(1000.0, 1000.0);
    db.execute(
        "INSERT INTO geofences (name, kind, geom, bounds) \
         SELECT 'depot', 'polygon', g, g FROM ST_MakeEnvelope($1, $2, $3, $4, 4326) g",
        &[&w, &s, &e, &n],
    )
    .await
    .unwrap();
    let vehicle: Uuid = db
        .query_one(
            "INSERT INTO vehicles (external_id) VALUES ('cab-1') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let id = Uuid::new_v4().simple().to_string();
    let prefix = format!("r{}/", &id[..12]);
    let publisher = Publisher::connect(&mqtt_url(), &format!("pub-{}", &id[..12]), &prefix).await;
    let node = Binary::new(&db_url, &prefix, &[]);
    let t0 = now_ms() - 600_000;
    let point = |s: i64, x: f64| fix(t0, s, x, 500.0).to_string();
    let count = |sql: String| {
        let db = &db;
        async move { db.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0) }
    };

    let child = node.start().await;
    // Two of the three points that confirm an enter, then a restart.
    publisher.telemetry("cab-1", point(0, -500.0)).await;
    publisher.telemetry("cab-1", point(10, 500.0)).await;
    publisher.telemetry("cab-1", point(11, 500.0)).await;
    let streak = format!(
        "SELECT coalesce(max(streak), 0)::int8 FROM geofence_state WHERE vehicle_id = '{vehicle}'"
    );
    wait_until("a run of two points stored", || async {
        count(streak.clone()).await == 2
    })
    .await;
    stop(child).await;
    let child = node.start().await;
    publisher.telemetry("cab-1", point(12, 500.0)).await;
    wait_until("enter", || async { stored(&db, vehicle).await.len() == 1 }).await;
    stop(child).await;
    let child = node.start().await;
    for s in 20..23 {
        publisher.telemetry("cab-1", point(s, -500.0)).await;
    }
    wait_until("exit", || async { stored(&db, vehicle).await.len() == 2 }).await;
    // A repeat of an old point, and one more outside: nothing more.
    publisher.telemetry("cab-1", point(12, 500.0)).await;
    publisher.telemetry("cab-1", point(30, -600.0)).await;
    let points = format!("SELECT count(*) FROM vehicle_telemetry WHERE vehicle_id = '{vehicle}'");
    wait_until("last point stored", || async {
        count(points.clone()).await == 8
    })
    .await;
    stop(child).await;
    assert_eq!(
        stored(&db, vehicle).await,
        [
            ("enter".to_owned(), t0 + 10_000),
            ("exit".to_owned(), t0 + 20_000)
        ],
        "the run begun before the restart dates the enter"
    );
}

#[tokio::test]
async fn a_node_killed_between_commit_and_delivery_loses_no_event_and_each_arrives_with_its_key() {
    let app = spawn_app_with(&[("MERIDIAN_DELIVERY", "false")]).await;
    let receiver = Receiver::start("127.0.0.1").await;
    let admin = app.client(Role::Admin).await;
    let (status, hook) = admin
        .post(
            "/v1/webhooks",
            json!({"url": receiver.url("/hook"), "secret": crate::webhooks::SECRET}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    square(&app, "depot", (0.0, 0.0, 1000.0, 1000.0), json!({})).await;
    let names: Vec<String> = (0..40).map(|i| format!("fleet-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    app.register(&refs).await;
    let listener = Listener::start(&app.prefix).await;
    let t0 = now_ms() - 600_000;

    // Committed with their batches, delivered by nobody: the app runs no delivery worker.
    for name in &names {
        send(
            &app,
            name,
            &(0..3).map(|s| fix(t0, s, 500.0, 500.0)).collect::<Vec<_>>(),
        )
        .await;
    }
    app.wait_settled(40).await;
    let want = app.count("SELECT count(*) FROM geofence_events").await;
    assert_eq!(want, 40);
    assert_eq!(app.count("SELECT count(*) FROM geofence_outbox").await, 40);

    // A delivering node (not ingesting), killed mid-way through the rounds; then another.
    let node = Binary::new(&app.db_url, &app.prefix, &[("MERIDIAN_INGEST", "false")]);
    let mut child = node.start().await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    child.kill().await.unwrap();
    let child = node.start().await;
    wait_until("outbox drained", || async {
        app.count("SELECT count(*) FROM geofence_outbox").await == 0
    })
    .await;
    let ids: Vec<i64> = app
        .column("SELECT id FROM geofence_events ORDER BY id")
        .await;
    crate::webhooks::wait_delivered(&receiver, &ids).await;
    let mut seen: BTreeMap<String, Value> = BTreeMap::new();
    for hit in receiver.accepted() {
        let body: Value = serde_json::from_slice(&hit.body).unwrap();
        assert_eq!(
            body["id"].to_string(),
            hit.event_id,
            "the key is the event's id"
        );
        assert!(crate::webhooks::verifies(
            crate::webhooks::SECRET,
            &hit.body,
            &hit.signature
        ));
        // A repeat (a round redelivered after the kill) is the same event, byte for byte.
        if let Some(before) = seen.insert(hit.event_id.clone(), body.clone()) {
            assert_eq!(before, body);
        }
    }
    let keys: BTreeSet<String> = ids.iter().map(i64::to_string).collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), keys);
    // And on MQTT, each the API's event.
    let published = listener.wait_for(40).await;
    for e in &all_events(&app).await {
        assert_eq!(&published[&e["id"].as_i64().unwrap()].1, e);
    }
    stop(child).await;
}
