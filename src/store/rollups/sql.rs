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
/// `source`. One sort (the window) and one pass compute the aggregates and the steps between
/// a bucket's points; then, per bucket only, index probes on `(vehicle_id, ts)` fetch its first
/// and last points and the vehicle's last point in the day before it (the entry step).
/// Distances are `ST_DistanceSpheroid` on the geometries (the same geodesic as a geography
/// `ST_Distance`, without casting every point). Returns the pairs written and their points.
fn hourly_from(source: &str) -> String {
    format!(
        "WITH {source},
        steps AS (
            SELECT vehicle_id, bucket, ts, location, speed_kmh, fuel_pct,
                   ST_DistanceSpheroid(lag(location) OVER w, location) AS step
            FROM pts
            WINDOW w AS (PARTITION BY vehicle_id, bucket ORDER BY ts)
        ),
        agg AS (
            SELECT vehicle_id, bucket, count(*) AS points, count(speed_kmh) AS speed_points,
                   avg(speed_kmh) AS avg_speed, max(speed_kmh) AS max_speed,
                   count(fuel_pct) AS fuel_points, avg(fuel_pct) AS avg_fuel,
                   min(fuel_pct) AS min_fuel, coalesce(sum(step), 0) AS inner_m,
                   min(ts) AS first_ts, max(ts) AS last_ts, ST_Extent(location) AS extent
            FROM steps
            GROUP BY vehicle_id, bucket
        ),
        ends AS (
            SELECT a.*, f.location AS first_at, l.location AS last_at,
                   coalesce(ST_DistanceSpheroid(p.location, f.location), 0) AS entry_m
            FROM agg a
            -- LATERAL … LIMIT 1: one index probe per bucket, never a join over the partition.
            CROSS JOIN LATERAL (
                SELECT location FROM vehicle_telemetry t
                WHERE t.vehicle_id = a.vehicle_id AND t.ts = a.first_ts LIMIT 1
            ) f
            CROSS JOIN LATERAL (
                SELECT location FROM vehicle_telemetry t
                WHERE t.vehicle_id = a.vehicle_id AND t.ts = a.last_ts LIMIT 1
            ) l
            LEFT JOIN LATERAL (
                SELECT t.location FROM vehicle_telemetry t
                WHERE t.vehicle_id = a.vehicle_id
                  AND t.ts < a.bucket AND t.ts >= a.bucket - interval '1 day'
                ORDER BY t.ts DESC LIMIT 1
            ) p ON true
        ),
        written AS (
            INSERT INTO telemetry_hourly ({COLUMNS})
            SELECT vehicle_id, bucket, points, speed_points, avg_speed, max_speed, fuel_points,
                   avg_fuel, min_fuel, entry_m, entry_m + inner_m, first_ts, last_ts,
                   ST_X(first_at), ST_Y(first_at), ST_X(last_at), ST_Y(last_at),
                   ST_SetSRID(extent::geometry, 4326), now()
            FROM ends
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
                   SELECT ST_DistanceSpheroid(
                              ST_SetSRID(ST_MakePoint(p.last_lon, p.last_lat), 4326),
                              ST_SetSRID(ST_MakePoint(n.first_lon, n.first_lat), 4326))
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

/// Raises a `maintenance_due:<kind>` alert (with its audit row, actor NULL: the node acted)
/// for every vehicle whose type has a schedule it has now passed: `interval_km` driven, or
/// `interval_months` gone by, since its last closed maintenance record of that kind (or since
/// it was registered) — unless such an alert was already raised since then. Distance comes
/// from the daily rows after the starting day and the hourly rows of the starting day. Run
/// under the job's exclusive lock, so two nodes never raise one alert twice.
pub const MAINTENANCE_DUE: &str = "
    WITH due AS (
        SELECT v.id AS vehicle_id, s.kind, s.interval_km, s.interval_months, b.since,
               (SELECT coalesce(sum(d.distance_m), 0) FROM telemetry_daily d
                WHERE d.vehicle_id = v.id
                  AND d.bucket >= date_trunc('day', b.since, 'UTC') + interval '1 day')
             + (SELECT coalesce(sum(h.distance_m), 0) FROM telemetry_hourly h
                WHERE h.vehicle_id = v.id
                  AND h.bucket >= date_trunc('hour', b.since, 'UTC')
                  AND h.bucket < date_trunc('day', b.since, 'UTC') + interval '1 day') AS metres
        FROM maintenance_schedules s
        JOIN vehicles v ON v.vehicle_type = s.vehicle_type AND v.status <> 'retired'
        CROSS JOIN LATERAL (
            SELECT greatest(v.created_at, (
                SELECT max(m.closed_at) FROM maintenance_records m
                WHERE m.vehicle_id = v.id AND m.kind = s.kind AND m.closed_at IS NOT NULL
            )) AS since
        ) b
    ),
    raised AS (
        INSERT INTO alerts (entity, entity_id, kind, severity, message)
        SELECT 'vehicle', due.vehicle_id, 'maintenance_due:' || due.kind, 'warning',
               format('%s due: %s km driven and %s days since %s (every %s)', due.kind,
                      round((due.metres / 1000)::numeric, 1),
                      floor(extract(epoch FROM now() - due.since) / 86400),
                      to_char(due.since AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                      concat_ws(' or ', due.interval_km || ' km', due.interval_months || ' months'))
        FROM due
        WHERE ((due.interval_km IS NOT NULL AND due.metres >= due.interval_km * 1000)
               OR (due.interval_months IS NOT NULL
                   AND due.since + make_interval(months => due.interval_months) <= now()))
          AND NOT EXISTS (SELECT 1 FROM alerts a
                          WHERE a.entity_id = due.vehicle_id
                            AND a.kind = 'maintenance_due:' || due.kind
                            AND a.created_at >= due.since)
        RETURNING id, entity, entity_id, kind, severity, message, created_at
    ),
    audited AS (
        INSERT INTO audit_log (entity, entity_id, action, actor, after)
        SELECT 'alert', r.id, 'raise', NULL,
               jsonb_build_object('id', r.id, 'entity', r.entity, 'entity_id', r.entity_id,
                                  'kind', r.kind, 'severity', r.severity, 'message', r.message)
        FROM raised r
    )
    SELECT count(*) FROM raised";
