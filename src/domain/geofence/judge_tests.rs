//! The judging rules on a square fence in a small flat patch at 0°N 0°E, where a degree is a
//! fixed number of metres: jitter, confirmation, crossing, dwell, order and accuracy.

use std::collections::HashMap;

use super::*;

const M_PER_DEG: f64 = 111_320.0;

/// An axis-aligned square in metres around (0°, 0°).
#[derive(Clone)]
struct Square {
    id: Uuid,
    settings: EventSettings,
    west: f64,
    south: f64,
    east: f64,
    north: f64,
}

fn xy(p: LatLon) -> (f64, f64) {
    (p.lon() * M_PER_DEG, p.lat() * M_PER_DEG)
}

fn at(x: f64, y: f64) -> LatLon {
    LatLon::new(y / M_PER_DEG, x / M_PER_DEG).unwrap()
}

impl Square {
    /// Metres to the boundary, positive inside.
    fn signed_distance_m(&self, p: LatLon) -> f64 {
        let (x, y) = xy(p);
        let dx = (self.west - x).max(x - self.east);
        let dy = (self.south - y).max(y - self.north);
        if dx <= 0.0 && dy <= 0.0 {
            -dx.max(dy)
        } else {
            -(dx.max(0.0).hypot(dy.max(0.0)))
        }
    }
}

impl Judged for Square {
    fn id(&self) -> Uuid {
        self.id
    }
    fn settings(&self) -> &EventSettings {
        &self.settings
    }
    fn contains(&self, p: LatLon) -> bool {
        self.signed_distance_m(p) >= 0.0
    }
    fn clear_of_boundary(&self, p: LatLon, m: f64) -> bool {
        self.signed_distance_m(p).abs() >= m
    }
    fn chord_inside_m(&self, a: LatLon, b: LatLon) -> f64 {
        // Liang–Barsky clipping.
        let ((x0, y0), (x1, y1)) = (xy(a), xy(b));
        let (dx, dy) = (x1 - x0, y1 - y0);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, x0 - self.west),
            (dx, self.east - x0),
            (-dy, y0 - self.south),
            (dy, self.north - y0),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return 0.0;
                }
            } else if p < 0.0 {
                t0 = t0.max(q / p);
            } else {
                t1 = t1.min(q / p);
            }
        }
        if t1 <= t0 {
            0.0
        } else {
            (t1 - t0) * dx.hypot(dy)
        }
    }
    fn extent_m(&self) -> f64 {
        (self.east - self.west).min(self.north - self.south)
    }
}

struct World(Vec<Square>);

impl Fences for World {
    type Fence = Square;
    fn near<'s>(&'s self, p: LatLon, margin_m: f64, out: &mut Vec<&'s Square>) {
        out.extend(
            self.0
                .iter()
                .filter(|f| f.signed_distance_m(p) >= -margin_m),
        );
    }
    fn along<'s>(&'s self, a: LatLon, b: LatLon, out: &mut Vec<&'s Square>) {
        out.extend(self.0.iter().filter(|f| f.chord_inside_m(a, b) > 0.0));
    }
    fn get(&self, id: Uuid) -> Option<&Square> {
        self.0.iter().find(|f| f.id == id)
    }
    fn min_cross_m(&self) -> f64 {
        0.0
    }
    fn max_hysteresis_m(&self) -> f64 {
        self.0
            .iter()
            .map(|f| f.settings.hysteresis_m)
            .fold(0.0, f64::max)
    }
}

/// A 1 km square, west edge on x = 0.
fn depot() -> Square {
    Square {
        id: Uuid::from_u128(1),
        settings: EventSettings::default(),
        west: 0.0,
        south: -500.0,
        east: 1000.0,
        north: 500.0,
    }
}

fn fix(s: i64, x: f64, y: f64) -> (Fix, Option<f64>) {
    (
        Fix {
            ts: Timestamp::from_unix_micros(1_800_000_000_000_000 + s * 1_000_000),
            pos: at(x, y),
        },
        None,
    )
}

