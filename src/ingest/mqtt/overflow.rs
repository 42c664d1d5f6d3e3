//! The bounded queue for deliveries a broker sends beyond the receive-maximum we announced.
//!
//! By protocol a broker may have at most receive-maximum unacked messages towards us, and the
//! channel out of the event loop is sized for exactly that. Brokers do not all keep the
//! promise (Mosquitto 2.0.11 was measured sending more than 2× receive-maximum at full speed
//! with 10 points per message), so what finds the channel full waits here, in order, and is
//! forwarded as room frees up — the event loop keeps polling meanwhile, because blocking it
//! would stop pings and acks. The bound is in bytes (`MQTT_OVERFLOW_MAX_BYTES`, default
//! 256 MiB): it bounds memory whatever the payload size, and it is generous because a trip to
//! the bound costs a reconnect and redelivery (a bound of one receive-maximum of messages cost
//! ~17 % of throughput at 10 points/message in the ingest benchmark).
//!
//! At the bound the queue refuses, and the source (`mqtt::poller::Poller`) switches to discarding:
//! every further delivery on this connection is dropped *unacked*; what is already held
//! (channel and queue) goes on through the pipeline and is acked as usual; once the last of
//! those PUBACKs has gone out, the source drops the connection and reconnects. The session
//! outlives the connection (clean start off), and a broker resends unacked messages only on a
//! reconnect, so everything dropped comes back — into an empty pipeline. Each round stores at
//! least what the queue and channel held, so a broker that ignores receive-maximum entirely
//! slows us down but cannot make us lose messages, waste committed work (acks made stale by
//! an earlier reconnect) or grow without bound. The alternatives were worse: acking early
//! breaks ack-after-commit; dropping without the reconnect strands the messages until some
//! later reconnect; reconnecting at once wastes the held deliveries (their acks go stale), and
//! a broker that resends beyond the bound again then never lets a round finish (measured with
//! Mosquitto 2.0.11 and a receive-maximum of 10: it over-sends far past 2×).

use std::collections::VecDeque;

pub struct Overflow<T> {
    /// Each item with the bytes it was charged.
    queue: VecDeque<(T, usize)>,
    bytes: usize,
    limit_bytes: usize,
}

impl<T> Overflow<T> {
    /// Holds items weighing at most `limit_bytes` in all (0 refuses everything).
    pub fn new(limit_bytes: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            bytes: 0,
            limit_bytes,
        }
    }

    /// Queues `item`, weighing `bytes`, behind the others, or hands it back when it would
    /// take the queue past its bound.
    pub fn push(&mut self, item: T, bytes: usize) -> Result<(), T> {
        if self.bytes + bytes > self.limit_bytes {
            return Err(item);
        }
        self.bytes += bytes;
        self.queue.push_back((item, bytes));
        Ok(())
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let (item, bytes) = self.queue.pop_front()?;
        self.bytes -= bytes;
        Some(item)
    }

    /// Drops everything queued (at shutdown: unacked, redelivered next session); returns how
    /// many were dropped.
    pub fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue = VecDeque::new(); // give the memory back, not only the items
        self.bytes = 0;
        n
    }

    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_refuses_at_the_bound() {
        let mut o = Overflow::new(300);
        assert_eq!(o.push(1, 100), Ok(()));
        assert_eq!(o.push(2, 100), Ok(()));
        assert_eq!(o.push(3, 100), Ok(()));
        assert_eq!(o.push(4, 1), Err(4), "the fourth is handed back");
        assert_eq!((o.len(), o.bytes()), (3, 300));
        assert_eq!(o.pop_front(), Some(1));
        assert_eq!(o.push(5, 100), Ok(()), "room again once one is forwarded");
        assert_eq!(o.pop_front(), Some(2));
        assert_eq!(o.pop_front(), Some(3));
        assert_eq!(o.pop_front(), Some(5));
        assert!(o.is_empty());
        assert_eq!(o.bytes(), 0);
    }

    #[test]
    fn the_bound_is_in_bytes_not_items() {
        let mut o = Overflow::new(1000);
        for i in 0..100 {
            o.push(i, 10).unwrap();
        }
        assert_eq!(o.push(100, 1), Err(100), "a hundred small items fill it");
        let mut big = Overflow::new(1000);
        assert_eq!(big.push("4 MiB payload", 4 << 20), Err("4 MiB payload"));
        assert_eq!(big.push("small", 999), Ok(()));
    }

    #[test]
    fn clear_reports_what_it_dropped() {
        let mut o = Overflow::new(10);
        for i in 0..7 {
            o.push(i, 1).unwrap();
        }
        assert_eq!(o.clear(), 7);
        assert!(o.is_empty());
        assert_eq!(o.bytes(), 0);
        assert_eq!(o.clear(), 0);
    }

    #[test]
    fn a_zero_bound_refuses_everything() {
        let mut o = Overflow::new(0);
        assert_eq!(o.push("a", 1), Err("a"));
        assert!(o.is_empty());
    }
}
