//! Every class of bad input becomes its own dead letter with a reason; good points beside it are kept.

use std::collections::BTreeMap;

use meridian::domain::Reason;

use crate::helpers::{now_ms, point, spawn_app};

#[tokio::test]
async fn every_dead_letter_class_is_recorded_and_good_points_beside_it_are_kept() {
    let app = spawn_app().await;
    app.register(&["good"]).await;
    let t = now_ms() - 1000;
    let day = 86_400_000i64;
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "invalid_encoding",
            "good".into(),
            b"{\"ts\":\xff\xfe}".to_vec(),
        ),
        ("invalid_json", "good".into(), b"{\"ts\": 1,".to_vec()),
        ("not_an_object", "good".into(), b"\"hello\"".to_vec()),
        (
            "missing_field",
            "good".into(),
            format!(r#"{{"ts":{t},"lon":2}}"#).into_bytes(),
        ),
        (
            "wrong_type",
            "good".into(),
            format!(r#"{{"ts":{t},"lat":"north","lon":2}}"#).into_bytes(),
        ),
        (
            "lat_out_of_range",
            "good".into(),
            format!(r#"{{"ts":{t},"lat":95.5,"lon":2}}"#).into_bytes(),
        ),
        (
            "lon_out_of_range",
            "good".into(),
            format!(r#"{{"ts":{t},"lat":5,"lon":-200}}"#).into_bytes(),
        ),
        (
            "non_finite",
            "good".into(),
            format!(r#"{{"ts":{t},"lat":5e400,"lon":2}}"#).into_bytes(),
        ),
        (
            "invalid_timestamp",
            "good".into(),
            br#"{"ts":"last tuesday","lat":5,"lon":2}"#.to_vec(),
        ),
        (
            "timestamp_too_old",
            "good".into(),
            format!(r#"{{"ts":{},"lat":5,"lon":2}}"#, t - 31 * day).into_bytes(),
        ),
        (
            "timestamp_in_future",
            "good".into(),
            format!(r#"{{"ts":{},"lat":5,"lon":2}}"#, t + day).into_bytes(),
        ),
        (
            "unknown_vehicle",
            "ghost-7".into(),
            point(t, 5.0, 2.0).into_bytes(),
        ),
        (
            "payload_too_large",
            "good".into(),
            format!(
                r#"{{"ts":{t},"lat":5,"lon":2,"pad":"{}"}}"#,
                "x".repeat(300_000)
            )
            .into_bytes(),
        ),
        (
            "array_too_long",
            "good".into(),
            format!("[{}]", vec![point(t, 5.0, 2.0); 1001].join(",")).into_bytes(),
        ),
        ("empty_array", "good".into(), b"[]".to_vec()),
        (
            "invalid_topic",
            "x".repeat(200),
            point(t, 5.0, 2.0).into_bytes(),
        ),
        (
            "unsupported_value",
            "good".into(),
            format!(r#"{{"ts":{t},"lat":5,"lon":2,"engine":{{"dtc":"\u0000"}}}}"#).into_bytes(),
        ),
    ];
    for (_, id, payload) in &cases {
        app.publisher.telemetry(id, payload.clone()).await;
    }
    app.publisher
        .publish(
            "owntracks/good/phone",
            r#"{"_type":"encrypted","data":"AAAA"}"#,
        )
        .await;
    // A mixed array: three good points, two bad ones.
    let mixed = format!(
        r#"[{},{{"ts":{t},"lat":91,"lon":0}},{},{{"lat":1}},{}]"#,
        point(t + 1, 1.0, 1.0),
        point(t + 2, 2.0, 2.0),
        point(t + 3, 3.0, 3.0)
    );
    app.publisher.telemetry("good", mixed).await;
    app.wait_settled(cases.len() as u64 + 2).await;

    let rows = app
        .db
        .query(
            "SELECT reason, count(*) FROM dead_letters GROUP BY reason",
            &[],
        )
        .await
        .unwrap();
    let got: BTreeMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut expected: BTreeMap<String, i64> =
        cases.iter().map(|(r, _, _)| (r.to_string(), 1)).collect();
    expected.insert("owntracks_unsupported".into(), 1);
    *expected.get_mut("lat_out_of_range").unwrap() += 1;
    *expected.get_mut("missing_field").unwrap() += 1;
    assert_eq!(got, expected);
    // "Every class": the cases above cover the product's whole reason vocabulary, except a
    // refusal by the database itself (a value the decoder accepts and PostgreSQL does not) and
    // retired codes.
    let uncovered: Vec<&str> = Reason::ALL
        .iter()
        .filter(|r| !r.is_retired() && **r != Reason::RejectedByDatabase)
        .map(|r| r.as_str())
        .filter(|r| !got.contains_key(*r))
        .collect();
    assert!(
        uncovered.is_empty(),
        "reason codes no case here produces: {uncovered:?}"
    );

    assert_eq!(
        app.count("SELECT count(*) FROM vehicle_telemetry").await,
        3,
        "good points beside bad ones are kept"
    );
    // Per-point dead letters carry just the offending element, with topic and a readable detail.
    let row = app
        .db
        .query_one("SELECT topic, convert_from(payload, 'UTF8'), detail FROM dead_letters WHERE reason = 'missing_field' AND payload = '{\"lat\":1}'::bytea", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, String>(0),
        format!("{}fleet/good/telemetry", app.prefix)
    );
    assert!(
        row.get::<_, String>(2).contains("\"ts\""),
        "detail names the missing field"
    );
}

/// Trackers send `-1` for an unknown course or speed: the position is kept, the measurement
/// stored as NULL and counted per field, and no dead letter is written.
#[tokio::test]
async fn an_invalid_optional_measurement_keeps_its_position() {
    let app = spawn_app().await;
    app.register(&["truck-1", "alice/phone"]).await;
    let t = now_ms() - 1000;
    let metric =
        |field: &str| format!(r#"meridian_ingest_fields_dropped_total{{field="{field}"}}"#);
    let before = app.get("/metrics").await.1;
    app.publisher
        .telemetry(
            "truck-1",
            format!(r#"{{"ts":{t},"lat":5,"lon":2,"speed_kmh":31,"heading_deg":-1}}"#),
        )
        .await;
    app.publisher
        .publish(
            "owntracks/alice/phone",
            format!(
                r#"{{"_type":"location","lat":69.65,"lon":18.96,"tst":{},"vel":-1,"cog":-1,"acc":8}}"#,
                t / 1000
            ),
        )
        .await;
    app.wait_settled(2).await;

    let rows = app
        .db
        .query(
            "SELECT v.external_id, t.speed_kmh, t.heading_deg, t.accuracy_m \
             FROM vehicle_telemetry t JOIN vehicles v ON v.id = t.vehicle_id ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    type Row = (String, Option<f64>, Option<f64>, Option<f64>);
    let got: Vec<Row> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        [
            ("alice/phone".to_owned(), None, None, Some(8.0)),
            ("truck-1".to_owned(), Some(31.0), None, None),
        ]
    );
    assert_eq!(app.count("SELECT count(*) FROM dead_letters").await, 0);
    let after = app.get("/metrics").await.1;
    for (field, n) in [("heading_deg", 1.0), ("vel", 1.0), ("cog", 1.0)] {
        let (b, a) = (
            sample(&before, &metric(field)),
            sample(&after, &metric(field)),
        );
        assert!(a >= b + n, "{field}: {b} -> {a}");
    }
}

/// A counter's value in a Prometheus text exposition (0 when absent).
fn sample(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}
