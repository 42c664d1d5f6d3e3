//! The export streams: ~2M rows (several hundred MB of CSV) leave the server while its memory
//! stays flat — the test process is the server, so its RSS is the server's —, gzipped or not; the plan reads
//! the `bucket` index in order with no full sort; a client that leaves cancels the query on the
//! server and gives back its connection; a node streams at most 4 exports at once.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, DurationRound, Utc};
use meridian::domain::Role;

use super::{fetch, history_path, key, HEADER};
use crate::helpers::{spawn_app_with, wait_until, TestApp};

const VEHICLES: i64 = 2000;
const HOURS: i64 = 1000;

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// VEHICLES × HOURS hourly rows ending at `end` (exclusive), in one INSERT … SELECT.
async fn fill(app: &TestApp, end: DateTime<Utc>) {
    app.db
        .batch_execute(&format!(
            "INSERT INTO telemetry_hourly (vehicle_id, bucket, points, speed_points, avg_speed_kmh, \
               max_speed_kmh, fuel_points, avg_fuel_pct, min_fuel_pct, entry_m, distance_m, first_ts, \
               last_ts, first_lon, first_lat, last_lon, last_lat, bounds) \
             SELECT md5(v::text)::uuid, b, 360, 350, 40 + v % 20 + h % 7 * 0.125, 90.5, 300, \
                    60 - h % 50 * 0.5, 20.25, 12.5, 1000 + v + h * 0.001, b + interval '1.5 s', \
                    b + interval '3599.25 s', 10.75 + v * 1e-4, 59.91, 10.76 + v * 1e-4, 59.92, \
                    ST_MakeEnvelope(10.75 + v * 1e-4, 59.91, 10.76 + v * 1e-4, 59.92, 4326) \
             FROM generate_series(1, {HOURS}) h, generate_series(1, {VEHICLES}) v, \
                  LATERAL (SELECT '{}'::timestamptz - make_interval(hours => h::int) AS b) t; \
             ANALYZE telemetry_hourly",
            end.to_rfc3339()
        ))
        .await
        .unwrap();
}

/// `(series, value)` of a counter in the node's `/metrics`, summed over label sets containing `labels`.
async fn counter(app: &TestApp, name: &str, labels: &str) -> f64 {
    let (_, text) = app.get("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn active_exports(app: &TestApp) -> i64 {
    app.count(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'active' AND query LIKE 'SELECT vehicle_id, bucket%'",
    )
    .await
}

#[tokio::test]
async fn millions_of_rows_stream_in_flat_memory_and_a_client_that_leaves_cancels_the_query() {
    let app = spawn_app_with(&[("MERIDIAN_ROLLUP", "false")]).await;
    let end = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(2);
    fill(&app, end).await;
    let analyst = key(&app, Role::Analyst).await;
    let path = history_path(end - Duration::hours(HOURS), end, "");

    // The plan: the bucket index in order, each bucket's rows sorted by vehicle (incremental),
    // never a sort of the whole range before the first row.
    let range = meridian::domain::export::ExportRange::new(
        meridian::domain::export::Rollup::Hourly,
        end - Duration::hours(HOURS),
        end,
    )
    .unwrap();
    let sql = meridian::store::export::statement(&range, false);
    let plan: Vec<String> = app
        .db
        .query(&format!("EXPLAIN {sql}"), &[&range.from, &range.to])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("telemetry_hourly_bucket_idx"), "{plan}");
    assert!(
        !plan
            .lines()
            .any(|l| l.contains("Sort  (") && !l.contains("Incremental Sort")),
        "no full sort: {plan}"
    );

    let mut res = fetch(&app, &analyst, &path, false).await;
    assert_eq!(res.status(), 200);
    let first = res.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(format!("{HEADER}\n").as_bytes()));
    let (mut bytes, mut lines) = (first.len() as u64, bytecount(&first));
    let baseline = rss();
    let mut peak = baseline;
    let mut chunks = 0u64;
    while let Some(chunk) = res.chunk().await.unwrap() {
        bytes += chunk.len() as u64;
        lines += bytecount(&chunk);
        chunks += 1;
        if chunks.is_multiple_of(64) {
            peak = peak.max(rss());
        }
    }
    peak = peak.max(rss());
    assert_eq!(
        lines,
        (VEHICLES * HOURS + 1) as u64,
        "every row and the header"
    );
    assert!(bytes > 300 << 20, "a body of several hundred MB: {bytes}");
    let growth = peak.saturating_sub(baseline);
    assert!(
        growth < 64 << 20,
        "RSS grew {} MB while streaming {} MB (baseline {} MB)",
        growth >> 20,
        bytes >> 20,
        baseline >> 20
    );
    eprintln!(
        "streamed {} MB, {lines} lines; RSS baseline {} MB, growth {} MB",
        bytes >> 20,
        baseline >> 20,
        growth >> 20
    );

    // gzip streams too: the compressed body's first megabytes arrive while the server's
    // memory stays where it was (compressing the whole body first would hold ~40 MB of it).
    let before = rss();
    let mut res = app
        .http
        .get(format!("http://127.0.0.1:{}{path}", app.port))
        .bearer_auth(&analyst)
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[reqwest::header::CONTENT_ENCODING], "gzip");
    let mut zipped = 0;
    let mut peak = before;
    while zipped < 2 << 20 {
        zipped += res.chunk().await.unwrap().unwrap().len();
        peak = peak.max(rss());
    }
    drop(res);
    let growth = peak.saturating_sub(before);
    assert!(
        growth < 16 << 20,
        "RSS grew {} MB during a gzip export",
        growth >> 20
    );

    // A node streams at most 4 exports: four clients that read one chunk and stall hold the
    // slots (and the connections), a fifth is told to retry.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut res = fetch(&app, &analyst, &path, false).await;
        assert_eq!(res.status(), 200);
        res.chunk().await.unwrap().unwrap();
        stalled.push(res);
    }
    let res = fetch(&app, &analyst, &path, false).await;
    assert_eq!(res.status(), 503);
    assert!(res.text().await.unwrap().contains("retry"));
    wait_until("the stalled exports' queries are on the server", || async {
        active_exports(&app).await == 4
    })
    .await;

    // The clients leave: every query is cancelled on the server (not run to its end into a
    // connection that discards its rows), and the slots come back.
    let cancelled = counter(
        &app,
        "meridian_history_export_queries_cancelled_total",
        "query_canceled",
    )
    .await;
    drop(stalled);
    wait_until("the abandoned queries are cancelled", || async {
        counter(
            &app,
            "meridian_history_export_queries_cancelled_total",
            "query_canceled",
        )
        .await
            >= cancelled + 4.0
    })
    .await;
    assert_eq!(active_exports(&app).await, 0);
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    let res = fetch(
        &app,
        &analyst,
        &history_path(end - Duration::hours(1), end, "&format=ndjson"),
        false,
    )
    .await;
    assert_eq!(res.status(), 200, "slots and connections are back");
    let text = res.text().await.unwrap();
    assert_eq!(text.lines().count(), VEHICLES as usize);
}

fn bytecount(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}
