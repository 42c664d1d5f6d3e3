//! Dispatch over HTTP against real PostgreSQL and the broker: jobs, automatic and named
//! dispatch, why a driver is refused, every illegal status change, the audit trail one row per
//! operation, and that nearest never offers a dispatched driver. Concurrency and the queue are
//! in the submodules.

mod concurrency;
mod queue;
mod refusals;

use chrono::Duration as ChronoDuration;
use meridian::domain::Role;
use serde_json::{json, Value};

use crate::client::{code, Client};
use crate::helpers::{now_ms, point, spawn_app, TestApp};
use crate::nearest::{nearest, on_shift, Driver};

/// `n` available drivers with vans (or `vehicle_type`) reporting now, spread ~100 m apart
/// north of (lat, lon); returns them nearest first once this node's index offers them all.
pub async fn fleet(
    app: &TestApp,
    desk: &Client<'_>,
    tag: &str,
    n: usize,
    vehicle_type: &str,
    (lat, lon): (f64, f64),
) -> Vec<Driver> {
    let before = app.acker.settled();
    let mut drivers = Vec::new();
    for i in 0..n {
        let external_id = format!("{tag}-{i}");
        let driver = on_shift(
            desk,
            &external_id,
            Some(vehicle_type),
            ChronoDuration::zero(),
        )
        .await;
        app.publisher
            .telemetry(
                &external_id,
                point(now_ms(), lat + 0.001 * (i + 1) as f64, lon),
            )
            .await;
        drivers.push(driver);
    }
    app.wait_settled(before + n as u64).await;
    let query = format!("lat={lat}&lon={lon}&limit=100&vehicle_type={vehicle_type}");
    app.wait_until(&format!("{n} {vehicle_type}s offered"), || async {
        nearest(desk, &query).await.len() >= n
    })
    .await;
    drivers
}

