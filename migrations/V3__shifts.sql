-- Shifts: a driver on a vehicle for a time range. The exclusion constraints make it impossible,
-- even under concurrent requests, for a driver or a vehicle to be on two overlapping shifts.
-- An open-ended shift has no upper bound; ending it early sets one.
CREATE TABLE shifts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    driver_id  uuid NOT NULL REFERENCES drivers (id),
    vehicle_id uuid NOT NULL REFERENCES vehicles (id),
    during     tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during)),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shifts_driver_no_overlap EXCLUDE USING gist (driver_id WITH =, during WITH &&),
    CONSTRAINT shifts_vehicle_no_overlap EXCLUDE USING gist (vehicle_id WITH =, during WITH &&)
);
CREATE INDEX shifts_during_idx ON shifts USING gist (during);
