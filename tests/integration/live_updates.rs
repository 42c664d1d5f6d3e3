//! The live index learns per driver (issue 8, item 5): a dispatch or a maintenance record
//! written by plain SQL reaches every node's nearest answer through the trigger's NOTIFY of
//! the ids it changed — no full reload — and the node that wrote it can wait for it
//! (read-your-writes).

use std::time::{Duration, Instant};

use chrono::Duration as ChronoDuration;
use meridian::domain::Role;
use uuid::Uuid;

use crate::client::Client;
use crate::dispatch_schema::{dispatch, job, Crew};
use crate::helpers::{now_ms, point, spawn_app, spawn_node, TestApp};
use crate::nearest::{external_ids, nearest, on_shift, Driver};

const AT: &str = "lat=59.91&lon=10.75&limit=10";

/// Two nodes on one database (B ingests another topic prefix: all it knows comes from
/// PostgreSQL), with drivers "near" and "far" on shift and offered by both.
struct Pair {
    a: TestApp,
    b: TestApp,
    near: Driver,
}

async fn pair() -> Pair {
    let a = spawn_app().await;
    let b = spawn_node(&a.db_url, &format!("{}other/", a.prefix), &[]).await;
    let desk = a.client(Role::Dispatcher).await;
    let zero = ChronoDuration::zero();
    let near = on_shift(&desk, "near", Some("van"), zero).await;
    on_shift(&desk, "far", Some("van"), zero).await;
    let now = now_ms();
    a.publisher
        .telemetry("near", point(now, 59.91, 10.75))
        .await;
    a.publisher.telemetry("far", point(now, 59.92, 10.75)).await;
    a.wait_settled(2).await;
    for node in [&a, &b] {
        let desk = node.client(Role::Dispatcher).await;
        offers(node, &desk, &["near", "far"]).await;
    }
    // Let any reload still queued from the setup's admin changes run before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Pair { a, b, near }
}

async fn offers(node: &TestApp, desk: &Client<'_>, expected: &[&str]) {
    node.wait_until(&format!("offered: {expected:?}"), || async {
        external_ids(&nearest(desk, AT).await) == expected
    })
    .await;
}

fn crew(d: &Driver) -> Crew {
    Crew {
        driver: d.id.parse().unwrap(),
        vehicle: d.vehicle.parse().unwrap(),
        shift: d.shift.parse().unwrap(),
    }
}

fn reloads(p: &Pair) -> [u64; 2] {
    [p.a.live.full_reloads(), p.b.live.full_reloads()]
}

#[tokio::test]
async fn a_dispatch_by_plain_sql_leaves_and_returns_on_both_nodes_without_a_full_reload() {
    let p = pair().await;
    let (desk_a, desk_b) = (
        p.a.client(Role::Dispatcher).await,
        p.b.client(Role::Dispatcher).await,
    );
    let before = reloads(&p);
    let refreshes = p.b.live.refreshes();
    let c = crew(&p.near);

    let j = job(&p.a, "J-LIVE-1").await;
    let d = dispatch(&p.a, j, &c).await.unwrap();
    let committed = Instant::now();
    // Read-your-writes on A: once this returns, A never offers the driver.
    p.a.live.drivers_changed(&[c.driver]).await;
    assert_eq!(external_ids(&nearest(&desk_a, AT).await), ["far"]);
    offers(&p.b, &desk_b, &["far"]).await;
    let lag = committed.elapsed();
    assert!(lag < Duration::from_secs(2), "node B followed in {lag:?}");
    println!("node B stopped offering the dispatched driver {lag:?} after the commit");

    // A progress step does not change availability and notifies nothing.
    p.a.db
        .execute(
            "UPDATE dispatches SET status = 'en_route', en_route_at = now() WHERE id = $1",
            &[&d],
        )
        .await
        .unwrap();
    let refreshed = p.b.live.refreshes();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(p.b.live.refreshes(), refreshed, "en_route: no re-read");

    let mut grew = p.a.live.availability_grew();
    grew.borrow_and_update();
    p.a.db
        .execute(
            "UPDATE dispatches SET status = 'completed', completed_at = now() WHERE id = $1",
            &[&d],
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), grew.changed())
        .await
        .expect("availability grew when the dispatch completed")
        .unwrap();
    p.a.live.drivers_changed(&[c.driver]).await;
    assert_eq!(external_ids(&nearest(&desk_a, AT).await), ["near", "far"]);
    offers(&p.b, &desk_b, &["near", "far"]).await;

    assert_eq!(reloads(&p), before, "no full reload on either node");
    assert!(
        p.b.live.refreshes() >= refreshes + 2,
        "B refreshed per driver"
    );
}

#[tokio::test]
async fn maintenance_opened_and_closed_by_plain_sql_follows_the_vehicle_on_both_nodes() {
    let p = pair().await;
    let (desk_a, desk_b) = (
        p.a.client(Role::Dispatcher).await,
        p.b.client(Role::Dispatcher).await,
    );
    let before = reloads(&p);
    let vehicle: Uuid = p.near.vehicle.parse().unwrap();

    let record: Uuid = p
        .a
        .db
        .query_one(
            "INSERT INTO maintenance_records (vehicle_id, kind) VALUES ($1, 'tyres') RETURNING id",
            &[&vehicle],
        )
        .await
        .unwrap()
        .get(0);
    p.a.live.vehicles_changed(&[vehicle]).await;
    assert_eq!(external_ids(&nearest(&desk_a, AT).await), ["far"]);
    offers(&p.b, &desk_b, &["far"]).await;

    p.a.db
        .execute(
            "UPDATE maintenance_records SET closed_at = now() WHERE id = $1",
            &[&record],
        )
        .await
        .unwrap();
    p.a.live.vehicles_changed(&[vehicle]).await;
    assert_eq!(external_ids(&nearest(&desk_a, AT).await), ["near", "far"]);
    offers(&p.b, &desk_b, &["near", "far"]).await;

    assert_eq!(reloads(&p), before, "no full reload on either node");
}

#[tokio::test]
async fn a_change_to_the_admin_tables_still_reloads_everything() {
    let p = pair().await;
    let before = reloads(&p);
    let desk_b = p.b.client(Role::Dispatcher).await;
    p.a.db
        .execute(
            "UPDATE drivers SET status = 'off_duty' WHERE id = $1",
            &[&p.near.id.parse::<Uuid>().unwrap()],
        )
        .await
        .unwrap();
    offers(&p.b, &desk_b, &["far"]).await;
    assert!(p.b.live.full_reloads() > before[1]);
}
