-- Geofence events (issue 10): judged in the ingest path, written with the telemetry batch that
-- caused them, delivered at least once to MQTT and to webhooks through an outbox.

-- Per-fence event settings (hysteresis, points to confirm, dwell, accuracy), validated by the API.
ALTER TABLE geofences ADD COLUMN properties jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Every node's in-memory fence index hears each changed fence by id (TRUNCATE: '*', reload all).
-- Fences are a small admin table, so a row trigger costs nothing that matters.
CREATE FUNCTION meridian_notify_geofence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('meridian_geofences', '*');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('meridian_geofences', OLD.id::text);
    ELSE
        PERFORM pg_notify('meridian_geofences', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER geofences_notify AFTER INSERT OR UPDATE OR DELETE ON geofences
    FOR EACH ROW EXECUTE FUNCTION meridian_notify_geofence();
CREATE TRIGGER geofences_notify_truncate AFTER TRUNCATE ON geofences
    FOR EACH STATEMENT EXECUTE FUNCTION meridian_notify_geofence();

-- The point before the latest, kept by the position upsert from the row it replaces and
-- returned by it: judging starts from there, without a read or a lock of its own (the upsert
-- already locks each vehicle's row, which is what serialises two nodes judging one vehicle).
ALTER TABLE vehicle_positions
    ADD COLUMN prev_ts  timestamptz,
    ADD COLUMN prev_lon double precision,
    ADD COLUMN prev_lat double precision;

-- Which fences each vehicle is inside (debounced), and any run of points pointing the other way
-- that has not yet confirmed a change. A row exists only while the vehicle is inside or such a
-- run is under way, so the table holds about as many rows as vehicles inside fences. Keyed by
-- vehicle first (it is distributed with the telemetry); no foreign keys, no triggers. Read after
-- the batch's position upsert has locked the vehicle's row, so two nodes never judge one
-- vehicle at once.
CREATE TABLE geofence_state (
    vehicle_id uuid NOT NULL,
    fence_id   uuid NOT NULL,
    inside     boolean NOT NULL,
    -- When the current state began, on the points' own clock (the event's ts).
    since      timestamptz NOT NULL,
    -- Whether the dwell event for this stay has been raised.
    dwelt      boolean NOT NULL DEFAULT false,
    -- Consecutive points beyond the hysteresis on the other side, and the first of them.
    streak     integer NOT NULL DEFAULT 0 CHECK (streak >= 0),
    streak_ts  timestamptz,
    streak_lon double precision,
    streak_lat double precision,
    PRIMARY KEY (vehicle_id, fence_id)
);
CREATE INDEX geofence_state_fence_idx ON geofence_state (fence_id);

-- Every event ever raised. `id` is the idempotency key deliveries carry. `xid` orders the live
-- stream: an event is streamed once every transaction that could still commit an earlier one has
-- ended, so a client resuming after the last event it saw misses nothing (see `/v1/stream`).
CREATE TABLE geofence_events (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    vehicle_id  uuid NOT NULL,
    fence_id    uuid NOT NULL,
    external_id text NOT NULL,
    type        text NOT NULL CHECK (type IN ('enter', 'exit', 'dwell')),
    ts          timestamptz NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (vehicle_id, id)
);
CREATE INDEX geofence_events_id_idx ON geofence_events (id);
CREATE INDEX geofence_events_fence_ts_idx ON geofence_events (fence_id, ts);
CREATE INDEX geofence_events_ts_idx ON geofence_events (ts);
CREATE INDEX geofence_events_xid_idx ON geofence_events (xid, id);

-- Events still to publish to MQTT and fan out to webhooks: inserted with the event, deleted by
-- the delivery worker (any node, SKIP LOCKED) in the transaction that records the fan-out.
CREATE TABLE geofence_outbox (
    vehicle_id uuid NOT NULL,
    event_id   bigint NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    next_at    timestamptz NOT NULL DEFAULT now(),
    last_error text,
    PRIMARY KEY (vehicle_id, event_id)
);
CREATE INDEX geofence_outbox_due_idx ON geofence_outbox (next_at, event_id);

-- Webhook endpoints. The secret signs each body (HMAC-SHA256), so it is kept as given; the API
-- never shows it again. NULL `fence_ids` means every fence.
CREATE TABLE webhooks (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    url                  text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    secret               text NOT NULL CHECK (length(secret) BETWEEN 16 AND 200),
    fence_ids            uuid[],
    event_types          text[] NOT NULL DEFAULT '{enter,exit,dwell}'
                         CHECK (event_types <@ '{enter,exit,dwell}' AND cardinality(event_types) > 0),
    enabled              boolean NOT NULL DEFAULT true,
    disabled_reason      text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- One row per (webhook, event) to deliver: pending until a 2xx, retried with exponential
-- backoff, failed when the retries run out.
CREATE TABLE webhook_deliveries (
    webhook_id   uuid NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    event_id     bigint NOT NULL,
    vehicle_id   uuid NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL DEFAULT now(),
    last_status  integer,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_failed_idx ON webhook_deliveries (webhook_id, event_id) WHERE status = 'failed';
-- Retention keeps an event while a delivery of it is pending.
CREATE INDEX webhook_deliveries_pending_event_idx ON webhook_deliveries (event_id) WHERE status = 'pending';

-- Nodes with clients streaming positions (`/v1/stream?positions=true`) hold a lease here,
-- renewed every second. While any lease is live, every node's ingest writers announce every
-- position they commit (NOTIFY), not only those of the vehicles the live index watches: the
-- cost of announcing all positions is paid only while someone is watching them.
CREATE TABLE position_streams (
    node  text PRIMARY KEY,
    until timestamptz NOT NULL
);
