//! Live positions over HTTP, fed by real ingest: one vehicle's, and bounding boxes as GeoJSON,
//! including a box across the antimeridian (Fiji) and freshness filtering.

use std::collections::BTreeSet;

use meridian::domain::Role;
use serde_json::Value;

use crate::client::code;
use crate::helpers::{now_ms, point, spawn_app};

fn external_ids(fc: &Value) -> BTreeSet<String> {
    assert_eq!(fc["type"], "FeatureCollection");
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(
                (f["type"].as_str(), f["geometry"]["type"].as_str()),
                (Some("Feature"), Some("Point"))
            );
            f["properties"]["external_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn positions_by_vehicle_and_by_box_across_the_antimeridian_with_freshness() {
    let app = spawn_app().await;
    let names = ["nyc", "suva-east", "suva-west", "stale-nyc", "silent"];
    let ids = app.register(&names).await;
    let now = now_ms();
    // (vehicle, lat, lon, age in ms)
    let fixes = [
        ("nyc", 40.7128, -74.006, 5_000),
        ("suva-east", -17.8, 179.5, 5_000),
        ("suva-west", -17.9, -179.6, 5_000),
        ("stale-nyc", 40.71, -74.0, 7_200_000),
    ];
    for (v, lat, lon, age) in fixes {
        app.publisher.telemetry(v, point(now - age, lat, lon)).await;
    }
    app.wait_settled(fixes.len() as u64).await;
    let analyst = app.client(Role::Analyst).await;

    let (status, p) = analyst
        .get(&format!("/v1/vehicles/{}/position", ids[0]))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (
            p["lon"].as_f64(),
            p["lat"].as_f64(),
            p["external_id"].as_str()
        ),
        (Some(-74.006), Some(40.7128), Some("nyc"))
    );
    let (status, err) = analyst
        .get(&format!("/v1/vehicles/{}/position", ids[4]))
        .await;
    assert_eq!(status, 404);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not reported"));

    let (_, fc) = analyst
        .get("/v1/positions?bbox=-74.1,40.6,-73.9,40.8")
        .await;
    assert_eq!(
        external_ids(&fc),
        BTreeSet::from(["nyc".into(), "stale-nyc".into()])
    );
    let nyc = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["external_id"] == "nyc")
        .unwrap();
    assert_eq!(
        nyc["geometry"]["coordinates"],
        serde_json::json!([-74.006, 40.7128]),
        "GeoJSON is lon, lat"
    );
    let (_, fc) = analyst
        .get("/v1/positions?bbox=-74.1,40.6,-73.9,40.8&max_age_s=3600")
        .await;
    assert_eq!(
        external_ids(&fc),
        BTreeSet::from(["nyc".into()]),
        "the two-hour-old fix is filtered out"
    );

    let (_, fc) = analyst.get("/v1/positions?bbox=179,-20,-179,-15").await;
    assert_eq!(
        external_ids(&fc),
        BTreeSet::from(["suva-east".into(), "suva-west".into()]),
        "a box across 180°"
    );
    let (_, fc) = analyst.get("/v1/positions?bbox=170,-20,180,-15").await;
    assert_eq!(external_ids(&fc), BTreeSet::from(["suva-east".into()]));

    // Pages of one, in vehicle-id order, cover everything exactly once.
    let mut seen = BTreeSet::new();
    let mut after = String::new();
    loop {
        let (_, fc) = analyst
            .get(&format!(
                "/v1/positions?bbox=-180,-90,180,90&limit=1{after}"
            ))
            .await;
        seen.extend(external_ids(&fc));
        match fc["next_after"].as_str() {
            Some(id) => after = format!("&after={id}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);

    for (query, status) in [
        ("bbox=1,2,3", 400),
        ("bbox=0,95,1,96", 422),
        ("bbox=0,10,1,5", 422),
        ("bbox=0,0,1,1&max_age_s=-1", 422),
        ("", 400),
    ] {
        let (got, err) = analyst.get(&format!("/v1/positions?{query}")).await;
        assert_eq!(got, status, "{query}: {err}");
        assert_ne!(code(&err), "<not a JSON error>");
    }
}
