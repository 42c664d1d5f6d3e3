//! Logs and metrics. Every metric Meridian emits is named here, once, with its unit in the
//! name (`_seconds`, `_rows`), counters ending in `_total`, and only low-cardinality labels
//! (a reason code, never a vehicle id). Ingest emits per batch, not per message.

mod events;
mod history;
mod live;
mod webhooks;

use std::sync::OnceLock;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub use events::*;
pub use history::*;
pub use live::*;
pub use webhooks::*;

pub const MESSAGES_RECEIVED: &str = "meridian_ingest_messages_received_total";
pub const MESSAGES_REDELIVERED: &str = "meridian_ingest_messages_redelivered_total";
pub const MESSAGES_ACKED: &str = "meridian_ingest_messages_acked_total";
pub const ACKS_FAILED: &str = "meridian_ingest_acks_failed_total";
pub const MESSAGES_IGNORED: &str = "meridian_ingest_messages_ignored_total";
pub const POINTS_STORED: &str = "meridian_ingest_points_stored_total";
pub const POINTS_DUPLICATE: &str = "meridian_ingest_points_duplicate_total";
pub const DEAD_LETTERS: &str = "meridian_ingest_dead_letters_total";
pub const FIELDS_DROPPED: &str = "meridian_ingest_fields_dropped_total";
pub const BATCH_ROWS: &str = "meridian_ingest_batch_rows";
pub const BATCH_DURATION: &str = "meridian_ingest_batch_duration_seconds";
pub const LAG: &str = "meridian_ingest_lag_seconds";
pub const WRITE_RETRIES: &str = "meridian_ingest_write_retries_total";
pub const WRITE_ERRORS: &str = "meridian_ingest_write_errors_total";
pub const BROKER_RECONNECTS: &str = "meridian_mqtt_reconnects_total";
pub const BROKER_CONNECTED: &str = "meridian_mqtt_connected";
pub const DELIVERY_OVERFLOW: &str = "meridian_mqtt_delivery_overflow_messages";
pub const DELIVERY_OVERFLOW_DROPPED: &str = "meridian_mqtt_delivery_overflow_dropped_total";
pub const DELIVERY_OVERFLOW_BYTES: &str = "meridian_mqtt_delivery_overflow_bytes";
pub const SUBSCRIPTIONS_REFUSED: &str = "meridian_mqtt_subscriptions_refused_total";
pub const CLOSED_BY_BROKER: &str = "meridian_mqtt_closed_by_broker_total";
pub const HTTP_REQUESTS: &str = "meridian_http_requests_total";
pub const HTTP_DURATION: &str = "meridian_http_request_duration_seconds";
pub const PARTITIONS_DROPPED: &str = "meridian_store_partitions_dropped_total";
pub const NOT_READY: &str = "meridian_readiness_failures_total";
pub const NOT_READY_NOW: &str = "meridian_readiness_failing";

/// Lag buckets: sub-10 ms is what a healthy node shows, minutes is what a backlog looks like.
const LAG_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
    30.0, 60.0, 300.0,
];
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// HTTP latency: the nearest-driver target is p99 ≤ 5 ms, so resolution below it matters.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];
/// An in-place index update holds the write lock readers wait on: microseconds matter.
const UPDATE_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
];
/// Closing an hour reads every vehicle's points of it: seconds at a million points.
const ROLLUP_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];
const ROWS_BUCKETS: &[f64] = &[
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0,
];

pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // stderr: stdout is for command output (`meridian apikey create` prints the key there).
        .with_writer(std::io::stderr)
        .try_init();
}

