-- What every node's in-memory index of available drivers is built from, and how it learns of
-- changes made by any node (or by hand in psql).

-- Positions: each row records the transaction that last wrote it. A node polls for rows whose
-- writer is at or after the oldest transaction still running at its previous poll, so a
-- transaction that commits late (a writer with a long batch) is never skipped. xid8 never wraps.
ALTER TABLE vehicle_positions ADD COLUMN changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX vehicle_positions_changed_xid_idx ON vehicle_positions (changed_xid);

-- Who may be dispatched: an available driver on a shift with an active vehicle, where the shift
-- has not ended. Future shifts are included (the index checks "active now" at query time, so a
-- shift that starts later needs no reload). This view is THE definition of availability: the
-- in-memory index loads it and the benchmark's bare KNN SQL joins it. The dispatch issue adds
-- "and no active assignment" here, and every reader follows.
CREATE VIEW driver_availability AS
SELECT s.id AS shift_id, s.driver_id, s.vehicle_id, s.during,
       v.external_id, v.vehicle_type
FROM shifts s
JOIN drivers d ON d.id = s.driver_id
JOIN vehicles v ON v.id = s.vehicle_id
WHERE d.status = 'available'
  AND v.status = 'active'
  AND s.during && tstzrange(now(), NULL);

-- Any change to what availability is made of, or to API keys, tells every listening node.
-- Statement-level, so a bulk insert of 100k vehicles is one notification, not 100k.
CREATE FUNCTION meridian_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER drivers_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON drivers
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_notify_change('meridian_availability');
CREATE TRIGGER shifts_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON shifts
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_notify_change('meridian_availability');
CREATE TRIGGER vehicles_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vehicles
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_notify_change('meridian_availability');
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_notify_change('meridian_api_keys');
