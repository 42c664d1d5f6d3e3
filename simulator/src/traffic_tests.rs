//! Tests of the message stream against what the server will be checked for.

use std::collections::{HashMap, HashSet};

use meridian::domain::{LatLon, Timestamp};
use rand::SeedableRng;
use serde_json::Value;

use super::*;
use crate::clock::MAX_LEAD_MS;

const NOW: i64 = 1_763_719_200_000;
const HOUR_MS: i64 = 3_600_000;

fn traffic(vehicles: usize, k: u32, rate: f64, faults: f64, dups: f64, late: f64) -> Traffic {
    let area = Area::new(LatLon::new(40.7128, -74.0060).unwrap(), 20.0);
    let mut rng = SmallRng::seed_from_u64(42);
    let fleet = (0..vehicles)
        .map(|i| SimVehicle {
            topic: format!("t1/fleet/sim-{i:06}/telemetry"),
            motion: Vehicle::spawn(&area, &mut rng),
            clock: Clock::new(NOW, &mut rng),
        })
        .collect();
    let cfg = TrafficConfig {
        topic_prefix: "t1/".into(),
        points_per_message: k,
        rate,
        fault_rate: faults,
        duplicate_rate: dups,
        late_rate: late,
        area,
    };
    Traffic::new(cfg, fleet, rng, 0)
}

fn points(payload: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(payload).expect("valid message must parse") {
        Value::Array(a) => a,
        one => vec![one],
    }
}

fn ts_of(p: &Value) -> i64 {
    match &p["ts"] {
        Value::Number(n) => n.as_i64().unwrap(),
        Value::String(s) => Timestamp::parse_rfc3339(s).unwrap().unix_micros() / 1000,
        other => panic!("bad ts {other}"),
    }
}

#[test]
fn valid_messages_carry_the_contract_fields_in_both_ts_formats() {
    let mut t = traffic(10, 1, 1.0, 0.0, 0.0, 0.0);
    let (mut epoch, mut rfc) = (0, 0);
    for i in 0..2_000 {
        let (msg, kind) = t.next_with_kind(NOW + i * 100);
        assert_eq!(kind, Kind::Valid);
        assert!(msg.topic.starts_with("t1/fleet/sim-") && msg.topic.ends_with("/telemetry"));
        let p = serde_json::from_slice::<Value>(&msg.payload).unwrap();
        assert!(p.is_object(), "one point per message is an object");
        for field in [
            "lat",
            "lon",
            "speed_kmh",
            "heading_deg",
            "fuel_pct",
            "accuracy_m",
        ] {
            assert!(p[field].is_number(), "{field} missing in {p}");
        }
        assert!(p["engine"]["rpm"].is_number() && p["engine"]["coolant_c"].is_number());
        assert!(LatLon::new(p["lat"].as_f64().unwrap(), p["lon"].as_f64().unwrap()).is_ok());
        assert!((0.0..360.0).contains(&p["heading_deg"].as_f64().unwrap()));
        assert!((0.0..=100.0).contains(&p["fuel_pct"].as_f64().unwrap()));
        match &p["ts"] {
            Value::String(s) => {
                assert!(
                    s.ends_with('Z') && s.len() == "2025-11-21T10:00:00.123Z".len(),
                    "{s}"
                );
                rfc += 1;
            }
            _ => epoch += 1,
        }
    }
    assert!(rfc > 100 && epoch > 1_500, "rfc3339 {rfc}, epoch {epoch}");
}

#[test]
fn per_vehicle_timestamps_strictly_increase_when_unthrottled() {
    // Everything generated in the same wall millisecond: only the +1 ms rule separates points.
    let mut t = traffic(3, 10, 0.0, 0.0, 0.0, 0.0);
    let mut last: HashMap<String, i64> = HashMap::new();
    for _ in 0..3_000 {
        let msg = t.next_message(NOW);
        let pts = points(&msg.payload);
        assert_eq!(pts.len(), 10);
        for p in pts {
            let ts = ts_of(&p);
            if let Some(prev) = last.insert(msg.topic.clone(), ts) {
                assert!(ts > prev, "{}: {ts} not after {prev}", msg.topic);
            }
        }
    }
    // 1000 messages × 10 points per vehicle, all in one wall millisecond.
    assert_eq!(last.values().max(), Some(&(NOW + 9_999)));
    assert!(t.wait_before_next(NOW).unwrap() >= (9_999 - MAX_LEAD_MS) as u64);
}

#[test]
fn throttled_points_spread_over_the_message_interval() {
    let mut t = traffic(1, 4, 2.0, 0.0, 0.0, 0.0);
    let first = points(&t.next_message(NOW).payload);
    let ts: Vec<i64> = first.iter().map(ts_of).collect();
    // 2 messages/s with 4 points each: a point every 125 ms, the last one now.
    assert_eq!(ts, vec![NOW - 375, NOW - 250, NOW - 125, NOW]);
    let second: Vec<i64> = points(&t.next_message(NOW + 500).payload)
        .iter()
        .map(ts_of)
        .collect();
    assert_eq!(second[0], NOW + 125);
}

