//! What this node remembers of vehicles' fence states between batches, so that a batch reads
//! `geofence_state` only for vehicles it did not judge last: at 10 points a message a batch
//! moves ~400 vehicles, and reading their states was a third of what fences cost PostgreSQL.
//!
//! A remembered entry is the vehicle's states as committed together with its stored point
//! `at`. States change only when a batch moves the vehicle's stored point forward, under that
//! row's lock, and the upsert says what the row held before (`positions::upsert`). So when the
//! row held exactly `at`, nobody has judged the vehicle since this node did, and the entry is
//! what `geofence_state` holds; otherwise (another node, a failed commit, a restart) the states
//! are read. Entries are written only after their transaction commits (a commit whose outcome
//! is unknown leaves the old entry, which the next upsert shows to be stale). Deleting a fence
//! deletes its rows but not remembered states: judging leaves a fence it does not know alone,
//! as it does with such a row.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::domain::geofence::judge::{FenceState, Fix};

/// Beyond this many vehicles the memory is dropped and refilled from reads (~100 bytes each).
const MAX_VEHICLES: usize = 1_000_000;

pub type States = HashMap<Uuid, FenceState>;

#[derive(Default)]
pub struct KnownStates {
    vehicles: Mutex<HashMap<Uuid, (Fix, States)>>,
}

impl KnownStates {
    /// The remembered entries of `vehicles` (each with the point it was remembered at), and the
    /// vehicles with none.
    pub fn recall(&self, vehicles: &[Uuid]) -> (HashMap<Uuid, (Fix, States)>, Vec<Uuid>) {
        let known = self.vehicles.lock().expect("known states lock");
        let mut found = HashMap::with_capacity(vehicles.len());
        let mut unknown = Vec::new();
        for v in vehicles {
            match known.get(v) {
                Some(entry) => {
                    found.insert(*v, entry.clone());
                }
                None => unknown.push(*v),
            }
        }
        (found, unknown)
    }

    /// Remembers what a committed transaction left: each vehicle's stored point and states.
    pub fn remember(&self, committed: Vec<(Uuid, Fix, States)>) {
        let mut known = self.vehicles.lock().expect("known states lock");
        if known.len() + committed.len() > MAX_VEHICLES {
            known.clear();
        }
        for (v, at, states) in committed {
            known.insert(v, (at, states));
        }
    }
}
