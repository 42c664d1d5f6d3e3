//! Reading one vehicle's track: raw points, buckets computed from them on the fly (1m, 5m),
//! and hourly/daily rollups topped up from raw points for the hours the rollup job has not
//! closed yet, so a 1h or 1d track always reaches "now".
//!
//! Every statement reads telemetry by `vehicle_id = $1 AND ts >= … AND ts < …`, which prunes
//! the daily partitions to the days asked for and reads each through its `(vehicle_id, ts)`
//! unique index (tests/integration/track.rs checks the plan).

use chrono::{DateTime, Utc};
use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;
use uuid::Uuid;

use super::StoreError;
use crate::domain::track::{Resolution, TrackRange};

/// One point of a track: a raw point (`count` 1) or a bucket (`ts` its start, `lon`/`lat`
/// where the vehicle was at its end, averages over the points that carried a value).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackPoint {
    pub ts: DateTime<Utc>,
    pub lon: f64,
    pub lat: f64,
    pub speed_kmh: Option<f64>,
    pub fuel_pct: Option<f64>,
    pub count: i64,
}

fn point(r: &Row) -> TrackPoint {
    TrackPoint {
        ts: r.get(0),
        lon: r.get(1),
        lat: r.get(2),
        speed_kmh: r.get(3),
        fuel_pct: r.get(4),
        count: r.get(5),
    }
}

const RAW: &str = "SELECT ts, ST_X(location), ST_Y(location), speed_kmh, fuel_pct, 1::bigint \
    FROM vehicle_telemetry WHERE vehicle_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4";

/// The aggregate of raw points every bucketed resolution shares, the same as the rollup job's:
/// `last` is the latest point's location (unique `(vehicle_id, ts)`: no ties), the averages
/// skip points without a value, and the counts let daily buckets weight hourly averages.
const RAW_AGGREGATE: &str = "(array_agg(location ORDER BY ts DESC))[1] AS last, \
    avg(speed_kmh) AS speed, avg(fuel_pct) AS fuel, count(*) AS points, \
    count(speed_kmh) AS speed_points, count(fuel_pct) AS fuel_points, max(ts) AS last_ts";

/// 1m and 5m: `date_bin` from an origin on a UTC midnight, `$4` the width in seconds.
fn binned() -> String {
    format!(
        "SELECT bucket, ST_X(last), ST_Y(last), speed, fuel, points FROM ( \
           SELECT date_bin($4::float8 * interval '1 second', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') \
                  AS bucket, {RAW_AGGREGATE} \
           FROM vehicle_telemetry WHERE vehicle_id = $1 AND ts >= $2 AND ts < $3 GROUP BY 1) b \
         ORDER BY bucket"
    )
}

/// Hours in `[max($2, $4), $3)` the rollup job has not closed (`$4`: the oldest instant raw
/// points may still be kept; before it, raw has nothing to add). Usually the current hour and
/// the one in its grace period; every hour when the job has not run.
const OPEN_HOURS: &str = "open_hours AS ( \
    SELECT h FROM generate_series(GREATEST($2::timestamptz, $4::timestamptz), \
                   $3::timestamptz - interval '1 hour', interval '1 hour') h \
    WHERE NOT EXISTS (SELECT 1 FROM rollup_hours r WHERE r.bucket = h))";

/// Per hour: the rollup row of a closed hour, or the raw aggregate of an open one. Raw points
/// are read only from the first open hour on (`ts >= (SELECT min(h) …)`: an init plan, so
/// partitions before it are pruned at run time). `hourly_from` bounds the rollup rows read.
fn hour_parts(hourly_from: &str) -> String {
    format!(
        "hour_parts AS ( \
           SELECT bucket, last_lon AS lon, last_lat AS lat, avg_speed_kmh AS speed, \
                  avg_fuel_pct AS fuel, points::bigint AS points, \
                  speed_points::bigint AS speed_points, fuel_points::bigint AS fuel_points, last_ts \
           FROM telemetry_hourly \
           WHERE vehicle_id = $1 AND bucket >= {hourly_from} AND bucket < $3 \
             AND bucket NOT IN (SELECT h FROM open_hours) \
           UNION ALL \
           SELECT bucket, ST_X(last), ST_Y(last), speed, fuel, points, speed_points, fuel_points, \
                  last_ts \
           FROM (SELECT date_trunc('hour', ts, 'UTC') AS bucket, {RAW_AGGREGATE} \
                 FROM vehicle_telemetry \
                 WHERE vehicle_id = $1 AND ts >= (SELECT min(h) FROM open_hours) AND ts < $3 \
                   AND date_trunc('hour', ts, 'UTC') IN (SELECT h FROM open_hours) \
                 GROUP BY 1) r)"
    )
}

