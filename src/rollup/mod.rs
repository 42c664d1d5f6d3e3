//! The rollup job (issue 9): on every node that runs it, close each hour once it may be closed
//! (every vehicle's hourly row in one statement, the day's rows at its last hour), then fold in
//! late points' marks, pair by pair. The protocol with the ingest writers, and why several
//! nodes can run this at once, is in `store::rollups`.

pub mod rebuild;

use std::time::Duration;

use chrono::Utc;
use tokio_postgres::Client;

use crate::config::RollupSettings;
use crate::observability;
use crate::shutdown::Shutdown;
use crate::store::rollups::{self, Close};
use crate::store::{self, StoreError};

/// Hours closed per round at most, so a node catching up on days of history still folds late
/// marks (and notices shutdown) between them.
const MAX_HOURS_PER_ROUND: usize = 24;
/// Fold transactions per round at most, for the same reason.
const MAX_FOLDS_PER_ROUND: usize = 20;

/// What one round did (tests and the CLI read it).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Round {
    pub hours_closed: u64,
    pub late_pairs: u64,
    /// Nothing more is due now: every closable hour is closed and no late mark is waiting.
    pub idle: bool,
}

/// Runs until shutdown (spawned and watched by the supervisor); a failed round is retried at
/// the next tick on a new connection.
pub async fn run(url: String, settings: RollupSettings, shutdown: Shutdown) {
    let mut client: Option<Client> = None;
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.triggered() => return,
            _ = tick.tick() => {}
        }
        if client.as_ref().is_none_or(Client::is_closed) {
            client = match store::connect(&url).await {
                Ok(c) => Some(c),
                Err(e) => {
                    observability::rollup_failed(&e);
                    continue;
                }
            };
        }
        let c = client.as_mut().expect("connected above");
        loop {
            match round(c, &settings).await {
                // More is due right away (catching up): go on unless asked to stop.
                Ok(r) if !r.idle && !shutdown.is_triggered() => continue,
                Ok(_) => break,
                Err(e) => {
                    observability::rollup_failed(&e);
                    client = None;
                    break;
                }
            }
        }
    }
}

/// One round: close the hours that may be closed (up to `MAX_HOURS_PER_ROUND`), then fold late
/// marks (up to `MAX_FOLDS_PER_ROUND` transactions).
pub async fn round(client: &mut Client, settings: &RollupSettings) -> Result<Round, StoreError> {
    let mut done = Round::default();
    let mut hours_due = false;
    for _ in 0..MAX_HOURS_PER_ROUND {
        match rollups::close_next_hour(client).await? {
            Close::Closed(hour) => {
                observability::rollup_hour_closed(hour.points, hour.took);
                tracing::debug!(bucket = %hour.bucket, vehicles = hour.vehicles,
                    points = hour.points, took = ?hour.took, "closed an hour");
                if hour.alerts_raised > 0 {
                    tracing::info!(raised = hour.alerts_raised, day = %hour.bucket.date_naive(),
                        "maintenance due: alerts raised");
                }
                done.hours_closed += 1;
                hours_due = true;
            }
            Close::NotYet | Close::WritersInFlight | Close::Busy => {
                hours_due = false;
                break;
            }
        }
    }
    let mut marks_due = false;
    for _ in 0..MAX_FOLDS_PER_ROUND {
        let folded = rollups::fold_late(client, settings.fold_marks).await?;
        observability::rollup_late_folded(&folded);
        done.late_pairs += folded.pairs;
        marks_due = folded.marks as i64 >= settings.fold_marks;
        if !marks_due {
            break;
        }
    }
    if let Some(last) = rollups::watermark(&*client).await? {
        let closed_until = last + chrono::TimeDelta::hours(1);
        observability::rollup_lag((Utc::now() - closed_until).as_seconds_f64());
    }
    done.idle = !hours_due && !marks_due;
    Ok(done)
}

/// Runs rounds until one finds nothing due (tests; the job's own loop waits between rounds).
pub async fn until_idle(
    client: &mut Client,
    settings: &RollupSettings,
) -> Result<Round, StoreError> {
    let mut total = Round::default();
    loop {
        let r = round(client, settings).await?;
        total.hours_closed += r.hours_closed;
        total.late_pairs += r.late_pairs;
        if r.idle {
            total.idle = true;
            return Ok(total);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
