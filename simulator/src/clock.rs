//! Per-vehicle clocks. The store's idempotency key is `(vehicle_id, ts)`, so two points of one
//! vehicle in the same millisecond would collapse into one row: every timestamp a vehicle
//! emits is therefore unique, live ones strictly increasing and late ones strictly decreasing.

use rand::Rng;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Late points fall between 1 hour and 7 days before the run started: inside the server's raw
/// retention, and never on top of a live point of this run however long it lasts.
const LATE_NEWEST_MS: i64 = HOUR_MS;
const LATE_OLDEST_MS: i64 = 7 * DAY_MS;
/// Average gap between consecutive late points of one vehicle (uniform 1 ms ..= 2×this).
/// Gives each vehicle ~10k late points before its window is used up.
const LATE_STEP_MS: i64 = 60_000;

/// How far ahead of wall time a live clock may run. The server dead-letters points more
/// than 5 minutes in the future; a few seconds keeps well clear of that.
pub const MAX_LEAD_MS: i64 = 2_000;

#[derive(Debug, Clone)]
pub struct Clock {
    /// Last live timestamp handed out (epoch ms); `None` before the first.
    last_ms: Option<i64>,
    /// Next late timestamp to hand out; walks backwards so late points never repeat.
    late_cursor_ms: i64,
    late_floor_ms: i64,
}

impl Clock {
    pub fn new(run_start_ms: i64, rng: &mut impl Rng) -> Self {
        // Start each vehicle's late walk at a random depth so late traffic spreads over the week.
        let newest = run_start_ms - LATE_NEWEST_MS;
        Self {
            last_ms: None,
            late_cursor_ms: newest - rng.random_range(0..DAY_MS),
            late_floor_ms: run_start_ms - LATE_OLDEST_MS,
        }
    }

    /// Next live timestamp: `want_ms` unless that would not be strictly after the previous one.
    pub fn next(&mut self, want_ms: i64) -> i64 {
        let ts = match self.last_ms {
            Some(last) if want_ms <= last => last + 1,
            _ => want_ms,
        };
        self.last_ms = Some(ts);
        ts
    }

    pub fn last_ms(&self) -> Option<i64> {
        self.last_ms
    }

    /// How long to wait before `points` more live timestamps fit within `MAX_LEAD_MS` of `now_ms`.
    pub fn wait_before(&self, points: u32, now_ms: i64) -> Option<u64> {
        let last = self.last_ms?;
        let ahead = last + i64::from(points) - now_ms - MAX_LEAD_MS;
        (ahead > 0).then_some(ahead as u64)
    }

    /// A timestamp 1 hour to 7 days in the past, distinct from every other this vehicle emitted;
    /// `None` once this vehicle's late window is used up.
    pub fn next_late(&mut self, rng: &mut impl Rng) -> Option<i64> {
        if self.late_cursor_ms < self.late_floor_ms {
            return None;
        }
        let ts = self.late_cursor_ms;
        self.late_cursor_ms -= rng.random_range(1..=2 * LATE_STEP_MS);
        Some(ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};
    use std::collections::HashSet;

    const START: i64 = 1_763_719_200_000;

    #[test]
    fn many_points_in_one_millisecond_still_strictly_increase() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut clock = Clock::new(START, &mut rng);
        let mut prev = i64::MIN;
        // 10k points asked for at the same wall millisecond, then the wall clock catches up.
        for i in 0..20_000 {
            let want = if i < 10_000 { START } else { START + 15_000 };
            let ts = clock.next(want);
            assert!(ts > prev, "point {i}: {ts} after {prev}");
            prev = ts;
        }
        assert_eq!(clock.last_ms(), Some(START + 15_000 + 9_999));
    }

    #[test]
    fn clock_follows_wall_time_when_it_is_ahead() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut clock = Clock::new(START, &mut rng);
        assert_eq!(clock.next(START), START);
        assert_eq!(clock.next(START + 1_000), START + 1_000);
    }

    #[test]
    fn asks_to_wait_once_the_lead_would_exceed_the_limit() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut clock = Clock::new(START, &mut rng);
        assert_eq!(
            clock.wait_before(10, START),
            None,
            "a fresh clock never waits"
        );
        for _ in 0..(MAX_LEAD_MS as usize) {
            clock.next(START);
        }
        assert_eq!(clock.wait_before(1, START), None);
        assert_eq!(clock.wait_before(10, START), Some(9));
        assert_eq!(clock.wait_before(10, START + 9), None);
    }

    #[test]
    fn late_points_are_unique_and_inside_the_window() {
        let mut rng = SmallRng::seed_from_u64(4);
        let mut clock = Clock::new(START, &mut rng);
        let mut seen = HashSet::new();
        let mut count = 0;
        while let Some(ts) = clock.next_late(&mut rng) {
            assert!(
                (START - LATE_OLDEST_MS..=START - LATE_NEWEST_MS).contains(&ts),
                "{ts}"
            );
            assert!(seen.insert(ts), "late timestamp {ts} repeated");
            count += 1;
        }
        assert!(
            count > 4_000,
            "window should hold thousands of late points, held {count}"
        );
        assert_eq!(clock.next_late(&mut rng), None);
    }
}
