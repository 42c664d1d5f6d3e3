//! Which fences hold a point, and which vehicles are inside a fence, against containment
//! computed independently (`geodesy`): holes, boundaries and vertices, MultiPolygons, geodesic
//! circles at high latitude and across the antimeridian, freshness of real ingested positions.

use std::collections::{BTreeMap, BTreeSet};

use meridian::domain::Role;
use serde_json::json;

use super::geodesy::{covers, covers_any, destination, distance, east_of, Pos};
use super::{containing, create, feature, polygon, square};
use crate::helpers::{now_ms, point, spawn_app};

/// A concave pentagon (notched at the top) with a rectangular hole.
fn donut() -> Vec<Vec<Pos>> {
    vec![
        vec![
            [0.0, 0.0],
            [10.0, 0.0],
            [10.0, 10.0],
            [5.0, 5.5],
            [0.0, 10.0],
            [0.0, 0.0],
        ],
        vec![[3.0, 2.0], [7.0, 2.0], [7.0, 4.0], [3.0, 4.0], [3.0, 2.0]],
    ]
}

/// A square and a triangle.
fn islands() -> Vec<Vec<Vec<Pos>>> {
    vec![
        vec![square(20.0, 0.0, 2.0)],
        vec![vec![[30.0, 0.0], [34.0, 0.0], [32.0, 3.0], [30.0, 0.0]]],
    ]
}

const OSLO: (Pos, f64) = ([10.75, 59.91], 250.0);
const SVALBARD: (Pos, f64) = ([15.6, 78.2], 5_000.0);
const FIJI: (Pos, f64) = ([179.99, -17.8], 5_000.0);
const FIJI_SMALL: (Pos, f64) = ([179.999, -17.8], 1_000.0);

#[tokio::test]
async fn polygons_with_holes_and_multipolygons_hold_exactly_the_points_ray_casting_finds() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let donut_id = create(&desk, polygon("donut", &donut())).await;
    let islands_id = create(
        &desk,
        feature(
            "islands",
            json!({"type": "MultiPolygon", "coordinates": islands()}),
        ),
    )
    .await;
    create(&desk, polygon("elsewhere", &[square(100.0, 40.0, 1.0)])).await;
    let analyst = app.client(Role::Analyst).await;

    // Deliberate cases, with the expected answer written out (and ray casting agreeing).
    let cases: [(Pos, bool, bool); 13] = [
        ([2.0, 5.0], true, false),   // in the ring
        ([5.0, 3.0], false, false),  // in the hole
        ([5.0, 0.0], true, false),   // on the outer edge
        ([10.0, 10.0], true, false), // on a vertex
        ([5.0, 5.5], true, false),   // on the concave vertex
        ([7.5, 7.75], true, false),  // on the slanted edge (10,10)–(5,5.5)
        ([3.0, 3.0], true, false),   // on the hole's edge: a boundary of the polygon
        ([5.0, 7.0], false, false),  // in the notch
        ([21.0, 1.0], false, true),  // in the square
        ([32.0, 1.0], false, true),  // in the triangle
        ([31.0, 1.5], false, true),  // on the triangle's edge
        ([22.0, 2.0], false, true),  // on the square's corner
        ([26.0, 1.0], false, false), // between the islands
    ];
    for (p, in_donut, in_islands) in cases {
        assert_eq!(
            (covers(&donut(), p), covers_any(&islands(), p)),
            (in_donut, in_islands),
            "{p:?}"
        );
        let got = containing(&analyst, p).await;
        assert_eq!(
            (got.contains(&donut_id), got.contains(&islands_id)),
            (in_donut, in_islands),
            "{p:?}: {got:?}"
        );
        assert_eq!(
            got.len(),
            usize::from(in_donut) + usize::from(in_islands),
            "{p:?}"
        );
    }

    // And a grid over both, boundaries included, against ray casting.
    let mut inside = 0;
    for x in -1..=35 {
        for y in -1..=11 {
            let p = [f64::from(x), f64::from(y)];
            let got = containing(&analyst, p).await;
            let expected = (covers(&donut(), p), covers_any(&islands(), p));
            assert_eq!(
                (got.contains(&donut_id), got.contains(&islands_id)),
                expected,
                "{p:?}"
            );
            inside += usize::from(expected.0) + usize::from(expected.1);
        }
    }
    assert!(inside > 50, "the grid reaches inside: {inside}");
}

