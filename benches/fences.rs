//! Pure-CPU cost of judging fixes against geofences in memory: 10,000 star-shaped polygons of
//! ~50 vertices (100–800 m across) and 300 circles over a 30 km city. Per point: which fences
//! contain it, and the ingest path's evaluation (candidates within 30 m, then each one's signed
//! distance); `contains` on one 100,000-vertex fence; a full reload of the index; and the whole
//! judging of a vehicle's fixes as ingest runs it.
//! `cargo bench --bench fences`.

use std::f64::consts::TAU;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meridian::domain::geofence::judge::{self, FenceState, Fix};
use meridian::domain::geofence::Fence;
use meridian::domain::{LatLon, Timestamp};
use meridian::geofencing::{CompiledFence, FenceIndex, Geofences, Neighbourhood, Neighbourhoods};
use meridian::ingest::fencing::{self, FencePoints};
use meridian::store::geofence_state::Prior;
use meridian::store::geofences::Loaded;
use serde_json::{json, Value};
use uuid::Uuid;

/// Oslo, as in `benches/nearest.rs`: ±0.135° of latitude and ±0.27° of longitude (~30 km).
const CENTER: [f64; 2] = [10.75, 59.91];
const HALF: [f64; 2] = [0.27, 0.135];
const M_PER_DEG_LAT: f64 = 111_400.0;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn in_city(&mut self) -> [f64; 2] {
        [
            CENTER[0] + (self.next() - 0.5) * 2.0 * HALF[0],
            CENTER[1] + (self.next() - 0.5) * 2.0 * HALF[1],
        ]
    }
}

