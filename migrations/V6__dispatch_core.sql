-- Dispatch core (issue 8), the schema: customers, jobs, dispatches, the queue, the audit trail,
-- maintenance records and alerts. This is the one place where the database itself must make
-- mistakes impossible: whatever a client, a node or a hand-typed INSERT does, a driver, a
-- vehicle and a job each have at most one active dispatch, a dispatch's driver and vehicle are
-- the ones on its shift, and a vehicle in maintenance (or not `active`) is never dispatched.
-- These tables are small reference tables; the telemetry rules (no triggers, no FKs) do not
-- apply to them.

CREATE TABLE customers (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    contact    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(contact) = 'object'),
    -- Soft delete: jobs and the audit trail keep pointing at a customer who left.
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A job: what has to be picked up where, by which kind of vehicle, how urgently.
-- `pending` until dispatched, `queued` while nobody fits, `dispatched` while a dispatch is
-- active, then `completed` or `cancelled`. (A recalled dispatch puts its job back to pending.)
CREATE TABLE jobs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reference    text NOT NULL UNIQUE CHECK (length(reference) BETWEEN 1 AND 200),
    customer_id  uuid REFERENCES customers (id),
    pickup       geometry(Point, 4326) NOT NULL,
    dropoff      geometry(Point, 4326),
    priority     smallint NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9), -- 9 most urgent
    vehicle_type text NOT NULL CHECK (length(vehicle_type) BETWEEN 1 AND 200),
    time_window  tstzrange CHECK (time_window IS NULL OR NOT isempty(time_window)),
    max_radius_m double precision CHECK (max_radius_m > 0 AND max_radius_m <= 20037508),
    notes        text CHECK (length(notes) <= 10000),
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'queued', 'dispatched', 'completed', 'cancelled')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_customer_idx ON jobs (customer_id);
CREATE INDEX jobs_status_idx ON jobs (status, requested_at);

-- Lets a dispatch reference "this shift, with this driver and this vehicle" in one foreign key.
ALTER TABLE shifts ADD CONSTRAINT shifts_id_driver_vehicle_key UNIQUE (id, driver_id, vehicle_id);

-- A dispatch: one driver, on one shift with its vehicle, sent to one job. Each step of the
-- status has its own timestamp, set when the step is reached.
--   dispatched → en_route → on_site → (returning →) completed; cancelled / recalled from any
--   active state. The active states are the four before completed.
CREATE TABLE dispatches (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id        uuid NOT NULL REFERENCES jobs (id),
    driver_id     uuid NOT NULL REFERENCES drivers (id),
    vehicle_id    uuid NOT NULL REFERENCES vehicles (id),
    shift_id      uuid NOT NULL,
    -- The API key that dispatched; NULL when the node did it on its own (queue drain).
    api_key_id    uuid REFERENCES api_keys (id),
    status        text NOT NULL DEFAULT 'dispatched'
                  CHECK (status IN ('dispatched', 'en_route', 'on_site', 'returning',
                                    'completed', 'cancelled', 'recalled')),
    distance_m    double precision CHECK (distance_m >= 0),
    dispatched_at timestamptz NOT NULL DEFAULT now(),
    en_route_at   timestamptz,
    on_site_at    timestamptz,
    returning_at  timestamptz,
    completed_at  timestamptz,
    cancelled_at  timestamptz,
    recalled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (shift_id, driver_id, vehicle_id) REFERENCES shifts (id, driver_id, vehicle_id),
    -- A step reached has its time; an end state has exactly its own end time.
    CHECK (status NOT IN ('en_route') OR en_route_at IS NOT NULL),
    CHECK (status NOT IN ('on_site') OR on_site_at IS NOT NULL),
    CHECK (status NOT IN ('returning') OR returning_at IS NOT NULL),
    CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CHECK ((status = 'recalled') = (recalled_at IS NOT NULL))
);
-- At most one active dispatch per driver, per vehicle and per job: partial unique indexes, so
-- two nodes racing (or a direct INSERT) cannot double-book; the loser gets a unique violation.
CREATE UNIQUE INDEX dispatches_one_active_per_driver ON dispatches (driver_id)
    WHERE status IN ('dispatched', 'en_route', 'on_site', 'returning');
