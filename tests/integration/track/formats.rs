//! The same track as GeoJSON (a LineString Feature, lon/lat order, per-vertex properties) and
//! as CSV (read with the `csv` crate); one point and no point in GeoJSON; simplification.

use chrono::{Duration, DurationRound, Utc};
use meridian::domain::Role;
use serde_json::Value;
use uuid::Uuid;

use super::{assert_same, buckets, drive, insert, raw_as_buckets, track_path, Bucket};
use crate::helpers::{spawn_app, TestApp};

async fn get_raw(app: &TestApp, path: &str) -> (u16, String, String) {
    let key = meridian::store::api_keys::create(&app.db, "formats", Role::Analyst)
        .await
        .unwrap()
        .1;
    let res = app
        .http
        .get(format!("http://127.0.0.1:{}{path}", app.port))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    (status, content_type, res.text().await.unwrap())
}

/// The vertices of a GeoJSON track, checked for the shape RFC 7946 asks of a Feature.
fn feature_vertices(f: &Value, vehicle: Uuid) -> Vec<Bucket> {
    assert_eq!(f["type"], "Feature");
    let props = &f["properties"];
    assert_eq!(props["vehicle_id"], vehicle.to_string());
    let coords: Vec<[f64; 2]> = match f["geometry"]["type"].as_str() {
        Some("LineString") => serde_json::from_value(f["geometry"]["coordinates"].clone()).unwrap(),
        Some("Point") => {
            vec![serde_json::from_value(f["geometry"]["coordinates"].clone()).unwrap()]
        }
        _ => {
            assert!(f["geometry"].is_null(), "{f}");
            vec![]
        }
    };
    let times = props["times"].as_array().unwrap();
    for key in ["speed_kmh", "fuel_pct", "count"] {
        assert_eq!(props[key].as_array().unwrap().len(), coords.len(), "{key}");
    }
    coords
        .iter()
        .enumerate()
        .map(|(i, [lon, lat])| {
            assert!((-180.0..=180.0).contains(lon) && (-90.0..=90.0).contains(lat));
            Bucket {
                ts: times[i].as_str().unwrap().parse().unwrap(),
                lon: *lon,
                lat: *lat,
                speed: props["speed_kmh"][i].as_f64(),
                fuel: props["fuel_pct"][i].as_f64(),
                count: props["count"][i].as_i64().unwrap(),
            }
        })
        .collect()
}

#[tokio::test]
async fn geojson_and_csv_carry_the_same_track_as_json() {
    let app = spawn_app().await;
    let [vehicle] = app.register(&["fmt-1"]).await[..] else {
        unreachable!()
    };
    let from = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(5);
    let to = from + Duration::minutes(20);
    let points = drive(from, to, 15);
    insert(&app, vehicle, &points).await;

    for (resolution, want) in [
        ("raw", raw_as_buckets(&points)),
        ("1m", buckets(&points, Duration::minutes(1))),
    ] {
        let extra = format!("&resolution={resolution}&format=geojson");
        let (status, content_type, body) =
            get_raw(&app, &track_path(vehicle, from, to, &extra)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(content_type, "application/geo+json");
        let f: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(f["geometry"]["type"], "LineString");
        assert_eq!(f["properties"]["resolution"], resolution);
        // lon first: the points are near (-73.98, 40.75).
        assert!(f["geometry"]["coordinates"][0][0].as_f64().unwrap() < -73.0);
        assert_same(&feature_vertices(&f, vehicle), &want, resolution);

        let extra = format!("&resolution={resolution}&format=csv");
        let (status, content_type, body) =
            get_raw(&app, &track_path(vehicle, from, to, &extra)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(content_type, "text/csv");
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            header,
            ["ts", "lon", "lat", "speed_kmh", "fuel_pct", "count"]
        );
        let opt = |s: &str| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
        let got: Vec<Bucket> = reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                Bucket {
                    ts: r[0].parse().unwrap(),
                    lon: r[1].parse().unwrap(),
                    lat: r[2].parse().unwrap(),
                    speed: opt(&r[3]),
                    fuel: opt(&r[4]),
                    count: r[5].parse().unwrap(),
                }
            })
            .collect();
        if resolution == "raw" {
            assert!(got.iter().any(|b| b.speed.is_none()), "empty fields");
        }
        assert_same(&got, &want, &format!("{resolution} csv"));
    }
}

#[tokio::test]
async fn one_point_is_a_point_feature_and_no_point_a_null_geometry() {
    let app = spawn_app().await;
    let [vehicle] = app.register(&["fmt-2"]).await[..] else {
        unreachable!()
    };
    let from = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(2);
    let points = drive(from, from + Duration::seconds(1), 10);
    insert(&app, vehicle, &points).await;
    let to = from + Duration::minutes(1);

    let (status, _, body) = get_raw(&app, &track_path(vehicle, from, to, "&format=geojson")).await;
    assert_eq!(status, 200, "{body}");
    let f: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(f["geometry"]["type"], "Point");
    assert_same(
        &feature_vertices(&f, vehicle),
        &raw_as_buckets(&points),
        "one point",
    );

    let (later, end) = (to + Duration::minutes(1), to + Duration::minutes(2));
    let (status, _, body) =
        get_raw(&app, &track_path(vehicle, later, end, "&format=geojson")).await;
    assert_eq!(status, 200, "{body}");
    let f: Value = serde_json::from_str(&body).unwrap();
    assert!(f["geometry"].is_null(), "{f}");
    assert_eq!(feature_vertices(&f, vehicle), vec![]);
    let (_, _, body) = get_raw(&app, &track_path(vehicle, later, end, "&format=csv")).await;
    assert_eq!(body, "ts,lon,lat,speed_kmh,fuel_pct,count\n");
}

#[tokio::test]
async fn simplify_m_drops_points_on_a_straight_stretch_and_keeps_both_ends() {
    let app = spawn_app().await;
    let [vehicle] = app.register(&["fmt-3"]).await[..] else {
        unreachable!()
    };
    let from = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(3);
    // `drive` moves ~8.4 m east per point and wobbles north by up to 16 × 3.3 m.
    let points = drive(from, from + Duration::minutes(30), 10);
    insert(&app, vehicle, &points).await;
    let to = from + Duration::minutes(30);
    let analyst = app.client(Role::Analyst).await;

    let (_, full) = analyst.get(&track_path(vehicle, from, to, "")).await;
    let full = super::parse_points(&full);
    let (status, loose) = analyst
        .get(&track_path(vehicle, from, to, "&simplify_m=100"))
        .await;
    assert_eq!(status, 200, "{loose}");
    let loose = super::parse_points(&loose);
    assert_eq!(loose.len(), 2, "within 100 m the track is a straight line");
    assert_eq!((&loose[0], &loose[1]), (&full[0], full.last().unwrap()));
    let (_, tight) = analyst
        .get(&track_path(vehicle, from, to, "&simplify_m=1"))
        .await;
    let tight = super::parse_points(&tight);
    assert!(
        tight.len() > 2 && tight.len() < full.len(),
        "{} of {}",
        tight.len(),
        full.len()
    );
    assert!(
        tight.iter().all(|p| full.contains(p)),
        "kept points are original points"
    );
}
