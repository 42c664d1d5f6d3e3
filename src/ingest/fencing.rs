//! The writer's fence side: a batch's points grouped by vehicle for judging, and the judging
//! itself against this node's fences, called by the store inside the batch's transaction once
//! it has locked and read what the vehicles' judgements start from (`store::geofence_state`).

use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

use uuid::Uuid;

use super::Message;
use crate::domain::geofence::judge::{self, Fix};
use crate::geofencing::{Geofences, Neighbourhoods};
use crate::observability;
use crate::store::geofence_state::{Decided, NewEvent, Prior};

/// A batch's points by vehicle, as judging takes them: each vehicle once, with its external
/// id (events carry it) and its fixes with their reported accuracy, all vehicles' fixes in one
/// array (two allocations a batch rather than three a vehicle).
#[derive(Default)]
pub struct FencePoints<'b> {
    vehicles: Vec<(Uuid, &'b str, Range<usize>)>,
    fixes: Vec<(Fix, Option<f64>)>,
}

impl<'b> FencePoints<'b> {
    /// Adds a vehicle's fixes; each vehicle is added once.
    pub fn push(
        &mut self,
        vehicle: Uuid,
        external_id: &'b str,
        fixes: impl IntoIterator<Item = (Fix, Option<f64>)>,
    ) {
        let start = self.fixes.len();
        self.fixes.extend(fixes);
        self.vehicles
            .push((vehicle, external_id, start..self.fixes.len()));
    }

    /// Each vehicle with its external id and fixes, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (Uuid, &'b str, &[(Fix, Option<f64>)])> + '_ {
        self.vehicles
            .iter()
            .map(|(v, external_id, range)| (*v, *external_id, &self.fixes[range.clone()]))
    }
}

/// The batch's storable points by vehicle: a first pass finds each vehicle's share of the
/// array, a second puts its fixes there, in the order its messages came.
pub fn fence_points<'b>(batch: &'b [Message], vehicles: &[Option<Uuid>]) -> FencePoints<'b> {
    let mut place: HashMap<Uuid, usize> = HashMap::with_capacity(batch.len());
    let mut out = FencePoints::default();
    let mut message_vehicle = Vec::with_capacity(batch.len());
    for (message, vehicle) in batch.iter().zip(vehicles) {
        let points = &message.decoded.points;
        let k = vehicle.filter(|_| !points.is_empty()).map(|id| {
            let k = *place.entry(id).or_insert_with(|| {
                let external_id = message.decoded.external_id.as_deref().unwrap_or_default();
                out.vehicles.push((id, external_id, 0..0));
                out.vehicles.len() - 1
            });
            out.vehicles[k].2.end += points.len();
            k
        });
        message_vehicle.push(k);
    }
    // The first pass counted each vehicle's fixes in its range's end.
    let mut start = 0;
    for (_, _, range) in &mut out.vehicles {
        let n = range.end;
        *range = start..start;
        start += n;
    }
    let Some(first) = batch.iter().find_map(|m| m.decoded.points.first()) else {
        return out;
    };
    let blank = (
        Fix {
            ts: first.ts,
            pos: first.position,
        },
        None,
    );
    out.fixes = vec![blank; start];
    for (message, k) in batch.iter().zip(message_vehicle) {
        let Some(k) = k else { continue };
        let range = &mut out.vehicles[k].2;
        for p in &message.decoded.points {
            out.fixes[range.end] = (
                Fix {
                    ts: p.ts,
                    pos: p.position,
                },
                p.accuracy_m,
            );
            range.end += 1;
        }
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
    let moved: Vec<_> = points
        .iter()
        .filter_map(|(v, external_id, fixes)| Some((v, external_id, fixes, *prior.moved.get(&v)?)))
        .collect();
    let mut neighbourhoods = around.take(moved.iter().map(|(v, ..)| *v));
    let set = fences.read();
    let mut decided = Decided::default();
    for (&(vehicle, external_id, fixes, last), (_, neighbourhood)) in
        moved.iter().zip(&mut neighbourhoods)
    {
        let states = prior.states.get(&vehicle).map_or(&[][..], Vec::as_slice);
        let around = neighbourhood.around(
            &set,
            last.iter()
                .chain(fixes.iter().map(|(f, _)| f))
                .map(|f| f.pos),
        );
        let j = judge::judge(&around, last, states, fixes);
        decided
            .changed
            .extend(j.changed.into_iter().map(|(f, s)| (vehicle, f, s)));
        decided
            .events
            .extend(j.events.into_iter().map(|raised| NewEvent {
                vehicle_id: vehicle,
                external_id: external_id.to_owned(),
                raised,
            }));
        decided.states.push((vehicle, j.states));
    }
    drop(set);
    around.put_back(neighbourhoods);
    observability::geofence_judged(decided.events.len() as u64, started.elapsed());
    decided
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use rumqttc::v5::mqttbytes::QoS;

    use super::*;
    use crate::domain::{LatLon, Point, Timestamp};
    use crate::ingest::ack::AckToken;
    use crate::ingest::decode::Decoded;
    use crate::ingest::mqtt::Delivery;

    fn point(s: i64) -> Point {
        Point {
            ts: Timestamp::from_unix_micros(s * 1_000_000),
            position: LatLon::new(59.9, 10.7 + s as f64 / 1000.0).unwrap(),
            speed_kmh: None,
            heading_deg: None,
            fuel_pct: None,
            accuracy_m: Some(s as f64),
            engine: None,
        }
    }

    fn message(external_id: &str, seconds: &[i64]) -> Message {
        Message {
            delivery: Delivery {
                topic: format!("fleet/{external_id}/telemetry"),
                payload: Bytes::new(),
                received_at: Timestamp::from_unix_micros(0),
                ack: AckToken {
                    pkid: 1,
                    qos: QoS::AtLeastOnce,
                    generation: 0,
                },
            },
            decoded: Decoded {
                external_id: Some(external_id.into()),
                points: seconds.iter().map(|s| point(*s)).collect(),
                rejects: Vec::new(),
                dropped: Vec::new(),
                ignored: false,
            },
        }
    }

    /// Each vehicle once, in the order it first came, with all its fixes in the order its
    /// messages came; messages with no vehicle or no points add nothing.
    #[test]
    fn a_batch_is_grouped_by_vehicle_in_arrival_order() {
        let (v1, v2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let batch = [
            message("a", &[1, 2]),
            message("b", &[7]),
            message("x", &[9]),
            message("a", &[3]),
            message("b", &[]),
        ];
        let vehicles = [Some(v1), Some(v2), None, Some(v1), Some(v2)];
        let points = fence_points(&batch, &vehicles);
        let got: Vec<(Uuid, &str, Vec<i64>)> = points
            .iter()
            .map(|(v, external_id, fixes)| {
                let secs = fixes.iter().map(|(f, _)| f.ts.unix_micros() / 1_000_000);
                (v, external_id, secs.collect())
            })
            .collect();
        assert_eq!(got, vec![(v1, "a", vec![1, 2, 3]), (v2, "b", vec![7])]);
        let (_, _, fixes) = points.iter().next().unwrap();
        assert_eq!(
            fixes[2],
            (
                Fix {
                    ts: point(3).ts,
                    pos: point(3).position
                },
                Some(3.0)
            )
        );
    }
}
