-- History for analysts (issue 9): hourly and daily rollups per vehicle, kept incrementally.
--
-- The rollup job (src/rollup/) closes each UTC hour once, in bulk, a grace period after it ends
-- (`rollup_hours` records it); a point that arrives after its hour closed is "late": the ingest
-- writer that stores it also appends its (vehicle, hour) to `rollup_dirty` in the same
-- transaction, and the job recomputes only that pair (and the pair after it, whose first step
-- starts at the late point's hour). No triggers on telemetry (DESIGN's scale-out rules): the
-- writer knows which of its rows are late.
--
-- Keys start with vehicle_id so these tables distribute with the telemetry under Citus.

-- One row per vehicle per UTC hour with at least one point. `distance_m` sums the geodesic
-- steps between consecutive points of the vehicle, including the step from its last point
-- before the hour (if that point is at most a day before the hour starts), so summing any run
-- of buckets gives the distance over it. `speed_points` / `fuel_points` count the points that
-- carried a speed / fuel level: the averages are over those, and daily rows weight by them.
CREATE TABLE telemetry_hourly (
    vehicle_id    uuid NOT NULL,
    bucket        timestamptz NOT NULL CHECK (date_trunc('hour', bucket, 'UTC') = bucket),
    points        integer NOT NULL CHECK (points > 0),
    speed_points  integer NOT NULL CHECK (speed_points BETWEEN 0 AND points),
    avg_speed_kmh double precision,
    max_speed_kmh double precision,
    fuel_points   integer NOT NULL CHECK (fuel_points BETWEEN 0 AND points),
    avg_fuel_pct  double precision,
    min_fuel_pct  double precision,
    -- The step into the bucket: from the vehicle's last point before it (at most a day before
    -- the bucket starts) to its first point; part of distance_m. Kept apart so that when a late
    -- point changes that previous point, this row is corrected without re-reading its points.
    entry_m       double precision NOT NULL CHECK (entry_m >= 0),
    distance_m    double precision NOT NULL CHECK (distance_m >= entry_m),
    first_ts      timestamptz NOT NULL,
    last_ts       timestamptz NOT NULL,
    first_lon     double precision NOT NULL,
    first_lat     double precision NOT NULL,
    last_lon      double precision NOT NULL,
    last_lat      double precision NOT NULL,
    -- The bounding box of the bucket's points (a point or a line when they are degenerate):
    -- QGIS and other GIS tools load this table as a layer.
    bounds        geometry(Geometry, 4326) NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle_id, bucket),
    CHECK (first_ts >= bucket AND last_ts < bucket + interval '1 hour' AND first_ts <= last_ts)
) WITH (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
-- Fleet-wide ranges (exports, retention) read by time.
CREATE INDEX telemetry_hourly_bucket_idx ON telemetry_hourly (bucket);

-- The same per UTC day, computed from the day's hourly rows (never from raw points), kept forever.
CREATE TABLE telemetry_daily (
    LIKE telemetry_hourly INCLUDING DEFAULTS,
    PRIMARY KEY (vehicle_id, bucket),
    CHECK (date_trunc('day', bucket, 'UTC') = bucket),
    CHECK (points > 0),
    CHECK (speed_points BETWEEN 0 AND points AND fuel_points BETWEEN 0 AND points),
    CHECK (entry_m >= 0 AND distance_m >= entry_m),
    CHECK (first_ts >= bucket AND last_ts < bucket + interval '1 day' AND first_ts <= last_ts)
);
CREATE INDEX telemetry_daily_bucket_idx ON telemetry_daily (bucket);

-- Hours the job has closed in bulk (all vehicles at once), empty hours included, so that
-- "is this hour rolled up?" is one lookup for the job, for retention and for the track API.
CREATE TABLE rollup_hours (
    bucket      timestamptz PRIMARY KEY CHECK (date_trunc('hour', bucket, 'UTC') = bucket),
    points      bigint NOT NULL CHECK (points >= 0),
    vehicles    integer NOT NULL CHECK (vehicles >= 0),
    took_ms     double precision NOT NULL,
    rolled_at   timestamptz NOT NULL DEFAULT now()
);

-- Late points' (vehicle, hour), appended by the ingest writer in the batch's transaction.
-- Append-only with no unique key on the pair, so a writer never waits on the job (an
-- ON CONFLICT against a row the job is deleting would); the job takes rows with
-- DELETE ... SKIP LOCKED and folds duplicates. Small and vacuum-friendly: rows live seconds.
CREATE TABLE rollup_dirty (
    vehicle_id uuid NOT NULL,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    bucket     timestamptz NOT NULL CHECK (date_trunc('hour', bucket, 'UTC') = bucket),
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vehicle_id, id)
) WITH (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000);
CREATE INDEX rollup_dirty_bucket_idx ON rollup_dirty (bucket);
