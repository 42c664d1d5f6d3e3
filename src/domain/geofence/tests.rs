//! Parsing both body forms, every mistake's message, and circle bounds against points on the circle.

use serde_json::{json, Value};

use super::*;

fn square(x0: f64, y0: f64, size: f64) -> Value {
    json!([
        [x0, y0],
        [x0 + size, y0],
        [x0 + size, y0 + size],
        [x0, y0 + size],
        [x0, y0]
    ])
}

fn feature(geometry: Value) -> Value {
    json!({"type": "Feature", "geometry": geometry, "properties": {"name": "depot"}})
}

fn polygon(rings: Value) -> Value {
    feature(json!({"type": "Polygon", "coordinates": rings}))
}

fn message(body: Value) -> String {
    match Fence::from_json(body.clone()) {
        Ok(f) => panic!("{body} was accepted as {f:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_polygon_with_a_hole_keeps_its_rings_and_trimmed_name() {
    let mut body = polygon(json!([square(0.0, 0.0, 10.0), square(4.0, 4.0, 2.0)]));
    body["properties"]["name"] = json!("  North depot ");
    let f = Fence::from_json(body).unwrap();
    assert_eq!((f.name(), f.kind()), ("North depot", "polygon"));
    let Shape::Area(area) = f.shape() else {
        panic!("not an area")
    };
    assert!(!area.is_multi());
    assert_eq!(area.polygons().len(), 1);
    assert_eq!(area.polygons()[0].len(), 2);
    let text: Value = serde_json::from_str(&area.to_geojson()).unwrap();
    assert_eq!(
        text,
        json!({"type": "Polygon", "coordinates": [square(0.0, 0.0, 10.0), square(4.0, 4.0, 2.0)]})
    );
}

#[test]
fn multipolygons_altitudes_and_bbox_members_are_accepted() {
    let mut ring = square(10.0, 10.0, 1.0);
    ring[0] = json!([10.0, 10.0, 120.5]);
    ring[4] = json!([10.0, 10.0, 120.5]);
    let body = feature(json!({"type": "MultiPolygon", "bbox": [0, 0, 11, 11],
        "coordinates": [[square(0.0, 0.0, 1.0)], [ring]]}));
    let f = Fence::from_json(body).unwrap();
    let Shape::Area(area) = f.shape() else {
        panic!("not an area")
    };
    assert!(area.is_multi());
    let text: Value = serde_json::from_str(&area.to_geojson()).unwrap();
    assert_eq!(text["type"], "MultiPolygon");
    assert_eq!(
        text["coordinates"][1][0][0],
        json!([10.0, 10.0]),
        "altitude dropped"
    );
}

#[test]
fn a_circle_has_a_centre_and_a_radius() {
    let f = Fence::from_json(json!({"name": "yard", "center": [18.96, 69.65], "radius_m": 250}))
        .unwrap();
    assert_eq!(f.kind(), "circle");
    let Shape::Circle(c) = f.shape() else {
        panic!("not a circle")
    };
    assert_eq!(
        (c.center().lon(), c.center().lat(), c.radius_m()),
        (18.96, 69.65, 250.0)
    );
}

#[test]
fn ring_mistakes_name_the_ring_and_the_positions() {
    let open = json!([[[0, 0], [1, 0], [1, 1], [0, 1]]]);
    assert_eq!(
        message(polygon(open)),
        "ring 0 of polygon 0 is not closed: first position [0, 0] != last [0, 1]"
    );
    let short = json!([square(0.0, 0.0, 5.0), [[1, 1], [2, 1], [1, 1]]]);
    assert!(message(polygon(short))
        .starts_with("ring 1 of polygon 0 has 3 positions; a linear ring needs at least 4"));
    let multi = feature(json!({"type": "MultiPolygon",
        "coordinates": [[square(0.0, 0.0, 1.0)], [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5.5]]]]}));
    assert!(message(multi).starts_with("ring 0 of polygon 1 is not closed"));
}

