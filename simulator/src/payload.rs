//! Telemetry payloads in the wire contract's JSON, and the malformed variants used for fault injection.
//!
//! Encoded by hand into a reused buffer: the simulator must publish >100k messages/s on one
//! core, and building a `serde_json::Value` (or formatting floats through `fmt`) per point costs
//! more than the whole rest of the message path.

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, SecondsFormat};

pub const DAY_MS: i64 = 86_400_000;
/// The contract allows arrays of up to 1000 points; one more must be rejected.
pub const TOO_MANY_POINTS: usize = 1001;

/// One telemetry sample, already in wire units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub ts_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: f64,
    pub heading_deg: f64,
    pub fuel_pct: f64,
    pub accuracy_m: f64,
    pub rpm: f64,
    pub coolant_c: f64,
}

/// The contract accepts both; the simulator sends some of each so both decoder paths see traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsFormat {
    EpochMillis,
    Rfc3339,
}

/// Malformed messages, each of which the server must turn into a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A valid object cut in half.
    InvalidJson,
    MissingLat,
    /// `"lat": 123.4`.
    LatOutOfRange,
    /// `"lat": "abc"`.
    WrongType,
    /// One day ahead of wall time; the server allows a few minutes of clock skew.
    FutureTimestamp,
    /// A well-formed point on the topic of a vehicle that was never registered (`ghost-<n>`).
    UnknownVehicle,
    /// An array of 1001 otherwise valid points.
    TooManyPoints,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::InvalidJson,
        FaultKind::MissingLat,
        FaultKind::LatOutOfRange,
        FaultKind::WrongType,
        FaultKind::FutureTimestamp,
        FaultKind::UnknownVehicle,
        FaultKind::TooManyPoints,
    ];

    /// Stable snake_case name, used as the key in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::InvalidJson => "invalid_json",
            FaultKind::MissingLat => "missing_lat",
            FaultKind::LatOutOfRange => "lat_out_of_range",
            FaultKind::WrongType => "wrong_type",
            FaultKind::FutureTimestamp => "future_timestamp",
            FaultKind::UnknownVehicle => "unknown_vehicle",
            FaultKind::TooManyPoints => "too_many_points",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Points the malformed message carries (as published, not as storable).
    pub fn points(self) -> u64 {
        match self {
            FaultKind::TooManyPoints => TOO_MANY_POINTS as u64,
            _ => 1,
        }
    }
}

