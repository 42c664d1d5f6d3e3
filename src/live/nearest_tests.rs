use super::*;
use crate::test_rng::Rng;

const NOW: i64 = 1_800_000_000_000_000;
const MINUTE: i64 = 60_000_000;

fn candidate(i: u128, lat: f64, lon: f64) -> Candidate {
    let fix = Fix {
        lat,
        lon,
        ts_us: NOW - MINUTE,
        speed_kmh: Some(30.0),
        heading_deg: None,
    };
    let kind = if i.is_multiple_of(3) { "van" } else { "car" };
    let shift = Shift {
        shift_id: Uuid::from_u128(2 << 64 | i),
        driver_id: Uuid::from_u128(i),
        vehicle_id: Uuid::from_u128(1 << 64 | i),
        external_id: format!("v{i}").into(),
        vehicle_type: Some(kind.into()),
        starts_us: NOW - 60 * MINUTE,
        ends_us: i64::MAX,
    };
    Candidate::new(shift, fix)
}

fn query(lat: f64, lon: f64) -> NearestQuery {
    NearestQuery {
        lat,
        lon,
        limit: 10,
        radius_m: None,
        max_age_us: 5 * MINUTE,
        vehicle_type: None,
        now_us: NOW,
    }
}

/// The same question answered by checking every candidate: the truth the index must match.
fn brute_force(all: &[Candidate], q: &NearestQuery) -> Vec<(Uuid, f64)> {
    let mut hits: Vec<(Uuid, f64)> = all
        .iter()
        .filter(|c| c.shift.starts_us <= q.now_us && q.now_us < c.shift.ends_us)
        .filter(|c| c.fix.ts_us >= q.now_us - q.max_age_us)
        .filter(|c| {
            q.vehicle_type
                .as_deref()
                .is_none_or(|t| c.shift.vehicle_type.as_deref() == Some(t))
        })
        .map(|c| {
            let d = geodesy::distance_m(q.lat, q.lon, c.fix.lat, c.fix.lon);
            (c.shift.driver_id, d)
        })
        .filter(|(_, d)| q.radius_m.is_none_or(|r| *d <= r))
        .collect();
    hits.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    hits.truncate(q.limit);
    hits
}

fn answer(s: &Index, q: &NearestQuery) -> Vec<(Uuid, f64)> {
    s.nearest(q)
        .iter()
        .map(|h| (h.candidate.shift.driver_id, h.distance_m))
        .collect()
}

#[test]
fn matches_brute_force_everywhere_including_poles_and_the_antimeridian() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut all = Vec::new();
    for i in 0..6_000u128 {
        // Clusters where geometry is hard (Svalbard, the Fiji antimeridian, a pole) and spread.
        let (lat, lon) = match i % 4 {
            0 => (78.0 + rng.next() * 2.0, 10.0 + rng.next() * 20.0),
            1 => (
                -17.0 - rng.next(),
                179.0 + rng.next() * 2.0 - (i % 8 == 1) as u8 as f64 * 360.0,
            ),
            2 => (89.0 + rng.next(), rng.next() * 360.0 - 180.0),
            _ => (rng.next() * 180.0 - 90.0, rng.next() * 360.0 - 180.0),
        };
        let lon = if lon > 180.0 { lon - 360.0 } else { lon };
        let mut c = candidate(i, lat, lon);
        if i % 7 == 0 {
            c.fix.ts_us = NOW - 30 * MINUTE; // stale for a 5-minute max age
        }
        if i % 11 == 0 {
            c.shift.starts_us = NOW + MINUTE; // shift not started yet
        }
        if i % 13 == 0 {
            c.shift.ends_us = NOW; // shift just ended: [starts, ends) excludes now
        }
        all.push(c);
    }
    let snapshot = Index::build(all.clone());
    let probes = [
        (78.22, 15.65),
        (-17.7, 179.99),
        (-17.7, -179.99),
        (90.0, 0.0),
        (0.0, 0.0),
    ];
    for (n, (lat, lon)) in probes.into_iter().enumerate() {
        let mut q = query(lat, lon);
        assert_eq!(answer(&snapshot, &q), brute_force(&all, &q), "probe {n}");
        q.vehicle_type = Some("van".into());
        q.radius_m = Some(150_000.0);
        q.limit = 25;
        assert_eq!(
            answer(&snapshot, &q),
            brute_force(&all, &q),
            "probe {n}, filtered"
        );
    }
    for _ in 0..150 {
        let q = query(rng.next() * 180.0 - 90.0, rng.next() * 360.0 - 180.0);
        assert_eq!(answer(&snapshot, &q), brute_force(&all, &q), "{q:?}");
    }
}

