//! Pure-CPU cost of the ingest hot path, per point: decode + validate (canonical object,
//! canonical array of 10, OwnTracks) and binary COPY encoding. Target: ≥ 500k points/s per core.
//! `cargo bench --bench decode` prints throughput in elements (points) per second.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use meridian::domain::Timestamp;
use meridian::ingest::decode::{Decoder, Window};
use meridian::store::copy::CopyBuffer;
use uuid::Uuid;

fn point(ts: i64, i: usize) -> String {
    format!(
        r#"{{"ts":{ts},"lat":{},"lon":{},"speed_kmh":42.5,"heading_deg":180,"fuel_pct":55.2,"accuracy_m":5,"engine":{{"rpm":2100,"coolant_c":90}}}}"#,
        40.7 + i as f64 * 1e-4,
        -74.0 - i as f64 * 1e-4
    )
}

fn benches(c: &mut Criterion) {
    let now = Timestamp::now();
    let window = Window::around(now, 30, 300);
    let ts = now.unix_micros() / 1000 - 1000;
    let decoder = Decoder {
        topic_prefix: String::new(),
        max_payload_bytes: 256 * 1024,
    };
    let topic = "fleet/sim-000042/telemetry";
    let single = Bytes::from(point(ts, 1));
    let array = Bytes::from(format!(
        "[{}]",
        (0..10)
            .map(|i| point(ts + i as i64, i))
            .collect::<Vec<_>>()
            .join(",")
    ));
    let rfc3339 = Bytes::from(single_rfc3339(ts));
    let owntracks = Bytes::from(format!(
        r#"{{"_type":"location","lat":69.6496,"lon":18.956,"tst":{},"vel":12,"cog":270,"acc":8,"batt":77,"tid":"ph"}}"#,
        ts / 1000
    ));

    let mut g = c.benchmark_group("decode_validate");
    g.throughput(Throughput::Elements(1));
    g.bench_function("canonical_object_epoch_ms", |b| {
        b.iter(|| black_box(decoder.decode(topic, black_box(&single), window)))
    });
    g.bench_function("canonical_object_rfc3339", |b| {
        b.iter(|| black_box(decoder.decode(topic, black_box(&rfc3339), window)))
    });
    g.bench_function("owntracks_location", |b| {
        b.iter(|| black_box(decoder.decode("owntracks/alice/phone", black_box(&owntracks), window)))
    });
    g.throughput(Throughput::Elements(10));
    g.bench_function("canonical_array_of_10", |b| {
        b.iter(|| black_box(decoder.decode(topic, black_box(&array), window)))
    });
    g.finish();

    let points: Vec<_> = (0..1000)
        .map(|i| {
            decoder
                .decode(topic, &Bytes::from(point(ts + i, i as usize)), window)
                .points
                .remove(0)
        })
        .collect();
    let id = Uuid::new_v4();
    let mut g = c.benchmark_group("copy_encode");
    g.throughput(Throughput::Elements(points.len() as u64));
    g.bench_function("rows_1000", |b| {
        b.iter(|| {
            let mut copy = CopyBuffer::with_capacity(points.len());
            for p in &points {
                copy.push(&id, p, now);
            }
            black_box(copy.finish())
        })
    });
    g.finish();
}

fn single_rfc3339(ts_ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(ts_ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ");
    point(0, 1).replacen("\"ts\":0", &format!("\"ts\":\"{at}\""), 1)
}

criterion_group!(decode, benches);
criterion_main!(decode);
