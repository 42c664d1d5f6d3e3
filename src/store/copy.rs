//! Hand-encoded PostgreSQL binary COPY rows for `vehicle_telemetry`.
//!
//! tokio-postgres' `BinaryCopyInWriter` goes through `ToSql` per field and is several times
//! slower per row; the format is simple and fixed, so we write the bytes ourselves.
//! Geometry goes in as EWKB (little-endian point with SRID 4326): `geometry_recv` accepts it,
//! and binary COPY carries no per-field type OIDs, so no lookup of PostGIS' OID is needed here.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::domain::Point;
use crate::domain::Timestamp;

/// Column order of every COPY into telemetry (and its staging twin).
pub const COLUMNS: &str =
    "ts, vehicle_id, location, speed_kmh, heading_deg, fuel_pct, accuracy_m, engine, received_at";
const FIELDS: i16 = 9;
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// PostgreSQL counts time from 2000-01-01; we count from 1970-01-01.
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
const EWKB_POINT_WITH_SRID: u32 = 0x2000_0001;
const SRID_WGS84: u32 = 4326;
const EWKB_POINT_LEN: i32 = 1 + 4 + 4 + 8 + 8;
/// Fixed part of a row: field count, 8 length words, and the fixed-size fields.
const FIXED_ROW_BYTES: usize = 2 + 9 * 4 + 8 + 16 + 25 + 4 * 8 + 8 + 1;

/// A COPY stream being built: header, rows, and on `finish` the trailer.
pub struct CopyBuffer {
    buf: BytesMut,
    rows: usize,
}

impl CopyBuffer {
    pub fn with_capacity(rows: usize) -> Self {
        let mut buf = BytesMut::with_capacity(HEADER.len() + rows * (FIXED_ROW_BYTES + 48) + 2);
        buf.put_slice(HEADER);
        Self { buf, rows: 0 }
    }

    pub fn push(&mut self, vehicle_id: &Uuid, p: &Point, received_at: Timestamp) {
        let b = &mut self.buf;
        b.reserve(FIXED_ROW_BYTES + p.engine.as_ref().map_or(0, |e| e.len()));
        b.put_i16(FIELDS);
        put_timestamp(b, p.ts);
        b.put_i32(16);
        b.put_slice(vehicle_id.as_bytes());
        b.put_i32(EWKB_POINT_LEN);
        b.put_u8(1); // little-endian
        b.put_u32_le(EWKB_POINT_WITH_SRID);
        b.put_u32_le(SRID_WGS84);
        b.put_f64_le(p.position.lon());
        b.put_f64_le(p.position.lat());
        for v in [p.speed_kmh, p.heading_deg, p.fuel_pct, p.accuracy_m] {
            match v {
                Some(v) => {
                    b.put_i32(8);
                    b.put_f64(v);
                }
                None => b.put_i32(-1),
            }
        }
        match &p.engine {
            Some(json) => {
                b.put_i32(1 + json.len() as i32);
                b.put_u8(1); // jsonb binary format version
                b.put_slice(json);
            }
            None => b.put_i32(-1),
        }
        put_timestamp(b, received_at);
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn finish(mut self) -> Bytes {
        self.buf.put_i16(-1);
        self.buf.freeze()
    }
}

fn put_timestamp(b: &mut BytesMut, ts: Timestamp) {
    b.put_i32(8);
    b.put_i64(ts.unix_micros() - PG_EPOCH_OFFSET_MICROS);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LatLon;

    fn point(engine: Option<&'static [u8]>) -> Point {
        Point {
            ts: Timestamp::from_unix_micros(PG_EPOCH_OFFSET_MICROS + 1),
            position: LatLon::new(40.5, -74.25).unwrap(),
            speed_kmh: Some(42.5),
            heading_deg: None,
            fuel_pct: None,
            accuracy_m: None,
            engine: engine.map(Bytes::from_static),
        }
    }

    #[test]
    fn encodes_header_row_and_trailer() {
        let id = Uuid::from_u128(0x0102);
        let mut copy = CopyBuffer::with_capacity(1);
        copy.push(
            &id,
            &point(Some(b"{}")),
            Timestamp::from_unix_micros(PG_EPOCH_OFFSET_MICROS),
        );
        assert_eq!(copy.rows(), 1);
        let bytes = copy.finish();
        let (head, rest) = bytes.split_at(HEADER.len());
        assert_eq!(head, HEADER);
        assert_eq!(&rest[..2], &9i16.to_be_bytes());
        // ts: length 8, one microsecond after the PostgreSQL epoch
        assert_eq!(&rest[2..14], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        // uuid
        assert_eq!(&rest[14..18], &16i32.to_be_bytes());
        assert_eq!(&rest[18..34], id.as_bytes());
        // EWKB: length, byte order, type with SRID flag, SRID, x = lon, y = lat
        assert_eq!(&rest[34..38], &25i32.to_be_bytes());
        assert_eq!(rest[38], 1);
        assert_eq!(&rest[39..43], &0x2000_0001u32.to_le_bytes());
        assert_eq!(&rest[43..47], &4326u32.to_le_bytes());
        assert_eq!(&rest[47..55], &(-74.25f64).to_le_bytes());
        assert_eq!(&rest[55..63], &40.5f64.to_le_bytes());
        // speed present, three NULLs
        assert_eq!(
            &rest[63..75],
            &[&8i32.to_be_bytes()[..], &42.5f64.to_be_bytes()].concat()[..]
        );
        assert_eq!(&rest[75..87], &[0xff; 12]);
        // jsonb: length 3 = version byte + "{}"
        assert_eq!(&rest[87..94], &[0, 0, 0, 3, 1, b'{', b'}']);
        assert_eq!(&rest[94..106], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&rest[106..], &(-1i16).to_be_bytes());
    }

    #[test]
    fn null_engine_is_a_null_field() {
        let mut copy = CopyBuffer::with_capacity(1);
        copy.push(&Uuid::nil(), &point(None), Timestamp::from_unix_micros(0));
        let bytes = copy.finish();
        assert_eq!(
            bytes.len(),
            HEADER.len() + 2 + 12 + 20 + 29 + 12 + 12 + 4 + 12 + 2
        );
    }
}
