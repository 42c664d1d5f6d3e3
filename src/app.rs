//! Builds and runs a Meridian node: migrations, partitions, ingest pipeline, HTTP server,
//! maintenance — and takes them down in order on shutdown. Tests drive this same type.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::config::Settings;
use crate::delivery;
use crate::delivery::webhooks as webhook_delivery;
use crate::dispatch::{self, Desk};
use crate::domain::Timestamp;
use crate::geofencing::{self, Geofences};
use crate::ingest::ack::Acker;
use crate::ingest::Pipeline;
use crate::live::{self, Live};
use crate::observability;
use crate::readiness::Readiness;
use crate::rollup;
use crate::shutdown::Shutdown;
use crate::store::partitions::{self, Partitions};
use crate::store::{self, migrate};
use crate::stream;
use crate::supervisor::Supervisor;

/// Connections for short HTTP queries; writers hold their own.
const POOL_SIZE: usize = 16;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    pipeline: Option<Pipeline>,
    maintenance: JoinHandle<()>,
    live_feed: JoinHandle<()>,
    fence_feed: JoinHandle<()>,
    tailer: JoinHandle<()>,
    outbox: Option<JoinHandle<()>>,
    queue_drain: JoinHandle<()>,
    rollup: Option<JoinHandle<()>>,
    webhooks: Option<JoinHandle<()>>,
    shutdown: Shutdown,
    /// Watches every task above (and the HTTP server, once running).
    supervisor: Supervisor,
    settings: Settings,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = observability::metrics_handle();
        let mut client = store::connect(&settings.database_url)
            .await
            .context("connecting to PostgreSQL")?;
        migrate::run(&mut client)
            .await
            .context("applying migrations")?;
        let partitions = Arc::new(Partitions::default());
        // Today's and the coming days' partitions exist before the first row arrives.
        maintain(&mut client, &partitions, &settings)
            .await
            .context("creating partitions")?;
        drop(client);

        let shutdown = Shutdown::default();
        let supervisor = Supervisor::new(shutdown.clone());
        let readiness = Readiness::default();
        let live = Arc::new(Live::default());
        let fences = Arc::new(Geofences::default());
        let hub = Arc::new(stream::Hub::new(settings.mqtt.client_id.clone()));
        let tailer = supervisor.watch(
            "event stream",
            tokio::spawn(stream::run(
                hub.clone(),
                settings.database_url.clone(),
                live.watched.clone(),
                shutdown.clone(),
            )),
        );
        let fence_feed = supervisor.watch(
            "geofence feed",
            geofencing::feed::spawn(
                fences.clone(),
                settings.database_url.clone(),
                settings.live_refresh,
                shutdown.clone(),
            ),
        );
        let pipeline = settings.ingest_enabled.then(|| {
            Pipeline::start(
                &settings,
                partitions.clone(),
                live.watched.clone(),
                fences.clone(),
                shutdown.clone(),
                readiness.clone(),
                &supervisor,
            )
        });
        let live_feed = supervisor.watch(
            "live feed",
            live::spawn(
                live.clone(),
                settings.database_url.clone(),
                settings.live_refresh,
                shutdown.clone(),
            ),
        );
        let pool = store::pool(&settings.database_url, POOL_SIZE)?;
        let desk = Desk::new(
            store::dispatch_pool(&settings.database_url, settings.dispatch.connections)?,
            live.clone(),
            settings.dispatch.clone(),
        );
        let queue_drain = supervisor.spawn(
            "queue drain",
            dispatch::drain::run(desk.clone(), shutdown.clone()),
        );
        let state = AppState {
            desk,
            pool,
            broker: pipeline.as_ref().map(Pipeline::broker_status),
            metrics,
            live,
            fences,
            hub,
            readiness,
            retention: crate::domain::track::Retention {
                raw_days: settings.retention.raw_days,
                hourly_days: settings.retention.hourly_days,
            },
            exports: crate::api::export_slots(),
        };
        let listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("binding {}", settings.http_addr))?;
        let maintenance = supervisor.spawn(
            "maintenance",
            maintenance_loop(partitions, settings.clone(), shutdown.clone()),
        );
        if !settings.rollup.track_late {
            tracing::warn!(
                "MERIDIAN_ROLLUP_TRACK_LATE=false: late points will not reach the rollups"
            );
        }
        let fanned_out = Arc::new(tokio::sync::Notify::new());
        let outbox = settings.webhooks.enabled.then(|| {
            supervisor.spawn(
                "geofence outbox",
                delivery::outbox::run(
                    settings.database_url.clone(),
                    settings.mqtt.clone(),
                    fanned_out.clone(),
                    shutdown.clone(),
                ),
            )
        });
        let rollup = settings.rollup.enabled.then(|| {
            supervisor.spawn(
                "rollup",
                rollup::run(
                    settings.database_url.clone(),
                    settings.rollup.clone(),
                    shutdown.clone(),
                ),
            )
        });
        let webhooks = if settings.webhooks.enabled {
            if settings.webhooks.retry_horizon < Duration::from_secs(24 * 3600) {
                tracing::warn!(
                    horizon = ?settings.webhooks.retry_horizon,
                    "MERIDIAN_WEBHOOK_RETRY_HOURS is under 24: webhook deliveries are given up \
                     on (and failing webhooks disabled) sooner than a day"
                );
            }
            let sender = webhook_delivery::Sender::new(&settings.webhooks)
                .context("building the webhook HTTP client")?;
            Some(supervisor.spawn(
                "webhook delivery",
                webhook_delivery::run(
                    settings.database_url.clone(),
                    settings.webhooks.clone(),
                    sender,
                    fanned_out,
                    shutdown.clone(),
                ),
            ))
        } else {
            None
        };
        Ok(Self {
            listener,
            state,
            pipeline,
            maintenance,
            live_feed,
            fence_feed,
            tailer,
            outbox,
            queue_drain,
            rollup,
            webhooks,
            shutdown,
            supervisor,
            settings,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Counts messages acknowledged after commit (tests wait on it).
    pub fn acker(&self) -> Option<Acker> {
        self.pipeline.as_ref().map(Pipeline::acker)
    }

    /// This node's live index (tests watch its reloads and wait on it).
    pub fn live(&self) -> Arc<Live> {
        self.state.live.clone()
    }

    /// Runs until a signal (or a test) asks for shutdown, or until the supervisor sees a task
    /// end unexpectedly; then drains. `Err` when any task failed, so `main` exits non-zero.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let shutdown = self.shutdown.clone();
        let server = axum::serve(self.listener, api::router(self.state))
            .with_graceful_shutdown(async move { shutdown.triggered().await });
        let supervisor = self.supervisor.clone();
        let server = self.supervisor.spawn("http server", async move {
            if let Err(e) = server.await {
                supervisor.failed("http server", format!("failed: {e}"));
            }
        });
        self.shutdown.triggered().await;
        if let Some(pipeline) = self.pipeline {
            pipeline.drain(self.settings.shutdown_timeout).await;
        }
        self.maintenance.abort();
        self.live_feed.abort();
        self.fence_feed.abort();
        self.tailer.abort();
        if let Some(outbox) = self.outbox {
            outbox.abort();
        }
        self.queue_drain.abort();
        if let Some(rollup) = self.rollup {
            rollup.abort();
        }
        if let Some(webhooks) = self.webhooks {
            // It lets requests already out finish (each within the timeout), then returns.
            let deadline = self.settings.webhooks.timeout + Duration::from_secs(2);
            if tokio::time::timeout(deadline, webhooks).await.is_err() {
                tracing::warn!("webhook delivery did not stop in time");
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .is_err()
        {
            tracing::warn!("HTTP server did not stop in time");
        }
        self.supervisor.outcome()?;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn maintenance_loop(partitions: Arc<Partitions>, settings: Settings, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(settings.retention.maintenance_interval);
    let mut first = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.triggered() => return,
        }
        let result = async {
            let mut client = store::connect(&settings.database_url).await?;
            // build() already ran the first round's partition work; sealing past days can take
            // minutes on a large table, so it only ever runs here, in the background.
            if !std::mem::take(&mut first) {
                maintain(&mut client, &partitions, &settings).await?;
            }
            let today = Timestamp::now().utc_day();
            let sealed = partitions::seal_before(&client, today).await?;
            observability::partitions_sealed(&sealed);
            Ok::<_, store::StoreError>(())
        };
        if let Err(e) = result.await {
            tracing::warn!(error = %e, "maintenance round failed; will retry next interval");
        }
    }
}

/// Creates telemetry partitions from yesterday to `partitions_ahead_days` ahead and drops those
/// past retention; prunes hourly rollups, geofence events and webhook deliveries past theirs;
/// keeps the audit trail's coming months ready.
async fn maintain(
    client: &mut tokio_postgres::Client,
    partitions: &Partitions,
    settings: &Settings,
) -> Result<(), store::StoreError> {
    let now = Timestamp::now();
    let today = now.utc_day();
    partitions
        .ensure(
            client,
            today - 1..=today + settings.retention.partitions_ahead_days,
        )
        .await?;
    let oldest_day = now
        .plus_secs(-settings.retention.raw_days * 86_400)
        .utc_day();
    let dropped = partitions.drop_before(client, oldest_day).await?;
    observability::partitions_dropped(&dropped);
    let hourly_before = now
        .plus_secs(-settings.retention.hourly_days * 86_400)
        .to_datetime();
    let pruned = store::rollups::prune_hourly(client, hourly_before).await?;
    observability::hourly_pruned(pruned);
    store::geofence_state::drop_orphans(client).await?;
    let events_before = now
        .plus_secs(-settings.retention.events_days * 86_400)
        .to_datetime();
    let (events, deliveries) = store::geofence_events::prune(client, events_before).await?;
    observability::events_pruned(events, deliveries);
    store::audit::ensure_partitions(client).await?;
    Ok(())
}