CREATE UNIQUE INDEX dispatches_one_active_per_vehicle ON dispatches (vehicle_id)
    WHERE status IN ('dispatched', 'en_route', 'on_site', 'returning');
CREATE UNIQUE INDEX dispatches_one_active_per_job ON dispatches (job_id)
    WHERE status IN ('dispatched', 'en_route', 'on_site', 'returning');
-- Foreign keys indexed (history lookups, and deletes of referenced rows).
CREATE INDEX dispatches_job_idx ON dispatches (job_id, dispatched_at);
CREATE INDEX dispatches_driver_idx ON dispatches (driver_id, dispatched_at);
CREATE INDEX dispatches_vehicle_idx ON dispatches (vehicle_id);
CREATE INDEX dispatches_shift_idx ON dispatches (shift_id, driver_id, vehicle_id);
CREATE INDEX dispatches_api_key_idx ON dispatches (api_key_id);
CREATE INDEX dispatches_status_idx ON dispatches (status, dispatched_at);

-- Maintenance: an open record (closed_at NULL) keeps its vehicle out of dispatch.
CREATE TABLE maintenance_records (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vehicle_id uuid NOT NULL REFERENCES vehicles (id),
    kind       text NOT NULL CHECK (length(kind) BETWEEN 1 AND 200),
    opened_at  timestamptz NOT NULL DEFAULT now(),
    closed_at  timestamptz CHECK (closed_at >= opened_at),
    cost       numeric(12, 2) CHECK (cost >= 0),
    provider   text CHECK (length(provider) <= 200),
    notes      text CHECK (length(notes) <= 10000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX maintenance_records_vehicle_idx ON maintenance_records (vehicle_id, opened_at);
CREATE INDEX maintenance_records_open_idx ON maintenance_records (vehicle_id) WHERE closed_at IS NULL;

CREATE TABLE alerts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    entity      text NOT NULL
                CHECK (entity IN ('vehicle', 'driver', 'job', 'dispatch', 'geofence', 'customer')),
    entity_id   uuid NOT NULL,
    kind        text NOT NULL CHECK (length(kind) BETWEEN 1 AND 200),
    severity    text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message     text CHECK (length(message) <= 10000),
    resolved_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_entity_idx ON alerts (entity, entity_id, created_at);
CREATE INDEX alerts_open_idx ON alerts (created_at) WHERE resolved_at IS NULL;

-- Vehicle rules a row-level CHECK cannot see. Both sides lock the vehicle row, so a dispatch
-- and a maintenance opening (or a status change) of the same vehicle serialize: whichever
-- commits second sees the first, under READ COMMITTED too (each statement below takes a
-- fresh snapshot after the lock is granted).
CREATE FUNCTION meridian_dispatchable_vehicle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    vstatus text;
BEGIN
    IF NEW.status NOT IN ('dispatched', 'en_route', 'on_site', 'returning') THEN
        RETURN NEW; -- history rows (imported, or closed) are not dispatches being made
    END IF;
    SELECT status INTO vstatus FROM vehicles WHERE id = NEW.vehicle_id FOR SHARE;
    IF vstatus IS DISTINCT FROM 'active' THEN
        RAISE EXCEPTION 'vehicle % is %, not active: it cannot be dispatched', NEW.vehicle_id, vstatus
            USING ERRCODE = 'check_violation', CONSTRAINT = 'dispatches_vehicle_active';
    END IF;
    IF EXISTS (SELECT 1 FROM maintenance_records
               WHERE vehicle_id = NEW.vehicle_id AND closed_at IS NULL) THEN
        RAISE EXCEPTION 'vehicle % has an open maintenance record: it cannot be dispatched', NEW.vehicle_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'dispatches_vehicle_not_in_maintenance';
    END IF;
    RETURN NEW;
END $$;
-- On insert (and a changed vehicle) only: a vehicle that goes into maintenance mid-dispatch
-- must not stop its driver from reporting the dispatch's progress.
CREATE TRIGGER dispatches_dispatchable_vehicle
    BEFORE INSERT OR UPDATE OF vehicle_id ON dispatches
    FOR EACH ROW EXECUTE FUNCTION meridian_dispatchable_vehicle();

CREATE FUNCTION meridian_lock_vehicle_for_maintenance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM vehicles WHERE id = NEW.vehicle_id FOR UPDATE;
    RETURN NEW;
END $$;
CREATE TRIGGER maintenance_records_lock_vehicle
    BEFORE INSERT OR UPDATE OF closed_at, vehicle_id ON maintenance_records
    FOR EACH ROW EXECUTE FUNCTION meridian_lock_vehicle_for_maintenance();

-- Jobs nobody can take yet, in the order they are offered: priority, then age. Dequeue is a
-- DELETE, so the table stays as small as the backlog; aggressive autovacuum keeps the dead
-- rows of a busy queue from slowing `FOR UPDATE SKIP LOCKED` scans.
CREATE TABLE dispatch_queue (
    job_id      uuid PRIMARY KEY REFERENCES jobs (id),
    priority    smallint NOT NULL CHECK (priority BETWEEN 0 AND 9),
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    -- The end of the job's time window: past it the job is cancelled, not offered.
    not_after   timestamptz
) WITH (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 200,
        autovacuum_analyze_scale_factor = 0.0, autovacuum_analyze_threshold = 200);
CREATE INDEX dispatch_queue_order_idx ON dispatch_queue (priority DESC, enqueued_at, job_id);

-- Who did what, when: one row per dispatch operation, written in the operation's transaction.
-- Partitioned by month (kept forever by default; old months can be detached and archived).
-- Partitions are created ahead by the maintenance task (`meridian_ensure_audit_partitions`);
-- no DEFAULT partition, so a missing month fails loudly instead of hiding rows.
CREATE TABLE audit_log (
    id        uuid NOT NULL DEFAULT gen_random_uuid(),
    at        timestamptz NOT NULL DEFAULT now(),
    entity    text NOT NULL
              CHECK (entity IN ('customer', 'job', 'dispatch', 'queue', 'maintenance', 'alert')),
    entity_id uuid NOT NULL,
    action    text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    -- The API key that acted; NULL for the node itself (queue drain, time-window expiry).
    actor     uuid,
    before    jsonb,
    after     jsonb,
    PRIMARY KEY (at, id)
) PARTITION BY RANGE (at);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, at);

-- Creates the monthly partitions of audit_log from the month holding `since` for `months`
-- months; idempotent. Months are UTC months.
CREATE FUNCTION meridian_ensure_audit_partitions(since timestamptz, months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    -- UTC wall-clock month start (timestamp without time zone), converted back per bound.
    first_month timestamp := date_trunc('month', since AT TIME ZONE 'UTC');
    lo timestamp;
    name text;
    created integer := 0;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        lo := first_month + make_interval(months => i);
        name := 'audit_log_' || to_char(lo, 'YYYY_MM');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)',
                           name, lo AT TIME ZONE 'UTC',
                           (lo + interval '1 month') AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;
SELECT meridian_ensure_audit_partitions(now() - interval '1 month', 4);

-- Availability follows dispatch: a driver with an active dispatch, or whose vehicle has one or
-- has an open maintenance record, is not available. Every reader of the view follows.
CREATE OR REPLACE VIEW driver_availability AS
SELECT s.id AS shift_id, s.driver_id, s.vehicle_id, s.during,
       v.external_id, v.vehicle_type
FROM shifts s
JOIN drivers d ON d.id = s.driver_id
JOIN vehicles v ON v.id = s.vehicle_id
WHERE d.status = 'available'
  AND v.status = 'active'
  AND s.during && tstzrange(now(), NULL)
  AND NOT EXISTS (SELECT 1 FROM dispatches x
                  WHERE (x.driver_id = s.driver_id OR x.vehicle_id = s.vehicle_id)
                    AND x.status IN ('dispatched', 'en_route', 'on_site', 'returning'))
  AND NOT EXISTS (SELECT 1 FROM maintenance_records m
                  WHERE m.vehicle_id = s.vehicle_id AND m.closed_at IS NULL);

-- Until the live index learns per-driver updates (issue 8, item 5), a change to dispatches or
-- maintenance tells every node to reload availability, as drivers/shifts/vehicles do.
CREATE TRIGGER dispatches_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON dispatches
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_notify_change('meridian_availability');
CREATE TRIGGER maintenance_records_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON maintenance_records
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_notify_change('meridian_availability');
