//! Groups deliveries into batches that close on row count or on age (a timer started by the
//! batch's first item), whichever comes first, and flushes what it holds when input ends.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub rows: usize,
    pub age: Duration,
}

/// Runs until `input` closes. `prepare` turns an input into a batch item (decoding happens
/// here, off the event loop) and `weight` says how many rows it will write (at least 1).
pub async fn run<In, Out>(
    mut input: mpsc::Receiver<In>,
    output: mpsc::Sender<Vec<Out>>,
    limits: Limits,
    mut prepare: impl FnMut(In) -> Out,
    weight: impl Fn(&Out) -> usize,
) {
    let mut batch: Vec<Out> = Vec::new();
    let mut rows = 0usize;
    let mut deadline: Option<Instant> = None;
    loop {
        let full_or_old = tokio::select! {
            item = input.recv() => match item {
                Some(item) => {
                    let out = prepare(item);
                    rows += weight(&out).max(1);
                    batch.push(out);
                    let due = *deadline.get_or_insert_with(|| Instant::now() + limits.age);
                    rows >= limits.rows || Instant::now() >= due
                }
                None => break,
            },
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => true,
        };
        if full_or_old {
            if output.send(std::mem::take(&mut batch)).await.is_err() {
                return; // writers are gone; what we hold stays unacked and will be redelivered
            }
            rows = 0;
            deadline = None;
        }
    }
    if !batch.is_empty() {
        let _ = output.send(batch).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(limits: Limits) -> (mpsc::Sender<usize>, mpsc::Receiver<Vec<usize>>) {
        let (in_tx, in_rx) = mpsc::channel(100);
        let (out_tx, out_rx) = mpsc::channel(100);
        tokio::spawn(run(in_rx, out_tx, limits, |n| n, |n| *n));
        (in_tx, out_rx)
    }

    #[tokio::test(start_paused = true)]
    async fn closes_on_rows() {
        let (tx, mut rx) = spawn(Limits {
            rows: 5,
            age: Duration::from_secs(3600),
        });
        for n in [2, 2, 1, 4] {
            tx.send(n).await.unwrap();
        }
        assert_eq!(rx.recv().await.unwrap(), [2, 2, 1]);
        drop(tx);
        assert_eq!(rx.recv().await.unwrap(), [4], "final flush when input ends");
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn closes_on_age_measured_from_the_first_item() {
        let (tx, mut rx) = spawn(Limits {
            rows: 1000,
            age: Duration::from_millis(50),
        });
        let start = Instant::now();
        tx.send(1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        tx.send(1).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), [1, 1]);
        assert_eq!(start.elapsed(), Duration::from_millis(50));
        // An idle batcher emits nothing.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn weightless_items_still_count() {
        let (tx, mut rx) = spawn(Limits {
            rows: 2,
            age: Duration::from_secs(3600),
        });
        tx.send(0).await.unwrap();
        tx.send(0).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), [0, 0]);
    }
}
