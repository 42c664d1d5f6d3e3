-- The live index learns per driver (issue 8, item 5): a change to dispatches or maintenance
-- records tells every node WHICH drivers and vehicles changed, so a node re-reads their
-- availability instead of reloading every available driver (20k rows) per dispatch.
--
-- Payloads on `meridian_availability`:
--   `drivers <uuid> <uuid> ...`   re-read these drivers' shifts
--   `vehicles <uuid> <uuid> ...`  re-read the shifts on these vehicles
--   a bare table name (`drivers`, `shifts`, `vehicles`, `dispatches`, ...) reload everything
--     (V4's statement triggers on the rarely changed admin tables, and TRUNCATE here).
-- The view excludes a shift when its driver OR its vehicle has an active dispatch, so a
-- dispatch names both.

DROP TRIGGER dispatches_notify ON dispatches;
DROP TRIGGER maintenance_records_notify ON maintenance_records;

-- One notification per 200 ids: 200 × 37 bytes plus the kind stays under the 8000-byte limit.
CREATE FUNCTION meridian_notify_ids(kind text, ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    chunk constant integer := 200;
    n constant integer := coalesce(cardinality(ids), 0);
BEGIN
    FOR i IN 0 .. n - 1 BY chunk LOOP
        PERFORM pg_notify('meridian_availability',
                          kind || ' ' || array_to_string(ids[i + 1 : i + chunk], ' '));
    END LOOP;
END $$;

-- Only rows whose active-ness (or crew, while active) changed notify: the set of active
-- (id, driver, vehicle) before the statement against the set after. Inserting an active
-- dispatch, ending one (completed, cancelled, recalled) or deleting one notifies; a progress
-- step (dispatched → en_route → on_site → returning) leaves the set equal and sends nothing.
CREATE FUNCTION meridian_dispatches_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    drivers uuid[];
    vehicles uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT driver_id), array_agg(DISTINCT vehicle_id)
        INTO drivers, vehicles
        FROM new_rows WHERE status IN ('dispatched', 'en_route', 'on_site', 'returning');
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT driver_id), array_agg(DISTINCT vehicle_id)
        INTO drivers, vehicles
        FROM old_rows WHERE status IN ('dispatched', 'en_route', 'on_site', 'returning');
    ELSE
        WITH was AS (SELECT id, driver_id, vehicle_id FROM old_rows
                     WHERE status IN ('dispatched', 'en_route', 'on_site', 'returning')),
             now_ AS (SELECT id, driver_id, vehicle_id FROM new_rows
                      WHERE status IN ('dispatched', 'en_route', 'on_site', 'returning')),
             changed AS ((TABLE was EXCEPT TABLE now_) UNION ALL (TABLE now_ EXCEPT TABLE was))
        SELECT array_agg(DISTINCT driver_id), array_agg(DISTINCT vehicle_id)
        INTO drivers, vehicles
        FROM changed;
    END IF;
    PERFORM meridian_notify_ids('drivers', drivers);
    PERFORM meridian_notify_ids('vehicles', vehicles);
    RETURN NULL;
END $$;

CREATE TRIGGER dispatches_inserted_notify AFTER INSERT ON dispatches
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_dispatches_changed();
CREATE TRIGGER dispatches_updated_notify AFTER UPDATE ON dispatches
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_dispatches_changed();
CREATE TRIGGER dispatches_deleted_notify AFTER DELETE ON dispatches
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_dispatches_changed();
CREATE TRIGGER dispatches_truncated_notify AFTER TRUNCATE ON dispatches
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_notify_change('meridian_availability');

-- The same for maintenance: an open record (closed_at NULL) keeps its vehicle out.
CREATE FUNCTION meridian_maintenance_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    vehicles uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT vehicle_id) INTO vehicles
        FROM new_rows WHERE closed_at IS NULL;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT vehicle_id) INTO vehicles
        FROM old_rows WHERE closed_at IS NULL;
    ELSE
        WITH was AS (SELECT id, vehicle_id FROM old_rows WHERE closed_at IS NULL),
             now_ AS (SELECT id, vehicle_id FROM new_rows WHERE closed_at IS NULL),
             changed AS ((TABLE was EXCEPT TABLE now_) UNION ALL (TABLE now_ EXCEPT TABLE was))
        SELECT array_agg(DISTINCT vehicle_id) INTO vehicles FROM changed;
    END IF;
    PERFORM meridian_notify_ids('vehicles', vehicles);
    RETURN NULL;
END $$;

CREATE TRIGGER maintenance_records_inserted_notify AFTER INSERT ON maintenance_records
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_maintenance_changed();
CREATE TRIGGER maintenance_records_updated_notify AFTER UPDATE ON maintenance_records
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_maintenance_changed();
CREATE TRIGGER maintenance_records_deleted_notify AFTER DELETE ON maintenance_records
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_maintenance_changed();
CREATE TRIGGER maintenance_records_truncated_notify AFTER TRUNCATE ON maintenance_records
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_notify_change('meridian_availability');