/// The process-wide Prometheus recorder; installed on first use so that several
/// applications in one process (integration tests) share it instead of failing.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(LAG.into()), LAG_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(BATCH_DURATION.into()), DURATION_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(BATCH_ROWS.into()), ROWS_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(LIVE_REBUILD_DURATION.into()),
                        DURATION_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(LIVE_UPDATE_DURATION.into()),
                        UPDATE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(ROLLUP_HOUR_DURATION.into()),
                        ROLLUP_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(ROLLUP_LATE_DELAY.into()), LAG_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(OUTBOX_LAG.into()), LAG_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(GEOFENCE_JUDGE_DURATION.into()),
                        UPDATE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(OUTBOX_ROUND_DURATION.into()),
                        DURATION_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(WEBHOOK_ATTEMPT_DURATION.into()),
                        webhooks::ATTEMPT_BUCKETS,
                    )
                })
                .expect("bucket lists are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    events::describe();
    history::describe();
    live::describe();
    webhooks::describe();
    describe_counter!(MESSAGES_RECEIVED, "MQTT messages taken from the broker");
    describe_counter!(
        MESSAGES_REDELIVERED,
        "MQTT messages the broker sent again (DUP flag set): unacked before a reconnect"
    );
    describe_counter!(
        MESSAGES_ACKED,
        "MQTT messages acknowledged after their rows or dead letters committed"
    );
    describe_counter!(
        ACKS_FAILED,
        "Committed MQTT messages whose acknowledgement could not be sent (the broker redelivers them)"
    );
    describe_counter!(
        MESSAGES_IGNORED,
        "Valid non-telemetry messages (OwnTracks transitions, LWT, ...)"
    );
    describe_counter!(
        POINTS_STORED,
        "Telemetry points committed to vehicle_telemetry"
    );
    describe_counter!(
        POINTS_DUPLICATE,
        "Redelivered points skipped because (vehicle_id, ts) was already stored"
    );
    describe_counter!(DEAD_LETTERS, "Dead letters committed, by reason code");
    describe_counter!(
        FIELDS_DROPPED,
        "Optional measurements out of range (e.g. heading -1) stored as NULL with their point kept, by field"
    );
    describe_histogram!(
        BATCH_ROWS,
        Unit::Count,
        "Rows (points and dead letters) per committed batch"
    );
    describe_histogram!(
        BATCH_DURATION,
        Unit::Seconds,
        "Time to write and commit one batch"
    );
    describe_histogram!(
        LAG,
        Unit::Seconds,
        "Commit time minus the point's own timestamp"
    );
    describe_counter!(
        WRITE_RETRIES,
        "Batch writes retried after a database failure (transient or persistent)"
    );
    describe_counter!(
        WRITE_ERRORS,
        "Failed write attempts, by SQLSTATE class (or connection, timeout)"
    );
    describe_counter!(
        BROKER_RECONNECTS,
        "Connections (re)established to the MQTT broker"
    );
    describe_gauge!(BROKER_CONNECTED, "1 while connected to the MQTT broker");
    describe_gauge!(
        DELIVERY_OVERFLOW,
        "Deliveries the broker sent beyond our receive-maximum, waiting for room in the pipeline"
    );
    describe_gauge!(
        DELIVERY_OVERFLOW_BYTES,
        Unit::Bytes,
        "Bytes held in the overflow queue (bounded by MQTT_OVERFLOW_MAX_BYTES)"
    );
    describe_counter!(
        DELIVERY_OVERFLOW_DROPPED,
        "Deliveries dropped unacked at the overflow bound; a reconnect has the broker resend them"
    );
    describe_counter!(
        SUBSCRIPTIONS_REFUSED,
        "Topic filters the broker refused to subscribe us to, by SUBACK reason"
    );
    describe_counter!(
        CLOSED_BY_BROKER,
        "Established MQTT connections the broker closed, by how: session_taken_over (another \
         connection with our client id) or closed_without_reason (Mosquitto 2.0 on a takeover)"
    );
    describe_counter!(
        NOT_READY,
        "Times a readiness check started failing, by check"
    );
    describe_gauge!(
        NOT_READY_NOW,
        "1 while a readiness check is failing, by check"
    );
    describe_counter!(
        PARTITIONS_DROPPED,
        "Telemetry partitions dropped by raw retention"
    );
}

/// What one committed batch did, reported in one place.
pub struct BatchReport {
    pub messages: u64,
    pub ignored: u64,
    pub rows: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub seconds: f64,
}

pub fn batch_committed(r: &BatchReport) {
    counter!(MESSAGES_IGNORED).increment(r.ignored);
    counter!(POINTS_STORED).increment(r.stored);
    counter!(POINTS_DUPLICATE).increment(r.duplicates);
    histogram!(BATCH_ROWS).record(r.rows as f64);
    histogram!(BATCH_DURATION).record(r.seconds);
    tracing::debug!(
        messages = r.messages,
        stored = r.stored,
        duplicates = r.duplicates,
        seconds = r.seconds,
        "batch committed"
    );
}

pub fn dead_letters(reason: &'static str, n: u64) {
    counter!(DEAD_LETTERS, "reason" => reason).increment(n);
}

pub fn fields_dropped(field: &'static str, n: u64) {
    counter!(FIELDS_DROPPED, "field" => field).increment(n);
}

