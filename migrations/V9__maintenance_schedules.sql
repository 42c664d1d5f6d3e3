-- Maintenance due (issue 9, item 5): recurring rules per vehicle type. When a vehicle of that
-- type has driven `interval_km` (summed from the rollups) or `interval_months` have passed since
-- its last closed maintenance record of the same `kind` (or since it was registered), the
-- rollup job raises an `alerts` row of kind `maintenance_due:<kind>` — once per interval.
CREATE TABLE maintenance_schedules (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vehicle_type    text NOT NULL CHECK (length(vehicle_type) BETWEEN 1 AND 100),
    -- Matches `maintenance_records.kind` exactly: closing a record of this kind restarts the interval.
    kind            text NOT NULL CHECK (length(kind) BETWEEN 1 AND 200),
    interval_km     numeric(12, 1) CHECK (interval_km > 0),
    interval_months integer CHECK (interval_months BETWEEN 1 AND 1200),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (interval_km IS NOT NULL OR interval_months IS NOT NULL),
    UNIQUE (vehicle_type, kind)
);

-- The job's lookups: a vehicle's latest closed record of a kind, and its alerts of a kind.
CREATE INDEX maintenance_records_closed_kind_idx
    ON maintenance_records (vehicle_id, kind, closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX alerts_entity_kind_idx ON alerts (entity_id, kind, created_at);
