//! The live index against PostGIS itself on random fleets where geometry is hard, and a second
//! node that must see what the first one was told.

use chrono::Duration as ChronoDuration;
use meridian::domain::Role;
use serde_json::json;

use super::{external_ids, nearest, on_shift, wait_for_index};
use crate::helpers::{now_ms, point, spawn_app, spawn_node};

/// Deterministic pseudo-random numbers in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// PostGIS's answer: exact geodesic distance over every available, fresh candidate (no index
/// tricks), ties by driver id — what the live index must reproduce.
const TRUTH: &str = "\
SELECT a.driver_id::text, ST_Distance(p.location::geography, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography)
FROM driver_availability a JOIN vehicle_positions p USING (vehicle_id)
WHERE a.during @> now() AND p.ts >= now() - make_interval(secs => 300)
ORDER BY 2, a.driver_id LIMIT $3";

#[tokio::test]
async fn answers_match_postgis_on_random_fleets_over_poles_and_the_antimeridian() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let centres = [
        (69.65, 18.95),
        (-17.8, 179.95),
        (89.8, 0.0),
        (0.0, 0.0),
        (-77.85, 166.67),
    ];
    // Registered straight in SQL (bulk), a third of drivers available: the NOTIFY triggers
    // tell the index, as they would for any other writer.
    let n = 300;
    app.db
        .batch_execute(&format!(
            "INSERT INTO vehicles (external_id) SELECT 'rnd-' || i FROM generate_series(0, {n} - 1) i;
             INSERT INTO drivers (name, status)
                 SELECT 'd' || i, CASE WHEN i % 3 = 0 THEN 'available' ELSE 'off_duty' END
                 FROM generate_series(0, {n} - 1) i;
             INSERT INTO shifts (driver_id, vehicle_id, during)
                 SELECT d.id, v.id, tstzrange(now() - interval '1 hour', NULL)
                 FROM (SELECT id, row_number() OVER (ORDER BY name) r FROM drivers) d
                 JOIN (SELECT id, row_number() OVER (ORDER BY external_id) r FROM vehicles) v USING (r);"
        ))
        .await
        .unwrap();
    let now = now_ms();
    for i in 0..n {
        let (lat, lon) = centres[i % centres.len()];
        let lat = (lat + (rng.next() - 0.5) * 0.8).clamp(-90.0, 90.0);
        let mut lon = lon + (rng.next() - 0.5) * 0.8;
        if lon > 180.0 {
            lon -= 360.0;
        }
        app.publisher
            .telemetry(&format!("rnd-{i}"), point(now - 2_000, lat, lon))
            .await;
    }
    app.wait_settled(n as u64).await;
    wait_for_index(&app, &desk, "lat=0&lon=0&limit=100", 100).await;

    let mut probes: Vec<(f64, f64)> = centres.to_vec();
    probes.extend([(-17.8, -179.99), (90.0, 45.0), (-90.0, 0.0)]);
    for _ in 0..20 {
        let (lat, lon) = centres[(rng.next() * centres.len() as f64) as usize];
        probes.push((
            (lat + (rng.next() - 0.5) * 0.5).clamp(-90.0, 90.0),
            (lon + (rng.next() - 0.5) * 0.5).clamp(-180.0, 180.0),
        ));
    }
    for (lat, lon) in probes {
        let limit = 10_i64;
        let truth: Vec<(String, f64)> = app
            .db
            .query(TRUTH, &[&lat, &lon, &limit])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let got = nearest(&desk, &format!("lat={lat}&lon={lon}&limit={limit}")).await;
        let got: Vec<(String, f64)> = got
            .iter()
            .map(|i| {
                (
                    i["driver_id"].as_str().unwrap().to_owned(),
                    i["distance_m"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got.len(), truth.len(), "({lat},{lon})");
        for (g, t) in got.iter().zip(&truth) {
            assert_eq!(g.0, t.0, "({lat},{lon}): {got:?} vs PostGIS {truth:?}");
            assert!(
                (g.1 - t.1).abs() < 0.001,
                "({lat},{lon}): {} vs PostGIS {}",
                g.1,
                t.1
            );
        }
    }
}

#[tokio::test]
async fn a_second_node_sees_positions_and_availability_written_through_the_first() {
    let a = spawn_app().await;
    // Node B shares the database but ingests a different topic prefix: all it knows, it
    // learns from PostGIS.
    let b = spawn_node(&a.db_url, &format!("{}other/", a.prefix), &[]).await;
    let desk_a = a.client(Role::Dispatcher).await;
    let desk_b = b.client(Role::Dispatcher).await;
    let driver = on_shift(&desk_a, "shared-1", None, ChronoDuration::zero()).await;
    on_shift(&desk_a, "shared-2", None, ChronoDuration::zero()).await;
    let now = now_ms();
    a.publisher
        .telemetry("shared-1", point(now, 48.8566, 2.3522))
        .await;
    a.publisher
        .telemetry("shared-2", point(now, 48.8600, 2.3522))
        .await;
    a.wait_settled(2).await;

    let at = "lat=48.8566&lon=2.3522";
    wait_for_index(&a, &desk_a, at, 2).await;
    wait_for_index(&b, &desk_b, at, 2).await;
    assert_eq!(
        nearest(&desk_a, at).await,
        nearest(&desk_b, at).await,
        "both nodes give the same answer"
    );
    let (status, _) = desk_a
        .patch(
            &format!("/v1/drivers/{}", driver.id),
            json!({"status": "off_duty"}),
        )
        .await;
    assert_eq!(status, 200);
    wait_for_index(&b, &desk_b, at, 1).await;
    assert_eq!(external_ids(&nearest(&desk_b, at).await), ["shared-2"]);
}
