//! The rollup statements. One shape computes hourly rows for any set of (vehicle, hour) pairs
//! from raw points; only where the points come from differs (a whole hour, or named pairs).

/// Columns written to `telemetry_hourly` and `telemetry_daily`, in this order.
const COLUMNS: &str = "vehicle_id, bucket, points, speed_points, avg_speed_kmh, max_speed_kmh, \
     fuel_points, avg_fuel_pct, min_fuel_pct, entry_m, distance_m, first_ts, last_ts, \
     first_lon, first_lat, last_lon, last_lat, bounds, computed_at";

const UPDATE_ALL: &str = "points = EXCLUDED.points, speed_points = EXCLUDED.speed_points, \
     avg_speed_kmh = EXCLUDED.avg_speed_kmh, max_speed_kmh = EXCLUDED.max_speed_kmh, \
     fuel_points = EXCLUDED.fuel_points, avg_fuel_pct = EXCLUDED.avg_fuel_pct, \
     min_fuel_pct = EXCLUDED.min_fuel_pct, entry_m = EXCLUDED.entry_m, \
     distance_m = EXCLUDED.distance_m, first_ts = EXCLUDED.first_ts, last_ts = EXCLUDED.last_ts, \
     first_lon = EXCLUDED.first_lon, first_lat = EXCLUDED.first_lat, \
     last_lon = EXCLUDED.last_lon, last_lat = EXCLUDED.last_lat, bounds = EXCLUDED.bounds, \
     computed_at = EXCLUDED.computed_at";

/// Hourly rows from `pts(vehicle_id, bucket, ts, location, speed_kmh, fuel_pct)`, defined by
/// `source`. The step into each bucket starts at the vehicle's last point in the day before
/// the bucket (one index probe per pair, `(vehicle_id, ts)` of at most two partitions);
/// `first_value`/`last_value` share the window's sort with `lag`, so a bucket's points are
/// sorted once. Returns the pairs written and the raw points read.
fn hourly_from(source: &str) -> String {
    format!(
        "WITH {source},
        keys AS (SELECT DISTINCT vehicle_id, bucket FROM pts),
        prev AS (
            SELECT k.vehicle_id, k.bucket, p.location
            FROM keys k
            CROSS JOIN LATERAL (
                SELECT t.location FROM vehicle_telemetry t
                WHERE t.vehicle_id = k.vehicle_id
                  AND t.ts < k.bucket AND t.ts >= k.bucket - interval '1 day'
                ORDER BY t.ts DESC LIMIT 1
            ) p
        ),
        ordered AS (
            SELECT vehicle_id, bucket, ts, location, speed_kmh, fuel_pct,
                   lag(location) OVER w AS before,
                   first_value(location) OVER w AS first_at,
                   last_value(location) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING
                                                AND UNBOUNDED FOLLOWING) AS last_at
            FROM pts
            WINDOW w AS (PARTITION BY vehicle_id, bucket ORDER BY ts)
        ),
        steps AS (
            SELECT o.*, o.before IS NULL AS entry,
                   coalesce(ST_Distance(coalesce(o.before, p.location)::geography,
                                        o.location::geography), 0) AS step
            FROM ordered o
            LEFT JOIN prev p
              ON o.before IS NULL AND p.vehicle_id = o.vehicle_id AND p.bucket = o.bucket
        ),
        written AS (
            INSERT INTO telemetry_hourly ({COLUMNS})
            SELECT vehicle_id, bucket, count(*), count(speed_kmh), avg(speed_kmh),
                   max(speed_kmh), count(fuel_pct), avg(fuel_pct), min(fuel_pct),
                   sum(step) FILTER (WHERE entry), sum(step), min(ts), max(ts),
                   ST_X(min(first_at)), ST_Y(min(first_at)), ST_X(min(last_at)),
                   ST_Y(min(last_at)), ST_Envelope(ST_Collect(location)), now()
            FROM steps
            GROUP BY vehicle_id, bucket
            ON CONFLICT (vehicle_id, bucket) DO UPDATE SET {UPDATE_ALL}
            RETURNING vehicle_id, bucket, points
        )
        SELECT vehicle_id, bucket, points FROM written"
    )
}

/// Every vehicle's row for the hour `$1` (the bulk close).
pub fn hour() -> String {
    hourly_from(
        "pts AS (
            SELECT vehicle_id, $1::timestamptz AS bucket, ts, location, speed_kmh, fuel_pct
            FROM vehicle_telemetry
            WHERE ts >= $1::timestamptz AND ts < $1::timestamptz + interval '1 hour'
        )",
    )
}

