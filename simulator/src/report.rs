//! Run counters shared by producers and event loops, the live progress bar, and the final report
//! (human-readable on stdout, JSON with `--report-json` for tests and benchmarks).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Map, Value};

use crate::payload::FaultKind;
use crate::traffic::Tally;

/// Totals across connections. Producers add their `Tally` per batch and event loops count acks,
/// so the hot path touches these atomics rarely (acks once each: cheaper than a channel).
#[derive(Debug, Default)]
pub struct Counters {
    pub published: AtomicU64,
    pub points: AtomicU64,
    pub valid_points_unique: AtomicU64,
    pub duplicates: AtomicU64,
    pub late_points: AtomicU64,
    pub faults: [AtomicU64; FaultKind::ALL.len()],
    /// Publishes written to the socket (what QoS 0 can promise).
    pub sent: AtomicU64,
    /// PUBACKs (QoS 1) or PUBCOMPs (QoS 2) received from the broker.
    pub acked: AtomicU64,
    pub reconnects: AtomicU64,
}

impl Counters {
    /// Moves a producer's local tally into the totals and resets it.
    pub fn absorb(&self, tally: &mut Tally) {
        let t = std::mem::take(tally);
        self.published.fetch_add(t.messages, Relaxed);
        self.points.fetch_add(t.points, Relaxed);
        self.valid_points_unique
            .fetch_add(t.valid_points_unique, Relaxed);
        self.duplicates.fetch_add(t.duplicates, Relaxed);
        self.late_points.fetch_add(t.late_points, Relaxed);
        for (total, n) in self.faults.iter().zip(t.faults) {
            total.fetch_add(n, Relaxed);
        }
    }

    /// Messages the broker has confirmed: acknowledged for QoS ≥ 1, written for QoS 0.
    pub fn confirmed(&self, qos: u8) -> u64 {
        if qos == 0 {
            self.sent.load(Relaxed)
        } else {
            self.acked.load(Relaxed)
        }
    }
}

/// Why publishing stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Messages,
    Duration,
    Interrupted,
}

impl StopReason {
    fn name(self) -> &'static str {
        match self {
            StopReason::Messages => "messages",
            StopReason::Duration => "duration",
            StopReason::Interrupted => "interrupted",
        }
    }
}

/// Settings echoed into the JSON report, so a result file says what produced it.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub vehicles: u32,
    pub connections: u32,
    pub qos: u8,
    pub rate: f64,
    pub points_per_message: u32,
    pub topic_prefix: String,
    pub id_prefix: String,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub info: RunInfo,
    pub stopped_by: StopReason,
    pub messages_published: u64,
    pub messages_acked: u64,
    pub points_published: u64,
    pub valid_points_unique: u64,
    pub faults: [u64; FaultKind::ALL.len()],
    pub duplicates: u64,
    pub late_points: u64,
    pub reconnects: u64,
    /// From the first publish until the broker confirmed the last one (or the wait gave up).
    pub elapsed: Duration,
    /// Of `elapsed`, the time spent after the last publish waiting for confirmations.
    pub ack_wait: Duration,
}

impl Report {
    pub fn new(
        info: RunInfo,
        c: &Counters,
        stopped_by: StopReason,
        elapsed: Duration,
        ack_wait: Duration,
    ) -> Self {
        Self {
            stopped_by,
            messages_published: c.published.load(Relaxed),
            messages_acked: c.confirmed(info.qos),
            points_published: c.points.load(Relaxed),
            valid_points_unique: c.valid_points_unique.load(Relaxed),
            faults: std::array::from_fn(|i| c.faults[i].load(Relaxed)),
            duplicates: c.duplicates.load(Relaxed),
            late_points: c.late_points.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
            elapsed,
            ack_wait,
            info,
        }
    }

    pub fn unconfirmed(&self) -> u64 {
        self.messages_published.saturating_sub(self.messages_acked)
    }

