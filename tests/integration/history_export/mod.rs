//! The fleet history export (`GET /v1/history`): rows built by the real rollup job, read back
//! through CSV (the `csv` crate), NDJSON (serde_json) and gzip, equal to the tables; filters;
//! refusals and roles (`refusals.rs`); memory that stays flat over millions of rows, a client
//! that leaves cancelling its query, and the plan (`streaming.rs`).

mod refusals;
mod streaming;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use meridian::config::RollupSettings;
use meridian::domain::Role;
use meridian::store::api_keys;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, TestApp};
use crate::track::{drive, insert, rfc3339};

/// One exported row, as parsed from either format.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub vehicle_id: Uuid,
    pub bucket: DateTime<Utc>,
    pub points: i32,
    pub avg_speed_kmh: Option<f64>,
    pub max_speed_kmh: Option<f64>,
    pub avg_fuel_pct: Option<f64>,
    pub min_fuel_pct: Option<f64>,
    pub distance_m: f64,
    pub first_ts: DateTime<Utc>,
    pub last_ts: DateTime<Utc>,
    pub first_lon: f64,
    pub first_lat: f64,
    pub last_lon: f64,
    pub last_lat: f64,
}

pub const HEADER: &str = "vehicle_id,bucket,points,avg_speed_kmh,max_speed_kmh,avg_fuel_pct,min_fuel_pct,distance_m,first_ts,last_ts,first_lon,first_lat,last_lon,last_lat";

/// The table's rows in `[from, to)`, in export order, straight from SQL.
pub async fn table(app: &TestApp, table: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Row> {
    app.db
        .query(
            &format!(
                "SELECT {} FROM {table} WHERE bucket >= $1 AND bucket < $2 ORDER BY bucket, vehicle_id",
                HEADER.replace(',', ", ")
            ),
            &[&from, &to],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| Row {
            vehicle_id: r.get(0),
            bucket: r.get(1),
            points: r.get(2),
            avg_speed_kmh: r.get(3),
            max_speed_kmh: r.get(4),
            avg_fuel_pct: r.get(5),
            min_fuel_pct: r.get(6),
            distance_m: r.get(7),
            first_ts: r.get(8),
            last_ts: r.get(9),
            first_lon: r.get(10),
            first_lat: r.get(11),
            last_lon: r.get(12),
            last_lat: r.get(13),
        })
        .collect()
}

pub fn parse_csv(body: &[u8]) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(body);
    assert_eq!(
        reader
            .headers()
            .unwrap()
            .iter()
            .collect::<Vec<_>>()
            .join(","),
        HEADER
    );
    let opt = |s: &str| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), 14, "{r:?}");
            Row {
                vehicle_id: r[0].parse().unwrap(),
                bucket: r[1].parse().unwrap(),
                points: r[2].parse().unwrap(),
                avg_speed_kmh: opt(&r[3]),
                max_speed_kmh: opt(&r[4]),
                avg_fuel_pct: opt(&r[5]),
                min_fuel_pct: opt(&r[6]),
                distance_m: r[7].parse().unwrap(),
                first_ts: r[8].parse().unwrap(),
                last_ts: r[9].parse().unwrap(),
                first_lon: r[10].parse().unwrap(),
                first_lat: r[11].parse().unwrap(),
                last_lon: r[12].parse().unwrap(),
                last_lat: r[13].parse().unwrap(),
            }
        })
        .collect()
}

pub fn parse_ndjson(body: &[u8]) -> Vec<Row> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "every line ends");
    text.lines()
        .map(|line| {
            // Values kept as their JSON text: serde_json's own float parsing may be one ulp
            // off (without `float_roundtrip`), and the test wants the exact value sent.
            let v: BTreeMap<String, Box<RawValue>> = serde_json::from_str(line).unwrap();
            assert_eq!(v.len(), 14, "{line}");
            // serde_json's maps sort their keys: the order is checked on the text.
            let at: Vec<usize> = HEADER
                .split(',')
                .map(|k| line.find(&format!("\"{k}\":")).unwrap())
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "names in order: {line}");
            let raw = |k: &str| v[k].get();
            let text = |k: &str| serde_json::from_str::<String>(raw(k)).unwrap();
            let opt = |k: &str| (raw(k) != "null").then(|| raw(k).parse::<f64>().unwrap());
            let num = |k: &str| raw(k).parse::<f64>().unwrap();
            assert!(text("bucket").ends_with('Z'), "UTC: {line}");
            Row {
                vehicle_id: text("vehicle_id").parse().unwrap(),
                bucket: text("bucket").parse().unwrap(),
                points: raw("points").parse().unwrap(),
                avg_speed_kmh: opt("avg_speed_kmh"),
                max_speed_kmh: opt("max_speed_kmh"),
                avg_fuel_pct: opt("avg_fuel_pct"),
                min_fuel_pct: opt("min_fuel_pct"),
                distance_m: num("distance_m"),
                first_ts: text("first_ts").parse().unwrap(),
                last_ts: text("last_ts").parse().unwrap(),
                first_lon: num("first_lon"),
                first_lat: num("first_lat"),
                last_lon: num("last_lon"),
                last_lat: num("last_lat"),
            }
        })
        .collect()
}

/// A key with `role`.
pub async fn key(app: &TestApp, role: Role) -> String {
    api_keys::create(&app.db, &format!("{role} export"), role)
        .await
        .unwrap()
        .1
}

