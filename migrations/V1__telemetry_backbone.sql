-- Telemetry backbone: fleet registry, partitioned history, latest positions, dead letters.
-- Table and column names here are a public interface: analysts query them with SQL.

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE vehicles (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    external_id  text NOT NULL UNIQUE CHECK (length(external_id) BETWEEN 1 AND 128),
    vin          text,
    plate        text,
    make         text,
    model        text,
    year         integer CHECK (year BETWEEN 1900 AND 2200),
    vehicle_type text,
    status       text NOT NULL DEFAULT 'active'
                 CHECK (status IN ('active', 'maintenance', 'inactive', 'retired')),
    specs        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vehicles_status_type_idx ON vehicles (status, vehicle_type);

CREATE TABLE drivers (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL CHECK (length(name) > 0),
    license_number text UNIQUE,
    status         text NOT NULL DEFAULT 'off_duty'
                   CHECK (status IN ('available', 'on_job', 'on_break', 'off_duty', 'inactive')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX drivers_status_idx ON drivers (status);

-- History: one partition per UTC day, created ahead by the maintenance task and on demand
-- by the writer for late points. No DEFAULT partition: a row without its day is a bug to see.
-- No foreign key to vehicles, no triggers, no GiST: each of those halves COPY speed, and the
-- key (vehicle_id, ts) keeps the table distributable by vehicle_id under Citus.
CREATE TABLE vehicle_telemetry (
    ts          timestamptz NOT NULL,
    vehicle_id  uuid NOT NULL,
    location    geometry(Point, 4326) NOT NULL,
    speed_kmh   double precision,
    heading_deg double precision,
    fuel_pct    double precision,
    accuracy_m  double precision,
    engine      jsonb,
    received_at timestamptz NOT NULL,
    -- The idempotency key: redelivered messages collide here and are skipped.
    CONSTRAINT vehicle_telemetry_vehicle_ts_key UNIQUE (vehicle_id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX vehicle_telemetry_ts_brin ON vehicle_telemetry USING brin (ts);

-- Latest point per vehicle: small, hot, and the only place with a spatial index. Every batch
-- rewrites most of its rows (never HOT: the GiST column changes), so it is kept lean — no index
-- beyond the key and the GiST (each one costs every upsert) — and vacuumed aggressively, since
-- bloat measurably doubled the upsert cost in the ingest benchmark.
CREATE TABLE vehicle_positions (
    vehicle_id  uuid PRIMARY KEY,
    ts          timestamptz NOT NULL,
    location    geometry(Point, 4326) NOT NULL,
    speed_kmh   double precision,
    heading_deg double precision,
    fuel_pct    double precision,
    accuracy_m  double precision,
    received_at timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0);
CREATE INDEX vehicle_positions_location_gist ON vehicle_positions USING gist (location);

-- Everything that could not be stored, with why. Nothing is dropped silently.
CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL
);
CREATE INDEX dead_letters_received_at_idx ON dead_letters (received_at);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, received_at);
