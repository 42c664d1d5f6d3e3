//! The feed task's books behind the index: every available shift (with or without a fix),
//! every watched vehicle's latest fix, and who is where. Each change is turned into tree edits
//! (remove + insert per candidate) computed outside the index's lock, then applied under one
//! write lock per batch.
//!
//! Invariant: the index holds exactly one candidate per shift in `shifts` whose vehicle has a
//! fix in `fixes`, placed at that fix. Every method keeps it, so a candidate can always be
//! removed by rebuilding it from its shift and its vehicle's current fix.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use uuid::Uuid;

use super::nearest::{Candidate, Fix, Index, Shift};
use crate::store::live::{AvailableShift, PositionRow};

/// A vehicle silent this long was not offered (the default freshness of a nearest query); when
/// it reports again, availability grew.
pub(super) const GREW_AFTER_SILENCE_US: i64 = 300_000_000;

#[derive(Default)]
pub(super) struct State {
    /// Latest fixes of watched vehicles (and of vehicles watched earlier).
    fixes: HashMap<Uuid, Fix>,
    /// Available shifts by shift id.
    shifts: HashMap<Uuid, Shift>,
    by_driver: HashMap<Uuid, Vec<Uuid>>,
    by_vehicle: HashMap<Uuid, Vec<Uuid>>,
    /// Vehicles whose positions the ingest writers announce: every vehicle with a shift in
    /// `shifts`, and since the last full reload maybe more (per-driver updates only add).
    watched: HashSet<Uuid>,
    /// Shifts not started yet, by start: when one starts, availability grew.
    starts: BTreeSet<(i64, Uuid)>,
    /// One shared string per distinct vehicle type, not one per shift.
    types: HashMap<String, Arc<str>>,
}

/// Tree edits in the order they must be applied (a batch may move one candidate twice),
/// in groups that readers must see whole (one vehicle's move; one refresh).
#[derive(Default)]
pub(super) struct Edits {
    edits: Vec<Edit>,
    /// Where each group ends (exclusive), ascending; the last one is `edits.len()`.
    ends: Vec<usize>,
    /// A candidate joined that was not in the index before (not a move).
    pub grew: bool,
    /// Positions that moved at least one candidate.
    pub moved: u64,
}

pub(super) enum Edit {
    Remove(Candidate),
    Insert(Candidate),
}

impl Edits {
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    pub fn merge(&mut self, other: Edits) {
        let offset = self.edits.len();
        self.ends.extend(other.ends.iter().map(|e| e + offset));
        self.edits.extend(other.edits);
        self.grew |= other.grew;
        self.moved += other.moved;
    }

    /// Splits into batches of about `max` edits (more when one group is longer) without
    /// splitting a group, so that a long run of positions does not hold readers off for its
    /// whole length, and no reader ever sees a driver half-moved.
    pub fn batches(mut self, max: usize) -> Vec<Vec<Edit>> {
        self.close();
        let Edits { edits, ends, .. } = self;
        let mut rest = edits.into_iter();
        let mut batches = Vec::new();
        let mut start = 0;
        for (i, &end) in ends.iter().enumerate() {
            if end - start >= max || i + 1 == ends.len() {
                batches.push(rest.by_ref().take(end - start).collect());
                start = end;
            }
        }
        batches
    }

    /// Ends the current group (a no-op when it is empty).
    fn close(&mut self) {
        if self.ends.last().copied().unwrap_or(0) < self.edits.len() {
            self.ends.push(self.edits.len());
        }
    }

    /// Applies the edits in order under one lock (tests); returns how many removals found
    /// nothing (always 0 while the invariant holds).
    #[cfg(test)]
    pub fn apply(self, index: &mut Index) -> usize {
        apply(self.edits, index)
    }
}

/// Applies edits in order; returns how many removals found nothing.
pub(super) fn apply(edits: Vec<Edit>, index: &mut Index) -> usize {
    let mut missing = 0;
    for edit in edits {
        match edit {
            Edit::Remove(c) => missing += usize::from(!index.remove(&c)),
            Edit::Insert(c) => index.insert(c),
        }
    }
    missing
}

impl State {
    /// Replaces everything with a full read of availability; returns the vehicles that just
    /// joined the watched set (their positions were not announced until now: read them and
    /// pass them to `record`). The watched set becomes exactly the shifts' vehicles.
    pub fn reset(&mut self, rows: Vec<AvailableShift>, now_us: i64) -> Vec<Uuid> {
        self.shifts.clear();
        self.by_driver.clear();
        self.by_vehicle.clear();
        self.starts.clear();
        for row in rows {
            let shift = self.shift(row);
            self.file(shift, now_us);
        }
        let now_watched: HashSet<Uuid> = self.by_vehicle.keys().copied().collect();
        let joined = now_watched.difference(&self.watched).copied().collect();
        self.watched = now_watched;
        joined
    }

    pub fn watched(&self) -> &HashSet<Uuid> {
        &self.watched
    }

    /// Takes in fixes without producing edits (before `build`). A fix never goes back in time.
    pub fn record(&mut self, rows: Vec<PositionRow>) {
        for PositionRow { vehicle_id, fix } in rows {
            self.newer(vehicle_id, fix);
        }
    }