/// How the `lat` field of a point is written; faults tamper with it.
#[derive(Clone, Copy)]
enum Lat {
    Value,
    Missing,
    Raw(&'static str),
}

/// A single point is sent as an object, several as an array.
pub fn write_message(buf: &mut BytesMut, points: &[Point], ts: TsFormat) {
    match points {
        [one] => write_point(buf, one, ts, Lat::Value),
        many => {
            buf.put_u8(b'[');
            for (i, p) in many.iter().enumerate() {
                if i > 0 {
                    buf.put_u8(b',');
                }
                write_point(buf, p, ts, Lat::Value);
            }
            buf.put_u8(b']');
        }
    }
}

/// The malformed payload for `kind`, built around the otherwise valid `point`.
/// `UnknownVehicle` is only malformed in its topic, so its payload is a valid point.
pub fn write_fault(buf: &mut BytesMut, kind: FaultKind, point: &Point) {
    let ts = TsFormat::EpochMillis;
    match kind {
        FaultKind::InvalidJson => {
            let start = buf.len();
            write_point(buf, point, ts, Lat::Value);
            // Any proper prefix of an object is invalid JSON: the closing brace is missing.
            buf.truncate(start + (buf.len() - start) / 2);
        }
        FaultKind::MissingLat => write_point(buf, point, ts, Lat::Missing),
        FaultKind::LatOutOfRange => write_point(
            buf,
            &Point {
                lat: 123.4,
                ..*point
            },
            ts,
            Lat::Value,
        ),
        FaultKind::WrongType => write_point(buf, point, ts, Lat::Raw("\"abc\"")),
        FaultKind::FutureTimestamp => write_point(
            buf,
            &Point {
                ts_ms: point.ts_ms + DAY_MS,
                ..*point
            },
            ts,
            Lat::Value,
        ),
        FaultKind::UnknownVehicle => write_point(buf, point, ts, Lat::Value),
        FaultKind::TooManyPoints => {
            let points: Vec<Point> = (0..TOO_MANY_POINTS as i64)
                .map(|i| Point {
                    ts_ms: point.ts_ms + i,
                    ..*point
                })
                .collect();
            write_message(buf, &points, ts);
        }
    }
}

fn write_point(buf: &mut BytesMut, p: &Point, ts: TsFormat, lat: Lat) {
    buf.put_slice(b"{\"ts\":");
    match ts {
        TsFormat::EpochMillis => write_int(buf, p.ts_ms),
        TsFormat::Rfc3339 => {
            let when = DateTime::from_timestamp_millis(p.ts_ms).unwrap_or_default();
            buf.put_u8(b'"');
            buf.put_slice(when.to_rfc3339_opts(SecondsFormat::Millis, true).as_bytes());
            buf.put_u8(b'"');
        }
    }
    match lat {
        Lat::Value => {
            buf.put_slice(b",\"lat\":");
            write_fixed(buf, p.lat, 6);
        }
        Lat::Missing => {}
        Lat::Raw(raw) => {
            buf.put_slice(b",\"lat\":");
            buf.put_slice(raw.as_bytes());
        }
    }
    // 6 decimals is ~0.1 m: finer than any GPS fix, coarser would visibly snap tracks.
    buf.put_slice(b",\"lon\":");
    write_fixed(buf, p.lon, 6);
    buf.put_slice(b",\"speed_kmh\":");
    write_fixed(buf, p.speed_kmh, 1);
    buf.put_slice(b",\"heading_deg\":");
    write_fixed(buf, p.heading_deg, 1);
    buf.put_slice(b",\"fuel_pct\":");
    write_fixed(buf, p.fuel_pct, 1);
    buf.put_slice(b",\"accuracy_m\":");
    write_fixed(buf, p.accuracy_m, 1);
    buf.put_slice(b",\"engine\":{\"rpm\":");
    write_int(buf, p.rpm.round() as i64);
    buf.put_slice(b",\"coolant_c\":");
    write_fixed(buf, p.coolant_c, 1);
    buf.put_slice(b"}}");
}

/// Decimal digits of an integer, itoa-style (digits produced back to front on the stack).
fn write_int(buf: &mut BytesMut, v: i64) {
    if v < 0 {
        buf.put_u8(b'-');
    }
    write_u64(buf, v.unsigned_abs());
}

fn write_u64(buf: &mut BytesMut, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.put_slice(&digits[i..]);
}

/// A finite float as a fixed-point decimal with exactly `decimals` fractional digits.
/// Rounds half away from zero; callers only pass values far below 2^53 / 10^decimals.
fn write_fixed(buf: &mut BytesMut, v: f64, decimals: u32) {
    let scale = 10u64.pow(decimals);
    let scaled = (v.abs() * scale as f64).round() as u64;
    if v.is_sign_negative() && scaled != 0 {
        buf.put_u8(b'-');
    }
    write_u64(buf, scaled / scale);
    if decimals > 0 {
        buf.put_u8(b'.');
        let frac = scaled % scale;
        // Leading zeros of the fraction: 40.000512 must not come out as 40.512.
        let mut pad = scale / 10;
        while pad > frac.max(1) && pad > 1 {
            buf.put_u8(b'0');
            pad /= 10;
        }
        write_u64(buf, frac);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian::domain::{LatLon, Timestamp};
    use serde_json::Value;

    fn point() -> Point {
        Point {
            ts_ms: 1_763_719_200_123,
            lat: 40.712_8,
            lon: -74.006,
            speed_kmh: 42.54,
            heading_deg: 180.0,
            fuel_pct: 55.2,
            accuracy_m: 5.0,
            rpm: 2100.4,
            coolant_c: 90.0,
        }
    }

    fn encode(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        f(&mut buf);
        buf.to_vec()
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
    }

    #[test]
    fn fixed_point_matches_std_formatting() {
        let cases = [
            0.0,
            -0.0,
            0.000_512,
            40.000_512,
            -74.006,
            89.999_999_6,
            -0.000_000_4,
            123.45,
            1e-7,
        ];
        for v in cases {
            for d in [1, 6] {
                let got = String::from_utf8(encode(|b| write_fixed(b, v, d))).unwrap();
                let parsed: f64 = got.parse().unwrap();
                assert!(
                    (parsed - v).abs() <= 0.5 / 10f64.powi(d as i32) + 1e-12,
                    "{v} -> {got}"
                );
                assert_eq!(
                    got.split('.').nth(1).map(str::len),
                    Some(d as usize),
                    "{v} -> {got}"
                );
            }
        }
        assert_eq!(encode(|b| write_fixed(b, 40.000_512, 6)), b"40.000512");
        assert_eq!(
            encode(|b| write_int(b, -1_763_719_200_123)),
            b"-1763719200123"
        );
    }

    #[test]
    fn single_point_is_an_object_with_the_contract_fields() {
        let v = parse(&encode(|b| {
            write_message(b, &[point()], TsFormat::EpochMillis)
        }));
        assert_eq!(v["ts"].as_i64(), Some(1_763_719_200_123));
        assert_eq!(v["lat"].as_f64(), Some(40.7128));
        assert_eq!(v["lon"].as_f64(), Some(-74.006));
        assert_eq!(v["speed_kmh"].as_f64(), Some(42.5));
        assert_eq!(v["heading_deg"].as_f64(), Some(180.0));
        assert_eq!(v["fuel_pct"].as_f64(), Some(55.2));
        assert_eq!(v["accuracy_m"].as_f64(), Some(5.0));
        assert_eq!(v["engine"]["rpm"].as_i64(), Some(2100));
        assert_eq!(v["engine"]["coolant_c"].as_f64(), Some(90.0));
        assert!(LatLon::new(v["lat"].as_f64().unwrap(), v["lon"].as_f64().unwrap()).is_ok());
    }

    #[test]
    fn rfc3339_timestamp_is_the_same_instant_with_millis_and_z() {
        let v = parse(&encode(|b| write_message(b, &[point()], TsFormat::Rfc3339)));
        let ts = v["ts"].as_str().unwrap();
        assert_eq!(ts, "2025-11-21T10:00:00.123Z");
        assert_eq!(
            Timestamp::parse_rfc3339(ts).unwrap(),
            Timestamp::from_epoch_millis(point().ts_ms).unwrap()
        );
    }

    #[test]
    fn several_points_are_an_array_in_order() {
        let pts: Vec<Point> = (0..5)
            .map(|i| Point {
                ts_ms: point().ts_ms + i,
                ..point()
            })
            .collect();
        let v = parse(&encode(|b| write_message(b, &pts, TsFormat::EpochMillis)));
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 5);
        let ts: Vec<i64> = arr.iter().map(|p| p["ts"].as_i64().unwrap()).collect();
        assert_eq!(ts, (0..5).map(|i| point().ts_ms + i).collect::<Vec<_>>());
    }

    #[test]
    fn each_fault_is_what_it_claims() {
        let p = point();
        let fault = |k| encode(|b| write_fault(b, k, &p));

        assert!(serde_json::from_slice::<Value>(&fault(FaultKind::InvalidJson)).is_err());

        let v = parse(&fault(FaultKind::MissingLat));
        assert!(v.get("lat").is_none() && v["lon"].is_f64());

        let v = parse(&fault(FaultKind::LatOutOfRange));
        let lat = v["lat"].as_f64().unwrap();
        assert!(lat > 90.0 && LatLon::new(lat, v["lon"].as_f64().unwrap()).is_err());

        assert_eq!(
            parse(&fault(FaultKind::WrongType))["lat"].as_str(),
            Some("abc")
        );

        let v = parse(&fault(FaultKind::FutureTimestamp));
        assert_eq!(v["ts"].as_i64(), Some(p.ts_ms + DAY_MS));

        assert_eq!(
            fault(FaultKind::UnknownVehicle),
            encode(|b| write_message(b, &[p], TsFormat::EpochMillis))
        );

        let v = parse(&fault(FaultKind::TooManyPoints));
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 1001);
        assert!(
            arr.iter().all(|e| e["lat"].is_f64()),
            "only the length is wrong"
        );
    }

    #[test]
    fn fault_names_are_distinct_and_indices_match_order() {
        let names: std::collections::HashSet<_> = FaultKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), FaultKind::ALL.len());
        for (i, k) in FaultKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
