//! Pure-CPU cost of the nearest-driver search in the live index: 20,000 available drivers
//! (100k vehicles, 20 % available) spread over a 30 km city, 10 nearest to a random pickup,
//! with and without a radius; the cost of a full rebuild (a reload) and of moving one
//! candidate in place (a position or a per-driver update).
//! `cargo bench --bench nearest`. The HTTP figure is `scripts/bench-api.sh`'s.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meridian::live::nearest::{Candidate, Fix, Index, NearestQuery, Shift};
use uuid::Uuid;

const NOW: i64 = 1_800_000_000_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn candidates(n: u128, rng: &mut Rng) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let fix = Fix {
                lat: 59.91 + (rng.next() - 0.5) * 0.54,
                lon: 10.75 + (rng.next() - 0.5) * 1.08,
                ts_us: NOW - 30_000_000,
                speed_kmh: Some(30.0),
                heading_deg: Some(90.0),
            };
            let shift = Shift {
                shift_id: Uuid::from_u128(2 << 64 | i),
                driver_id: Uuid::from_u128(i),
                vehicle_id: Uuid::from_u128(1 << 64 | i),
                external_id: format!("sim-{i:06}").into(),
                vehicle_type: Some("van".into()),
                starts_us: NOW - 3_600_000_000,
                ends_us: i64::MAX,
            };
            Candidate::new(shift, fix)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let all = candidates(20_000, &mut rng);
    let index = Index::build(all.clone());
    let queries: Vec<NearestQuery> = (0..1024)
        .map(|_| NearestQuery {
            lat: 59.91 + (rng.next() - 0.5) * 0.43,
            lon: 10.75 + (rng.next() - 0.5) * 0.86,
            limit: 10,
            radius_m: None,
            max_age_us: 300_000_000,
            vehicle_type: None,
            now_us: NOW,
        })
        .collect();

    let mut group = c.benchmark_group("nearest");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("10 of 20k drivers", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(index.nearest(&queries[i]).len())
        })
    });
    let mut within: Vec<NearestQuery> = queries.clone();
    for q in &mut within {
        q.radius_m = Some(2_000.0);
        q.vehicle_type = Some("van".into());
    }
    group.bench_function("10 of 20k drivers, radius 2 km, type filter", |b| {
        b.iter(|| {
            i = (i + 1) % within.len();
            black_box(index.nearest(&within[i]).len())
        })
    });
    group.finish();

    let mut rebuild = c.benchmark_group("live index rebuild");
    rebuild.sample_size(20);
    rebuild.throughput(Throughput::Elements(all.len() as u64));
    rebuild.bench_function("20k candidates", |b| {
        b.iter(|| black_box(Index::build(all.clone()).len()))
    });
    rebuild.finish();

    let mut update = c.benchmark_group("live index update");
    update.throughput(Throughput::Elements(1));
    let mut index = Index::build(all.clone());
    let mut placed = all.clone();
    let mut k = 0;
    update.bench_function("move 1 of 20k candidates (remove + insert)", |b| {
        b.iter(|| {
            k = (k + 1) % placed.len();
            let mut fix = placed[k].fix;
            fix.lat += (rng.next() - 0.5) * 0.01;
            fix.lon += (rng.next() - 0.5) * 0.01;
            let moved = Candidate::new(placed[k].shift.clone(), fix);
            assert!(index.remove(&placed[k]));
            index.insert(moved.clone());
            placed[k] = moved;
        })
    });
    update.finish();
}

criterion_group!(nearest, benches);
criterion_main!(nearest);
