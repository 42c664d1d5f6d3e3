//! The spatial lookups with thousands of fences and positions read nothing linearly:
//! PostgreSQL's own statistics must show `contains` reading no `geofences` row at all (it is
//! answered from the node's in-memory set) and fence vehicles using the positions' GiST index.

use std::time::Duration;

use meridian::domain::Role;
use serde_json::json;

use super::{create, polygon, square};
use crate::helpers::{wait_until, TestApp};

/// Rows of `geofences` read (sequentially or through any index), and index scans of the two
/// GiST indexes.
async fn scans(app: &TestApp) -> (i64, i64, i64) {
    let row = app
        .db
        .query_one(
            "SELECT (SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables WHERE relname = 'geofences'), \
                    (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'geofences_bounds_gist'), \
                    (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'vehicle_positions_location_gist')",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn lookups_over_thousands_of_fences_and_positions_use_the_gist_indexes() {
    let app = crate::helpers::spawn_app().await;
    // 3,000 small squares and 1,000 circles over the world, 5,000 vehicles with positions.
    app.db
        .batch_execute(
            "INSERT INTO geofences (name, kind, geom, bounds) \
               SELECT 'p' || i, 'polygon', g, g FROM generate_series(1, 3000) i, \
               LATERAL ST_MakeEnvelope((i * 7919) % 340 - 170, (i * 104729) % 160 - 80, \
                                       (i * 7919) % 340 - 169.95, (i * 104729) % 160 - 79.95, 4326) g; \
             INSERT INTO geofences (name, kind, center, radius_m, bounds) \
               SELECT 'c' || i, 'circle', c, 1000, ST_Multi(ST_Expand(c, 0.05)) FROM generate_series(1, 1000) i, \
               LATERAL ST_SetSRID(ST_MakePoint((i * 6007) % 340 - 170, (i * 3001) % 160 - 80), 4326) c; \
             INSERT INTO vehicles (external_id) SELECT 'seed-' || i FROM generate_series(1, 5000) i; \
             INSERT INTO vehicle_positions (vehicle_id, ts, location, received_at) \
               SELECT id, now(), ST_SetSRID(ST_MakePoint(hashint4(i) % 180, hashint4(i + 1) % 90), 4326), now() \
               FROM (SELECT id, row_number() OVER ()::int AS i FROM vehicles) v; \
             ANALYZE geofences; ANALYZE vehicle_positions; ANALYZE vehicles;",
        )
        .await
        .unwrap();
    let desk = app.client(Role::Dispatcher).await;
    let id = create(&desk, polygon("probe", &[square(10.25, 10.25, 0.5)])).await;
    // The fences inserted by SQL reach the node's set through the trigger's NOTIFY.
    wait_until("fences inserted by SQL indexed", || async {
        let (_, page) = desk
            .get("/v1/geofences?contains=-169.99,-79.99&limit=1000")
            .await;
        page["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    // The burst of 4,000 notifications may cost the feed a second full load right after the
    // first; let it finish before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = scans(&app).await;

    let (status, page) = desk.get("/v1/geofences?contains=10.5,10.5").await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    let (status, page) = desk.get(&format!("/v1/geofences/{id}/vehicles")).await;
    assert_eq!((status, &page["items"]), (200, &json!([])), "{page}");

    // Statistics reach the shared view when the app's connection next flushes them (≤ 10 s).
    // A linear scan (sequential, or the whole primary key in id order) reads thousands of rows.
    let counted = |now: (i64, i64, i64)| now.0 - before.0 >= 100 || now.2 > before.2;
    wait_until("scans counted", || async {
        if counted(scans(&app).await) {
            return true;
        }
        app.get("/readyz").await; // gives the pooled connection a reason to flush
        tokio::time::sleep(Duration::from_millis(200)).await;
        false
    })
    .await;
    let after = scans(&app).await;
    assert_eq!(
        (after.0, after.1),
        (before.0, before.1),
        "contains read geofences: {before:?} → {after:?}"
    );
    assert!(after.2 > before.2, "{before:?} → {after:?}");
}
