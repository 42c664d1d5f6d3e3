//! Nearest available drivers over HTTP, fed by real ingest and real availability changes.
//! Order and distances are checked against Vincenty computed in the test, at high latitudes
//! and across the antimeridian; every availability rule; PostGIS's own answer on random
//! fleets; a second node on the same database; bad queries and roles.

mod truth;

use chrono::{Duration as ChronoDuration, Utc};
use meridian::domain::Role;
use serde_json::{json, Value};

use crate::client::{code, Client};
use crate::geodesy::vincenty_m;
use crate::helpers::{now_ms, point, spawn_app, TestApp};

pub struct Driver {
    pub id: String,
    pub vehicle: String,
    pub shift: String,
}

/// A vehicle with an `available` driver on a shift that started an hour ago (or `starts_in`).
pub async fn on_shift(
    desk: &Client<'_>,
    external_id: &str,
    vehicle_type: Option<&str>,
    starts_in: ChronoDuration,
) -> Driver {
    let (status, v) = desk
        .post(
            "/v1/vehicles",
            json!({"external_id": external_id, "vehicle_type": vehicle_type}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, d) = desk
        .post(
            "/v1/drivers",
            json!({"name": format!("driver of {external_id}"), "status": "available"}),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let start = (Utc::now() - ChronoDuration::hours(1) + starts_in).to_rfc3339();
    let (status, s) = desk
        .post(
            "/v1/shifts",
            json!({"driver_id": d["id"], "vehicle_id": v["id"], "start": start}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let text = |v: &Value| v["id"].as_str().unwrap().to_owned();
    Driver {
        id: text(&d),
        vehicle: text(&v),
        shift: text(&s),
    }
}

pub async fn nearest(desk: &Client<'_>, query: &str) -> Vec<Value> {
    let (status, body) = desk.get(&format!("/v1/drivers/nearest?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["items"].as_array().unwrap().clone()
}

pub fn external_ids(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|i| i["external_id"].as_str().unwrap())
        .collect()
}

/// Publishes one fix per vehicle (`age_s` old) through MQTT and waits for the ingest commit.
async fn publish(app: &TestApp, fixes: &[(&str, f64, f64, i64)]) {
    let now = now_ms();
    for (external_id, lat, lon, age_s) in fixes {
        app.publisher
            .telemetry(external_id, point(now - age_s * 1000, *lat, *lon))
            .await;
    }
    app.wait_settled(fixes.len() as u64).await;
}

/// Waits until the live index (which polls committed positions) answers `query` with `n` items.
pub async fn wait_for_index(app: &TestApp, desk: &Client<'_>, query: &str, n: usize) {
    app.wait_until(&format!("{n} drivers for {query}"), || async {
        nearest(desk, query).await.len() == n
    })
    .await;
}

#[tokio::test]
async fn ranked_by_geodesic_distance_at_high_latitude_and_across_the_antimeridian() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    // (external id, lat, lon)
    let fleet = [
        ("tromso-north-156m", 69.6510, 18.9560),
        ("tromso-east-540m", 69.6496, 18.9700),
        ("tromso-sw", 69.6460, 18.9400),
        // Svalbard: 0.2° of longitude (~4.5 km) is nearer than 0.05° of latitude (~5.6 km),
        // so ranking by degrees (planar KNN) would get these two the wrong way round.
        ("lyr-east", 78.2232, 15.8267),
        ("lyr-north", 78.2732, 15.6267),
        // Fiji: the nearest to a pickup at 179.99°E is across 180°, at 179.98°W.
        ("fiji-west-of-180", -17.8, -179.98),
        ("fiji-east", -17.8, 179.9),
        ("fiji-far", -17.8, -179.5),
    ];
    let mut drivers = Vec::new();
    for (external_id, _, _) in fleet {
        drivers.push(on_shift(&desk, external_id, Some("car"), ChronoDuration::zero()).await);
    }
    let fixes: Vec<_> = fleet
        .iter()
        .map(|(e, lat, lon)| (*e, *lat, *lon, 5))
        .collect();
    publish(&app, &fixes).await;
    wait_for_index(&app, &desk, "lat=0&lon=0&limit=100", fleet.len()).await;

    let check = |items: &[Value], at: (f64, f64)| {
        for item in items {
            let (lat, lon) = (item["lat"].as_f64().unwrap(), item["lon"].as_f64().unwrap());
            let expected = vincenty_m(at.0, at.1, lat, lon);
            let got = item["distance_m"].as_f64().unwrap();
            assert!(
                (got - expected).abs() < 0.002,
                "{item}: {got} m, Vincenty {expected} m"
            );
        }
        let distances: Vec<f64> = items
            .iter()
            .map(|i| i["distance_m"].as_f64().unwrap())
            .collect();
        assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    };

    let tromso = nearest(&desk, "lat=69.6496&lon=18.956&limit=3").await;
    check(&tromso, (69.6496, 18.956));
    assert_eq!(
        external_ids(&tromso),
        ["tromso-north-156m", "tromso-east-540m", "tromso-sw"]
    );
    let first = &tromso[0];
    let i = fleet
        .iter()
        .position(|f| f.0 == "tromso-north-156m")
        .unwrap();
    assert_eq!(first["driver_id"].as_str(), Some(drivers[i].id.as_str()));
    assert_eq!(
        first["vehicle_id"].as_str(),
        Some(drivers[i].vehicle.as_str())
    );
    assert_eq!(
        (first["lat"].as_f64(), first["lon"].as_f64()),
        (Some(69.651), Some(18.956))
    );
    assert_eq!(
        (first["speed_kmh"].as_f64(), first["heading_deg"].as_f64()),
        (Some(30.5), Some(90.0))
    );
    assert!(first["ts"].as_str().is_some_and(|t| t.ends_with('Z')));

    let svalbard = nearest(&desk, "lat=78.2232&lon=15.6267&limit=2").await;
    check(&svalbard, (78.2232, 15.6267));
    assert_eq!(external_ids(&svalbard), ["lyr-east", "lyr-north"]);

    let fiji = nearest(&desk, "lat=-17.8&lon=179.99&limit=3").await;
    check(&fiji, (-17.8, 179.99));
    assert_eq!(
        external_ids(&fiji),
        ["fiji-west-of-180", "fiji-east", "fiji-far"]
    );
    // 180° and −180° are one meridian: the same answer from either side.
    let east = nearest(&desk, "lat=-17.8&lon=180&limit=3").await;
    let west = nearest(&desk, "lat=-17.8&lon=-180&limit=3").await;
    assert_eq!(external_ids(&east), external_ids(&west));
    check(&east, (-17.8, 180.0));
    for (e, w) in east.iter().zip(&west) {
        assert!(
            (e["distance_m"].as_f64().unwrap() - w["distance_m"].as_f64().unwrap()).abs() < 1e-6
        );
    }
    // The whole fleet from the North Pole: Svalbard first, Fiji last; thousands of km, still exact.
    let pole = nearest(&desk, "lat=90&lon=0&limit=100").await;
    check(&pole, (90.0, 0.0));
    assert_eq!(external_ids(&pole)[..2], ["lyr-north", "lyr-east"]);
    assert_eq!(pole.len(), fleet.len());
}

#[tokio::test]
async fn only_available_drivers_on_an_active_shift_with_a_fresh_position_are_offered() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let zero = ChronoDuration::zero();
    let car = on_shift(&desk, "ok-car", Some("car"), zero).await;
    on_shift(&desk, "ok-van", Some("van"), zero).await;
    let off = on_shift(&desk, "off-duty", Some("car"), zero).await;
    let ended = on_shift(&desk, "shift-ended", Some("car"), zero).await;
    on_shift(&desk, "shift-later", Some("car"), ChronoDuration::hours(2)).await;
    on_shift(&desk, "stale", Some("car"), zero).await;
    let repair = on_shift(&desk, "in-maintenance", Some("car"), zero).await;
    let (status, _) = desk
        .post("/v1/vehicles", json!({"external_id": "no-shift"}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = desk
        .patch(
            &format!("/v1/drivers/{}", off.id),
            json!({"status": "off_duty"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = desk
        .post(&format!("/v1/shifts/{}/end", ended.shift), json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = desk
        .patch(
            &format!("/v1/vehicles/{}", repair.vehicle),
            json!({"status": "maintenance"}),
        )
        .await;
    assert_eq!(status, 200);

    // Oslo; every vehicle within a kilometre, each a little farther than the one before.
    let names = [
        "ok-car",
        "ok-van",
        "off-duty",
        "shift-ended",
        "shift-later",
        "in-maintenance",
        "no-shift",
    ];
    let mut fixes: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, e)| (*e, 59.9100 + i as f64 * 0.001, 10.75, 5))
        .collect();
    fixes.push(("stale", 59.9105, 10.75, 600)); // between the two, but ten minutes old
    publish(&app, &fixes).await;
    let at = "lat=59.91&lon=10.75";
    wait_for_index(&app, &desk, at, 2).await;

    assert_eq!(
        external_ids(&nearest(&desk, at).await),
        ["ok-car", "ok-van"]
    );
    let with_stale = nearest(&desk, &format!("{at}&max_age_s=900")).await;
    assert_eq!(external_ids(&with_stale), ["ok-car", "stale", "ok-van"]);
    assert_eq!(
        external_ids(&nearest(&desk, &format!("{at}&vehicle_type=van")).await),
        ["ok-van"]
    );
    // ok-van is 0.001° of latitude away: ~111 m.
    assert_eq!(
        external_ids(&nearest(&desk, &format!("{at}&radius_m=100")).await),
        ["ok-car"]
    );
    assert_eq!(
        external_ids(&nearest(&desk, &format!("{at}&limit=1")).await),
        ["ok-car"]
    );

    // A dispatcher's change shows in the very next answer (read-your-writes on this node).
    let (status, _) = desk
        .patch(
            &format!("/v1/drivers/{}", car.id),
            json!({"status": "on_break"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(external_ids(&nearest(&desk, at).await), ["ok-van"]);
    let (status, _) = desk
        .patch(
            &format!("/v1/drivers/{}", car.id),
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        external_ids(&nearest(&desk, at).await),
        ["ok-car", "ok-van"]
    );
    // A change made behind the API's back (psql, another service) arrives by NOTIFY.
    app.db
        .execute(
            "UPDATE drivers SET status = 'on_job' WHERE id = $1::text::uuid",
            &[&car.id],
        )
        .await
        .unwrap();
    wait_for_index(&app, &desk, at, 1).await;
    assert_eq!(external_ids(&nearest(&desk, at).await), ["ok-van"]);
    // The off-duty driver's vehicle reported while unwatched (ingest does not announce it);
    // making the driver available reads its position, so it is offered at once, where it is.
    let (status, _) = desk
        .patch(
            &format!("/v1/drivers/{}", off.id),
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(status, 200);
    let items = nearest(&desk, at).await;
    assert_eq!(external_ids(&items), ["ok-van", "off-duty"]);
    assert_eq!(items[1]["lat"].as_f64(), Some(59.912));
}

#[tokio::test]
async fn bad_queries_get_a_clear_4xx_and_roles_are_enforced() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    for (query, status, needle) in [
        ("lat=95&lon=0", 422, "lat"),
        ("lat=0&lon=-181", 422, "lon"),
        ("lat=abc&lon=0", 400, "lat"),
        ("lat=1", 400, "lon"),
        ("lat=1&lon=1&limit=0", 400, "limit"),
        ("lat=1&lon=1&limit=101", 400, "limit"),
        ("lat=1&lon=1&radius_m=0", 422, "radius_m"),
        ("lat=1&lon=1&radius_m=-5", 422, "radius_m"),
        ("lat=1&lon=1&max_age_s=0", 422, "max_age_s"),
        ("lat=1&lon=1&vehicle_type=", 422, "vehicle_type"),
    ] {
        let (got, body) = desk.get(&format!("/v1/drivers/nearest?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{query}: {body}");
        assert_eq!(
            code(&body),
            if status == 400 {
                "bad_request"
            } else {
                "invalid"
            }
        );
    }
    let (status, body) = app
        .client(Role::Analyst)
        .await
        .get("/v1/drivers/nearest?lat=1&lon=1")
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, _) = app.get("/v1/drivers/nearest?lat=1&lon=1").await;
    assert_eq!(status, 401);
    let (status, body) = app
        .client(Role::Admin)
        .await
        .get("/v1/drivers/nearest?lat=1&lon=1")
        .await;
    assert_eq!(status, 200, "admin may call everything");
    assert_eq!(body["items"], json!([]));
    assert!(body["as_of"].as_str().is_some());
}
