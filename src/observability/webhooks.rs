//! Metrics and log lines of webhook delivery (`meridian_webhook_*`), each event's counter and
//! its log line defined together.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use uuid::Uuid;

use crate::delivery::webhooks::Attempt;

pub const WEBHOOK_ATTEMPTS: &str = "meridian_webhook_attempts_total";
pub const WEBHOOK_ATTEMPT_DURATION: &str = "meridian_webhook_attempt_duration_seconds";
pub const WEBHOOK_DELIVERIES_QUEUED: &str = "meridian_webhook_deliveries_queued_total";
pub const WEBHOOK_DELIVERIES_FAILED: &str = "meridian_webhook_deliveries_failed_total";
pub const WEBHOOK_DISABLED: &str = "meridian_webhook_disabled_total";
pub const WEBHOOK_PENDING: &str = "meridian_webhook_deliveries_pending";
pub const WEBHOOK_OLDEST_PENDING: &str = "meridian_webhook_oldest_pending_seconds";
pub const WEBHOOK_WORKER_ERRORS: &str = "meridian_webhook_worker_errors_total";

/// A webhook request: a fast receiver answers in milliseconds; the timeout (5 s by default)
/// is the far end.
pub(super) const ATTEMPT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub(super) fn describe() {
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook requests, by outcome: delivered (2xx), rejected (other status), redirect (3xx, \
         not followed), forbidden (outside MERIDIAN_WEBHOOK_ALLOW, not sent), timeout, unreachable"
    );
    describe_histogram!(
        WEBHOOK_ATTEMPT_DURATION,
        Unit::Seconds,
        "Time of one webhook request, connect to answer, by outcome"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES_QUEUED,
        "Webhook deliveries created by the fan-out of geofence events"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES_FAILED,
        "Webhook deliveries given up on after the retry horizon (listed by \
         GET /v1/webhooks/{id}/deliveries?status=failed)"
    );
    describe_counter!(
        WEBHOOK_DISABLED,
        "Webhooks disabled after failing persistently"
    );
    describe_gauge!(
        WEBHOOK_PENDING,
        "Webhook deliveries waiting for a first try or a retry (all webhooks, disabled included)"
    );
    describe_gauge!(
        WEBHOOK_OLDEST_PENDING,
        Unit::Seconds,
        "Age of the oldest pending webhook delivery"
    );
    describe_counter!(
        WEBHOOK_WORKER_ERRORS,
        "Database errors of the webhook worker, by step (claim, record, pending)"
    );
}

pub fn webhook_attempt(attempt: &Attempt, took: Duration) {
    let outcome = match attempt {
        Attempt::Delivered { .. } => "delivered",
        Attempt::Failed { kind, error, .. } => {
            tracing::debug!(
                outcome = kind.as_str(),
                error,
                "webhook try failed; will retry"
            );
            kind.as_str()
        }
    };
    counter!(WEBHOOK_ATTEMPTS, "outcome" => outcome).increment(1);
    histogram!(WEBHOOK_ATTEMPT_DURATION, "outcome" => outcome).record(took.as_secs_f64());
}

/// For the outbox worker: `n` deliveries added by one `store::webhooks::fan_out`.
pub fn webhook_deliveries_queued(n: u64) {
    counter!(WEBHOOK_DELIVERIES_QUEUED).increment(n);
}

pub fn webhook_delivery_failed(webhook_id: Uuid, event_id: i64, error: &str) {
    counter!(WEBHOOK_DELIVERIES_FAILED).increment(1);
    tracing::warn!(%webhook_id, event_id, error, "webhook delivery failed for good: retry horizon passed");
}

pub fn webhook_disabled(webhook_id: Uuid, reason: &str) {
    counter!(WEBHOOK_DISABLED).increment(1);
    tracing::error!(%webhook_id, reason, "webhook disabled; POST /v1/webhooks/{{id}}/enable once its endpoint is fixed");
}

pub fn webhook_pending(n: i64, oldest_seconds: f64) {
    gauge!(WEBHOOK_PENDING).set(n as f64);
    gauge!(WEBHOOK_OLDEST_PENDING).set(oldest_seconds);
}

pub fn webhook_worker_failed(step: &'static str, error: &dyn std::fmt::Display) {
    counter!(WEBHOOK_WORKER_ERRORS, "step" => step).increment(1);
    tracing::warn!(step, error = %error, "webhook worker: database step failed; retrying");
}
