//! Shifts: exclusion constraints make overlapping shifts impossible, even under races.

use meridian::domain::Role;
use serde_json::{json, Value};

use crate::client::{code, Client};
use crate::helpers::spawn_app;

async fn driver_and_vehicle(desk: &Client<'_>, n: u32) -> (String, String) {
    let (_, d) = desk
        .post("/v1/drivers", json!({"name": format!("driver {n}")}))
        .await;
    let (_, v) = desk
        .post(
            "/v1/vehicles",
            json!({"external_id": format!("shift-veh-{n}")}),
        )
        .await;
    (
        d["id"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

fn shift(driver: &str, vehicle: &str, start: &str, end: Option<&str>) -> Value {
    json!({"driver_id": driver, "vehicle_id": vehicle, "start": start, "end": end})
}

#[tokio::test]
async fn overlapping_shifts_are_refused_for_the_driver_and_for_the_vehicle() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let (d1, v1) = driver_and_vehicle(&desk, 1).await;
    let (d2, v2) = driver_and_vehicle(&desk, 2).await;

    let (status, s) = desk
        .post(
            "/v1/shifts",
            shift(
                &d1,
                &v1,
                "2026-11-21T08:00:00Z",
                Some("2026-11-21T16:00:00Z"),
            ),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["end"].as_str(), Some("2026-11-21T16:00:00Z"));

    let (status, err) = desk
        .post("/v1/shifts", shift(&d1, &v2, "2026-11-21T15:00:00Z", None))
        .await;
    assert_eq!((status, code(&err)), (409, "conflict"));
    assert!(err["error"]["message"].as_str().unwrap().contains("driver"));
    let (status, err) = desk
        .post(
            "/v1/shifts",
            shift(
                &d2,
                &v1,
                "2026-11-21T07:00:00Z",
                Some("2026-11-21T08:30:00Z"),
            ),
        )
        .await;
    assert_eq!(status, 409);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("vehicle"));

    // Half-open ranges: the next shift may start exactly when the previous one ends.
    assert_eq!(
        desk.post("/v1/shifts", shift(&d2, &v1, "2026-11-21T16:00:00Z", None))
            .await
            .0,
        201
    );
    assert_eq!(
        desk.post(
            "/v1/shifts",
            shift(
                &d2,
                &v2,
                "2026-11-21T09:00:00Z",
                Some("2026-11-21T08:00:00Z")
            )
        )
        .await
        .0,
        422
    );
    let ghost = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        desk.post(
            "/v1/shifts",
            shift(&ghost, &v2, "2026-11-21T09:00:00Z", None)
        )
        .await
        .0,
        422
    );
    assert_eq!(
        app.client(Role::Analyst)
            .await
            .post("/v1/shifts", shift(&d2, &v2, "2026-11-22T09:00:00Z", None))
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn a_shift_ends_early_and_lists_show_what_runs_now() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let (d, v) = driver_and_vehicle(&desk, 3).await;
    let start = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (_, s) = desk.post("/v1/shifts", shift(&d, &v, &start, None)).await;
    let id = s["id"].as_str().unwrap().to_owned();
    let (_, running) = desk
        .get(&format!("/v1/shifts?driver_id={d}&active_at=now"))
        .await;
    assert_eq!(running["items"].as_array().unwrap().len(), 1);

    let (status, ended) = desk.post(&format!("/v1/shifts/{id}/end"), json!({})).await;
    assert_eq!(status, 200, "{ended}");
    assert!(ended["end"].is_string());
    let (_, running) = desk
        .get(&format!("/v1/shifts?driver_id={d}&active_at=now"))
        .await;
    assert!(running["items"].as_array().unwrap().is_empty());
    assert_eq!(
        desk.post(&format!("/v1/shifts/{id}/end"), json!({}))
            .await
            .0,
        409,
        "already ended"
    );
    assert_eq!(
        desk.post(
            &format!("/v1/shifts/{}/end", uuid::Uuid::new_v4()),
            json!({})
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn concurrent_overlapping_requests_book_exactly_one_shift() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let (d, _) = driver_and_vehicle(&desk, 4).await;
    let mut vehicles = Vec::new();
    for n in 10..20 {
        vehicles.push(driver_and_vehicle(&desk, n).await.1);
    }
    let attempts = vehicles
        .iter()
        .map(|v| desk.post("/v1/shifts", shift(&d, v, "2026-12-01T08:00:00Z", None)));
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let conflicts = results.iter().filter(|(s, _)| *s == 409).count();
    assert_eq!((created, conflicts), (1, 9), "{results:?}");
}