#[test]
fn out_of_range_and_swapped_coordinates_name_the_value_and_position() {
    let lon = json!([[[0, 0], [200, 0], [1, 1], [0, 0]]]);
    assert_eq!(
        message(polygon(lon)),
        "longitude 200 at position 1 of ring 0 of polygon 0 is outside [-180, 180]"
    );
    let lat = json!([[[0, 0], [100, 95], [1, 1], [0, 0]]]);
    assert_eq!(
        message(polygon(lat)),
        "latitude 95 at position 1 of ring 0 of polygon 0 is outside [-90, 90]"
    );
    // Tokyo written [lat, lon].
    let swapped = json!([[[35.6, 139.7], [35.7, 139.7], [35.7, 139.8], [35.6, 139.7]]]);
    let m = message(polygon(swapped));
    assert!(
        m.starts_with(
            "position 0 of ring 0 of polygon 0 is [35.6, 139.7]: latitude 139.7 is outside"
        ),
        "{m}"
    );
    assert!(
        m.contains("coordinates look like [lat, lon]; GeoJSON wants [lon, lat]"),
        "{m}"
    );
    let m = message(json!({"name": "x", "center": [52.5, 113.4], "radius_m": 10}));
    assert!(
        m.starts_with("center is [52.5, 113.4]") && m.contains("[lat, lon]"),
        "{m}"
    );
}

#[test]
fn a_ring_across_the_antimeridian_must_be_split() {
    let fiji = json!([[
        [179.5, -17],
        [-179.5, -17],
        [-179.5, -18],
        [179.5, -18],
        [179.5, -17]
    ]]);
    let m = message(polygon(fiji));
    assert!(
        m.starts_with(
            "ring 0 of polygon 0 crosses the antimeridian between position 0 [179.5, -17] and position 1 [-179.5, -17]"
        ),
        "{m}"
    );
    assert!(m.contains("MultiPolygon"), "{m}");
    let split = feature(json!({"type": "MultiPolygon", "coordinates": [
        [[[179.5, -17], [180, -17], [180, -18], [179.5, -18], [179.5, -17]]],
        [[[-180, -17], [-179.5, -17], [-179.5, -18], [-180, -18], [-180, -17]]]]}));
    assert!(Fence::from_json(split).is_ok());
}

#[test]
fn only_polygons_and_multipolygons_are_fences() {
    for (kind, coordinates) in [
        ("Point", json!([1, 2])),
        ("LineString", json!([[0, 0], [1, 1]])),
    ] {
        let m = message(feature(json!({"type": kind, "coordinates": coordinates})));
        assert!(
            m.starts_with(&format!("geometry type {kind} is not supported")),
            "{m}"
        );
    }
    assert!(message(feature(Value::Null)).starts_with("geometry: expected a Polygon"));
    assert!(message(feature(json!({"type": "Polygon"}))).contains("coordinates are missing"));
    assert!(
        message(feature(json!({"type": "MultiPolygon", "coordinates": []})))
            .contains("at least one polygon")
    );
    assert!(message(polygon(json!([]))).starts_with("polygon 0: has no rings"));
    let m = message(polygon(json!([[[0, 0], [1, "a"], [1, 1], [0, 0]]])));
    assert!(
        m.starts_with("position 1 of ring 0 of polygon 0: expected a position"),
        "{m}"
    );
    assert!(
        message(polygon(json!([[[0, 0, 0, 0], [1, 0], [1, 1], [0, 0]]])))
            .starts_with("position 0 of ring 0")
    );
}

#[test]
fn names_are_required_and_bounded() {
    let mut body = polygon(json!([square(0.0, 0.0, 1.0)]));
    body["properties"] = json!({});
    assert_eq!(
        message(body.clone()),
        "properties.name is required: a non-empty string"
    );
    body["properties"] = Value::Null;
    assert!(message(body.clone()).starts_with("properties.name is required"));
    body["properties"] = json!({"name": "x".repeat(201)});
    assert!(message(body).contains("at most 200 characters"));
    assert_eq!(
        message(json!({"center": [0, 0], "radius_m": 5})),
        "name is required: a non-empty string"
    );
    assert!(
        message(json!({"name": "  ", "center": [0, 0], "radius_m": 5}))
            .starts_with("name is required")
    );
}

#[test]
fn radii_must_be_positive_and_plausible() {
    let circle = |r: Value| json!({"name": "c", "center": [0, 0], "radius_m": r});
    assert_eq!(
        message(circle(json!(-1))),
        "radius_m must be greater than 0 (got -1)"
    );
    assert!(message(circle(json!(0))).starts_with("radius_m must be greater than 0"));
    assert!(message(circle(json!(2_000_000))).starts_with("radius_m must be at most 1000000"));
    assert!(message(circle(json!("5"))).contains("invalid type"));
    assert!(message(json!({"name": "c", "center": [0, 0]})).contains("missing field `radius_m`"));
}

