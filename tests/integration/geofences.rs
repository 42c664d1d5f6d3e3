//! Geofences over HTTP against real PostGIS: the CRUD round trip and paging, every bad body
//! answered 4xx with a message naming the problem, and the role matrix. Containment (polygons,
//! holes, circles, vehicles inside) is in `geofences/containment.rs`, checked against geometry
//! computed independently in `geofences/geodesy.rs`; index use with thousands of fences in
//! `geofences/indexes.rs`.

mod containment;
mod geodesy;
mod index_vs_postgis;
mod indexes;

use std::collections::BTreeSet;

use meridian::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{code, Client};
use crate::helpers::spawn_app;
use geodesy::Pos;

fn feature(name: &str, geometry: Value) -> Value {
    json!({"type": "Feature", "geometry": geometry, "properties": {"name": name}})
}

fn polygon(name: &str, rings: &[Vec<Pos>]) -> Value {
    feature(name, json!({"type": "Polygon", "coordinates": rings}))
}

fn square(x: f64, y: f64, size: f64) -> Vec<Pos> {
    vec![
        [x, y],
        [x + size, y],
        [x + size, y + size],
        [x, y + size],
        [x, y],
    ]
}

/// Creates a fence and returns its id.
async fn create(desk: &Client<'_>, body: Value) -> String {
    let (status, fence) = desk.post("/v1/geofences", body).await;
    assert_eq!(status, 201, "{fence}");
    fence["id"].as_str().unwrap().to_owned()
}

/// Ids of the fences containing `p`, following every page.
async fn containing(client: &Client<'_>, p: Pos) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut after = String::new();
    loop {
        let path = format!("/v1/geofences?contains={},{}&limit=2{after}", p[0], p[1]);
        let (status, page) = client.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        for f in page["items"].as_array().unwrap() {
            ids.insert(f["id"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(id) => after = format!("&after={id}"),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn geofences_round_trip_through_create_get_replace_list_and_delete() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let analyst = app.client(Role::Analyst).await;

    // Coordinates come back exactly as sent, and the Polygon stays a Polygon.
    let rings = vec![
        square(24.123456789012345, 60.1, 0.05),
        square(24.13, 60.11, 0.01),
    ];
    let (status, created) = desk.post("/v1/geofences", polygon(" Depot ", &rings)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["name"].as_str(), created["kind"].as_str()),
        (Some("Depot"), Some("polygon"))
    );
    assert_eq!(
        created["geometry"],
        json!({"type": "Polygon", "coordinates": rings})
    );
    assert_eq!(
        (&created["center"], &created["radius_m"]),
        (&Value::Null, &Value::Null)
    );
    let id = created["id"].as_str().unwrap();
    let (status, got) = analyst.get(&format!("/v1/geofences/{id}")).await;
    assert_eq!((status, &got), (200, &created));

    // PUT replaces name and shape; the kind may change. A circle's geometry is its centre.
    let circle = json!({"name": "Yard", "center": [18.96, 69.65], "radius_m": 250});
    let (status, replaced) = desk
        .call(Method::PUT, &format!("/v1/geofences/{id}"), Some(circle))
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["id"], created["id"]);
    assert_eq!(
        (replaced["name"].as_str(), replaced["kind"].as_str()),
        (Some("Yard"), Some("circle"))
    );
    assert_eq!(
        replaced["geometry"],
        json!({"type": "Point", "coordinates": [18.96, 69.65]})
    );
    assert_eq!(
        (&replaced["center"], &replaced["radius_m"]),
        (&json!([18.96, 69.65]), &json!(250.0))
    );
    assert_eq!(replaced["created_at"], created["created_at"]);
    let ts = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(ts(&replaced["updated_at"]) > ts(&created["updated_at"]));
    assert_eq!(
        analyst.get(&format!("/v1/geofences/{id}")).await.1,
        replaced
    );

    // Pages of two, in id order, cover every fence exactly once.
    let admin = app.client(Role::Admin).await;
    let mut all = BTreeSet::from([id.to_owned()]);
    for i in 0..4 {
        all.insert(
            create(
                &admin,
                polygon(&format!("f{i}"), &[square(i as f64, 0.0, 1.0)]),
            )
            .await,
        );
    }
    let (mut seen, mut after, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let (status, page) = analyst.get(&format!("/v1/geofences?limit=2{after}")).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "ordered by id: {seen:?}"
    );
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);

    let path = format!("/v1/geofences/{id}");
    assert_eq!(desk.call(Method::DELETE, &path, None).await.0, 204);
    for (method, body) in [
        (Method::GET, None),
        (Method::DELETE, None),
        (
            Method::PUT,
            Some(json!({"name": "x", "center": [0, 0], "radius_m": 1})),
        ),
    ] {
        let (status, err) = desk.call(method.clone(), &path, body).await;
        assert_eq!(
            (status, code(&err)),
            (404, "not_found"),
            "{method} after delete: {err}"
        );
    }
    let (status, err) = desk.get(&format!("{path}/vehicles")).await;
    assert_eq!((status, code(&err)), (404, "not_found"), "{err}");
}

#[tokio::test]
async fn bad_geofences_are_refused_with_a_message_naming_the_problem() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let ring = |positions: Value| {
        feature(
            "bad",
            json!({"type": "Polygon", "coordinates": [positions]}),
        )
    };
    let cases = [
        (
            ring(json!([[0, 0], [1, 0], [1, 1], [0, 1]])),
            "ring 0 of polygon 0 is not closed: first position [0, 0] != last [0, 1]",
        ),
        (
            ring(json!([[0, 0], [1, 0], [0, 0]])),
            "ring 0 of polygon 0 has 3 positions",
        ),
        (
            ring(json!([[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]])),
            "geometry is not valid: Self-intersection",
        ),
        (
            ring(json!([[0, 0], [200, 0], [1, 1], [0, 0]])),
            "longitude 200 at position 1 of ring 0 of polygon 0",
        ),
        (
            ring(json!([
                [35.6, 139.7],
                [35.7, 139.7],
                [35.7, 139.8],
                [35.6, 139.7]
            ])),
            "coordinates look like [lat, lon]; GeoJSON wants [lon, lat]",
        ),
        (
            ring(json!([
                [179.5, -17],
                [-179.5, -17],
                [-179.5, -18],
                [179.5, -18],
                [179.5, -17]
            ])),
            "split it there into a MultiPolygon",
        ),
        (
            feature("bad", json!({"type": "Point", "coordinates": [1, 2]})),
            "geometry type Point is not supported",
        ),
        (
            feature(
                "bad",
                json!({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}),
            ),
            "geometry type LineString is not supported",
        ),
        (
            json!({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square(0.0, 0.0, 1.0)]}, "properties": {}}),
            "properties.name is required",
        ),
        (
            json!({"center": [0, 0], "radius_m": 10}),
            "name is required",
        ),
        (
            json!({"name": "c", "center": [0, 0], "radius_m": -1}),
            "radius_m must be greater than 0 (got -1)",
        ),
        (
            json!({"name": "c", "center": [0, 0], "radius_m": 5e6}),
            "radius_m must be at most",
        ),
        (
            json!({"name": "c", "center": [0, 0], "radius_m": 10, "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            json!({"type": "Polygon", "coordinates": [square(0.0, 0.0, 1.0)]}),
            "wrap it as",
        ),
    ];
    for (body, expected) in cases {
        let (status, err) = desk.post("/v1/geofences", body.clone()).await;
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert_eq!((status, code(&err)), (422, "invalid"), "{body}: {err}");
        assert!(
            message.contains(expected),
            "{body}: {message:?} lacks {expected:?}"
        );
    }
    let id = create(&desk, polygon("good", &[square(0.0, 0.0, 1.0)])).await;
    let (status, err) = desk
        .call(
            Method::PUT,
            &format!("/v1/geofences/{id}"),
            Some(json!({"name": "c", "center": [100, 95], "radius_m": 1})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("latitude 95 at center"),
        "{err}"
    );

    let (status, err) = desk
        .post_raw("/v1/geofences", "application/json", "{\"name\":")
        .await;
    assert_eq!((status, code(&err)), (400, "bad_request"));
    for (query, status) in [
        ("contains=abc", 400),
        ("contains=1", 400),
        ("contains=200,0", 422),
        ("limit=0", 400),
        ("after=nope", 400),
    ] {
        let (got, err) = desk.get(&format!("/v1/geofences?{query}")).await;
        assert_eq!(got, status, "{query}: {err}");
        assert_ne!(code(&err), "<not a JSON error>");
    }
    let (status, err) = desk
        .get(&format!("/v1/geofences/{id}/vehicles?max_age_s=-5"))
        .await;
    assert_eq!(status, 422, "{err}");
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/v1/geofences/{unknown}"),
        format!("/v1/geofences/{unknown}/vehicles"),
    ] {
        let (status, err) = desk.get(&path).await;
        assert_eq!((status, code(&err)), (404, "not_found"), "{path}");
    }
    assert_eq!(desk.get("/v1/geofences/not-a-uuid").await.0, 400);

    // Nothing bad was stored.
    assert_eq!(app.count("SELECT count(*) FROM geofences").await, 1);
}