#[tokio::test]
async fn circles_are_geodesic_at_high_latitude_and_across_the_antimeridian() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let mut fences = BTreeMap::new();
    for (name, (center, r)) in [
        ("oslo", OSLO),
        ("svalbard", SVALBARD),
        ("fiji", FIJI),
        ("fiji-small", FIJI_SMALL),
    ] {
        let id = create(
            &desk,
            json!({"name": name, "center": center, "radius_m": r}),
        )
        .await;
        fences.insert(id, (center, r));
    }
    let analyst = app.client(Role::Analyst).await;

    let mut probes: Vec<Pos> = Vec::new();
    for (center, r) in [OSLO, SVALBARD, FIJI, FIJI_SMALL] {
        // Eight compass bearings, plus the circle's longitude extremes, found by walking it: at
        // high latitude they lie poleward of due east and west.
        let along = |b: f64| destination(center, b, r);
        let bearings: Vec<f64> = (0..7200).map(|i| f64::from(i) * 0.05).collect();
        let east = bearings
            .iter()
            .copied()
            .max_by(|a, b| {
                east_of(center[0], along(*a)[0]).total_cmp(&east_of(center[0], along(*b)[0]))
            })
            .unwrap();
        let west = bearings
            .iter()
            .copied()
            .min_by(|a, b| {
                east_of(center[0], along(*a)[0]).total_cmp(&east_of(center[0], along(*b)[0]))
            })
            .unwrap();
        if center == SVALBARD.0 {
            assert!(
                east < 90.0 && west > 270.0,
                "extremes at bearings {east} and {west}"
            );
        }
        for bearing in [
            0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0, east, west,
        ] {
            probes.push(destination(center, bearing, r - 5.0));
            probes.push(destination(center, bearing, r + 5.0));
        }
    }
    // 179.999 → -179.999 is about 212 m; → -179.98 about 2.2 km.
    probes.extend([[-179.999, -17.8], [-179.98, -17.8], [179.95, -17.8]]);

    let mut hits = 0;
    for p in probes {
        let got = containing(&analyst, p).await;
        for (id, (center, r)) in &fences {
            let d = distance(*center, p);
            assert!(
                (d - r).abs() > 1.0,
                "{p:?} is too close to the edge of {center:?} to judge"
            );
            assert_eq!(
                got.contains(id),
                d <= *r,
                "{p:?} is {d:.3} m from {center:?} (radius {r})"
            );
            hits += usize::from(d <= *r);
        }
    }
    assert!(hits > 40, "{hits}");
}

