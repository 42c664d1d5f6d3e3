//! Fleet management over HTTP: vehicles, drivers, shifts; validation and conflicts.

use meridian::domain::Role;
use serde_json::json;

use crate::client::code;
use crate::helpers::spawn_app;

#[tokio::test]
async fn vehicles_register_read_patch_and_list_in_pages() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;

    let (status, v) = desk
        .post("/v1/vehicles", json!({"external_id": "truck-17"}))
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (v["external_id"].as_str(), v["status"].as_str()),
        (Some("truck-17"), Some("active"))
    );
    let id = v["id"].as_str().unwrap().to_owned();

    let (status, v) = desk
        .patch(
            &format!("/v1/vehicles/{id}"),
            json!({"status": "maintenance", "plate": "B-MX 17"}),
        )
        .await;
    assert_eq!(
        (status, v["status"].as_str(), v["plate"].as_str()),
        (200, Some("maintenance"), Some("B-MX 17"))
    );
    let (status, v) = desk.get(&format!("/v1/vehicles/{id}")).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("maintenance")),
        "the change persisted"
    );

    for i in 0..4 {
        let body =
            json!({"external_id": format!("van-{i}"), "vehicle_type": "van", "year": 2020 + i});
        assert_eq!(desk.post("/v1/vehicles", body).await.0, 201);
    }
    let (_, first) = desk.get("/v1/vehicles?vehicle_type=van&limit=3").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let after = first["next_after"].as_str().unwrap();
    let (_, second) = desk
        .get(&format!(
            "/v1/vehicles?vehicle_type=van&limit=3&after={after}"
        ))
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_after"].is_null());
    let (_, maint) = desk.get("/v1/vehicles?status=maintenance").await;
    assert_eq!(maint["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_vehicle_requests_get_the_right_4xx_with_a_json_error() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    assert_eq!(
        desk.post("/v1/vehicles", json!({"external_id": "dup"}))
            .await
            .0,
        201
    );

    let cases = [
        (json!({"external_id": "dup"}), 409, "conflict"),
        (json!({"plate": "X"}), 422, "invalid"),
        (json!({"external_id": "has space"}), 422, "invalid"),
        (
            json!({"external_id": "ok-1", "status": "flying"}),
            422,
            "invalid",
        ),
        (
            json!({"external_id": "ok-2", "colour": "red"}),
            422,
            "invalid",
        ),
        (
            json!({"external_id": "ok-3", "year": "new"}),
            422,
            "invalid",
        ),
        (json!({"external_id": "ok-4", "year": 1066}), 422, "invalid"),
        (
            json!({"external_id": "ok-5", "specs": [1, 2]}),
            422,
            "invalid",
        ),
    ];
    for (body, status, expected) in cases {
        let (got, err) = desk.post("/v1/vehicles", body.clone()).await;
        assert_eq!((got, code(&err)), (status, expected), "{body} → {err}");
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, err) = desk
        .post_raw("/v1/vehicles", "application/json", "{\"external_id\": ")
        .await;
    assert_eq!((status, code(&err)), (400, "bad_request"));
    let (status, err) = desk.post_raw("/v1/vehicles", "text/plain", "{}").await;
    assert_eq!((status, code(&err)), (415, "unsupported_media_type"));
    assert_eq!(
        code(&desk.get("/v1/vehicles/not-a-uuid").await.1),
        "bad_request"
    );
    assert_eq!(
        desk.get(&format!("/v1/vehicles/{}", uuid::Uuid::new_v4()))
            .await
            .0,
        404
    );
    assert_eq!(desk.get("/v1/vehicles?limit=0").await.0, 400);
    let (_, v) = desk.get("/v1/vehicles").await;
    let id = v["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        desk.patch(
            &format!("/v1/vehicles/{id}"),
            json!({"external_id": "other"})
        )
        .await
        .0,
        422
    );
}

#[tokio::test]
async fn bulk_registration_is_idempotent_and_analysts_only_read() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let analyst = app.client(Role::Analyst).await;
    let items: Vec<_> = (0..10_000)
        .map(|i| json!({"external_id": format!("bulk-{i:05}"), "vehicle_type": "car"}))
        .collect();
    let (status, r) = desk
        .post("/v1/vehicles/bulk", json!({ "items": items }))
        .await;
    assert_eq!(
        (status, r["created"].as_u64(), r["existing"].as_u64()),
        (201, Some(10_000), Some(0))
    );
    let (_, r) = desk
        .post(
            "/v1/vehicles/bulk",
            json!({ "items": items[..10].to_vec() }),
        )
        .await;
    assert_eq!(
        (r["created"].as_u64(), r["existing"].as_u64()),
        (Some(0), Some(10))
    );
    assert_eq!(app.count("SELECT count(*) FROM vehicles").await, 10_000);
    let bad = json!({"items": [{"external_id": "fine"}, {"external_id": ""}]});
    let (status, err) = desk.post("/v1/vehicles/bulk", bad).await;
    assert_eq!(status, 422);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("items[1]"));

    assert_eq!(
        analyst
            .post("/v1/vehicles", json!({"external_id": "nope"}))
            .await
            .0,
        403
    );
    assert_eq!(analyst.get("/v1/vehicles?limit=5").await.0, 200);
}

#[tokio::test]
async fn drivers_register_change_status_and_filter() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let (status, d) = desk
        .post(
            "/v1/drivers",
            json!({"name": "Ada", "license_number": "L-1"}),
        )
        .await;
    assert_eq!((status, d["status"].as_str()), (201, Some("off_duty")));
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(
        desk.post("/v1/drivers", json!({"license_number": "L-2"}))
            .await
            .0,
        422,
        "name required"
    );
    assert_eq!(
        desk.post(
            "/v1/drivers",
            json!({"name": "Bo", "license_number": "L-1"})
        )
        .await
        .0,
        409,
        "licence unique"
    );

    let (status, d) = desk
        .patch(&format!("/v1/drivers/{id}"), json!({"status": "available"}))
        .await;
    assert_eq!((status, d["status"].as_str()), (200, Some("available")));
    assert_eq!(
        desk.patch(&format!("/v1/drivers/{id}"), json!({"status": "asleep"}))
            .await
            .0,
        422
    );
    let (_, list) = desk.get("/v1/drivers?status=available").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = desk.get("/v1/drivers?status=on_job").await;
    assert!(list["items"].as_array().unwrap().is_empty());
}
