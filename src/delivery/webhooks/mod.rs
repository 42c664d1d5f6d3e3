//! The webhook worker: on every node that runs it (`MERIDIAN_DELIVERY`), claim due deliveries,
//! send them with at most `CONCURRENCY` requests out at once, record each outcome, and wake
//! again on a short interval. Retries back off exponentially with jitter (`domain::webhook::
//! backoff`) until the retry horizon; what is given up on stays visible as `failed` (API and
//! metrics). The rules for claiming, giving up and disabling a webhook are in `store::webhooks`.
//!
//! At least once: a try whose outcome could not be recorded (the database away, the node
//! stopped mid-request) is tried again when its lease runs out, so a receiver may see an event
//! twice — always with the same `Meridian-Event-Id`.

pub mod send;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::WebhookSettings;
use crate::domain::webhook::backoff;
use crate::observability;
use crate::shutdown::Shutdown;
use crate::store::webhooks::{self, Due, Failure, RetryPolicy};
use crate::store::StoreError;
pub use send::{signature, Attempt, Sender, EVENT_ID_HEADER, SIGNATURE_HEADER};

/// Requests out at once per node. Each holds a socket and, while its outcome is recorded, a
/// pooled connection; 16 keeps a node's share of one slow endpoint's timeouts from starving
/// the others without opening hundreds of sockets.
const CONCURRENCY: usize = 16;
/// Database connections the worker records outcomes over (claims take one briefly too).
const CONNECTIONS: usize = 4;
/// The longest the worker sleeps when nothing is due: about the latency an event's first try
/// adds. Shorter when the backoff base is (tests), so retries are not rounded up to it.
const MAX_POLL: Duration = Duration::from_millis(250);
/// How long the worker waits after a failed claim before the next.
const CLAIM_RETRY: Duration = Duration::from_secs(2);
/// How often the pending-deliveries gauges are refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// How long a claimed delivery is kept from other nodes: longer than any request can take
/// (connect + exchange are both bounded by the timeout), plus room to record the outcome.
fn lease(settings: &WebhookSettings) -> Duration {
    settings.timeout * 2 + Duration::from_secs(10)
}

fn poll_interval(settings: &WebhookSettings) -> Duration {
    settings
        .backoff_base
        .clamp(Duration::from_millis(10), MAX_POLL)
}

/// Runs until shutdown (spawned and watched by the supervisor). Database trouble is logged,
/// counted and retried at the next wake; it never ends the task.
/// `fanned_out` is rung by this node's outbox worker when it has recorded deliveries, so they
/// go out at once rather than at the next poll.
pub async fn run(
    database_url: String,
    settings: WebhookSettings,
    sender: Sender,
    fanned_out: Arc<Notify>,
    shutdown: Shutdown,
) {
    let pool = match crate::store::delivery_pool(&database_url, CONNECTIONS) {
        Ok(p) => p,
        Err(e) => {
            // The URL was already used to connect at start, so this cannot happen in practice.
            observability::webhook_worker_failed("pool", &e);
            shutdown.triggered().await;
            return;
        }
    };
    let mut inflight: JoinSet<()> = JoinSet::new();
    let mut tick = tokio::time::interval(poll_interval(&settings));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gauges_at = tokio::time::Instant::now();
    loop {
        // Claimed in batches (half the slots free, or none busy), not one per freed slot.
        let room = CONCURRENCY - inflight.len();
        if room >= CONCURRENCY / 2 || inflight.is_empty() {
            match claim(&pool, room, &settings).await {
                Ok(batch) => {
                    for due in batch {
                        let (pool, sender) = (pool.clone(), sender.clone());
                        let settings = settings.clone();
                        inflight
                            .spawn(async move { deliver(&pool, &sender, &settings, due).await });
                    }
                }
                Err(e) => {
                    observability::webhook_worker_failed("claim", &e);
                    // The database is away: ask again in a while, not at every poll.
                    tokio::select! {
                        _ = shutdown.triggered() => break,
                        _ = tokio::time::sleep(CLAIM_RETRY) => {}
                    }
                }
            }
        }
        if gauges_at.elapsed() >= GAUGE_EVERY {
            gauges_at = tokio::time::Instant::now();
            match pool.get().await.map_err(StoreError::from) {
                Ok(c) => match webhooks::pending(&**c).await {
                    Ok((n, oldest)) => observability::webhook_pending(n, oldest),
                    Err(e) => observability::webhook_worker_failed("pending", &e),
                },
                Err(e) => observability::webhook_worker_failed("pending", &e),
            }
        }
        tokio::select! {
            _ = shutdown.triggered() => break,
            _ = tick.tick() => {}
            _ = fanned_out.notified() => {}
            // A slot freed: claim again at once (more may be due).
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
        }
    }
    // Let requests already out finish and be recorded (each is bounded by the timeout); what
    // is cut short is retried by another node, or this one after a restart, when its lease ends.
    let drain = async { while inflight.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(settings.timeout + Duration::from_secs(1), drain).await;
}

async fn claim(
    pool: &Pool,
    room: usize,
    settings: &WebhookSettings,
) -> Result<Vec<Due>, StoreError> {
    let client = pool.get().await?;
    webhooks::claim(&**client, room as i64, lease(settings)).await
}

/// Sends one claimed delivery and records how it went.
async fn deliver(pool: &Pool, sender: &Sender, settings: &WebhookSettings, due: Due) {
    let body = due.event.to_json();
    let (attempt, took) = sender.send(&due.url, &due.secret, due.event.id, body).await;
    observability::webhook_attempt(&attempt, took);
    if let Err(e) = record(pool, settings, &due, &attempt).await {
        // The lease brings it back; the receiver may then see this event id twice.
        observability::webhook_worker_failed("record", &e);
    }
}

async fn record(
    pool: &Pool,
    settings: &WebhookSettings,
    due: &Due,
    attempt: &Attempt,
) -> Result<(), StoreError> {
    let client = pool.get().await?;
    match attempt {
        Attempt::Delivered { status } => {
            webhooks::record_success(&**client, due, *status).await?;
        }
        Attempt::Failed { status, error, .. } => {
            let jitter = rand::rng().random_range(0.75..=1.0);
            let policy = RetryPolicy {
                retry_in: backoff(
                    due.attempt,
                    settings.backoff_base,
                    settings.backoff_max,
                    jitter,
                ),
                horizon: settings.retry_horizon,
            };
            let (outcome, disabled) =
                webhooks::record_failure(&**client, due, *status, error, policy).await?;
            if outcome == Failure::Failed {
                observability::webhook_delivery_failed(due.webhook_id, due.event.id, error);
            }
            if let Some(reason) = disabled {
                observability::webhook_disabled(due.webhook_id, &reason);
            }
        }
    }
    Ok(())
}