/// A job at (lat, lon); returns its id.
pub async fn job(
    desk: &Client<'_>,
    reference: &str,
    priority: i64,
    at: (f64, f64),
    vehicle_type: &str,
) -> String {
    let (status, body) = desk
        .post(
            "/v1/jobs",
            json!({"reference": reference, "pickup": [at.1, at.0], "priority": priority,
                   "vehicle_type": vehicle_type}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

pub async fn dispatch(desk: &Client<'_>, job_id: &str, body: Option<Value>) -> (u16, Value) {
    desk.call(
        reqwest::Method::POST,
        &format!("/v1/jobs/{job_id}/dispatch"),
        body,
    )
    .await
}

pub async fn set_status(desk: &Client<'_>, dispatch_id: &str, status: &str) -> (u16, Value) {
    desk.patch(
        &format!("/v1/dispatches/{dispatch_id}"),
        json!({"status": status}),
    )
    .await
}

/// Walks a dispatch through en_route and on_site to completed.
pub async fn complete(desk: &Client<'_>, dispatch_id: &str) {
    for s in ["en_route", "on_site", "completed"] {
        let (status, body) = set_status(desk, dispatch_id, s).await;
        assert_eq!(status, 200, "{s}: {body}");
    }
}

pub const DEPOT: (f64, f64) = (52.5200, 13.4050);

#[tokio::test]
async fn automatic_dispatch_takes_the_nearest_fitting_driver_and_the_job_shows_its_history() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let vans = fleet(&app, &desk, "van", 3, "van", DEPOT).await;
    fleet(
        &app,
        &desk,
        "truck",
        1,
        "truck",
        (DEPOT.0 - 0.0005, DEPOT.1),
    )
    .await;
    let job_id = job(&desk, "J-1", 5, DEPOT, "van").await;

    let (status, body) = dispatch(&desk, &job_id, None).await;
    assert_eq!(status, 201, "{body}");
    let d = &body["dispatch"];
    assert_eq!(
        d["driver_id"],
        vans[0].id.as_str(),
        "the nearest van, not the nearer truck"
    );
    assert_eq!(d["vehicle_id"], vans[0].vehicle.as_str());
    assert_eq!(d["job_id"], job_id.as_str());
    assert_eq!(d["status"], "dispatched");
    let distance = d["distance_m"].as_f64().unwrap();
    assert!(
        (distance - 111.3).abs() < 1.0,
        "0.001° of latitude at 52.5° N: {distance}"
    );

    let (status, job) = desk.get(&format!("/v1/jobs/{job_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(job["status"], "dispatched");
    assert_eq!(job["pickup"], json!([DEPOT.1, DEPOT.0]));
    assert_eq!(job["dispatches"].as_array().unwrap().len(), 1);
    assert_eq!(job["dispatches"][0]["id"], d["id"]);

    // The same job again: it is no longer open.
    let (status, body) = dispatch(&desk, &job_id, None).await;
    assert_eq!(
        (status, body["error"]["reason"].as_str()),
        (409, Some("job_not_open")),
        "{body}"
    );
    // Outside the radius nobody fits: queued.
    let (status, far) = desk
        .post(
            "/v1/jobs",
            json!({"reference": "J-far", "pickup": [DEPOT.1 + 1.0, DEPOT.0],
                                  "vehicle_type": "van", "max_radius_m": 5000}),
        )
        .await;
    assert_eq!(status, 201, "{far}");
    let (status, body) = dispatch(&desk, far["id"].as_str().unwrap(), None).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"queued": true, "position": 1}));
}

#[tokio::test]
async fn nearest_never_offers_a_dispatched_driver_and_offers_it_again_once_free() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let vans = fleet(&app, &desk, "van", 2, "van", DEPOT).await;
    let query = format!("lat={}&lon={}&limit=10", DEPOT.0, DEPOT.1);
    let job_id = job(&desk, "J-1", 5, DEPOT, "van").await;
    let (status, body) = dispatch(&desk, &job_id, None).await;
    assert_eq!(status, 201, "{body}");
    // Read-your-writes: the very next query, no waiting.
    let offered: Vec<Value> = nearest(&desk, &query).await;
    let ids: Vec<&str> = offered
        .iter()
        .map(|i| i["driver_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![vans[1].id.as_str()],
        "the dispatched driver is not offered"
    );

    complete(&desk, body["dispatch"]["id"].as_str().unwrap()).await;
    let offered = nearest(&desk, &query).await;
    assert_eq!(offered.len(), 2, "free again after completing: {offered:?}");
    assert_eq!(offered[0]["driver_id"], vans[0].id.as_str());
}

#[tokio::test]
async fn audit_rows_match_dispatch_operations_one_to_one() {
    let app = spawn_app_with_fast_drain().await;
    let desk = app.client(Role::Dispatcher).await;
    fleet(&app, &desk, "van", 1, "van", DEPOT).await;
    let mut ids = Vec::new();
    for (reference, priority) in [("A", 5), ("B", 9), ("C", 1)] {
        ids.push(job(&desk, reference, priority, DEPOT, "van").await);
    }
    let (status, a) = dispatch(&desk, &ids[0], None).await; // dispatch
    assert_eq!(status, 201, "{a}");
    assert_eq!(dispatch(&desk, &ids[1], None).await.0, 202); // enqueue
    assert_eq!(dispatch(&desk, &ids[2], None).await.0, 202); // enqueue
    let (status, _) = desk
        .post(&format!("/v1/jobs/{}/cancel", ids[2]), json!({}))
        .await; // dequeue + cancel
    assert_eq!(status, 200);
    complete(&desk, a["dispatch"]["id"].as_str().unwrap()).await; // 3 transitions
                                                                  // The drain hands the freed van to B: dispatch + dequeue, by the node (no actor).
    app.wait_until("B dispatched by the drain", || async {
        desk.get(&format!("/v1/jobs/{}", ids[1])).await.1["status"] == "dispatched"
    })
    .await;
    let rows = app
        .db
        .query(
            "SELECT entity, action, count(*), count(actor) FROM audit_log GROUP BY 1, 2 ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let s = |e: &str, a: &str, n: i64, by_key: i64| (e.to_owned(), a.to_owned(), n, by_key);
    assert_eq!(
        got,
        vec![
            s("dispatch", "completed", 1, 1),
            s("dispatch", "dispatch", 2, 1),
            s("dispatch", "en_route", 1, 1),
            s("dispatch", "on_site", 1, 1),
            s("job", "cancel", 1, 1),
            s("job", "create", 3, 3),
            s("queue", "dequeue", 2, 1),
            s("queue", "enqueue", 2, 2),
        ]
    );
    let drained: i64 = app
        .count("SELECT count(*) FROM audit_log WHERE action = 'dispatch' AND actor IS NULL AND after->>'job_id' = (SELECT id::text FROM jobs WHERE reference = 'B')")
        .await;
    assert_eq!(
        drained, 1,
        "the drain's dispatch is recorded without an actor"
    );
}

pub async fn spawn_app_with_fast_drain() -> TestApp {
    crate::helpers::spawn_app_with(&[("MERIDIAN_QUEUE_DRAIN_MS", "200")]).await
}

#[tokio::test]
async fn jobs_refuse_bad_input_and_roles() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let analyst = app.client(Role::Analyst).await;
    let base = json!({"reference": "R", "pickup": [13.4, 52.5], "vehicle_type": "van"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, why) in [
        (
            with("pickup", json!([200.0, 52.5])),
            "longitude out of range",
        ),
        (with("pickup", json!([13.4])), "one coordinate"),
        (with("priority", json!(10)), "priority above 9"),
        (with("vehicle_type", json!("  ")), "blank vehicle type"),
        (with("max_radius_m", json!(0)), "zero radius"),
        (
            with(
                "time_window",
                json!({"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z"}),
            ),
            "window ends before it starts",
        ),
        (
            with("time_window", json!({"end": "2001-01-01T00:00:00Z"})),
            "window already over",
        ),
        (with("metadata", json!([1])), "metadata not an object"),
        (with("colour", json!("red")), "unknown field"),
    ] {
        let (status, err) = desk.post("/v1/jobs", body).await;
        assert_eq!((status, code(&err)), (422, "invalid"), "{why}: {err}");
    }
    let (status, _) = desk.post("/v1/jobs", base.clone()).await;
    assert_eq!(status, 201);
    let (status, err) = desk.post("/v1/jobs", base.clone()).await;
    assert_eq!(
        (status, code(&err)),
        (409, "conflict"),
        "duplicate reference: {err}"
    );
    let (status, err) = analyst
        .post("/v1/jobs", with("reference", json!("R2")))
        .await;
    assert_eq!((status, code(&err)), (403, "forbidden"), "{err}");
    let (status, _) = analyst.get("/v1/dispatches").await;
    assert_eq!(status, 200, "analysts read dispatches");
    let (status, err) = desk.get("/v1/dispatches?status=lost").await;
    assert_eq!((status, code(&err)), (422, "invalid"), "{err}");
}