    fn per_s(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn human(&self) -> String {
        let ack = if self.info.qos == 0 {
            format!(
                "written to the socket {} (QoS 0: no acknowledgements)",
                self.messages_acked
            )
        } else {
            format!("broker-acknowledged {}", self.messages_acked)
        };
        let mut out = format!(
            "published {} messages ({} points) in {:.1}s: {:.0} msg/s, {:.0} points/s; {ack}; faults {}, duplicates {}, late points {}",
            self.messages_published,
            self.points_published,
            self.elapsed.as_secs_f64(),
            self.per_s(self.messages_published),
            self.per_s(self.points_published),
            self.faults.iter().sum::<u64>(),
            self.duplicates,
            self.late_points,
        );
        out.push_str(&format!(
            "\nvalid unique points (what the server should store): {}",
            self.valid_points_unique
        ));
        if self.faults.iter().any(|&n| n > 0) {
            let kinds: Vec<String> = FaultKind::ALL
                .iter()
                .map(|k| format!("{} {}", k.name(), self.faults[k.index()]))
                .collect();
            out.push_str(&format!("\nfaults by kind: {}", kinds.join(", ")));
        }
        if self.unconfirmed() > 0 {
            out.push_str(&format!(
                "\nWARNING: {} messages were never confirmed by the broker",
                self.unconfirmed()
            ));
        }
        out
    }

    pub fn json(&self) -> Value {
        let faults: Map<String, Value> = FaultKind::ALL
            .iter()
            .map(|k| (k.name().to_owned(), self.faults[k.index()].into()))
            .collect();
        json!({
            "messages_published": self.messages_published,
            "messages_acked": self.messages_acked,
            "messages_unacked": self.unconfirmed(),
            "points_published": self.points_published,
            "valid_points_unique": self.valid_points_unique,
            "faults": faults,
            "faults_total": self.faults.iter().sum::<u64>(),
            "duplicates": self.duplicates,
            "late_points": self.late_points,
            "reconnects": self.reconnects,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ack_wait_s": self.ack_wait.as_secs_f64(),
            "msgs_per_s": self.per_s(self.messages_published),
            "points_per_s": self.per_s(self.points_published),
            "stopped_by": self.stopped_by.name(),
            "vehicles": self.info.vehicles,
            "connections": self.info.connections,
            "qos": self.info.qos,
            "rate": self.info.rate,
            "points_per_message": self.info.points_per_message,
            "topic_prefix": self.info.topic_prefix,
            "id_prefix": self.info.id_prefix,
            "seed": self.info.seed,
        })
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.json())?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// Live progress on stderr; a no-op when hidden, so the run loop does not care.
pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(counters: Arc<Counters>, total: Option<u64>, qos: u8, enabled: bool) -> Self {
        let target = if enabled && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let template = if total.is_some() {
            "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} published, {msg}"
        } else {
            "{spinner} {elapsed_precise} {pos} published, {msg}"
        };
        let bar = ProgressBar::with_draw_target(total, target)
            .with_style(ProgressStyle::with_template(template).expect("static template"));
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let (mut last_n, mut last_t) = (0, Instant::now());
            loop {
                tick.tick().await;
                let n = counters.published.load(Relaxed);
                let rate = (n - last_n) as f64 / last_t.elapsed().as_secs_f64().max(1e-3);
                (last_n, last_t) = (n, Instant::now());
                shown.set_position(n);
                let ack = if qos == 0 { "written" } else { "acked" };
                shown.set_message(format!(
                    "{} {ack}, {rate:.0} msg/s",
                    counters.confirmed(qos)
                ));
            }
        });
        Self { bar, task }
    }

    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_totals_and_rates_come_from_the_counters() {
        let c = Counters::default();
        let mut tally = Tally {
            messages: 100,
            points: 1_000,
            valid_points_unique: 800,
            ..Tally::default()
        };
        tally.faults[FaultKind::MissingLat.index()] = 3;
        c.absorb(&mut tally);
        assert_eq!(tally, Tally::default(), "absorbing resets the local tally");
        c.acked.store(90, Relaxed);
        let info = RunInfo {
            vehicles: 10,
            connections: 1,
            qos: 1,
            rate: 0.0,
            points_per_message: 10,
            topic_prefix: String::new(),
            id_prefix: "sim-".into(),
            seed: 1,
        };
        let r = Report::new(
            info,
            &c,
            StopReason::Messages,
            Duration::from_secs(2),
            Duration::ZERO,
        );
        let j = r.json();
        assert_eq!(j["messages_published"], 100);
        assert_eq!(j["messages_unacked"], 10);
        assert_eq!(j["faults"]["missing_lat"], 3);
        assert_eq!(j["msgs_per_s"], 50.0);
        assert_eq!(j["points_per_s"], 500.0);
        assert!(r
            .human()
            .starts_with("published 100 messages (1000 points) in 2.0s: 50 msg/s, 500 points/s"));
        assert!(r.human().contains("10 messages were never confirmed"));
    }
}
