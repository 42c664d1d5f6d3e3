//! Rollup rows to CSV or NDJSON bytes, in chunks: rows are encoded into one buffer that is
//! handed to the HTTP body when it holds `CHUNK` bytes (or when the database has nothing ready
//! and some bytes wait), so memory holds one chunk, whatever the export's size.
//!
//! Both formats write the same values: RFC 3339 UTC instants (`Z`, fraction only when there is
//! one), floats in their shortest round-trip form (a value read back is the stored `float8`),
//! `null` as an empty CSV field or JSON `null`. Non-finite floats (NaN cannot come from the
//! rollup job, but a float8 column can hold it) are written as null: neither JSON nor the
//! loaders agree on a spelling for them. No value can hold a comma, quote or newline, so CSV
//! needs no quoting.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::store::export::{RollupRow, RollupStream, COLUMNS};
use crate::store::StoreError;

/// Bytes per body chunk: large enough that per-chunk costs (a frame, a write) vanish, small
/// enough to be nothing in memory.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// One exported value.
enum Value {
    Id(Uuid),
    Time(DateTime<Utc>),
    Int(i32),
    Num(Option<f64>),
}

/// The row's values in `COLUMNS` order.
fn values(r: &RollupRow) -> [Value; 14] {
    use Value::*;
    [
        Id(r.vehicle_id),
        Time(r.bucket),
        Int(r.points),
        Num(r.avg_speed_kmh),
        Num(r.max_speed_kmh),
        Num(r.avg_fuel_pct),
        Num(r.min_fuel_pct),
        Num(Some(r.distance_m)),
        Time(r.first_ts),
        Time(r.last_ts),
        Num(Some(r.first_lon)),
        Num(Some(r.first_lat)),
        Num(Some(r.last_lon)),
        Num(Some(r.last_lat)),
    ]
}

/// The CSV header line.
pub fn csv_header(out: &mut BytesMut) {
    out.put_slice(COLUMNS.join(",").as_bytes());
    out.put_u8(b'\n');
}

pub fn csv_row(out: &mut BytesMut, r: &RollupRow) {
    for (i, v) in values(r).into_iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        match v {
            Value::Id(id) => put_uuid(out, id),
            Value::Time(t) => put_time(out, t),
            Value::Int(n) => out.put_slice(itoa::Buffer::new().format(n).as_bytes()),
            Value::Num(x) => put_num(out, x, b""),
        }
    }
    out.put_u8(b'\n');
}

pub fn ndjson_row(out: &mut BytesMut, r: &RollupRow) {
    out.put_u8(b'{');
    for (i, (name, v)) in COLUMNS.iter().zip(values(r)).enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_u8(b'"');
        out.put_slice(name.as_bytes());
        out.put_slice(b"\":");
        match v {
            Value::Id(id) => {
                out.put_u8(b'"');
                put_uuid(out, id);
                out.put_u8(b'"');
            }
            Value::Time(t) => {
                out.put_u8(b'"');
                put_time(out, t);
                out.put_u8(b'"');
            }
            Value::Int(n) => out.put_slice(itoa::Buffer::new().format(n).as_bytes()),
            Value::Num(x) => put_num(out, x, b"null"),
        }
    }
    out.put_slice(b"}\n");
}

fn put_uuid(out: &mut BytesMut, id: Uuid) {
    let mut buf = Uuid::encode_buffer();
    out.put_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
}

fn put_num(out: &mut BytesMut, x: Option<f64>, null: &[u8]) {
    match x.filter(|x| x.is_finite()) {
        Some(x) => out.put_slice(ryu::Buffer::new().format_finite(x).as_bytes()),
        None => out.put_slice(null),
    }
}

/// RFC 3339 in UTC, as chrono's `SecondsFormat::AutoSi` writes it (no fraction, or 3, 6 or 9
/// digits), without its allocation: three instants per row make this the encoder's hot spot.
fn put_time(out: &mut BytesMut, t: DateTime<Utc>) {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // Not writable in RFC 3339; chrono's extended form keeps it readable.
        out.put_slice(t.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes());
        return;
    }
    let mut b = *b"0000-00-00T00:00:00";
    let digits = |b: &mut [u8], mut n: u32| {
        for d in b.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    digits(&mut b[0..4], year as u32);
    digits(&mut b[5..7], t.month());
    digits(&mut b[8..10], t.day());
    digits(&mut b[11..13], t.hour());
    digits(&mut b[14..16], t.minute());
    digits(&mut b[17..19], t.second());
    out.put_slice(&b);
    let nanos = t.nanosecond() % 1_000_000_000;
    let (n, width) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
        n if n % 1_000 == 0 => (n / 1_000, 6),
        n => (n, 9),
    };
    if width > 0 {
        let mut f = [b'.'; 10];
        digits(&mut f[1..=width], n);
        out.put_slice(&f[..=width]);
    }
    out.put_u8(b'Z');
}

/// How an export ended, for its metric.
#[derive(Clone, Copy)]
enum Outcome {
    Complete,
    Failed,
}

