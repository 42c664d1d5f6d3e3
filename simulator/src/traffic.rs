//! The message stream of one connection: picks the next vehicle round-robin, advances its
//! motion and clock, and decides whether the message is valid, a fault or a duplicate.
//! Pure (no I/O), so everything the server will be checked against is unit-testable here.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use rand::{rngs::SmallRng, Rng};

use crate::clock::Clock;
use crate::fleet::{Area, Vehicle};
use crate::payload::{write_fault, write_message, FaultKind, Point, TsFormat};

/// Roughly one message in ten carries RFC 3339 timestamps, the rest epoch milliseconds.
const RFC3339_SHARE: f64 = 0.1;
/// Duplicates are drawn from this many recent valid messages, so they are not always adjacent
/// to their original (as redelivery after a reconnect would not be).
const RECENT_CAPACITY: usize = 64;
/// Reserve buffer space in big blocks; each message is split off and frozen without copying.
const BUF_BLOCK: usize = 64 * 1024;
/// Vehicles looked at for one that may emit before the producer sleeps; bounded so a fleet
/// that is entirely ahead of wall time costs a short scan, not a pass over every vehicle.
const SKIP_SCAN: usize = 64;

#[derive(Debug, Clone)]
pub struct TrafficConfig {
    pub topic_prefix: String,
    pub points_per_message: u32,
    /// Messages per second per vehicle, 0 when unthrottled; sets the spacing of points in a message.
    pub rate: f64,
    pub fault_rate: f64,
    pub duplicate_rate: f64,
    pub late_rate: f64,
    pub area: Area,
}

/// A simulated device: its topic, physical state and clock.
#[derive(Debug, Clone)]
pub struct SimVehicle {
    pub topic: String,
    pub motion: Vehicle,
    pub clock: Clock,
}

/// Counts of what was generated, kept locally and added to the shared counters per batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub messages: u64,
    pub points: u64,
    /// Points in valid, first-time messages: what the server should end up storing.
    pub valid_points_unique: u64,
    pub duplicates: u64,
    pub late_points: u64,
    pub faults: [u64; FaultKind::ALL.len()],
}

pub struct Message {
    pub topic: String,
    pub payload: Bytes,
}

/// What a message turned out to be; lets tests check the payload against the intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Valid,
    Fault(FaultKind),
    Duplicate,
}

pub struct Traffic {
    cfg: TrafficConfig,
    vehicles: Vec<SimVehicle>,
    next: usize,
    rng: SmallRng,
    buf: BytesMut,
    points: Vec<Point>,
    recent: VecDeque<(usize, Bytes)>,
    /// Fault kinds are taken in turn so a small fault count still covers every kind.
    fault_turn: usize,
    ghosts: u64,
    pub tally: Tally,
}

impl Traffic {
    /// `fault_offset` staggers the fault cycle so parallel connections don't all start with the same kind.
    pub fn new(
        cfg: TrafficConfig,
        vehicles: Vec<SimVehicle>,
        rng: SmallRng,
        fault_offset: usize,
    ) -> Self {
        assert!(
            !vehicles.is_empty(),
            "a connection needs at least one vehicle"
        );
        let k = cfg.points_per_message as usize;
        Self {
            cfg,
            vehicles,
            next: 0,
            rng,
            buf: BytesMut::with_capacity(BUF_BLOCK),
            points: Vec::with_capacity(k),
            recent: VecDeque::with_capacity(RECENT_CAPACITY),
            fault_turn: fault_offset,
            ghosts: 0,
            tally: Tally::default(),
        }
    }

    pub fn vehicles(&self) -> &[SimVehicle] {
        &self.vehicles
    }

    /// Makes the next vehicle one whose clock may advance without running too far ahead of
    /// wall time, skipping those that may not; if none of the next few may, how long to wait.
    /// Skipping matters when one vehicle jumped ahead (the 1001-point fault spans a second):
    /// waiting for it would stall the whole fleet.
    pub fn wait_before_next(&mut self, now_ms: i64) -> Option<u64> {
        let mut shortest = u64::MAX;
        for _ in 0..SKIP_SCAN.min(self.vehicles.len()) {
            match self.vehicles[self.next]
                .clock
                .wait_before(self.cfg.points_per_message, now_ms)
            {
                None => return None,
                Some(wait) => {
                    shortest = shortest.min(wait);
                    self.next = (self.next + 1) % self.vehicles.len();
                }
            }
        }
        Some(shortest)
    }

    pub fn next_message(&mut self, now_ms: i64) -> Message {
        self.next_with_kind(now_ms).0
    }