/// `GET path` with a key (and optionally `Accept-Encoding: gzip`), the whole body read.
pub async fn fetch(app: &TestApp, key: &str, path: &str, gzip: bool) -> reqwest::Response {
    let mut req = app
        .http
        .get(format!("http://127.0.0.1:{}{path}", app.port))
        .bearer_auth(key);
    if gzip {
        req = req.header(ACCEPT_ENCODING, "gzip");
    }
    req.send().await.unwrap()
}

pub fn history_path(from: DateTime<Utc>, to: DateTime<Utc>, extra: &str) -> String {
    format!(
        "/v1/history?from={}&to={}{extra}",
        rfc3339(from),
        rfc3339(to)
    )
}

fn settings() -> RollupSettings {
    RollupSettings {
        enabled: true,
        interval: std::time::Duration::from_millis(10),
        fold_marks: 1000,
        track_late: true,
    }
}

#[tokio::test]
async fn csv_ndjson_and_gzip_exports_equal_the_rollup_tables() {
    // The node's own job off: the test closes hours itself, with the job's code.
    let app = spawn_app_with(&[("MERIDIAN_ROLLUP", "false")]).await;
    let ids = app.register(&["exp-1", "exp-2", "exp-3"]).await;
    let end = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(3);
    let start = end.duration_trunc(Duration::days(1)).unwrap() - Duration::days(1);
    for (i, id) in ids.iter().enumerate() {
        // Different cadences, so vehicles differ in points and averages.
        let first = start + Duration::milliseconds(250 + i as i64);
        insert(&app, *id, &drive(first, end, 40 + 17 * i as i64)).await;
    }
    let mut client = meridian::store::connect(&app.db_url).await.unwrap();
    // The second day (the one `end` falls in) has closed too in the first hours after midnight.
    let close_after = Duration::from_std(meridian::store::rollups::CLOSE_AFTER).unwrap();
    let closed_days = if Utc::now() >= start + Duration::days(2) + close_after {
        2
    } else {
        1
    };
    meridian::rollup::until_idle(&mut client, &settings())
        .await
        .unwrap();
    let analyst = key(&app, Role::Analyst).await;

    let hourly = table(&app, "telemetry_hourly", start, end).await;
    assert!(hourly.len() >= 3 * 24, "{} hourly rows", hourly.len());
    assert!(
        hourly
            .iter()
            .any(|r| r.first_ts.timestamp_subsec_millis() != 0),
        "the data exercises fractional instants"
    );
    let path = history_path(start, end, "&resolution=1h&format=csv");
    let res = fetch(&app, &analyst, &path, false).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CONTENT_TYPE], "text/csv");
    let disposition = res.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("history-1h-") && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let csv_body = res.bytes().await.unwrap();
    assert_eq!(parse_csv(&csv_body), hourly, "CSV equals telemetry_hourly");

    // Defaults: 1h, CSV.
    let res = fetch(&app, &analyst, &history_path(start, end, ""), false).await;
    assert_eq!(res.bytes().await.unwrap(), csv_body);

    let res = fetch(
        &app,
        &analyst,
        &history_path(start, end, "&format=ndjson"),
        false,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/x-ndjson");
    assert_eq!(
        parse_ndjson(&res.bytes().await.unwrap()),
        hourly,
        "NDJSON equals telemetry_hourly"
    );

    // gzip when asked: decoded, the same bytes.
    let res = fetch(&app, &analyst, &path, true).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CONTENT_ENCODING], "gzip");
    let zipped = res.bytes().await.unwrap();
    assert!(
        zipped.len() * 3 < csv_body.len(),
        "compressed: {} of {}",
        zipped.len(),
        csv_body.len()
    );
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, csv_body);

    // Daily rows: the closed days.
    let daily = table(&app, "telemetry_daily", start, end).await;
    assert_eq!(
        daily.len(),
        3 * closed_days,
        "closed days per vehicle: {daily:?}"
    );
    let res = fetch(
        &app,
        &analyst,
        &history_path(start, end, "&resolution=1d&format=ndjson"),
        false,
    )
    .await;
    assert_eq!(parse_ndjson(&res.bytes().await.unwrap()), daily);

    // A range inside an hour exports that whole hour; vehicle_ids keeps only those vehicles.
    let hour = start + Duration::hours(5);
    let list = format!("{},{}", ids[2], ids[0]);
    let path = history_path(
        hour + Duration::minutes(10),
        hour + Duration::minutes(20),
        &format!("&vehicle_ids={list}"),
    );
    let res = fetch(&app, &analyst, &path, false).await;
    assert_eq!(res.status(), 200);
    let want: Vec<Row> = hourly
        .iter()
        .filter(|r| r.bucket == hour && r.vehicle_id != ids[1])
        .cloned()
        .collect();
    assert_eq!(want.len(), 2);
    assert_eq!(parse_csv(&res.bytes().await.unwrap()), want);

    // Nothing in range: the header alone (CSV), nothing (NDJSON).
    let (a, b) = (end + Duration::days(30), end + Duration::days(31));
    let res = fetch(&app, &analyst, &history_path(a, b, ""), false).await;
    assert_eq!(res.text().await.unwrap(), format!("{HEADER}\n"));
    let res = fetch(&app, &analyst, &history_path(a, b, "&format=ndjson"), false).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "");
}
