//! The queue: jobs nobody could take are offered, in priority-then-age order, as drivers free
//! up — with two nodes draining at once — and cancelled when their time window ends.

use std::time::Duration;

use meridian::domain::Role;
use serde_json::json;

use super::{complete, dispatch, fleet, job, spawn_app_with_fast_drain, DEPOT};
use crate::helpers::spawn_node;

#[tokio::test]
async fn the_queue_drains_in_priority_then_age_order_with_two_nodes_draining() {
    let app = spawn_app_with_fast_drain().await;
    let other = spawn_node(
        &app.db_url,
        &app.prefix,
        &[("MERIDIAN_QUEUE_DRAIN_MS", "200")],
    )
    .await;
    let desk = app.client(Role::Dispatcher).await;
    let other_desk = other.client(Role::Dispatcher).await;
    fleet(&app, &desk, "van", 1, "van", DEPOT).await;
    let first = job(&desk, "first", 5, DEPOT, "van").await;
    let (status, body) = dispatch(&desk, &first, None).await;
    assert_eq!(status, 201, "{body}");
    let mut current = body["dispatch"]["id"].as_str().unwrap().to_owned();

    // (reference, priority) in the order they arrive; both nodes take requests.
    let arrivals = [
        ("p3", 3),
        ("p9-old", 9),
        ("p5", 5),
        ("p9-new", 9),
        ("p0", 0),
    ];
    for (i, (reference, priority)) in arrivals.iter().enumerate() {
        let id = job(&desk, reference, *priority, DEPOT, "van").await;
        let client = if i % 2 == 0 { &desk } else { &other_desk };
        let (status, body) = dispatch(client, &id, None).await;
        assert_eq!(status, 202, "{reference}: {body}");
        tokio::time::sleep(Duration::from_millis(5)).await; // distinct ages
    }
    let mut served = Vec::new();
    for turn in 0..arrivals.len() {
        // Free the van through alternating nodes; whichever node drains first takes the job.
        let client = if turn % 2 == 0 { &other_desk } else { &desk };
        complete(client, &current).await;
        let mut next = None;
        app.wait_until("the freed van is given to the next job", || async {
            let (_, page) = desk.get("/v1/dispatches?status=dispatched").await;
            page["items"]
                .as_array()
                .is_some_and(|items| items.len() == 1)
        })
        .await;
        let (_, page) = desk.get("/v1/dispatches?status=dispatched").await;
        let d = &page["items"][0];
        let (_, job) = desk
            .get(&format!("/v1/jobs/{}", d["job_id"].as_str().unwrap()))
            .await;
        served.push(job["reference"].as_str().unwrap().to_owned());
        next.get_or_insert(d["id"].as_str().unwrap().to_owned());
        current = next.unwrap();
    }
    assert_eq!(served, ["p9-old", "p9-new", "p5", "p3", "p0"]);
    assert_eq!(app.count("SELECT count(*) FROM dispatch_queue").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'dequeue'")
            .await,
        5,
        "each job dequeued once, by one node"
    );
}

#[tokio::test]
async fn a_queued_job_past_its_time_window_is_cancelled_with_an_audit_row() {
    let app = spawn_app_with_fast_drain().await;
    let desk = app.client(Role::Dispatcher).await;
    let end = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (status, body) = desk
        .post(
            "/v1/jobs",
            json!({"reference": "soon", "pickup": [DEPOT.1, DEPOT.0],
                                  "vehicle_type": "van", "time_window": {"end": end}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        body["time_window"]["end"].as_str().map(|s| !s.is_empty()),
        Some(true)
    );
    let (status, body) = dispatch(&desk, &id, None).await;
    assert_eq!(status, 202, "nobody on shift: {body}");
    app.wait_until("the job expires", || async {
        desk.get(&format!("/v1/jobs/{id}")).await.1["status"] == "cancelled"
    })
    .await;
    assert_eq!(app.count("SELECT count(*) FROM dispatch_queue").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE entity = 'job' AND action = 'expire' AND actor IS NULL").await,
        1
    );
    // A driver arriving now does not get it.
    fleet(&app, &desk, "van", 1, "van", DEPOT).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.count("SELECT count(*) FROM dispatches").await, 0);
}
