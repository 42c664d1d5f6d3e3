-- What every node's in-memory index of available drivers is built from, and how it learns of
-- changes made by any node (or by hand in psql).

-- Positions reach every node's index by NOTIFY on `meridian_positions`, sent by the ingest
-- writer inside the transaction that upserts them, so a node hears exactly what committed. (An
-- earlier design polled a `changed_xid` column; its btree cost a quarter of ingest throughput.)

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
