use chrono::DateTime;

use super::*;
use crate::live::nearest::NearestQuery;

const NOW: i64 = 1_800_000_000_000_000;
const MINUTE: i64 = 60_000_000;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Shift `n`: driver `n`, shift `100 + n`, on vehicle `vehicle`, started an hour ago unless
/// `starts_us` says otherwise.
fn row(n: u128, vehicle: u128, starts_us: i64) -> AvailableShift {
    AvailableShift {
        shift_id: id(100 + n),
        driver_id: id(n),
        vehicle_id: id(vehicle),
        external_id: format!("v{vehicle}"),
        vehicle_type: Some("van".into()),
        starts: DateTime::from_timestamp_micros(starts_us).unwrap(),
        ends: None,
    }
}

fn fix(vehicle: u128, lat: f64, ts_us: i64) -> PositionRow {
    PositionRow {
        vehicle_id: id(vehicle),
        fix: Fix {
            lat,
            lon: 10.0,
            ts_us,
            speed_kmh: None,
            heading_deg: None,
        },
    }
}

/// Every driver offered near (60, 10) at `now_us` (fixes up to 5 minutes old), nearest first.
fn offered(index: &Index, now_us: i64) -> Vec<Uuid> {
    let q = NearestQuery {
        lat: 60.0,
        lon: 10.0,
        limit: 100,
        radius_m: None,
        max_age_us: 5 * MINUTE,
        vehicle_type: None,
        now_us,
    };
    index
        .nearest(&q)
        .iter()
        .map(|h| h.candidate.shift.driver_id)
        .collect()
}

/// Applies `edits` and checks that every removal found its candidate (the invariant).
fn apply(index: &mut Index, edits: Edits) -> bool {
    let grew = edits.grew;
    assert_eq!(edits.apply(index), 0, "a removal found nothing");
    grew
}

#[test]
fn positions_dispatches_and_returns_edit_the_index_in_place_as_a_rebuild_would() {
    let mut state = State::default();
    let later = NOW + 2 * MINUTE;
    let joined = state.reset(
        vec![
            row(1, 11, NOW - 60 * MINUTE),
            row(2, 12, NOW - 60 * MINUTE),
            row(3, 13, later),
        ],
        NOW,
    );
    assert_eq!(joined.len(), 3, "every vehicle joins the watched set");
    state.record(vec![
        fix(11, 60.1, NOW - MINUTE),
        fix(12, 60.2, NOW - MINUTE),
    ]);
    let mut index = state.build();
    assert_eq!(offered(&index, NOW), [id(1), id(2)]);

    // Driver 2 moves nearer than driver 1; an older fix for vehicle 11 is ignored.
    let edits = state.positions(
        vec![fix(12, 60.05, NOW), fix(11, 60.0, NOW - 2 * MINUTE)],
        NOW,
    );
    assert_eq!(edits.moved, 1);
    assert!(!apply(&mut index, edits), "a move is not growth");
    assert_eq!(offered(&index, NOW), [id(2), id(1)]);

    // Driver 2 is dispatched: the refresh finds no available shift for them.
    let (edits, joined) = state.refresh(&[id(2)], &[], vec![], NOW);
    assert!(joined.is_empty());
    assert!(!apply(&mut index, edits));
    assert_eq!(offered(&index, NOW), [id(1)]);
    // Its vehicle stays watched and keeps moving while on the job: no candidate moves.
    let edits = state.positions(vec![fix(12, 60.3, NOW + 1)], NOW);
    assert!(edits.is_empty() && edits.moved == 0);

    // The dispatch completes: driver 2 is back, at the position reported meanwhile.
    let (edits, joined) = state.refresh(
        &[id(2)],
        &[id(12)],
        vec![row(2, 12, NOW - 60 * MINUTE)],
        NOW,
    );
    assert!(joined.is_empty(), "vehicle 12 was never unwatched");
    assert!(
        apply(&mut index, edits),
        "a driver came back: availability grew"
    );
    assert_eq!(offered(&index, NOW), [id(1), id(2)]);
    assert_eq!(state.build().len(), index.len());

    // Vehicle 13's first fix places driver 3, whose shift starts later.
    assert!(apply(
        &mut index,
        state.positions(vec![fix(13, 60.01, NOW)], NOW)
    ));
    assert_eq!(offered(&index, NOW), [id(1), id(2)]);
    assert!(!state.started(NOW));
    assert!(state.started(later), "driver 3's shift started");
    assert!(!state.started(later + 1), "once");
    assert_eq!(offered(&index, later), [id(3), id(1), id(2)]);
}

#[test]
fn a_new_vehicle_joins_the_watched_set_and_a_silent_one_reporting_again_is_growth() {
    let mut state = State::default();
    state.reset(vec![row(1, 11, NOW - 60 * MINUTE)], NOW);
    state.record(vec![fix(11, 60.1, NOW - 20 * MINUTE)]);
    let mut index = state.build();
    assert_eq!(index.len(), 1);

    // Maintenance closed on vehicle 14, unknown until now: it joins; its position is read.
    let (edits, joined) = state.refresh(&[], &[id(14)], vec![row(4, 14, NOW - MINUTE)], NOW);
    assert_eq!(joined, [id(14)]);
    assert!(state.watched().contains(&id(14)));
    assert!(!apply(&mut index, edits), "no fix yet, no candidate");
    assert!(apply(
        &mut index,
        state.positions(vec![fix(14, 60.0, NOW)], NOW)
    ));
    assert_eq!(
        offered(&index, NOW),
        [id(4)],
        "driver 1's fix is 20 min old"
    );

    // Vehicle 11, silent for 20 minutes, reports again.
    assert!(apply(
        &mut index,
        state.positions(vec![fix(11, 60.1, NOW)], NOW)
    ));
    assert_eq!(offered(&index, NOW), [id(4), id(1)]);

    // A full reload shrinks the watched set back to the shifts' vehicles.
    let joined = state.reset(vec![row(1, 11, NOW - 60 * MINUTE)], NOW);
    assert!(joined.is_empty());
    assert_eq!(state.watched().len(), 1);
    assert_eq!(offered(&state.build(), NOW), [id(1)]);
}

#[test]
fn batches_never_split_a_vehicles_move_and_keep_every_edit() {
    let mut state = State::default();
    // Vehicle 11 carries two shifts (a later one too): its move is four edits.
    state.reset(
        vec![
            row(1, 11, NOW - 60 * MINUTE),
            row(5, 11, NOW + 60 * MINUTE),
            row(2, 12, NOW - 60 * MINUTE),
        ],
        NOW,
    );
    state.record(vec![
        fix(11, 60.1, NOW - MINUTE),
        fix(12, 60.2, NOW - MINUTE),
    ]);
    let mut index = state.build();
    let moves: Vec<PositionRow> = (1..=5)
        .flat_map(|k| {
            [
                fix(11, 60.0 + k as f64 * 0.01, NOW + k),
                fix(12, 60.3, NOW + k),
            ]
        })
        .collect();
    let batches = state.positions(moves, NOW).batches(3);
    // Groups of 4 and 2 edits alternate; a batch closes at the first group end ≥ 3 edits.
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 6, 6, 6, 6, 2]);
    for batch in batches {
        assert_eq!(super::apply(batch, &mut index), 0);
    }
    assert_eq!(index.len(), 3);
    assert_eq!(offered(&index, NOW + 5), [id(1), id(2)]);
}