/// A vehicle's states as judging takes them, in id order.
fn list(states: &HashMap<Uuid, FenceState>) -> Vec<(Uuid, FenceState)> {
    let mut list: Vec<_> = states.iter().map(|(f, s)| (*f, *s)).collect();
    list.sort_by_key(|(f, _)| *f);
    list
}

/// Runs points through judging one call at a time (as batches of one would), carrying the
/// state like the store does (the rows judging changed written back); returns every event.
/// The states judging hands back must be those rows.
fn run(world: &World, points: Vec<(Fix, Option<f64>)>, batch: usize) -> Vec<Raised> {
    let mut states = HashMap::new();
    let mut prev = None;
    let mut events = Vec::new();
    for chunk in points.chunks(batch) {
        let chunk = chunk.to_vec();
        let mut j = judge(world, prev, &list(&states), &chunk);
        for (id, s) in j.changed {
            match s {
                Some(s) => states.insert(id, s),
                None => states.remove(&id),
            };
        }
        j.states.sort_by_key(|(f, _)| *f);
        assert_eq!(j.states, list(&states), "the states after judging");
        prev = j.last;
        events.extend(j.events);
    }
    events
}

fn kinds(events: &[Raised]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

#[test]
fn entering_needs_three_points_past_the_hysteresis_and_is_dated_by_the_first() {
    let world = World(vec![depot()]);
    let mut points = vec![fix(0, -200.0, 0.0), fix(1, -100.0, 0.0)];
    points.extend([fix(2, 10.0, 0.0), fix(3, 40.0, 0.0), fix(4, 50.0, 0.0)]);
    let events = run(&world, points.clone(), 1);
    assert_eq!(
        kinds(&events),
        [] as [EventKind; 0],
        "only two points 30 m in"
    );
    points.push(fix(5, 60.0, 0.0));
    let events = run(&world, points, 1);
    assert_eq!(kinds(&events), [EventKind::Enter]);
    assert_eq!(events[0].at.ts, fix(3, 0.0, 0.0).0.ts);
}

#[test]
fn an_hour_of_15_m_jitter_across_an_edge_raises_nothing() {
    let world = World(vec![depot()]);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut uniform = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        ((rng >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut points = vec![fix(0, -300.0, 0.0)];
    for s in 1..=3600 {
        // Box–Muller: two independent normal draws, σ = 15 m.
        let (u, v) = (uniform(), uniform());
        let r = (-2.0 * u.ln()).sqrt() * 15.0;
        let (dx, dy) = (
            r * (std::f64::consts::TAU * v).cos(),
            r * (std::f64::consts::TAU * v).sin(),
        );
        points.push(fix(s, dx, dy));
    }
    assert_eq!(run(&world, points.clone(), 1), vec![]);
    assert_eq!(
        run(&world, points.clone(), 50),
        vec![],
        "batching changes nothing"
    );
    // The same track without hysteresis flaps all hour: the test can see a flap.
    let mut bare = depot();
    bare.settings.hysteresis_m = 0.0;
    bare.settings.confirm_points = 1;
    assert!(run(&World(vec![bare]), points, 1).len() > 1000);
}

#[test]
fn leaving_and_dwelling_follow_the_points_clock() {
    let mut fence = depot();
    fence.settings.dwell_s = Some(60);
    let world = World(vec![fence]);
    let mut points: Vec<_> = (0..3).map(|s| fix(s, 500.0, 0.0)).collect();
    points.push(fix(59, 500.0, 0.0));
    points.push(fix(61, 500.0, 0.0));
    points.push(fix(90, 500.0, 0.0));
    points.extend((100..103).map(|s| fix(s, -100.0, 0.0)));
    let events = run(&world, points, 2);
    assert_eq!(
        kinds(&events),
        [EventKind::Enter, EventKind::Dwell, EventKind::Exit]
    );
    assert_eq!(events[1].at.ts, fix(61, 0.0, 0.0).0.ts);
    assert_eq!(events[2].at.ts, fix(100, 0.0, 0.0).0.ts);
}

#[test]
fn late_and_out_of_order_points_do_not_flap() {
    let world = World(vec![depot()]);
    // Inside, confirmed; then a batch holding older points from outside, out of order.
    let inside: Vec<_> = (10..14).map(|s| fix(s, 500.0, 0.0)).collect();
    let mut states = HashMap::new();
    let j = judge(&world, None, &list(&states), &inside.clone());
    assert_eq!(kinds(&j.events), [EventKind::Enter]);
    for (id, s) in j.changed {
        states.insert(id, s.unwrap());
    }
    let late = vec![
        fix(3, -200.0, 0.0),
        fix(1, -200.0, 0.0),
        fix(2, -200.0, 0.0),
    ];
    let again = judge(&world, j.last, &list(&states), &late);
    assert_eq!(again.events, vec![]);
    assert!(again.changed.is_empty());
    // Out of order inside one batch: sorted first, so enter is dated by the earliest.
    let shuffled = vec![
        fix(22, 500.0, 0.0),
        fix(20, 500.0, 0.0),
        fix(21, 500.0, 0.0),
    ];
    let j = judge(&world, None, &[], &shuffled);
    assert_eq!(j.events[0].at.ts, fix(20, 0.0, 0.0).0.ts);
}

#[test]
fn a_step_over_a_small_fence_is_a_cross() {
    let kiosk = Square {
        id: Uuid::from_u128(2),
        settings: EventSettings::default(),
        west: 1000.0,
        south: -20.0,
        east: 1040.0,
        north: 20.0,
    };
    let world = World(vec![kiosk]);
    let events = run(&world, vec![fix(0, 700.0, 0.0), fix(30, 1300.0, 5.0)], 1);
    assert_eq!(kinds(&events), [EventKind::Enter, EventKind::Exit]);
    assert_eq!(events[0].at.ts, fix(15, 0.0, 0.0).0.ts);
    // Too long a gap: the straight line is not trusted.
    let events = run(&world, vec![fix(0, 700.0, 0.0), fix(3600, 1300.0, 5.0)], 1);
    assert_eq!(events, vec![]);
    // A step that misses it.
    let events = run(
        &world,
        vec![fix(0, 700.0, 100.0), fix(30, 1300.0, 100.0)],
        1,
    );
    assert_eq!(events, vec![]);
}

#[test]
fn vague_points_are_ignored_and_an_unknown_fence_keeps_its_state() {
    let world = World(vec![depot()]);
    let vague: Vec<_> = (0..5)
        .map(|s| (fix(s, 500.0, 0.0).0, Some(500.0)))
        .collect();
    assert_eq!(run(&world, vague, 5), vec![]);

    let mut states = HashMap::new();
    let j = judge(
        &world,
        None,
        &list(&states),
        &(0..3).map(|s| fix(s, 500.0, 0.0)).collect::<Vec<_>>(),
    );
    for (id, s) in j.changed {
        states.insert(id, s.unwrap());
    }
    let empty = World(vec![]);
    let gone = judge(&empty, j.last, &list(&states), &[fix(10, 500.0, 0.0)]);
    assert_eq!(gone.events, vec![]);
    assert!(gone.changed.is_empty());
}

#[test]
fn the_cheap_step_bound_answers_as_the_haversine_does() {
    let mut rng = crate::test_rng::Rng(0x1f2e_3d4c_5b6a_7988);
    let mut longer = 0;
    for i in 0..20_000 {
        let lat = -89.0 + 178.0 * rng.next();
        let lon = -180.0 + 360.0 * rng.next();
        // Steps from a millimetre to ~100 km, some across 180°.
        let d = 1e-8 * 10f64.powf(7.0 * rng.next());
        let a = LatLon::new(lat, lon).unwrap();
        let blon = lon + d * (rng.next() - 0.5);
        let blon = if blon > 180.0 {
            blon - 360.0
        } else if blon < -180.0 {
            blon + 360.0
        } else {
            blon
        };
        let b = LatLon::new((lat + d * (rng.next() - 0.5)).clamp(-90.0, 90.0), blon).unwrap();
        let m = [0.0, 1.0, 30.0, 500.0][i % 4];
        assert_eq!(step_at_least(a, b, m), step_m(a, b) >= m, "{a:?} {b:?} {m}");
        longer += usize::from(step_m(a, b) >= m);
    }
    assert!((2_000..18_000).contains(&longer), "{longer}");
}
