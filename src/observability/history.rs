//! Metrics of the rollup job (issue 9), by the same grammar as the rest: `meridian_rollup_*`,
//! units in the name, counters ending in `_total`.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::store::export::Cancelled;
use crate::store::rollups::Folded;

pub const ROLLUP_HOURS_CLOSED: &str = "meridian_rollup_hours_closed_total";
pub const ROLLUP_HOUR_DURATION: &str = "meridian_rollup_hour_duration_seconds";
pub const ROLLUP_POINTS_READ: &str = "meridian_rollup_points_read_total";
pub const ROLLUP_LATE_MARKS: &str = "meridian_rollup_late_marks_folded_total";
pub const ROLLUP_LATE_PAIRS: &str = "meridian_rollup_late_pairs_recomputed_total";
pub const ROLLUP_ENTRIES_CORRECTED: &str = "meridian_rollup_entry_steps_corrected_total";
pub const ROLLUP_LATE_DELAY: &str = "meridian_rollup_late_fold_delay_seconds";
pub const ROLLUP_LAG: &str = "meridian_rollup_lag_seconds";
pub const ROLLUP_ERRORS: &str = "meridian_rollup_errors_total";
pub const EXPORTS: &str = "meridian_history_exports_total";
pub const EXPORT_ROWS: &str = "meridian_history_export_rows_total";
pub const EXPORTS_CANCELLED: &str = "meridian_history_export_queries_cancelled_total";

pub(super) fn describe() {
    describe_counter!(
        ROLLUP_HOURS_CLOSED,
        "Hours closed in bulk by this node's rollup job"
    );
    describe_histogram!(
        ROLLUP_HOUR_DURATION,
        "Time to close one hour in bulk (every vehicle's row, and the day's at its last hour)"
    );
    describe_counter!(
        ROLLUP_POINTS_READ,
        "Raw points aggregated, by path: close (bulk) or late (late-mark folds)"
    );
    describe_counter!(
        ROLLUP_LATE_MARKS,
        "Late marks taken off rollup_dirty and folded in"
    );
    describe_counter!(
        ROLLUP_LATE_PAIRS,
        "Distinct (vehicle, hour) pairs recomputed because of late points"
    );
    describe_counter!(
        ROLLUP_ENTRIES_CORRECTED,
        "Next buckets whose entry step a late point changed (corrected without raw reads)"
    );
    describe_histogram!(
        ROLLUP_LATE_DELAY,
        "From the commit of a late point to the fold that put it into the rollups"
    );
    describe_gauge!(
        ROLLUP_LAG,
        "Seconds from the end of the newest closed hour to now (an hour closes 120 s after it ends)"
    );
    describe_counter!(ROLLUP_ERRORS, "Rollup rounds that failed (retried)");
    describe_counter!(
        EXPORTS,
        "Fleet history exports ended, by outcome: complete, failed (a database error after the \
         headers: the response is cut short) or disconnected (the client left first)"
    );
    describe_counter!(
        EXPORT_ROWS,
        "Rollup rows streamed by fleet history exports, by resolution and format"
    );
    describe_counter!(
        EXPORTS_CANCELLED,
        "Export queries cancelled on the server after their client disconnected, by how the \
         statement ended: query_canceled, completed (the cancel came too late), error, or \
         connection_closed (no clean end in time: the connection was closed, not pooled)"
    );
}

pub fn rollup_hour_closed(points: u64, took: Duration) {
    counter!(ROLLUP_HOURS_CLOSED).increment(1);
    counter!(ROLLUP_POINTS_READ, "path" => "close").increment(points);
    histogram!(ROLLUP_HOUR_DURATION).record(took.as_secs_f64());
}

pub fn rollup_late_folded(f: &Folded) {
    counter!(ROLLUP_LATE_MARKS).increment(f.marks);
    counter!(ROLLUP_LATE_PAIRS).increment(f.pairs);
    counter!(ROLLUP_POINTS_READ, "path" => "late").increment(f.points);
    counter!(ROLLUP_ENTRIES_CORRECTED).increment(f.corrected);
    let delay = histogram!(ROLLUP_LATE_DELAY);
    for waited in &f.waited_s {
        delay.record(*waited);
    }
}

pub fn hourly_pruned(rows: u64) {
    if rows > 0 {
        tracing::info!(rows, "deleted hourly rollups past their retention");
    }
}

pub fn rollup_lag(seconds: f64) {
    gauge!(ROLLUP_LAG).set(seconds);
}

pub fn rollup_failed(error: &dyn std::fmt::Display) {
    counter!(ROLLUP_ERRORS).increment(1);
    tracing::warn!(%error, "rollup round failed; will retry");
}

/// One export's end: its outcome and the rows it sent (counted once per export, not per row).
pub fn export_ended(
    outcome: &'static str,
    resolution: &'static str,
    format: &'static str,
    rows: u64,
) {
    counter!(EXPORTS, "outcome" => outcome).increment(1);
    counter!(EXPORT_ROWS, "resolution" => resolution, "format" => format).increment(rows);
}

/// How an abandoned export's statement ended after its cancel request.
pub fn export_cancelled(how: Cancelled) {
    let ended = match how {
        Cancelled::QueryCanceled => "query_canceled",
        Cancelled::Completed => "completed",
        Cancelled::Error => "error",
        Cancelled::ConnectionClosed => "connection_closed",
    };
    counter!(EXPORTS_CANCELLED, "ended" => ended).increment(1);
}