    /// The whole index, from scratch.
    pub fn build(&self) -> Index {
        Index::build(
            self.shifts
                .values()
                .filter_map(|s| Some(Candidate::new(s.clone(), *self.fixes.get(&s.vehicle_id)?)))
                .collect(),
        )
    }

    /// Replaces what is held for these drivers and vehicles with `rows` (their availability
    /// as just read). Returns the edits and the vehicles that joined the watched set (added to
    /// it: read their positions and pass them to `positions`).
    pub fn refresh(
        &mut self,
        drivers: &[Uuid],
        vehicles: &[Uuid],
        rows: Vec<AvailableShift>,
        now_us: i64,
    ) -> (Edits, Vec<Uuid>) {
        let mut edits = Edits::default();
        let mut old: HashSet<Uuid> = HashSet::new();
        for d in drivers {
            old.extend(self.by_driver.get(d).into_iter().flatten());
        }
        for v in vehicles {
            old.extend(self.by_vehicle.get(v).into_iter().flatten());
        }
        for id in &old {
            if let Some(shift) = self.unfile(*id) {
                if let Some(fix) = self.fixes.get(&shift.vehicle_id) {
                    edits.edits.push(Edit::Remove(Candidate::new(shift, *fix)));
                }
            }
        }
        let mut joined = Vec::new();
        for row in rows {
            let shift = self.shift(row);
            if self.watched.insert(shift.vehicle_id) {
                joined.push(shift.vehicle_id);
            }
            if let Some(fix) = self.fixes.get(&shift.vehicle_id) {
                edits.grew |= !old.contains(&shift.shift_id);
                edits
                    .edits
                    .push(Edit::Insert(Candidate::new(shift.clone(), *fix)));
            }
            self.file(shift, now_us);
        }
        edits.close();
        (edits, joined)
    }

    /// Takes in positions: each newer fix of a vehicle with shifts moves their candidates.
    pub fn positions(&mut self, rows: Vec<PositionRow>, now_us: i64) -> Edits {
        let mut edits = Edits::default();
        for PositionRow { vehicle_id, fix } in rows {
            let Some(old) = self.newer(vehicle_id, fix) else {
                continue;
            };
            let Some(ids) = self.by_vehicle.get(&vehicle_id) else {
                continue;
            };
            edits.moved += 1;
            edits.grew |= old.is_none_or(|o| o.ts_us < now_us - GREW_AFTER_SILENCE_US);
            for id in ids {
                let shift = &self.shifts[id];
                if let Some(old) = old {
                    edits
                        .edits
                        .push(Edit::Remove(Candidate::new(shift.clone(), old)));
                }
                edits
                    .edits
                    .push(Edit::Insert(Candidate::new(shift.clone(), fix)));
            }
            edits.close();
        }
        edits
    }

    /// Whether a shift held in the index started since the last call.
    pub fn started(&mut self, now_us: i64) -> bool {
        let mut started = false;
        while let Some(&(at, id)) = self.starts.first() {
            if at > now_us {
                break;
            }
            self.starts.pop_first();
            started |= self.shifts.contains_key(&id);
        }
        started
    }

    /// Stores `fix` if it is newer than the one held; returns the one it replaced.
    fn newer(&mut self, vehicle_id: Uuid, fix: Fix) -> Option<Option<Fix>> {
        let held = self.fixes.get(&vehicle_id).copied();
        if held.is_some_and(|h| h.ts_us >= fix.ts_us) {
            return None;
        }
        self.fixes.insert(vehicle_id, fix);
        Some(held)
    }

    fn shift(&mut self, r: AvailableShift) -> Shift {
        let types = &mut self.types;
        Shift {
            shift_id: r.shift_id,
            driver_id: r.driver_id,
            vehicle_id: r.vehicle_id,
            external_id: r.external_id.into(),
            vehicle_type: r.vehicle_type.map(|t| {
                types
                    .entry(t)
                    .or_insert_with_key(|t| Arc::from(t.as_str()))
                    .clone()
            }),
            starts_us: r.starts.timestamp_micros(),
            ends_us: r.ends.map_or(i64::MAX, |e| e.timestamp_micros()),
        }
    }

    fn file(&mut self, shift: Shift, now_us: i64) {
        self.by_driver
            .entry(shift.driver_id)
            .or_default()
            .push(shift.shift_id);
        self.by_vehicle
            .entry(shift.vehicle_id)
            .or_default()
            .push(shift.shift_id);
        if shift.starts_us > now_us {
            self.starts.insert((shift.starts_us, shift.shift_id));
        }
        self.shifts.insert(shift.shift_id, shift);
    }

    fn unfile(&mut self, id: Uuid) -> Option<Shift> {
        let shift = self.shifts.remove(&id)?;
        for (map, key) in [
            (&mut self.by_driver, shift.driver_id),
            (&mut self.by_vehicle, shift.vehicle_id),
        ] {
            if let Some(ids) = map.get_mut(&key) {
                ids.retain(|s| *s != id);
                if ids.is_empty() {
                    map.remove(&key);
                }
            }
        }
        self.starts.remove(&(shift.starts_us, id));
        Some(shift)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