/// The export's body: rows encoded into chunks. Dropping it (the client left) drops the row
/// stream, which cancels the query (`store::export`). `_permit` is the export's slot.
pub struct Encoded {
    rows: RollupStream,
    format: Format,
    resolution: &'static str,
    buf: BytesMut,
    sent: u64,
    ended: Option<Outcome>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Encoded {
    pub fn new(
        rows: RollupStream,
        format: Format,
        resolution: &'static str,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Self {
        let mut buf = BytesMut::with_capacity(CHUNK + 1024);
        if format == Format::Csv {
            csv_header(&mut buf);
        }
        Self {
            rows,
            format,
            resolution,
            buf,
            sent: 0,
            ended: None,
            _permit: permit,
        }
    }

    fn take(&mut self) -> Bytes {
        let chunk = self.buf.split().freeze();
        self.buf.reserve(CHUNK + 1024);
        chunk
    }
}

impl Stream for Encoded {
    type Item = Result<Bytes, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended.is_some() {
            return Poll::Ready((!this.buf.is_empty()).then(|| Ok(this.take())));
        }
        loop {
            match this.rows.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(row))) => {
                    match this.format {
                        Format::Csv => csv_row(&mut this.buf, &row),
                        Format::Ndjson => ndjson_row(&mut this.buf, &row),
                    }
                    this.sent += 1;
                    if this.buf.len() >= CHUNK {
                        return Poll::Ready(Some(Ok(this.take())));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    // The headers are gone: the only way left to say "incomplete" is to end
                    // the response without its last chunk, which every HTTP client reports.
                    tracing::error!(error = %e, rows = this.sent, "export failed mid-stream");
                    this.ended = Some(Outcome::Failed);
                    this.buf.clear();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.ended = Some(Outcome::Complete);
                    return Poll::Ready((!this.buf.is_empty()).then(|| Ok(this.take())));
                }
                Poll::Pending if this.buf.is_empty() => return Poll::Pending,
                // The database has nothing ready: send what waits rather than sit on it.
                Poll::Pending => return Poll::Ready(Some(Ok(this.take()))),
            }
        }
    }
}

impl Drop for Encoded {
    fn drop(&mut self) {
        let outcome = match self.ended {
            Some(Outcome::Complete) => "complete",
            Some(Outcome::Failed) => "failed",
            None => "disconnected",
        };
        crate::observability::export_ended(
            outcome,
            self.resolution,
            self.format.as_str(),
            self.sent,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> RollupRow {
        RollupRow {
            vehicle_id: "5c3f1a2b-8d4e-4f6a-9b7c-2e1d0f3a4b5c".parse().unwrap(),
            bucket: "2026-12-01T10:00:00Z".parse().unwrap(),
            points: 360,
            avg_speed_kmh: Some(42.5),
            max_speed_kmh: Some(0.1 + 0.2),
            avg_fuel_pct: None,
            min_fuel_pct: Some(f64::NAN),
            distance_m: 1234.0,
            first_ts: "2026-12-01T10:00:01.5Z".parse().unwrap(),
            last_ts: "2026-12-01T10:59:59.123456Z".parse().unwrap(),
            first_lon: -73.9857,
            first_lat: 40.7484,
            last_lon: 1e-7,
            last_lat: -0.0,
        }
    }

    #[test]
    fn instants_are_written_as_chrono_writes_rfc_3339() {
        for s in [
            "2026-12-01T10:00:00Z",
            "2026-12-01T10:00:00.5Z",
            "0001-01-01T00:00:00.000001Z",
            "9999-12-31T23:59:59.999999999Z",
            "2024-02-29T23:59:59.120Z",
        ] {
            let t: DateTime<Utc> = s.parse().unwrap();
            let mut out = BytesMut::new();
            put_time(&mut out, t);
            assert_eq!(
                std::str::from_utf8(&out).unwrap(),
                t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            );
        }
    }

    #[test]
    fn a_row_reads_back_to_its_values_in_both_formats() {
        let mut out = BytesMut::new();
        csv_header(&mut out);
        csv_row(&mut out, &row());
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "5c3f1a2b-8d4e-4f6a-9b7c-2e1d0f3a4b5c,2026-12-01T10:00:00Z,360,42.5,\
             0.30000000000000004,,,1234.0,2026-12-01T10:00:01.500Z,2026-12-01T10:59:59.123456Z,\
             -73.9857,40.7484,1e-7,-0.0"
        );
        let mut out = BytesMut::new();
        ndjson_row(&mut out, &row());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 14);
        assert_eq!(v["max_speed_kmh"].as_f64(), Some(0.1 + 0.2));
        assert_eq!(v["avg_fuel_pct"], serde_json::Value::Null);
        assert_eq!(v["min_fuel_pct"], serde_json::Value::Null, "NaN is null");
        assert_eq!(v["last_lon"].as_f64(), Some(1e-7));
        assert_eq!(v["first_ts"], "2026-12-01T10:00:01.500Z");
        assert!(out.ends_with(b"}\n"));
    }
}