/// A closed star-shaped ring of `n` vertices, radius `r_m` metres, radii varying by `jitter`.
fn ring(rng: &mut Rng, c: [f64; 2], r_m: f64, n: usize, jitter: f64) -> Vec<[f64; 2]> {
    let r = r_m / M_PER_DEG_LAT;
    let stretch = 1.0 / c[1].to_radians().cos();
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let angle = (i as f64 + 0.5 * rng.next()) / n as f64 * TAU;
            let radius = r * (1.0 - jitter * rng.next());
            [
                c[0] + radius * angle.cos() * stretch,
                c[1] + radius * angle.sin(),
            ]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

fn compile(i: u128, body: Value) -> Arc<CompiledFence> {
    let fence = Fence::from_json(body).expect("a valid fence");
    Arc::new(CompiledFence::new(Uuid::from_u128(i), fence.shape()))
}

fn polygon(i: u128, ring: Vec<[f64; 2]>) -> Arc<CompiledFence> {
    let geometry = json!({"type": "Polygon", "coordinates": [ring]});
    compile(
        i,
        json!({"type": "Feature", "geometry": geometry, "properties": {"name": "f"}}),
    )
}

fn city_fences(rng: &mut Rng) -> Vec<Arc<CompiledFence>> {
    let mut fences: Vec<Arc<CompiledFence>> = (0..10_000)
        .map(|i| {
            let c = rng.in_city();
            let r_m = 50.0 + 350.0 * rng.next();
            polygon(i, ring(rng, c, r_m, 50, 0.4))
        })
        .collect();
    fences.extend((0..300).map(|i| {
        let c = rng.in_city();
        let radius_m = 50.0 + 350.0 * rng.next();
        compile(
            10_000 + i,
            json!({"name": "c", "center": c, "radius_m": radius_m}),
        )
    }));
    fences
}

fn points(rng: &mut Rng, n: usize) -> Vec<LatLon> {
    (0..n)
        .map(|_| {
            let p = rng.in_city();
            LatLon::new(p[1], p[0]).unwrap()
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let fences = city_fences(&mut rng);
    let index = FenceIndex::from_fences(fences.iter().cloned());
    let probes = points(&mut rng, 4096);
    let (mut hits, mut candidates) = (0, 0);
    let mut out = Vec::new();
    for p in &probes {
        hits += index.containing(*p).len();
        out.clear();
        index.near(*p, 30.0, &mut out);
        candidates += out.len();
    }
    println!(
        "{} fences; per point: {:.2} containing, {:.2} candidates within 30 m",
        index.len(),
        hits as f64 / probes.len() as f64,
        candidates as f64 / probes.len() as f64
    );

    let mut group = c.benchmark_group("fences per point");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("containing, 10k polygons + 300 circles", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(index.containing(probes[i]).len())
        })
    });
    group.bench_function("near 30 m (candidates only)", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            out.clear();
            index.near(probes[i], 30.0, &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("evaluate: near 30 m + signed distance (reach 100 m)", |b| {
        b.iter(|| {
            i = (i + 1) % probes.len();
            let p = probes[i];
            out.clear();
            index.near(p, 30.0, &mut out);
            let d: f64 = out.iter().map(|f| f.signed_distance_m(p, 100.0)).sum();
            black_box(d)
        })
    });
    group.finish();

    let big = polygon(1, ring(&mut rng, CENTER, 10_000.0, 99_999, 0.0002));
    let near_big: Vec<LatLon> = (0..4096)
        .map(|_| {
            let lat = CENTER[1] + (rng.next() - 0.5) * 0.2;
            let lon = CENTER[0] + (rng.next() - 0.5) * 0.4;
            LatLon::new(lat, lon).unwrap()
        })
        .collect();
    let mut large = c.benchmark_group("large fence");
    large.throughput(Throughput::Elements(1));
    large.bench_function("contains, 100k vertices", |b| {
        b.iter(|| {
            i = (i + 1) % near_big.len();
            black_box(big.contains(near_big[i]))
        })
    });
    large.bench_function("signed distance (reach 100 m), 100k vertices", |b| {
        b.iter(|| {
            i = (i + 1) % near_big.len();
            black_box(big.signed_distance_m(near_big[i], 100.0))
        })
    });
    large.finish();

    let mut reload = c.benchmark_group("fence index reload");
    reload.sample_size(20);
    reload.throughput(Throughput::Elements(fences.len() as u64));
    reload.bench_function("from_fences, 10,300 compiled fences", |b| {
        b.iter(|| black_box(FenceIndex::from_fences(fences.iter().cloned()).len()))
    });
    reload.finish();
}

/// A vehicle's previous fix and its next ten, with their (unknown) accuracy.
type Trip = (Fix, Vec<(Fix, Option<f64>)>);

/// The whole judging of a batch, as ingest runs it: 1,000 vehicles driving at 36 km/h with a
/// fix a second, 10 fixes each, from their previous fix, against the 10k polygons (default
/// settings): per point, candidates near it and along the step from the previous fix, signed
/// distances, the rules.
fn judging(c: &mut Criterion) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let fences = city_set(&mut rng);
    let t0 = 1_800_000_000_000_000i64;
    let trips: Vec<Trip> = (0..1_000)
        .map(|_| {
            let [lon, lat] = rng.in_city();
            let heading = TAU * rng.next();
            let (dlat, dlon) = (
                10.0 * heading.cos() / M_PER_DEG_LAT,
                10.0 * heading.sin() / (M_PER_DEG_LAT * lat.to_radians().cos()),
            );
            let fix = |k: i64| Fix {
                ts: Timestamp::from_unix_micros(t0 + k * 1_000_000),
                pos: LatLon::new(lat + dlat * k as f64, lon + dlon * k as f64).unwrap(),
            };
            (fix(0), (1..=10).map(|k| (fix(k), None)).collect())
        })
        .collect();
    let set = fences.read();
    let mut group = c.benchmark_group("judging");
    group.throughput(Throughput::Elements(10));
    let mut i = 0;
    group.bench_function("a vehicle's 10 fixes, 10k polygons, empty state", |b| {
        b.iter(|| {
            i = (i + 1) % trips.len();
            let (prev, fixes) = &trips[i];
            let fixes = fixes.clone();
            // As ingest judges: from the fences around the vehicle's fixes (a neighbourhood
            // taken afresh, as for a vehicle's first batch or one that moved out of its own).
            let mut neighbourhood = Neighbourhood::default();
            let around = neighbourhood.around(
                &set,
                std::iter::once(prev.pos).chain(fixes.iter().map(|f| f.0.pos)),
            );
            black_box(judge::judge(&around, Some(*prev), &[], &fixes).events.len())
        })
    });
    group.finish();
}

/// The 10k polygons of `judging`, as a node's set.
fn city_set(rng: &mut Rng) -> Geofences {
    let loaded: Vec<Loaded> = (0..10_000u128)
        .map(|i| {
            let centre = rng.in_city();
            let r_m = 50.0 + 350.0 * rng.next();
            let ring = ring(rng, centre, r_m, 50, 0.4);
            let body = json!({"type": "Feature", "properties": {"name": "f"},
                "geometry": {"type": "Polygon", "coordinates": [ring]}});
            Loaded::unsaved(
                Uuid::from_u128(i),
                Fence::from_json(body).expect("a valid fence"),
            )
        })
        .collect();
    let fences = Geofences::default();
    fences.replace_all(loaded);
    fences
}

/// A batch's judging as `scripts/bench-geofence.sh` drives it: 10,000 vehicles at 25–90 km/h,
/// each message ten fixes a millisecond apart (the simulator unthrottled), ~0.7 s between a
/// vehicle's messages, 400 vehicles a batch; states and neighbourhoods carried from batch to
/// batch as the writers carry them. Only `fencing::judge` is timed.
fn batch_judging(c: &mut Criterion) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let fences = city_set(&mut rng);
    let around = Neighbourhoods::default();
    let mut fleet: Vec<(Uuid, [f64; 2], [f64; 2])> = (0..10_000u128)
        .map(|i| {
            let heading = TAU * rng.next();
            let speed = (25.0 + 65.0 * rng.next()) / 3.6;
            let [lon, lat] = rng.in_city();
            let m_per_deg_lon = M_PER_DEG_LAT * lat.to_radians().cos();
            let v = [
                speed * heading.sin() / m_per_deg_lon,
                speed * heading.cos() / M_PER_DEG_LAT,
            ];
            (Uuid::from_u128(1 << 64 | i), [lon, lat], v)
        })
        .collect();
    let mut last: HashMap<Uuid, Fix> = HashMap::new();
    let mut states: HashMap<Uuid, Vec<(Uuid, FenceState)>> = HashMap::new();
    let mut clock = 1_800_000_000_000_000i64;
    let mut next = 0;
    let mut group = c.benchmark_group("batch judging");
    group.throughput(Throughput::Elements(4_000));
    group.bench_function(
        "400 vehicles x 10 fixes, 10k polygons, carried state",
        |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let mut points = FencePoints::default();
                    let mut prior = Prior::default();
                    clock += 28_000; // 10,000 vehicles' messages over ~0.7 s
                    for _ in 0..400 {
                        let (id, pos, v) = &mut fleet[next];
                        next = (next + 1) % 10_000;
                        // Turn back towards the centre rather than leave the city.
                        if (pos[0] - CENTER[0]).abs() > HALF[0]
                            || (pos[1] - CENTER[1]).abs() > HALF[1]
                        {
                            *v = [-v[0], -v[1]];
                        }
                        let fixes: Vec<(Fix, Option<f64>)> = (0..10)
                            .map(|k| {
                                *pos = [pos[0] + v[0] * 0.07, pos[1] + v[1] * 0.07];
                                let pos = LatLon::new(pos[1], pos[0]).unwrap();
                                (
                                    Fix {
                                        ts: Timestamp::from_unix_micros(clock + k * 1_000),
                                        pos,
                                    },
                                    None,
                                )
                            })
                            .collect();
                        prior.moved.insert(*id, last.insert(*id, fixes[9].0));
                        if let Some(held) = states.get(id) {
                            prior.states.insert(*id, held.clone());
                        }
                        points.push(*id, "v", fixes);
                    }
                    let started = Instant::now();
                    let decided = black_box(fencing::judge(&fences, &around, &prior, &points));
                    spent += started.elapsed();
                    states.extend(decided.states);
                }
                spent
            })
        },
    );
    group.finish();
    let (vehicles, boxes, bytes) = around.held();
    println!(
        "neighbourhoods: {vehicles} vehicles, {:.1} fence boxes each, {:.0} bytes each",
        boxes as f64 / vehicles as f64,
        bytes as f64 / vehicles as f64
    );
}

criterion_group!(fences, benches, judging, batch_judging);
criterion_main!(fences);