    pub fn next_with_kind(&mut self, now_ms: i64) -> (Message, Kind) {
        let index = self.next;
        self.next = (self.next + 1) % self.vehicles.len();
        self.tally.messages += 1;

        // One draw decides the message's role; if fault + duplicate rates exceed 1, faults win.
        let roll: f64 = self.rng.random();
        if roll < self.cfg.fault_rate {
            let kind = FaultKind::ALL[self.fault_turn % FaultKind::ALL.len()];
            self.fault_turn += 1;
            return (self.fault(index, kind, now_ms), Kind::Fault(kind));
        }
        if roll < self.cfg.fault_rate + self.cfg.duplicate_rate && !self.recent.is_empty() {
            let (vehicle, payload) =
                self.recent[self.rng.random_range(0..self.recent.len())].clone();
            self.tally.duplicates += 1;
            self.tally.points += self.cfg.points_per_message as u64;
            let topic = self.vehicles[vehicle].topic.clone();
            return (Message { topic, payload }, Kind::Duplicate);
        }
        (self.valid(index, now_ms), Kind::Valid)
    }

    fn valid(&mut self, index: usize, now_ms: i64) -> Message {
        let k = self.cfg.points_per_message as i64;
        // A device sampling K times per message interval: points spread over the interval that
        // just ended. Unthrottled, the clock's +1 ms rule spaces them instead.
        let spacing_ms = if self.cfg.rate > 0.0 {
            (1000.0 / (self.cfg.rate * k as f64)) as i64
        } else {
            0
        };
        self.points.clear();
        let v = &mut self.vehicles[index];
        for i in 0..k {
            if self.cfg.late_rate > 0.0 && self.rng.random_bool(self.cfg.late_rate) {
                if let Some(ts_ms) = v.clock.next_late(&mut self.rng) {
                    self.tally.late_points += 1;
                    self.points.push(sample(&v.motion, ts_ms, &mut self.rng));
                    continue;
                }
            }
            let before = v.clock.last_ms();
            let ts_ms = v.clock.next(now_ms - (k - 1 - i) * spacing_ms);
            // Motion advances by exactly the time between timestamps, so tracks stay physical.
            if let Some(before) = before {
                v.motion.step(
                    &self.cfg.area,
                    (ts_ms - before) as f64 / 1000.0,
                    &mut self.rng,
                );
            }
            self.points.push(sample(&v.motion, ts_ms, &mut self.rng));
        }
        let ts_format = if self.rng.random_bool(RFC3339_SHARE) {
            TsFormat::Rfc3339
        } else {
            TsFormat::EpochMillis
        };
        write_message(&mut self.buf, &self.points, ts_format);
        let payload = self.take_payload();
        self.tally.points += k as u64;
        self.tally.valid_points_unique += k as u64;
        if self.recent.len() == RECENT_CAPACITY {
            self.recent.pop_front();
        }
        self.recent.push_back((index, payload.clone()));
        let topic = self.vehicles[index].topic.clone();
        Message { topic, payload }
    }

    /// Fault messages are single objects (or the oversized array), never a bad point inside a
    /// good array, so "valid points" has one meaning whatever the server's per-point policy is.
    fn fault(&mut self, index: usize, kind: FaultKind, now_ms: i64) -> Message {
        let v = &mut self.vehicles[index];
        // Consumes the vehicle's clock so a fault wrongly stored would show up as an extra row,
        // not hide behind an existing (vehicle_id, ts).
        let ts_ms = v.clock.next(now_ms);
        let point = sample(&v.motion, ts_ms, &mut self.rng);
        if kind == FaultKind::TooManyPoints {
            // Reserve the 1001 milliseconds the array spans, for the same reason.
            for _ in 1..kind.points() {
                v.clock.next(now_ms);
            }
        }
        let topic = if kind == FaultKind::UnknownVehicle {
            self.ghosts += 1;
            format!(
                "{}fleet/ghost-{}/telemetry",
                self.cfg.topic_prefix, self.ghosts
            )
        } else {
            v.topic.clone()
        };
        write_fault(&mut self.buf, kind, &point);
        self.tally.faults[kind.index()] += 1;
        self.tally.points += kind.points();
        Message {
            topic,
            payload: self.take_payload(),
        }
    }

    fn take_payload(&mut self) -> Bytes {
        let payload = self.buf.split().freeze();
        if self.buf.capacity() < 4 * 1024 {
            self.buf.reserve(BUF_BLOCK);
        }
        payload
    }
}

/// What the vehicle's sensors report right now.
fn sample(v: &Vehicle, ts_ms: i64, rng: &mut SmallRng) -> Point {
    Point {
        ts_ms,
        lat: v.position.lat(),
        lon: v.position.lon(),
        speed_kmh: v.speed_kmh,
        // 359.96 would print as 360.0, outside the contract's [0, 360).
        heading_deg: if v.heading_deg >= 359.95 {
            0.0
        } else {
            v.heading_deg
        },
        fuel_pct: v.fuel_pct,
        // GPS accuracy wanders between a clear sky and an urban canyon.
        accuracy_m: rng.random_range(3.0..15.0),
        rpm: v.rpm,
        coolant_c: v.coolant_c,
    }
}

#[cfg(test)]
#[path = "traffic_tests.rs"]
mod tests;
