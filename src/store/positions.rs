//! Latest position per vehicle, upserted in the same transaction as the telemetry batch.

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::prepared::Prepared;
use super::{live, StoreError};
use crate::domain::geofence::judge::Fix;
use crate::domain::{LatLon, Point, Timestamp};

/// One row per vehicle: the newest point of the batch. Kept sorted by vehicle id so that
/// concurrent writers lock `vehicle_positions` rows in the same order and cannot deadlock.
#[derive(Default)]
pub struct Latest {
    rows: std::collections::BTreeMap<Uuid, (Point, Timestamp)>,
}

impl Latest {
    pub fn offer(&mut self, vehicle_id: Uuid, point: &Point, received_at: Timestamp) {
        match self.rows.get(&vehicle_id) {
            Some((held, _)) if held.ts >= point.ts => {}
            _ => {
                let mut p = point.clone();
                p.engine = None;
                self.rows.insert(vehicle_id, (p, received_at));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The point the batch stores as `vehicle`'s position, if it has one.
    pub fn fix(&self, vehicle: Uuid) -> Option<Fix> {
        let (p, _) = self.rows.get(&vehicle)?;
        Some(Fix {
            ts: p.ts,
            pos: p.position,
        })
    }

    /// The batch's vehicles, in id order.
    pub fn vehicles(&self) -> Vec<Uuid> {
        self.rows.keys().copied().collect()
    }

    /// NOTIFY payloads for the live index: the positions of the vehicles it watches, or of
    /// every vehicle while someone streams positions (`Watched::everything`).
    pub fn notices(&self, watched: &live::Watched) -> Vec<String> {
        let everything = watched.everything();
        let set = watched.get();
        live::encode_positions(
            self.rows
                .iter()
                .filter(|(id, _)| everything || set.contains(id))
                .map(|(id, (p, _))| live::PositionRow {
                    vehicle_id: *id,
                    fix: live::Fix {
                        lat: p.position.lat(),
                        lon: p.position.lon(),
                        ts_us: p.ts.unix_micros(),
                        speed_kmh: p.speed_kmh,
                        heading_deg: p.heading_deg,
                    },
                }),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A position never moves back in time: an older point (late or redelivered) leaves it alone.
/// The row it replaces becomes `prev_*` (in `SET`, `p.` is the row before the update), which
/// judging reads back through `RETURNING`. Every conflicting row is locked, updated or not.
macro_rules! upsert_sql {
    () => {
        "\
INSERT INTO vehicle_positions AS p
    (vehicle_id, ts, location, speed_kmh, heading_deg, fuel_pct, accuracy_m, received_at)
SELECT v, t, ST_SetSRID(ST_MakePoint(x, y), 4326), s, h, f, a, r
FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[],
            $6::float8[], $7::float8[], $8::float8[], $9::timestamptz[]) AS u(v, t, x, y, s, h, f, a, r)
ON CONFLICT (vehicle_id) DO UPDATE SET
    ts = EXCLUDED.ts, location = EXCLUDED.location, speed_kmh = EXCLUDED.speed_kmh,
    heading_deg = EXCLUDED.heading_deg, fuel_pct = EXCLUDED.fuel_pct,
    accuracy_m = EXCLUDED.accuracy_m, received_at = EXCLUDED.received_at, updated_at = now(),
    prev_ts = p.ts, prev_lon = ST_X(p.location), prev_lat = ST_Y(p.location)
WHERE p.ts < EXCLUDED.ts"
    };
}
const UPSERT: &str = upsert_sql!();

/// `UPSERT`, saying what each moved vehicle's row held before.
const UPSERT_RETURNING_PREVIOUS: &str = concat!(
    upsert_sql!(),
    " RETURNING vehicle_id, prev_ts, prev_lon, prev_lat"
);

const NOTIFY: &str = "SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n";

/// What a vehicle's row held before this batch moved it: `None` for a vehicle new to the table.
pub type Previous = Option<Fix>;

/// Upserts the batch's latest positions and announces `notices` (see `Latest::notices`).
/// With `previous`, returns what each moved vehicle's row held before (vehicles whose stored
/// point is newer than the whole batch are not moved and not listed).
pub async fn upsert(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    latest: &Latest,
    notices: &[String],
    previous: bool,
) -> Result<Vec<(Uuid, Previous)>, StoreError> {
    if latest.is_empty() {
        return Ok(Vec::new());
    }
    let n = latest.len();
    let mut ids = Vec::with_capacity(n);
    let mut ts: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    let (mut lon, mut lat) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut speed, mut heading, mut fuel, mut acc) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut received: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    for (id, (p, r)) in &latest.rows {
        ids.push(*id);
        ts.push(p.ts.to_datetime());
        lon.push(p.position.lon());
        lat.push(p.position.lat());
        speed.push(p.speed_kmh);
        heading.push(p.heading_deg);
        fuel.push(p.fuel_pct);
        acc.push(p.accuracy_m);
        received.push(r.to_datetime());
    }
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
        &ids, &ts, &lon, &lat, &speed, &heading, &fuel, &acc, &received,
    ];
    let moved = if previous {
        let statement = prepared.get(tx, UPSERT_RETURNING_PREVIOUS).await?;
        tx.query(&statement, &params)
            .await?
            .iter()
            .map(|r| {
                let at: Option<DateTime<Utc>> = r.get(1);
                let (lon, lat): (Option<f64>, Option<f64>) = (r.get(2), r.get(3));
                let prev = at.zip(lon.zip(lat)).and_then(|(at, (lon, lat))| {
                    let pos = LatLon::new(lat, lon).ok()?;
                    let ts = Timestamp::from_unix_micros(at.timestamp_micros());
                    Some(Fix { ts, pos })
                });
                (r.get(0), prev)
            })
            .collect()
    } else {
        let statement = prepared.get(tx, UPSERT).await?;
        tx.execute(&statement, &params).await?;
        Vec::new()
    };
    // Delivered to every node's live index at commit, and only if this transaction commits.
    if !notices.is_empty() {
        let statement = prepared.get(tx, NOTIFY).await?;
        tx.execute(&statement, &[&live::POSITIONS_CHANNEL, &notices])
            .await?;
    }
    Ok(moved)
}
