//! Decoder unit tests: every reason a payload can be refused, and the good points beside bad ones.

use super::*;

const NOW_MS: i64 = 1_763_719_200_000; // 2025-11-21T10:00:00Z

fn window() -> Window {
    Window::around(Timestamp::from_epoch_millis(NOW_MS).unwrap(), 30, 300)
}

fn decoder() -> Decoder {
    Decoder {
        topic_prefix: String::new(),
        max_payload_bytes: 4096,
    }
}

fn decode(topic: &str, payload: &str) -> Decoded {
    decoder().decode(topic, &Bytes::copy_from_slice(payload.as_bytes()), window())
}

fn fleet(payload: &str) -> Decoded {
    decode("fleet/truck-17/telemetry", payload)
}

fn only_reason(d: &Decoded) -> Reason {
    assert!(d.points.is_empty(), "no point expected, got {:?}", d.points);
    assert_eq!(d.rejects.len(), 1, "{:?}", d.rejects);
    d.rejects[0].error.reason
}

#[test]
fn full_canonical_point() {
    let d = fleet(
        r#"{"ts":"2025-11-21T10:00:00.123Z","lat":40.7,"lon":-74.0,"speed_kmh":42.5,"heading_deg":180,"fuel_pct":55.2,"accuracy_m":5,"engine":{"rpm":2100,"coolant_c":90},"extra":true}"#,
    );
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    let p = &d.points[0];
    assert_eq!(d.external_id.as_deref(), Some("truck-17"));
    assert_eq!(p.ts, Timestamp::from_epoch_millis(NOW_MS + 123).unwrap());
    assert_eq!((p.position.lat(), p.position.lon()), (40.7, -74.0));
    assert_eq!(
        (p.speed_kmh, p.heading_deg, p.fuel_pct, p.accuracy_m),
        (Some(42.5), Some(180.0), Some(55.2), Some(5.0))
    );
    assert_eq!(
        p.engine.as_deref(),
        Some(&br#"{"rpm":2100,"coolant_c":90}"#[..])
    );
}

#[test]
fn epoch_millis_and_minimal_point() {
    let d = fleet(&format!(r#"{{"ts":{NOW_MS},"lat":1,"lon":2}}"#));
    assert_eq!(d.points.len(), 1);
    assert_eq!(d.points[0].ts.unix_micros(), NOW_MS * 1000);
    assert_eq!(d.points[0].speed_kmh, None);
}

#[test]
fn array_keeps_good_points_and_rejects_each_bad_one() {
    let d = fleet(&format!(
        r#"[{{"ts":{NOW_MS},"lat":1,"lon":2}}, {{"ts":{NOW_MS},"lat":91,"lon":2}}, {{"ts":{},"lat":1,"lon":2}}, {{"lat":1,"lon":2}}]"#,
        NOW_MS + 1
    ));
    assert_eq!(d.points.len(), 2);
    let reasons: Vec<_> = d.rejects.iter().map(|r| r.error.reason).collect();
    assert_eq!(reasons, [Reason::LatOutOfRange, Reason::MissingField]);
    assert_eq!(&d.rejects[1].payload[..], br#"{"lat":1,"lon":2}"#);
}

#[test]
fn each_reason_for_a_single_object() {
    let ok_ts = NOW_MS;
    let cases = [
        ("{\"ts\":", Reason::InvalidJson),
        ("42", Reason::NotAnObject),
        (r#"{"lat":1,"lon":2}"#, Reason::MissingField),
        (
            &format!(r#"{{"ts":{ok_ts},"lat":"x","lon":2}}"#),
            Reason::WrongType,
        ),
        (
            &format!(r#"{{"ts":{ok_ts},"lat":1,"lon":2,"engine":[1]}}"#),
            Reason::WrongType,
        ),
        (
            &format!(r#"{{"ts":{ok_ts},"lat":-90.5,"lon":2}}"#),
            Reason::LatOutOfRange,
        ),
        (
            &format!(r#"{{"ts":{ok_ts},"lat":1,"lon":181}}"#),
            Reason::LonOutOfRange,
        ),
        (
            &format!(r#"{{"ts":{ok_ts},"lat":1e999,"lon":2}}"#),
            Reason::NonFinite,
        ),
        (
            r#"{"ts":"yesterday","lat":1,"lon":2}"#,
            Reason::InvalidTimestamp,
        ),
        (r#"{"ts":-5,"lat":1,"lon":2}"#, Reason::InvalidTimestamp),
        (
            &format!(r#"{{"ts":{},"lat":1,"lon":2}}"#, ok_ts - 31 * 86_400_000),
            Reason::TimestampTooOld,
        ),
        (
            &format!(r#"{{"ts":{},"lat":1,"lon":2}}"#, ok_ts + 301_000),
            Reason::TimestampInFuture,
        ),
        (
            &format!(r#"{{"ts":{ok_ts},"lat":1,"lon":2,"engine":{{"dtc":"\u0000"}}}}"#),
            Reason::UnsupportedValue,
        ),
        ("[]", Reason::EmptyArray),
        ("[1", Reason::InvalidJson),
        ("[1]", Reason::NotAnObject),
    ];
    for (payload, reason) in cases {
        assert_eq!(only_reason(&fleet(payload)), reason, "{payload}");
    }
}

#[test]
fn late_point_inside_retention_is_accepted() {
    let d = fleet(&format!(
        r#"{{"ts":{},"lat":1,"lon":2}}"#,
        NOW_MS - 29 * 86_400_000
    ));
    assert_eq!(d.points.len(), 1);
}

#[test]
fn size_encoding_length_and_topic_limits() {
    let big = format!(
        r#"{{"ts":{NOW_MS},"lat":1,"lon":2,"pad":"{}"}}"#,
        "x".repeat(5000)
    );
    assert_eq!(only_reason(&fleet(&big)), Reason::PayloadTooLarge);
    let bytes = Bytes::from_static(b"{\"ts\":\xff}");
    let d = decoder().decode("fleet/a/telemetry", &bytes, window());
    assert_eq!(only_reason(&d), Reason::InvalidEncoding);
    let long = format!("[{}]", vec!["{}"; MAX_POINTS_PER_MESSAGE + 1].join(","));
    let d = Decoder {
        max_payload_bytes: 1 << 20,
        ..decoder()
    }
    .decode("fleet/a/telemetry", &Bytes::from(long), window());
    assert_eq!(only_reason(&d), Reason::ArrayTooLong);
    assert_eq!(
        only_reason(&decode("fleet/a/b/telemetry", "{}")),
        Reason::InvalidTopic
    );
}

#[test]
fn owntracks_location_and_other_types() {
    let tst = NOW_MS / 1000;
    let d = decode(
        "owntracks/alice/phone",
        &format!(
            r#"{{"_type":"location","lat":69.65,"lon":18.96,"tst":{tst},"vel":30,"cog":90,"acc":12,"batt":80}}"#
        ),
    );
    assert_eq!(d.external_id.as_deref(), Some("alice/phone"));
    let p = &d.points[0];
    assert_eq!(
        (p.ts.unix_micros(), p.speed_kmh, p.heading_deg, p.accuracy_m),
        (tst * 1_000_000, Some(30.0), Some(90.0), Some(12.0))
    );

    for other in [
        r#"{"_type":"transition","event":"enter"}"#,
        r#"{"_type":"lwt","tst":1}"#,
        "",
    ] {
        let d = decode("owntracks/alice/phone", other);
        assert!(
            d.ignored && d.points.is_empty() && d.rejects.is_empty(),
            "{other}"
        );
    }
    let cases = [
        (
            r#"{"lat":1,"lon":2,"tst":1}"#.to_string(),
            Reason::OwnTracksUnsupported,
        ),
        (
            r#"{"_type":"encrypted","data":"abc"}"#.to_string(),
            Reason::OwnTracksUnsupported,
        ),
        (
            format!(r#"{{"_type":"location","lat":1,"lon":2,"tst":"{tst}"}}"#),
            Reason::WrongType,
        ),
        (
            r#"{"_type":"location","lat":1,"lon":2}"#.to_string(),
            Reason::MissingField,
        ),
    ];
    for (payload, reason) in cases {
        assert_eq!(
            only_reason(&decode("owntracks/alice/phone", &payload)),
            reason,
            "{payload}"
        );
    }
}

#[test]
fn invalid_optional_measurements_are_dropped_and_the_position_kept() {
    let d = fleet(&format!(
        r#"[{{"ts":{NOW_MS},"lat":1,"lon":2,"speed_kmh":-1,"heading_deg":-1,"fuel_pct":120,"accuracy_m":7}},
            {{"ts":{},"lat":3,"lon":4,"heading_deg":400,"speed_kmh":12}}]"#,
        NOW_MS + 1000
    ));
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    let kept: Vec<_> = d
        .points
        .iter()
        .map(|p| {
            (
                p.position.lat(),
                p.speed_kmh,
                p.heading_deg,
                p.fuel_pct,
                p.accuracy_m,
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            (1.0, None, None, None, Some(7.0)),
            (3.0, Some(12.0), None, None, None)
        ]
    );
    assert_eq!(
        d.dropped,
        ["speed_kmh", "heading_deg", "fuel_pct", "heading_deg"]
    );
}

#[test]
fn owntracks_unknown_course_and_speed_keep_the_position() {
    let tst = NOW_MS / 1000;
    let d = decode(
        "owntracks/alice/phone",
        &format!(
            r#"{{"_type":"location","lat":69.65,"lon":18.96,"tst":{tst},"vel":-1,"cog":-1,"acc":-1}}"#
        ),
    );
    assert!(d.rejects.is_empty(), "{:?}", d.rejects);
    let p = &d.points[0];
    assert_eq!(
        (p.position.lat(), p.speed_kmh, p.heading_deg, p.accuracy_m),
        (69.65, None, None, None)
    );
    assert_eq!(d.dropped, ["vel", "cog", "acc"]);
}
