//! Metrics of each node's live index and of the dispatch desk built on it, by the same grammar
//! as the rest (`meridian_live_*`, `meridian_dispatch_*`).

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

pub const LIVE_CANDIDATES: &str = "meridian_live_index_candidates";
pub const LIVE_REBUILD_DURATION: &str = "meridian_live_index_rebuild_duration_seconds";
pub const LIVE_AVAILABILITY_RELOADS: &str = "meridian_live_availability_reloads_total";
pub const LIVE_REFRESHES: &str = "meridian_live_refreshes_total";
pub const LIVE_REFRESHED_IDS: &str = "meridian_live_refreshed_ids_total";
pub const LIVE_POSITIONS_APPLIED: &str = "meridian_live_positions_applied_total";
pub const LIVE_UPDATE_DURATION: &str = "meridian_live_index_update_duration_seconds";
pub const LIVE_LISTENING: &str = "meridian_live_listen_connected";
pub const DISPATCHES: &str = "meridian_dispatch_outcomes_total";
pub const DISPATCH_CANDIDATES_TRIED: &str = "meridian_dispatch_candidates_tried";
pub const QUEUE_EXPIRED: &str = "meridian_dispatch_queue_expired_total";
pub const QUEUE_DRAIN_DURATION: &str = "meridian_dispatch_queue_drain_duration_seconds";

pub(super) fn describe() {
    describe_gauge!(
        LIVE_CANDIDATES,
        "Shifts of available drivers with a position, in this node's live index"
    );
    describe_histogram!(
        LIVE_REBUILD_DURATION,
        Unit::Seconds,
        "Time of a full reload of the live index (read availability, build the tree)"
    );
    describe_counter!(
        LIVE_AVAILABILITY_RELOADS,
        "Full reloads of driver availability: at start, after a lost connection, and when \
         drivers, shifts or vehicles change"
    );
    describe_counter!(
        LIVE_REFRESHES,
        "Re-reads of the availability of named drivers and vehicles only (dispatches, \
         maintenance), each replacing their candidates in place"
    );
    describe_counter!(
        LIVE_REFRESHED_IDS,
        "Drivers and vehicles re-read by per-driver refreshes, by kind"
    );
    describe_counter!(
        LIVE_POSITIONS_APPLIED,
        "Positions that moved candidates of the live index in place"
    );
    describe_histogram!(
        LIVE_UPDATE_DURATION,
        Unit::Seconds,
        "Time the live index's write lock is held for one run of in-place edits (at most 64)"
    );
    describe_gauge!(
        LIVE_LISTENING,
        "1 while this node hears change notifications (API keys are cached only then)"
    );
    describe_counter!(
        DISPATCHES,
        "Dispatch decisions, by outcome: nearest, named, drained (from the queue) or queued"
    );
    describe_histogram!(
        DISPATCH_CANDIDATES_TRIED,
        "Candidates the database re-checked per dispatch decision, by outcome"
    );
    describe_counter!(
        QUEUE_EXPIRED,
        "Queued jobs cancelled because their time window ended"
    );
    describe_histogram!(
        QUEUE_DRAIN_DURATION,
        Unit::Seconds,
        "Time of one walk of the dispatch queue by this node"
    );
}

/// A full reload of availability (start, lost connection, admin tables changed).
pub fn live_reloaded(candidates: usize, elapsed: std::time::Duration) {
    counter!(LIVE_AVAILABILITY_RELOADS).increment(1);
    gauge!(LIVE_CANDIDATES).set(candidates as f64);
    histogram!(LIVE_REBUILD_DURATION).record(elapsed.as_secs_f64());
}

/// A re-read of the named drivers and vehicles only (dispatches, maintenance).
pub fn live_refreshed(drivers: usize, vehicles: usize) {
    counter!(LIVE_REFRESHES).increment(1);
    counter!(LIVE_REFRESHED_IDS, "kind" => "driver").increment(drivers as u64);
    counter!(LIVE_REFRESHED_IDS, "kind" => "vehicle").increment(vehicles as u64);
}

/// One batch of in-place edits applied.
pub fn live_updated(candidates: usize, positions_moved: u64) {
    gauge!(LIVE_CANDIDATES).set(candidates as f64);
    counter!(LIVE_POSITIONS_APPLIED).increment(positions_moved);
}

/// One hold of the live index's write lock.
pub fn live_locked(elapsed: std::time::Duration) {
    histogram!(LIVE_UPDATE_DURATION).record(elapsed.as_secs_f64());
}

/// One dispatch decision: `outcome` is `nearest`, `named`, `drained` or `queued`; `tried` is
/// how many candidates the database re-checked for it (more than one means lost races or a
/// stale index).
pub fn dispatch_attempts(outcome: &'static str, tried: usize) {
    counter!(DISPATCHES, "outcome" => outcome).increment(1);
    histogram!(DISPATCH_CANDIDATES_TRIED, "outcome" => outcome).record(tried as f64);
}

pub fn queue_drained(expired: i64, elapsed: std::time::Duration) {
    counter!(QUEUE_EXPIRED).increment(expired.max(0) as u64);
    histogram!(QUEUE_DRAIN_DURATION).record(elapsed.as_secs_f64());
}

pub fn live_listening(up: bool) {
    gauge!(LIVE_LISTENING).set(if up { 1.0 } else { 0.0 });
}