#[tokio::test]
async fn dispatchers_and_admins_write_analysts_read_and_keyless_calls_get_401() {
    let app = spawn_app().await;
    let analyst = app.client(Role::Analyst).await;
    let body = json!({"name": "c", "center": [10, 10], "radius_m": 100});
    let (status, err) = analyst.post("/v1/geofences", body.clone()).await;
    assert_eq!((status, code(&err)), (403, "forbidden"));
    let id = create(&app.client(Role::Dispatcher).await, body.clone()).await;
    let path = format!("/v1/geofences/{id}");
    assert_eq!(
        analyst.call(Method::PUT, &path, Some(body.clone())).await.0,
        403
    );
    assert_eq!(analyst.call(Method::DELETE, &path, None).await.0, 403);
    for read in [
        path.clone(),
        format!("{path}/vehicles"),
        "/v1/geofences".into(),
        "/v1/geofences?contains=10,10".into(),
    ] {
        assert_eq!(analyst.get(&read).await.0, 200, "{read}");
    }
    assert_eq!(
        app.client(Role::Admin)
            .await
            .call(Method::DELETE, &path, None)
            .await
            .0,
        204
    );

    for (method, path) in [
        (Method::POST, "/v1/geofences".to_owned()),
        (Method::GET, "/v1/geofences".into()),
        (Method::GET, path.clone()),
        (Method::PUT, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/vehicles")),
    ] {
        let res = app
            .http
            .request(
                method.clone(),
                format!("http://127.0.0.1:{}{path}", app.port),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{method} {path}");
    }
}
