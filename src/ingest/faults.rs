//! What the writers make of a failed write: which failures retrying may fix on its own and
//! which need someone to look, and the `ingest_writer` readiness check that says so.
//!
//! Every failure is retried with backoff and nothing is acked meanwhile; the split below only
//! decides how soon `/readyz` says the node is not ingesting, and whether the connection is
//! worth keeping.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::readiness::{Check, Readiness};
use crate::store::StoreError;

/// The readiness check the writers raise while batches cannot commit.
pub const CHECK: Check = "ingest_writer";

/// How long a transient failure (connection lost, database restarting) may last before the
/// node reports itself not ready: a failover or a killed connection heals in well under this,
/// and flapping readiness for those would only make a load balancer shuffle traffic.
pub const TRANSIENT_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The rows themselves were refused (classes 22/23): retrying the same rows cannot help.
    Data,
    /// The connection or the server is (briefly) unavailable: a retry on a new connection helps.
    Transient,
    /// The database answered, and will keep answering the same until someone changes it
    /// (permission denied, undefined table after a bad migration, ...).
    Persistent,
}

impl Fault {
    pub fn of(error: &StoreError) -> Self {
        if error.is_data_error() {
            return Fault::Data;
        }
        match error {
            StoreError::Url(_) | StoreError::Migrate(_) => Fault::Persistent,
            _ => Self::of_sqlstate(error.sqlstate()),
        }
    }

    /// Without an SQLSTATE the server never answered (I/O error, closed connection, timeout).
    fn of_sqlstate(state: Option<&SqlState>) -> Self {
        let Some(state) = state else {
            return Fault::Transient;
        };
        let code = state.code();
        let transient = [
            "08",    // connection exception
            "53",    // insufficient resources (too many connections, out of memory)
            "40",    // transaction rollback (serialization failure, deadlock)
            "57P0",  // admin shutdown, crash shutdown, cannot connect now
            "57014", // query cancelled
            "55P03", // lock not available
        ];
        if transient.iter().any(|prefix| code.starts_with(prefix)) {
            Fault::Transient
        } else {
            Fault::Persistent
        }
    }
}

/// The metric label for a failure: the SQLSTATE class (two characters, so ~40 values at
/// most), or what went wrong when the server never answered.
pub fn class(error: &StoreError) -> String {
    match (error.sqlstate(), error) {
        (Some(state), _) => state.code().chars().take(2).collect(),
        (None, StoreError::Timeout(_)) => "timeout".into(),
        (None, StoreError::Url(_)) => "config".into(),
        (None, _) => "connection".into(),
    }
}

/// The readiness reason: SQLSTATE and the server's message, without the wrapping layers.
pub fn describe(error: &StoreError) -> String {
    match error {
        StoreError::Db(e) => match e.as_db_error() {
            Some(db) => format!("SQLSTATE {}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        },
        other => other.to_string(),
    }
}

/// For a dead letter: `describe`, plus the server's DETAIL (which row, which value) if any.
/// (`tokio_postgres::Error`'s own `Display` says only "db error".)
pub fn describe_in_full(error: &StoreError) -> String {
    let detail = match error {
        StoreError::Db(e) => e.as_db_error().and_then(|db| db.detail()),
        _ => None,
    };
    match detail {
        Some(detail) => format!("{} ({detail})", describe(error)),
        None => describe(error),
    }
}

/// Which writer tasks are failing and why; `ingest_writer` is raised while any is, and
/// cleared only once every one of them has committed again (one writer committing a batch of
/// dead letters says nothing about the others).
pub struct WriterHealth {
    readiness: Readiness,
    failing: Mutex<BTreeMap<usize, String>>,
}

impl WriterHealth {
    pub fn new(readiness: Readiness) -> Self {
        Self {
            readiness,
            failing: Mutex::default(),
        }
    }

    /// Writer `lane` has been failing to commit one batch for `failing_for`.
    pub fn failed(&self, lane: usize, fault: Fault, reason: String, failing_for: Duration) {
        if fault == Fault::Transient && failing_for < TRANSIENT_GRACE {
            return;
        }
        self.lock().insert(lane, reason.clone());
        self.readiness.raise(CHECK, reason);
    }

    /// Writer `lane` committed a transaction.
    pub fn committed(&self, lane: usize) {
        let mut failing = self.lock();
        if failing.remove(&lane).is_none() {
            return;
        }
        match failing.values().next_back() {
            None => self.readiness.clear(CHECK),
            // Another writer still fails: keep the check, with a reason that is still true.
            Some(reason) => self.readiness.raise(CHECK, reason.clone()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<usize, String>> {
        // Single inserts and removes: a panic elsewhere cannot leave the map half-updated.
        self.failing.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_split_into_transient_and_persistent() {
        let of = |s: SqlState| Fault::of_sqlstate(Some(&s));
        assert_eq!(of(SqlState::UNDEFINED_TABLE), Fault::Persistent);
        assert_eq!(of(SqlState::INSUFFICIENT_PRIVILEGE), Fault::Persistent);
        assert_eq!(of(SqlState::READ_ONLY_SQL_TRANSACTION), Fault::Persistent);
        assert_eq!(of(SqlState::ADMIN_SHUTDOWN), Fault::Transient);
        assert_eq!(of(SqlState::CONNECTION_FAILURE), Fault::Transient);
        assert_eq!(of(SqlState::T_R_SERIALIZATION_FAILURE), Fault::Transient);
        assert_eq!(of(SqlState::TOO_MANY_CONNECTIONS), Fault::Transient);
        assert_eq!(Fault::of_sqlstate(None), Fault::Transient);
    }

    #[test]
    fn persistent_failures_fail_readiness_at_once_transient_ones_only_when_they_last() {
        let readiness = Readiness::default();
        let health = WriterHealth::new(readiness.clone());
        health.failed(
            0,
            Fault::Transient,
            "connection lost".into(),
            Duration::ZERO,
        );
        assert!(!readiness.is_raised(CHECK));
        health.failed(
            0,
            Fault::Transient,
            "connection lost".into(),
            TRANSIENT_GRACE,
        );
        assert_eq!(readiness.failing(), [(CHECK, "connection lost".to_owned())]);
        health.committed(0);
        assert!(!readiness.is_raised(CHECK));

        health.failed(
            1,
            Fault::Persistent,
            "SQLSTATE 42501".into(),
            Duration::ZERO,
        );
        assert_eq!(readiness.failing(), [(CHECK, "SQLSTATE 42501".to_owned())]);
    }

    #[test]
    fn readiness_returns_only_when_every_failing_writer_committed() {
        let readiness = Readiness::default();
        let health = WriterHealth::new(readiness.clone());
        health.failed(0, Fault::Persistent, "first".into(), Duration::ZERO);
        health.failed(2, Fault::Persistent, "second".into(), Duration::ZERO);
        health.committed(1); // a writer that was not failing changes nothing
        assert!(readiness.is_raised(CHECK));
        health.committed(2);
        assert_eq!(readiness.failing(), [(CHECK, "first".to_owned())]);
        health.committed(0);
        assert!(readiness.failing().is_empty());
    }
}
