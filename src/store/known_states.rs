//! What this node remembers of vehicles' fence states between batches, so that a batch reads
//! `geofence_state` only for vehicles it did not judge last: at 10 points a message a batch
//! moves ~400 vehicles, and reading their states was most of what fences cost PostgreSQL
//! (+0.6–0.7 µs per point before, ~0–0.3 after, in `scripts/bench-geofence.sh`).
//!
//! A remembered entry is the vehicle's states as committed together with its stored point
//! `at`. States change only when a batch moves the vehicle's stored point forward, under that
//! row's lock, and the upsert says what the row held before (`positions::upsert`). So when the
//! row held exactly `at`, nobody has judged the vehicle since this node did, and the entry is
//! what `geofence_state` holds; otherwise (another node, a failed commit, a restart) the states
//! are read. A batch takes its vehicles' entries out and its commit puts back what it left, so
//! a failed or unknown commit leaves nothing to trust and the next batch reads (so does a
//! vehicle whose batch held only points older than its stored one). Deleting a fence
//! deletes its rows but not remembered states: judging leaves a fence it does not know alone,
//! as it does with such a row.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

use crate::domain::geofence::judge::{FenceState, Fix};

/// Beyond this many vehicles the memory is dropped and refilled from reads. An entry is ~80
/// bytes, plus ~80 per state held (a vehicle is in one or two fences at a time).
const MAX_VEHICLES: usize = 1_000_000;

/// A vehicle's states, one per fence: a short list (a vehicle is in a fence or two at a time),
/// searched in place rather than hashed.
pub type States = Vec<(Uuid, FenceState)>;

/// A remembered vehicle: its stored point and its states.
type Entry = (Fix, States);

#[derive(Default)]
pub struct KnownStates {
    vehicles: Mutex<HashMap<Uuid, Entry>>,
}

impl KnownStates {
    /// Takes out the remembered entries of `vehicles` (each with the point it was remembered
    /// at), and names the vehicles with none.
    pub fn recall(&self, vehicles: &[Uuid]) -> (HashMap<Uuid, Entry>, Vec<Uuid>) {
        let mut known = self.vehicles.lock().expect("known states lock");
        let mut found = HashMap::with_capacity(vehicles.len());
        let mut unknown = Vec::new();
        for v in vehicles {
            match known.remove(v) {
                Some(entry) => {
                    found.insert(*v, entry);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LatLon, Timestamp};
    use crate::store::geofence_state::{after, Decided, Prior};

    fn fix(s: i64) -> Fix {
        Fix {
            ts: Timestamp::from_unix_micros(s * 1_000_000),
            pos: LatLon::new(59.9, 10.7).unwrap(),
        }
    }

    fn state(inside: bool, streak: u32) -> FenceState {
        FenceState {
            inside,
            since: Timestamp::from_unix_micros(0),
            dwelt: false,
            streak,
            streak_first: (streak > 0).then(|| fix(1)),
        }
    }

    /// What a batch decided becomes what the node remembers of its moved vehicles: the
    /// judged ones as judging left them, the others as they were; each with its new stored
    /// point. Vehicles the batch did not move are not touched; recall hands back exactly that,
    /// and takes it out.
    #[test]
    fn committed_states_are_recalled_as_they_were_left() {
        let (v1, v2, v3, v4, f1, f2) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
            Uuid::from_u128(10),
            Uuid::from_u128(11),
        );
        let prior = Prior {
            moved: HashMap::from([(v1, Some(fix(5))), (v2, None), (v4, Some(fix(4)))]),
            states: HashMap::from([
                (v1, vec![(f1, state(true, 0))]),
                (v4, vec![(f2, state(true, 0))]),
            ]),
        };
        let decided = Decided {
            changed: vec![
                (v1, f1, None),
                (v1, f2, Some(state(false, 2))),
                (v2, f1, Some(state(true, 0))),
            ],
            events: Vec::new(),
            states: vec![
                (v1, vec![(f2, state(false, 2))]),
                (v2, vec![(f1, state(true, 0))]),
            ],
        };
        let committed = after(prior, decided, |v| (v != v3).then(|| fix(9)));
        assert_eq!(committed.len(), 3);
        let known = KnownStates::default();
        known.remember(committed);
        let (found, unknown) = known.recall(&[v1, v2, v3, v4]);
        assert_eq!(unknown, vec![v3]);
        // Taken out: until a commit puts them back, a batch must read them.
        assert_eq!(known.recall(&[v1, v2, v4]).1, vec![v1, v2, v4]);
        assert_eq!(found[&v1], (fix(9), vec![(f2, state(false, 2))]));
        assert_eq!(found[&v2], (fix(9), vec![(f1, state(true, 0))]));
        assert_eq!(found[&v4], (fix(9), vec![(f2, state(true, 0))]));
    }
}