fn hourly() -> String {
    format!(
        "WITH {OPEN_HOURS}, {} \
         SELECT bucket, lon, lat, speed, fuel, points FROM hour_parts ORDER BY bucket",
        hour_parts("$2")
    )
}

/// A day with an open hour is folded from its hour parts (rollup rows of its closed hours,
/// raw points of its open ones) exactly as the job folds hourly rows into a daily row:
/// location of the latest part, averages weighted by the points that carried a value. Every
/// other day is its `telemetry_daily` row — including days older than raw retention, whose
/// hours may no longer be listed anywhere.
fn daily() -> String {
    format!(
        "WITH {OPEN_HOURS}, \
         open_days AS (SELECT DISTINCT date_trunc('day', h, 'UTC') AS day FROM open_hours), {} \
         SELECT bucket, last_lon, last_lat, avg_speed_kmh, avg_fuel_pct, points::bigint \
         FROM telemetry_daily \
         WHERE vehicle_id = $1 AND bucket >= $2 AND bucket < $3 \
           AND bucket NOT IN (SELECT day FROM open_days) \
         UNION ALL \
         SELECT date_trunc('day', bucket, 'UTC'), \
                (array_agg(lon ORDER BY last_ts DESC))[1], (array_agg(lat ORDER BY last_ts DESC))[1], \
                sum(speed * speed_points) / NULLIF(sum(speed_points), 0), \
                sum(fuel * fuel_points) / NULLIF(sum(fuel_points), 0), sum(points)::bigint \
         FROM hour_parts WHERE date_trunc('day', bucket, 'UTC') IN (SELECT day FROM open_days) \
         GROUP BY 1 \
         ORDER BY 1",
        hour_parts("(SELECT min(day) FROM open_days)")
    )
}

/// The statement for a resolution, for `EXPLAIN` in tests as well as for `read`.
pub fn statement(resolution: Resolution) -> String {
    match resolution {
        Resolution::Raw => RAW.to_owned(),
        Resolution::Minute | Resolution::FiveMinutes => binned(),
        Resolution::Hour => hourly(),
        Resolution::Day => daily(),
    }
}

/// The track of `vehicle` over `range`, oldest first. `raw_floor`: the oldest instant raw
/// points may still be kept (the start of the UTC day retention drops next). A raw track
/// returns at most `limit` points. Statements are prepared once per pooled connection: parsing
/// and analysing them is a round trip and a good part of a millisecond, on every request.
pub async fn read(
    c: &ClientWrapper,
    vehicle: Uuid,
    range: &TrackRange,
    raw_floor: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<TrackPoint>, StoreError> {
    let sql = c.prepare_cached(&statement(range.resolution)).await?;
    let rows = match range.resolution {
        Resolution::Raw => {
            c.query(&sql, &[&vehicle, &range.from, &range.to, &limit])
                .await?
        }
        Resolution::Minute | Resolution::FiveMinutes => {
            let width = range
                .resolution
                .bucket()
                .map_or(0.0, |w| w.num_seconds() as f64);
            c.query(&sql, &[&vehicle, &range.from, &range.to, &width])
                .await?
        }
        Resolution::Hour | Resolution::Day => {
            c.query(&sql, &[&vehicle, &range.from, &range.to, &raw_floor])
                .await?
        }
    };
    Ok(rows.iter().map(point).collect())
}