pub fn lag_seconds(lag: f64) {
    histogram!(LAG).record(lag);
}

pub fn messages_received(n: u64) {
    counter!(MESSAGES_RECEIVED).increment(n);
}

pub fn messages_redelivered(n: u64) {
    counter!(MESSAGES_REDELIVERED).increment(n);
}

pub fn messages_acked(n: u64) {
    counter!(MESSAGES_ACKED).increment(n);
}

/// One failed write attempt; `class` is an SQLSTATE class or a word (see `ingest::faults::class`).
pub fn write_failed(class: String) {
    counter!(WRITE_ERRORS, "class" => class).increment(1);
}

/// The acks of `n` committed messages could not be queued (the event loop is gone): they
/// stay unacked and are redelivered, which the idempotent store absorbs.
pub fn acks_failed(n: u64, error: &dyn std::fmt::Display) {
    counter!(ACKS_FAILED).increment(n);
    tracing::error!(messages = n, error = %error, "cannot send MQTT acks for committed messages; the broker will redeliver them");
}

pub fn write_retried(error: &dyn std::fmt::Display) {
    counter!(WRITE_RETRIES).increment(1);
    tracing::warn!(error = %error, "batch write failed, retrying");
}

pub fn broker_connected(session_present: bool) {
    counter!(BROKER_RECONNECTS).increment(1);
    gauge!(BROKER_CONNECTED).set(1.0);
    tracing::info!(session_present, "connected to MQTT broker");
}

pub fn broker_disconnected(error: &dyn std::fmt::Display) {
    gauge!(BROKER_CONNECTED).set(0.0);
    tracing::warn!(error = %error, "MQTT connection lost, reconnecting");
}

pub fn delivery_overflow(len: usize, bytes: usize) {
    gauge!(DELIVERY_OVERFLOW).set(len as f64);
    gauge!(DELIVERY_OVERFLOW_BYTES).set(bytes as f64);
}

/// The overflow queue is full: from now until the reconnect, deliveries are dropped unacked.
pub fn delivery_overflow_full(limit_bytes: usize) {
    tracing::error!(
        limit_bytes,
        "broker sends far beyond our receive-maximum: dropping deliveries unacked until what we \
         hold is acked, then reconnecting so the broker redelivers them"
    );
}

pub fn delivery_overflow_dropped(n: u64) {
    counter!(DELIVERY_OVERFLOW_DROPPED).increment(n);
}

pub fn subscription_refused(filter: &str, reason: &'static str) {
    counter!(SUBSCRIPTIONS_REFUSED, "reason" => reason).increment(1);
    tracing::error!(%filter, reason, "broker refused the subscription");
}

pub fn closed_by_broker(
    client_id: &str,
    how: &'static str,
    streak: u32,
    flapping: bool,
    delay: std::time::Duration,
) {
    counter!(CLOSED_BY_BROKER, "reason" => how).increment(1);
    if flapping {
        tracing::error!(
            client_id,
            how,
            closed_in_a_row = streak,
            ?delay,
            "the MQTT broker keeps closing our connection soon after accepting it: is another \
             node running with the same MQTT_CLIENT_ID? backing off"
        );
    } else {
        tracing::warn!(
            client_id,
            how,
            ?delay,
            "the MQTT broker closed our connection"
        );
    }
}

pub fn http_request(route: &str, method: &str, status: u16, elapsed: std::time::Duration) {
    let (route, method) = (route.to_owned(), method.to_owned());
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status.to_string()).increment(1);
    histogram!(HTTP_DURATION, "route" => route, "method" => method).record(elapsed.as_secs_f64());
}

pub fn partitions_sealed(names: &[String]) {
    for name in names {
        tracing::info!(partition = %name, "sealed a past day's partition for reading (covering index, vacuum)");
    }
}

pub fn partitions_dropped(names: &[String]) {
    counter!(PARTITIONS_DROPPED).increment(names.len() as u64);
    for name in names {
        tracing::info!(partition = %name, "dropped telemetry partition past raw retention");
    }
}

pub fn not_ready(check: &'static str, reason: &str) {
    counter!(NOT_READY, "check" => check).increment(1);
    gauge!(NOT_READY_NOW, "check" => check).set(1.0);
    tracing::warn!(check, reason, "not ready");
}

pub fn ready_again(check: &'static str) {
    gauge!(NOT_READY_NOW, "check" => check).set(0.0);
    tracing::info!(check, "readiness check passes again");
}
