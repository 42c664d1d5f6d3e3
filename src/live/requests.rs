//! What the feed task has been asked to re-read, collected between two of its turns: by
//! handlers that just committed a change (and wait for it), and by notifications from other
//! nodes' transactions. The task takes everything at once before it queries, so a burst of
//! dispatches costs one query, not one each.

use std::collections::HashSet;

use uuid::Uuid;

/// Past this many pending ids one full reload is cheaper than the `= ANY(...)` query (and it
/// keeps the sets bounded when the feed falls behind).
const MAX_PENDING_IDS: usize = 5_000;

#[derive(Default)]
pub(super) struct Requests {
    /// Bumped by every request; the feed reports the newest one it has taken as done.
    generation: u64,
    everything: bool,
    drivers: HashSet<Uuid>,
    vehicles: HashSet<Uuid>,
}

/// One turn's work: a full reload, or these drivers and vehicles (maybe neither).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Work {
    pub generation: u64,
    pub everything: bool,
    pub drivers: Vec<Uuid>,
    pub vehicles: Vec<Uuid>,
}

impl Work {
    pub fn is_empty(&self) -> bool {
        !self.everything && self.drivers.is_empty() && self.vehicles.is_empty()
    }
}

impl Requests {
    pub fn everything(&mut self) {
        self.generation += 1;
        self.everything = true;
        self.drivers.clear();
        self.vehicles.clear();
    }

    pub fn drivers(&mut self, ids: &[Uuid]) {
        self.generation += 1;
        if !self.everything {
            self.drivers.extend(ids);
            self.bound();
        }
    }

    pub fn vehicles(&mut self, ids: &[Uuid]) {
        self.generation += 1;
        if !self.everything {
            self.vehicles.extend(ids);
            self.bound();
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn take(&mut self) -> Work {
        Work {
            generation: self.generation,
            everything: std::mem::take(&mut self.everything),
            drivers: self.drivers.drain().collect(),
            vehicles: self.vehicles.drain().collect(),
        }
    }

    fn bound(&mut self) {
        if self.drivers.len() + self.vehicles.len() > MAX_PENDING_IDS {
            self.everything();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_takes_every_id_asked_since_the_last_and_a_reload_covers_them() {
        let mut r = Requests::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        r.drivers(&[a]);
        r.drivers(&[a, b]);
        r.vehicles(&[b]);
        let mut work = r.take();
        work.drivers.sort();
        assert_eq!(
            work,
            Work {
                generation: 3,
                everything: false,
                drivers: vec![a, b],
                vehicles: vec![b],
            }
        );
        assert!(r.take().is_empty(), "taken once");
        r.everything();
        r.drivers(&[a]);
        let work = r.take();
        assert!(work.everything && work.drivers.is_empty() && work.generation == 5);
    }

    #[test]
    fn too_many_ids_become_one_full_reload() {
        let mut r = Requests::default();
        let ids: Vec<Uuid> = (0..=MAX_PENDING_IDS as u128).map(Uuid::from_u128).collect();
        r.vehicles(&ids);
        let work = r.take();
        assert!(work.everything && work.vehicles.is_empty());
    }
}