#[test]
fn unknown_fields_and_other_bodies_are_refused_by_name() {
    let mut body = polygon(json!([square(0.0, 0.0, 1.0)]));
    body["colour"] = json!("red");
    assert!(message(body).contains("unknown field `colour`"));
    let mut body = polygon(json!([square(0.0, 0.0, 1.0)]));
    body["properties"]["colour"] = json!("red");
    assert!(message(body).contains("unknown field `colour`"));
    assert!(
        message(json!({"name": "c", "center": [0, 0], "radius_m": 5, "units": "km"}))
            .contains("unknown field `units`")
    );
    let bare = json!({"type": "Polygon", "coordinates": [square(0.0, 0.0, 1.0)]});
    assert!(message(bare).starts_with("a bare Polygon has no name: wrap it"));
    assert!(
        message(json!({"type": "FeatureCollection", "features": []}))
            .starts_with("type must be \"Feature\", not \"FeatureCollection\"")
    );
    assert!(message(json!({"name": "x"})).starts_with("expected a GeoJSON Feature"));
    assert!(message(json!([1, 2])).starts_with("expected a GeoJSON Feature"));
}

/// The point `d` metres from (lon, lat) on `bearing`, on a sphere of the mean Earth radius.
fn destination(lon: f64, lat: f64, bearing: f64, d: f64) -> (f64, f64) {
    let (phi, lambda, theta) = (lat.to_radians(), lon.to_radians(), bearing.to_radians());
    let delta = d / 6_371_008.8;
    let phi2 = (phi.sin() * delta.cos() + phi.cos() * delta.sin() * theta.cos()).asin();
    let lambda2 = lambda
        + (theta.sin() * delta.sin() * phi.cos()).atan2(delta.cos() - phi.sin() * phi2.sin());
    let lon2 = (lambda2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    (lon2, phi2.to_degrees())
}

fn circle(lon: f64, lat: f64, radius_m: f64) -> Circle {
    Circle {
        center: LatLon::new(lat, lon).unwrap(),
        radius_m,
    }
}

#[test]
fn circle_bounds_hold_the_whole_circle_everywhere() {
    for (lon, lat, r) in [
        (0.0, 0.0, 250.0),
        (18.96, 69.65, 5_000.0),
        (15.6, 78.2, 5_000.0),
        (179.99, -17.8, 5_000.0),
        (-179.999, -60.0, 1_000.0),
        (45.0, 89.95, 10_000.0),
        (10.0, -45.0, 1_000_000.0),
    ] {
        let c = circle(lon, lat, r);
        let boxes = c.bounds();
        for bearing in 0..360 {
            let (plon, plat) = destination(lon, lat, f64::from(bearing), r);
            assert!(
                boxes.iter().any(|b| b.contains(plon, plat)),
                "circle at ({lon}, {lat}) r {r}: bearing {bearing} → ({plon}, {plat}) outside {boxes:?}"
            );
        }
    }
}

#[test]
fn circle_bounds_split_at_the_antimeridian_and_open_at_the_poles() {
    let fiji = circle(179.99, -17.8, 5_000.0).bounds();
    assert_eq!(fiji.len(), 2, "{fiji:?}");
    assert_eq!((fiji[0].east, fiji[1].west), (180.0, -180.0));
    assert!(fiji[0].west < 179.99 && fiji[1].east > -179.965 && fiji[1].east < -179.95);
    let west = circle(-179.999, 0.0, 1_000.0).bounds();
    assert_eq!(west.len(), 2, "{west:?}");
    assert!(west[0].contains(179.999, 0.0) && west[1].contains(-179.999, 0.0));

    let pole = circle(45.0, 89.95, 10_000.0).bounds();
    assert_eq!(
        (pole.len(), pole[0].west, pole[0].east, pole[0].north),
        (1, -180.0, 180.0, 90.0)
    );

    // Svalbard: wider in longitude than the radius over the parallel's length, but not absurdly.
    let svalbard = circle(15.6, 78.2, 5_000.0).bounds();
    let naive = 5_000.0 / (111_320.0 * 78.2_f64.to_radians().cos());
    let half = (svalbard[0].east - svalbard[0].west) / 2.0;
    assert!(half > naive && half < naive * 1.1, "{half} vs {naive}");
    let text: Value =
        serde_json::from_str(&circle(179.99, -17.8, 5_000.0).bounds_geojson()).unwrap();
    assert_eq!(text["type"], "MultiPolygon");
    assert_eq!(text["coordinates"].as_array().unwrap().len(), 2);
}
