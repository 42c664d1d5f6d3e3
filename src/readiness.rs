//! Why this node is not ready, by name. Each part of the node that can stop doing its job
//! (the broker subscription, the ingest writers, ...) raises its own condition while it is
//! failing and clears it when it recovers; `/readyz` answers 503 listing every raised
//! condition with its reason. One shared type, so a new failure mode is one `raise` away
//! from being visible and counted, instead of another ad-hoc flag.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::observability;

/// A named reason this node is not ready (a low-cardinality label: never an id).
pub type Check = &'static str;

#[derive(Clone, Default)]
pub struct Readiness(Arc<Mutex<BTreeMap<Check, Condition>>>);

struct Condition {
    reason: String,
    /// `false` for an expected wait (a SUBACK after connecting): not ready, but not a fault.
    failing: bool,
}

impl Readiness {
    /// Marks `check` as failing with a human-readable reason. Counted and logged once per
    /// transition to failing (a condition re-raised while failing only updates its reason),
    /// so a flapping check shows as a rising counter, not a log flood.
    pub fn raise(&self, check: Check, reason: impl Into<String>) {
        let reason = reason.into();
        let condition = Condition {
            reason: reason.clone(),
            failing: true,
        };
        let was_failing = self
            .lock()
            .insert(check, condition)
            .is_some_and(|c| c.failing);
        if !was_failing {
            observability::not_ready(check, &reason);
        }
    }

    /// Marks `check` as not yet passing for an expected reason (a normal start, a reconnect):
    /// `/readyz` lists it, but it is neither counted nor logged as a failure.
    pub fn pending(&self, check: Check, reason: impl Into<String>) {
        let reason = reason.into();
        let mut conditions = self.lock();
        match conditions.get_mut(check) {
            Some(c) => c.reason = reason,
            None => {
                conditions.insert(
                    check,
                    Condition {
                        reason,
                        failing: false,
                    },
                );
            }
        }
    }

    /// Marks `check` as passing again.
    pub fn clear(&self, check: Check) {
        if self.lock().remove(check).is_some_and(|c| c.failing) {
            observability::ready_again(check);
        }
    }

    pub fn is_raised(&self, check: Check) -> bool {
        self.lock().contains_key(check)
    }

    /// Every failing check with its reason, in name order.
    pub fn failing(&self) -> Vec<(Check, String)> {
        self.lock()
            .iter()
            .map(|(check, c)| (*check, c.reason.clone()))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Check, Condition>> {
        // A panic while holding this lock cannot leave the map half-updated (single inserts).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_checks_are_listed_until_cleared() {
        let r = Readiness::default();
        assert!(r.failing().is_empty());
        r.raise("writer", "permission denied for table vehicle_telemetry");
        r.raise("broker", "subscription refused");
        r.raise("writer", "undefined table");
        assert_eq!(
            r.failing(),
            [
                ("broker", "subscription refused".to_owned()),
                ("writer", "undefined table".to_owned())
            ]
        );
        r.clear("broker");
        assert!(!r.is_raised("broker"));
        assert!(r.is_raised("writer"));
        r.clear("writer");
        assert!(r.failing().is_empty());
    }

    #[test]
    fn a_pending_check_is_listed_and_keeps_a_failure_s_reason() {
        let r = Readiness::default();
        r.pending("subscription", "waiting for SUBACK");
        assert_eq!(
            r.failing(),
            [("subscription", "waiting for SUBACK".to_owned())]
        );
        r.raise("subscription", "refused");
        r.pending("subscription", "waiting again");
        assert_eq!(r.failing(), [("subscription", "waiting again".to_owned())]);
        r.clear("subscription");
        assert!(r.failing().is_empty());
    }
}
