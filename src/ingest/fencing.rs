//! The writer's fence side: a batch's points grouped by vehicle for judging, and the judging
//! itself against this node's fences, called by the store inside the batch's transaction once
//! it has locked and read what the vehicles' judgements start from (`store::geofence_state`).

use std::collections::HashMap;
use std::time::Instant;

use uuid::Uuid;

use super::Message;
use crate::domain::geofence::judge::{self, Fix};
use crate::geofencing::{Geofences, Neighbourhoods};
use crate::observability;
use crate::store::geofence_state::{Decided, NewEvent, Prior};

/// A batch's points by vehicle, as judging takes them: the vehicle's external id (events
/// carry it) and its fixes with their reported accuracy.
pub type FencePoints = HashMap<Uuid, (String, Vec<(Fix, Option<f64>)>)>;

/// The batch's storable points by vehicle.
pub fn fence_points(batch: &[Message], vehicles: &[Option<Uuid>]) -> FencePoints {
    let mut out = FencePoints::with_capacity(batch.len());
    for (message, vehicle) in batch.iter().zip(vehicles) {
        let Some(id) = vehicle else { continue };
        if message.decoded.points.is_empty() {
            continue;
        }
        let external_id = message.decoded.external_id.as_deref().unwrap_or_default();
        let (_, fixes) = out
            .entry(*id)
            .or_insert_with(|| (external_id.to_owned(), Vec::new()));
        fixes.extend(message.decoded.points.iter().map(|p| {
            (
                Fix {
                    ts: p.ts,
                    pos: p.position,
                },
                p.accuracy_m,
            )
        }));
    }
    out
}

/// Judges every vehicle's points from what the transaction read (`prior`), each from the
/// fences around it (its neighbourhood, kept in `around` between batches). Holds the fence
/// set's read lock for the whole batch (microseconds per point), never across an await.
pub fn judge(
    fences: &Geofences,
    around: &Neighbourhoods,
    prior: &Prior,
    points: &FencePoints,
) -> Decided {
    let started = Instant::now();
    // A vehicle the batch did not move has nothing newer than what was judged already.
    let moved = points.keys().filter(|v| prior.moved.contains_key(v));
    let mut neighbourhoods = around.take(moved.copied());
    let set = fences.read();
    let mut decided = Decided::default();
    for (vehicle, neighbourhood) in &mut neighbourhoods {
        let (external_id, fixes) = &points[vehicle];
        let last = prior.moved[vehicle];
        let states = prior.states.get(vehicle).map_or(&[][..], Vec::as_slice);
        let around = neighbourhood.around(
            &set,
            last.iter()
                .chain(fixes.iter().map(|(f, _)| f))
                .map(|f| f.pos),
        );
        let j = judge::judge(&around, last, states, &mut fixes.clone());
        decided
            .changed
            .extend(j.changed.into_iter().map(|(f, s)| (*vehicle, f, s)));
        decided
            .events
            .extend(j.events.into_iter().map(|raised| NewEvent {
                vehicle_id: *vehicle,
                external_id: external_id.clone(),
                raised,
            }));
        decided.states.push((*vehicle, j.states));
    }
    drop(set);
    around.put_back(neighbourhoods);
    observability::geofence_judged(decided.events.len() as u64, started.elapsed());
    decided
}