#[test]
fn across_the_antimeridian_the_nearest_is_on_the_other_side() {
    // Query at 179.99°E: a driver at 179.98°W is ~3.2 km away (0.03° of longitude at 17.7°S), one at 179.9°E ~9.5 km.
    let east = candidate(1, -17.7, 179.9);
    let west = candidate(2, -17.7, -179.98);
    let snapshot = Index::build(vec![east, west]);
    let hits = answer(&snapshot, &query(-17.7, 179.99));
    assert_eq!(
        hits.iter().map(|h| h.0).collect::<Vec<_>>(),
        [Uuid::from_u128(2), Uuid::from_u128(1)]
    );
    assert!((3_100.0..3_300.0).contains(&hits[0].1), "{hits:?}");
}

#[test]
fn radius_and_limit_bound_the_answer() {
    let all: Vec<_> = (0..50u128)
        .map(|i| candidate(i, 69.65 + i as f64 * 0.001, 18.95))
        .collect();
    let snapshot = Index::build(all);
    let mut q = query(69.65, 18.95);
    q.radius_m = Some(1_000.0);
    q.limit = 100;
    let hits = answer(&snapshot, &q);
    // 0.001° of latitude is ~111.6 m at 69.65°N: drivers 0..=8 are within 1 km.
    assert_eq!(hits.len(), 9, "{hits:?}");
    assert!(hits.iter().all(|h| h.1 <= 1_000.0));
    q.limit = 3;
    assert_eq!(answer(&snapshot, &q).len(), 3);
    q.limit = 0;
    assert!(answer(&snapshot, &q).is_empty());
}

#[test]
fn inserts_moves_and_removals_in_place_keep_answers_equal_to_brute_force() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let place = |rng: &mut Rng| (59.0 + rng.next() * 2.0, 10.0 + rng.next() * 2.0);
    // Start from a bulk load, as a full reload does, then edit it as the feed does.
    let mut all: Vec<Candidate> = (0..2_000u128)
        .map(|i| {
            let (lat, lon) = place(&mut rng);
            candidate(i, lat, lon)
        })
        .collect();
    let mut index = Index::build(all.clone());
    let mut next = all.len() as u128;
    for round in 0..40 {
        for _ in 0..100 {
            let pick = (rng.next() * all.len() as f64) as usize;
            match (rng.next() * 3.0) as u8 {
                // A position: remove at the old point, insert at the new one.
                0 => {
                    let (lat, lon) = place(&mut rng);
                    let mut moved = all[pick].clone();
                    moved.fix.lat = lat;
                    moved.fix.lon = lon;
                    moved.fix.ts_us += 1;
                    let moved = Candidate::new(moved.shift, moved.fix);
                    assert!(index.remove(&all[pick]));
                    index.insert(moved.clone());
                    all[pick] = moved;
                }
                // A dispatch: the driver leaves.
                1 => {
                    assert!(index.remove(&all.swap_remove(pick)));
                }
                // A driver comes back (a new shift here).
                _ => {
                    let (lat, lon) = place(&mut rng);
                    let c = candidate(next, lat, lon);
                    next += 1;
                    index.insert(c.clone());
                    all.push(c);
                }
            }
        }
        assert_eq!(index.len(), all.len());
        for _ in 0..10 {
            let (lat, lon) = place(&mut rng);
            let mut q = query(lat, lon);
            q.limit = 20;
            assert_eq!(answer(&index, &q), brute_force(&all, &q), "round {round}");
            q.radius_m = Some(5_000.0);
            q.vehicle_type = Some("van".into());
            assert_eq!(answer(&index, &q), brute_force(&all, &q), "round {round}");
        }
    }
    let gone = all.pop().unwrap();
    assert!(index.remove(&gone));
    assert!(!index.remove(&gone), "removing twice finds nothing");
}
