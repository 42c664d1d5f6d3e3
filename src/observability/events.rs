//! Metrics of geofence events (issue 10): judged in ingest, delivered through the outbox.
//! Same grammar: `meridian_geofence_*`, units in the name, counters ending in `_total`.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

pub const GEOFENCE_EVENTS: &str = "meridian_geofence_events_total";
pub const GEOFENCE_JUDGE_DURATION: &str = "meridian_geofence_judge_duration_seconds";
pub const GEOFENCES_LOADED: &str = "meridian_geofences_loaded";
pub const OUTBOX_PUBLISHED: &str = "meridian_geofence_outbox_published_total";
pub const OUTBOX_POSTPONED: &str = "meridian_geofence_outbox_postponed_total";
pub const OUTBOX_ERRORS: &str = "meridian_geofence_outbox_errors_total";
pub const OUTBOX_LAG: &str = "meridian_geofence_outbox_lag_seconds";
pub const OUTBOX_ROUND_DURATION: &str = "meridian_geofence_outbox_round_duration_seconds";

pub(super) fn describe() {
    describe_counter!(
        GEOFENCE_EVENTS,
        "Geofence events committed by this node's ingest"
    );
    describe_histogram!(
        GEOFENCE_JUDGE_DURATION,
        "CPU time judging one batch's points against the fences (the index part, not the SQL)"
    );
    describe_gauge!(GEOFENCES_LOADED, "Fences in this node's in-memory index");
    describe_counter!(
        OUTBOX_PUBLISHED,
        "Events published to MQTT (acknowledged by the broker) and fanned out to webhooks"
    );
    describe_counter!(
        OUTBOX_POSTPONED,
        "Events whose round the broker did not acknowledge in time (retried with backoff)"
    );
    describe_counter!(OUTBOX_ERRORS, "Outbox rounds that failed on the database");
    describe_histogram!(
        OUTBOX_LAG,
        "From an event's commit to the broker acknowledging its publication"
    );
    describe_histogram!(OUTBOX_ROUND_DURATION, "Time of one outbox round");
}

pub fn geofence_judged(events: u64, spent: Duration) {
    if events > 0 {
        counter!(GEOFENCE_EVENTS).increment(events);
    }
    histogram!(GEOFENCE_JUDGE_DURATION).record(spent.as_secs_f64());
}

pub fn events_pruned(events: u64, deliveries: u64) {
    if events + deliveries > 0 {
        tracing::info!(
            events,
            deliveries,
            "deleted geofence events and webhook deliveries past their retention"
        );
    }
}

pub fn geofences_loaded(n: usize) {
    gauge!(GEOFENCES_LOADED).set(n as f64);
}

pub fn outbox_published(events: usize, deliveries: u64, lag_s: &[f64], spent: Duration) {
    counter!(OUTBOX_PUBLISHED).increment(events as u64);
    super::webhook_deliveries_queued(deliveries);
    let lag = histogram!(OUTBOX_LAG);
    for s in lag_s {
        lag.record(*s);
    }
    histogram!(OUTBOX_ROUND_DURATION).record(spent.as_secs_f64());
}

pub fn outbox_postponed(events: usize, reason: &str) {
    tracing::warn!(
        events,
        reason,
        "geofence events not published; retrying later"
    );
    counter!(OUTBOX_POSTPONED).increment(events as u64);
}

pub fn outbox_failed(error: &str) {
    tracing::warn!(error, "geofence outbox round failed; retrying");
    counter!(OUTBOX_ERRORS).increment(1);
}