/// The rows of the pairs `($1[i], $2[i])` (late points), each from its own hour's points only.
pub fn pairs() -> String {
    hourly_from(
        "wanted AS (
            SELECT DISTINCT vehicle_id, bucket
            FROM unnest($1::uuid[], $2::timestamptz[]) AS w(vehicle_id, bucket)
        ),
        pts AS (
            SELECT w.vehicle_id, w.bucket, t.ts, t.location, t.speed_kmh, t.fuel_pct
            FROM wanted w
            JOIN vehicle_telemetry t
              ON t.vehicle_id = w.vehicle_id
             AND t.ts >= w.bucket AND t.ts < w.bucket + interval '1 hour'
        )",
    )
}

/// After the pairs `($1[i], $2[i])` were recomputed: the next bucket of each vehicle (within the
/// day after, not itself recomputed) starts its `entry_m` at a point that may have changed, so
/// its entry step is recomputed from the two rows' stored first/last points — no raw points
/// read. Returns the rows corrected.
pub const FIX_NEXT: &str = "
    WITH done AS (
        SELECT DISTINCT vehicle_id, bucket
        FROM unnest($1::uuid[], $2::timestamptz[]) AS d(vehicle_id, bucket)
    ),
    next AS (
        SELECT DISTINCT n.vehicle_id, n.bucket, n.first_lon, n.first_lat
        FROM done d
        CROSS JOIN LATERAL (
            SELECT h.vehicle_id, h.bucket, h.first_lon, h.first_lat FROM telemetry_hourly h
            WHERE h.vehicle_id = d.vehicle_id
              AND h.bucket > d.bucket AND h.bucket <= d.bucket + interval '1 day'
            ORDER BY h.bucket LIMIT 1
        ) n
        WHERE NOT EXISTS (SELECT 1 FROM done x
                          WHERE x.vehicle_id = n.vehicle_id AND x.bucket = n.bucket)
    ),
    entry AS (
        SELECT n.vehicle_id, n.bucket,
               coalesce((
                   SELECT ST_Distance(
                              ST_SetSRID(ST_MakePoint(p.last_lon, p.last_lat), 4326)::geography,
                              ST_SetSRID(ST_MakePoint(n.first_lon, n.first_lat), 4326)::geography)
                   FROM telemetry_hourly p
                   WHERE p.vehicle_id = n.vehicle_id
                     AND p.bucket < n.bucket AND p.bucket >= n.bucket - interval '1 day'
                   ORDER BY p.bucket DESC LIMIT 1
               ), 0) AS entry_m
        FROM next n
    )
    UPDATE telemetry_hourly h
    SET distance_m = h.distance_m - h.entry_m + e.entry_m, entry_m = e.entry_m
    FROM entry e
    WHERE h.vehicle_id = e.vehicle_id AND h.bucket = e.bucket AND h.entry_m <> e.entry_m
    RETURNING h.vehicle_id, h.bucket";

/// Daily rows from the hourly rows of `days` (a CTE `days(vehicle_id, bucket)` of UTC days).
/// Averages are weighted by the points that carried the value; the day's entry step is its
/// first hour's.
fn daily_from(days: &str) -> String {
    format!(
        "WITH {days}
        INSERT INTO telemetry_daily ({COLUMNS})
        SELECT h.vehicle_id, d.bucket, sum(h.points), sum(h.speed_points),
               sum(h.avg_speed_kmh * h.speed_points) / nullif(sum(h.speed_points), 0),
               max(h.max_speed_kmh), sum(h.fuel_points),
               sum(h.avg_fuel_pct * h.fuel_points) / nullif(sum(h.fuel_points), 0),
               min(h.min_fuel_pct),
               (array_agg(h.entry_m ORDER BY h.bucket))[1], sum(h.distance_m),
               min(h.first_ts), max(h.last_ts),
               (array_agg(h.first_lon ORDER BY h.bucket))[1],
               (array_agg(h.first_lat ORDER BY h.bucket))[1],
               (array_agg(h.last_lon ORDER BY h.bucket DESC))[1],
               (array_agg(h.last_lat ORDER BY h.bucket DESC))[1],
               ST_Envelope(ST_Collect(h.bounds)), now()
        FROM days d
        JOIN telemetry_hourly h
          ON h.vehicle_id = d.vehicle_id
         AND h.bucket >= d.bucket AND h.bucket < d.bucket + interval '1 day'
        GROUP BY h.vehicle_id, d.bucket
        ON CONFLICT (vehicle_id, bucket) DO UPDATE SET {UPDATE_ALL}"
    )
}

/// Every vehicle's row for the UTC day `$1`.
pub fn day() -> String {
    daily_from(
        "days AS (
            SELECT DISTINCT vehicle_id, $1::timestamptz AS bucket FROM telemetry_hourly
            WHERE bucket >= $1::timestamptz AND bucket < $1::timestamptz + interval '1 day'
        )",
    )
}

/// The rows of the (vehicle, day) pairs `($1[i], $2[i])`.
pub fn day_pairs() -> String {
    daily_from(
        "days AS (
            SELECT DISTINCT vehicle_id, bucket
            FROM unnest($1::uuid[], $2::timestamptz[]) AS d(vehicle_id, bucket)
        )",
    )
}