#[test]
fn faults_cycle_through_every_kind_and_are_malformed() {
    let mut t = traffic(5, 3, 0.0, 1.0, 0.0, 0.0);
    for i in 0..70 {
        let (msg, kind) = t.next_with_kind(NOW + i);
        let Kind::Fault(fault) = kind else {
            panic!("fault rate 1 produced {kind:?}")
        };
        assert_eq!(fault, FaultKind::ALL[i as usize % 7]);
        let parsed = serde_json::from_slice::<Value>(&msg.payload);
        match fault {
            FaultKind::InvalidJson => assert!(parsed.is_err()),
            FaultKind::MissingLat => assert!(parsed.unwrap().get("lat").is_none()),
            FaultKind::LatOutOfRange => assert!(parsed.unwrap()["lat"].as_f64().unwrap() > 90.0),
            FaultKind::WrongType => assert!(parsed.unwrap()["lat"].is_string()),
            FaultKind::FutureTimestamp => {
                assert!(ts_of(&parsed.unwrap()) >= NOW + 86_400_000 - 1_000);
            }
            FaultKind::UnknownVehicle => {
                assert!(msg.topic.starts_with("t1/fleet/ghost-"), "{}", msg.topic);
                assert!(parsed.unwrap().is_object());
            }
            FaultKind::TooManyPoints => assert_eq!(parsed.unwrap().as_array().unwrap().len(), 1001),
        }
    }
    assert_eq!(t.tally.faults, [10; 7]);
    assert_eq!(t.tally.valid_points_unique, 0);
    assert_eq!(t.tally.points, 60 + 10 * 1001);
}

#[test]
fn duplicates_repeat_an_earlier_valid_message_byte_for_byte() {
    let mut t = traffic(20, 2, 1.0, 0.0, 0.3, 0.0);
    let mut sent: HashSet<(String, Vec<u8>)> = HashSet::new();
    let mut valid = 0;
    for i in 0..5_000 {
        let (msg, kind) = t.next_with_kind(NOW + i * 50);
        let key = (msg.topic, msg.payload.to_vec());
        match kind {
            Kind::Duplicate => assert!(sent.contains(&key), "duplicate of nothing sent"),
            Kind::Valid => {
                assert!(sent.insert(key), "a fresh message repeated an earlier one");
                valid += 1;
            }
            Kind::Fault(_) => panic!("no faults asked for"),
        }
    }
    let dups = t.tally.duplicates;
    assert!(
        (1_200..1_800).contains(&dups),
        "~30% duplicates, got {dups}"
    );
    assert_eq!(dups + valid, 5_000);
    assert_eq!(t.tally.valid_points_unique, valid * 2);
    assert_eq!(t.tally.points, 5_000 * 2);
}

#[test]
fn late_points_are_an_hour_to_a_week_old_and_never_repeat() {
    let mut t = traffic(4, 5, 0.0, 0.0, 0.0, 0.2);
    let mut seen: HashSet<(String, i64)> = HashSet::new();
    let mut late = 0;
    for _ in 0..4_000 {
        let msg = t.next_message(NOW);
        for p in points(&msg.payload) {
            let ts = ts_of(&p);
            assert!(
                seen.insert((msg.topic.clone(), ts)),
                "{} repeated ts {ts}",
                msg.topic
            );
            if ts < NOW {
                assert!(
                    (NOW - 7 * 24 * HOUR_MS..=NOW - HOUR_MS).contains(&ts),
                    "{ts}"
                );
                late += 1;
            }
        }
    }
    assert_eq!(late, t.tally.late_points);
    assert!(
        (3_500..4_500).contains(&late),
        "~20% of 20k points late, got {late}"
    );
    assert_eq!(
        t.tally.valid_points_unique, 20_000,
        "late points inside retention are valid"
    );
}

#[test]
fn a_vehicle_far_ahead_is_skipped_instead_of_stalling_the_fleet() {
    let mut t = traffic(3, 1, 0.0, 0.0, 0.0, 0.0);
    // Vehicle 0 has used 10 s of its clock; the others have not started.
    for _ in 0..10_000 {
        t.vehicles[0].clock.next(NOW);
    }
    assert_eq!(
        t.wait_before_next(NOW),
        None,
        "another vehicle can emit now"
    );
    let msg = t.next_message(NOW);
    assert!(msg.topic.contains("sim-000001"), "skipped to {}", msg.topic);
    // Once every vehicle is ahead, the producer is told to wait for the soonest one.
    for v in &mut t.vehicles[1..] {
        for _ in 0..2_500 {
            v.clock.next(NOW);
        }
    }
    assert_eq!(t.wait_before_next(NOW), Some(500));
}
