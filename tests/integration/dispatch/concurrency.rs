//! Races: many dispatchers at once, on one node and on two. The database decides; the answer
//! counts must add up exactly and no driver may be dispatched twice.

use std::collections::HashSet;

use futures_util::future::join_all;
use meridian::domain::Role;
use serde_json::json;

use super::{dispatch, fleet, job, DEPOT};
use crate::helpers::{spawn_app, spawn_node};
use crate::nearest::nearest;

#[tokio::test]
async fn a_hundred_concurrent_requests_for_one_driver_dispatch_exactly_one() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let vans = fleet(&app, &desk, "van", 1, "van", DEPOT).await;
    let mut jobs = Vec::new();
    for i in 0..100 {
        jobs.push(job(&desk, &format!("J-{i}"), 5, DEPOT, "van").await);
    }
    let body = json!({"driver_id": vans[0].id});
    let answers = join_all(jobs.iter().map(|j| dispatch(&desk, j, Some(body.clone())))).await;
    let won = answers.iter().filter(|(s, _)| *s == 201).count();
    let busy = answers
        .iter()
        .filter(|(s, b)| *s == 409 && b["error"]["reason"] == "busy")
        .count();
    assert_eq!((won, busy), (1, 99), "{answers:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM dispatches WHERE status = 'dispatched'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'dispatch'")
            .await,
        1,
        "refused attempts leave no audit row"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE status = 'pending'")
            .await,
        99,
        "the 99 jobs are untouched"
    );
}

#[tokio::test]
async fn fifty_automatic_dispatches_over_ten_drivers_on_one_node() {
    fifty_automatic_dispatches_over_ten_drivers(1).await;
}

#[tokio::test]
async fn fifty_automatic_dispatches_over_ten_drivers_on_two_nodes_at_once() {
    fifty_automatic_dispatches_over_ten_drivers(2).await;
}

async fn fifty_automatic_dispatches_over_ten_drivers(nodes: usize) {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let vans = fleet(&app, &desk, "van", 10, "van", DEPOT).await;
    let second = match nodes {
        2 => Some(spawn_node(&app.db_url, &app.prefix, &[]).await),
        _ => None,
    };
    let second_desk = match &second {
        Some(node) => {
            let d = node.client(Role::Dispatcher).await;
            let query = format!("lat={}&lon={}&limit=100", DEPOT.0, DEPOT.1);
            node.wait_until("the second node offers all ten", || async {
                nearest(&d, &query).await.len() == 10
            })
            .await;
            Some(d)
        }
        None => None,
    };
    let mut jobs = Vec::new();
    for i in 0..50 {
        jobs.push(job(&desk, &format!("J-{i}"), 5, DEPOT, "van").await);
    }
    let answers = join_all(jobs.iter().enumerate().map(|(i, j)| {
        let client = match (&second_desk, i % 2) {
            (Some(d), 1) => d,
            _ => &desk,
        };
        dispatch(client, j, None)
    }))
    .await;
    let drivers: Vec<&str> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b["dispatch"]["driver_id"].as_str().unwrap())
        .collect();
    let queued = answers
        .iter()
        .filter(|(s, b)| *s == 202 && b["queued"] == true)
        .count();
    assert_eq!((drivers.len(), queued), (10, 40), "{answers:?}");
    let distinct: HashSet<&str> = drivers.iter().copied().collect();
    let all: HashSet<&str> = vans.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(distinct, all, "ten distinct drivers, every one of them");
    let mut positions: Vec<i64> = answers
        .iter()
        .filter_map(|(_, b)| b["position"].as_i64())
        .collect();
    positions.sort();
    assert_eq!(positions.first(), Some(&1));
    assert!(
        positions.iter().all(|p| (1..=40).contains(p)),
        "{positions:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM dispatch_queue").await, 40);
    assert_eq!(
        app.count("SELECT count(DISTINCT driver_id) FROM dispatches")
            .await,
        10
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'enqueue'")
            .await,
        40
    );
}