#[tokio::test]
async fn vehicles_inside_a_fence_follow_real_ingest_holes_boundaries_and_freshness() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let donut_id = create(&desk, polygon("donut", &donut())).await;
    let svalbard_id = create(
        &desk,
        json!({"name": "svalbard", "center": SVALBARD.0, "radius_m": SVALBARD.1}),
    )
    .await;
    let fiji_id = create(
        &desk,
        json!({"name": "fiji", "center": FIJI.0, "radius_m": FIJI.1}),
    )
    .await;

    const HOUR_MS: i64 = 3_600_000;
    let (sval, fiji) = (SVALBARD.0, FIJI.0);
    let vehicles: Vec<(&str, Pos, i64)> = vec![
        ("ring", [2.0, 5.0], 0),
        ("hole", [5.0, 3.0], 0),
        ("edge", [5.0, 0.0], 0),
        ("hole-edge", [3.0, 3.0], 0),
        ("notch", [5.0, 7.0], 0),
        ("far", [50.0, 50.0], 0),
        ("stale-ring", [8.0, 1.0], 2 * HOUR_MS),
        ("sval-in", destination(sval, 90.0, 4_995.0), 0),
        ("sval-out", destination(sval, 90.0, 5_005.0), 0),
        ("sval-stale", destination(sval, 0.0, 100.0), 2 * HOUR_MS),
        ("fiji-east", destination(fiji, 90.0, 4_990.0), 0),
        ("fiji-west", destination(fiji, 270.0, 4_990.0), 0),
        ("fiji-out", destination(fiji, 90.0, 5_010.0), 0),
    ];
    let names: Vec<&str> = vehicles.iter().map(|v| v.0).collect();
    app.register(&names).await;
    let now = now_ms();
    for (name, [lon, lat], age) in &vehicles {
        app.publisher
            .telemetry(name, point(now - age - 1_000, *lat, *lon))
            .await;
    }
    app.wait_settled(vehicles.len() as u64).await;
    assert!(vehicles[10].1[0] < -179.9, "fiji-east is across 180°");

    let analyst = app.client(Role::Analyst).await;
    let inside = |id: &str, query: &str| {
        let (path, analyst) = (format!("/v1/geofences/{id}/vehicles?{query}"), &analyst);
        async move {
            let (status, page) = analyst.get(&path).await;
            assert_eq!(status, 200, "{path}: {page}");
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["external_id"].as_str().unwrap().to_owned())
                .collect::<BTreeSet<_>>()
        }
    };
    let expected = |test: &dyn Fn(Pos) -> bool, max_age_ms: i64| -> BTreeSet<String> {
        vehicles
            .iter()
            .filter(|(_, p, age)| test(*p) && *age < max_age_ms)
            .map(|v| v.0.to_owned())
            .collect()
    };
    let in_circle = |(c, r): (Pos, f64)| move |p: Pos| distance(c, p) <= r;
    let in_donut = |p: Pos| covers(&donut(), p);

    let all = expected(&in_donut, i64::MAX);
    assert_eq!(
        all,
        ["edge", "hole-edge", "ring", "stale-ring"]
            .map(String::from)
            .into()
    );
    assert_eq!(inside(&donut_id, "").await, all);
    assert_eq!(
        inside(&donut_id, "max_age_s=3600").await,
        expected(&in_donut, HOUR_MS)
    );
    assert_eq!(
        inside(&svalbard_id, "").await,
        expected(&in_circle(SVALBARD), i64::MAX)
    );
    assert_eq!(
        inside(&svalbard_id, "max_age_s=3600").await,
        ["sval-in".to_owned()].into()
    );
    let fiji_expected = expected(&in_circle(FIJI), i64::MAX);
    assert_eq!(
        fiji_expected,
        ["fiji-east", "fiji-west"].map(String::from).into()
    );
    assert_eq!(inside(&fiji_id, "max_age_s=60").await, fiji_expected);

    // Items carry the position as stored; pages of one cover the fence exactly once.
    let (_, page) = analyst
        .get(&format!("/v1/geofences/{donut_id}/vehicles?limit=1"))
        .await;
    let first = &page["items"][0];
    let sent = vehicles
        .iter()
        .find(|v| v.0 == first["external_id"])
        .unwrap();
    assert_eq!(
        (first["lon"].as_f64(), first["lat"].as_f64()),
        (Some(sent.1[0]), Some(sent.1[1]))
    );
    assert!(
        first["vehicle_id"].is_string() && first["ts"].is_string(),
        "{first}"
    );
    let (mut seen, mut after) = (BTreeSet::new(), String::new());
    loop {
        let (_, page) = analyst
            .get(&format!("/v1/geofences/{donut_id}/vehicles?limit=1{after}"))
            .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["external_id"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(id) => after = format!("&after={id}"),
            None => break,
        }
    }
    assert_eq!(seen, all);
}
