//! Command `run`: builds the fleet, connects, publishes until a stop condition, waits until the
//! broker has confirmed every publish, then reports.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::{rngs::SmallRng, SeedableRng};

use crate::cli::RunArgs;
use crate::clock::Clock;
use crate::fleet::{Area, Vehicle};
use crate::publish::{self, Stop};
use crate::register;
use crate::report::{Counters, Progress, Report, RunInfo, StopReason};
use crate::traffic::{SimVehicle, Traffic, TrafficConfig};

/// How long to wait for the broker to acknowledge what was published before giving up.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(args: RunArgs) -> Result<()> {
    if args.fleet.vehicles == 0 {
        bail!("--vehicles must be at least 1");
    }
    let (host, port) = meridian::config::parse_mqtt_url(&args.mqtt_url)?;
    if args.register {
        let r = register::register(&args.fleet, &args.db).await?;
        eprintln!(
            "registered {} vehicles ({} new) in {:.2}s",
            r.total,
            r.inserted,
            r.elapsed.as_secs_f64()
        );
    }
    if args.duration.is_none() && args.messages.is_none() {
        eprintln!("no --duration or --messages given: publishing until interrupted (ctrl-c)");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let connections = args.connections.min(args.fleet.vehicles);
    let traffics = build_traffic(&args, seed, connections)?;

    let counters = Arc::new(Counters::default());
    let mut links = Vec::with_capacity(traffics.len());
    for c in 0..connections {
        // The random part keeps two simulators with the same prefix from kicking each other off.
        let client_id = format!(
            "{}-{c}-{:06x}",
            args.client_id,
            rand::random::<u32>() & 0xff_ffff
        );
        links.push(publish::connect(&host, port, client_id, counters.clone()).await?);
    }

    let stop = Arc::new(Stop::new(
        args.duration.map(Duration::from_secs_f64),
        args.messages,
    ));
    let abandon = Arc::new(AtomicBool::new(false));
    let signals = tokio::spawn(watch_interrupts(stop.clone(), abandon.clone()));
    let progress = Progress::start(counters.clone(), args.messages, args.qos, !args.no_progress);

    let started = Instant::now();
    let producers: Vec<_> = traffics
        .into_iter()
        .zip(&links)
        .map(|(traffic, link)| {
            let rate = args.rate * traffic.vehicles().len() as f64;
            let client = link.client.clone();
            tokio::spawn(publish::produce(
                traffic,
                client,
                publish::qos(args.qos),
                rate,
                stop.clone(),
                counters.clone(),
            ))
        })
        .collect();
    let mut failure = None;
    for p in producers {
        if let Err(e) = p.await.context("producer task panicked").and_then(|r| r) {
            failure.get_or_insert(e);
        }
    }
    let stopped_by = if stop.interrupted() {
        StopReason::Interrupted
    } else if stop.budget_spent() {
        StopReason::Messages
    } else {
        StopReason::Duration
    };
    let publish_done = Instant::now();
    let confirmed_at = wait_for_confirmations(&counters, args.qos, &abandon).await;

    progress.finish();
    signals.abort();
    for link in links {
        link.close().await;
    }
    let info = RunInfo {
        vehicles: args.fleet.vehicles,
        connections,
        qos: args.qos,
        rate: args.rate,
        points_per_message: args.points_per_message,
        topic_prefix: args.topic_prefix.clone(),
        id_prefix: args.fleet.id_prefix.clone(),
        seed,
    };
    let report = Report::new(
        info,
        &counters,
        stopped_by,
        confirmed_at - started,
        confirmed_at.saturating_duration_since(publish_done),
    );
    println!("{}", report.human());
    if let Some(path) = &args.report_json {
        report.write_json(path)?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if report.unconfirmed() > 0 {
        bail!(
            "{} of {} messages were not confirmed by the broker",
            report.unconfirmed(),
            report.messages_published
        );
    }
    Ok(())
}

/// One `Traffic` per connection, vehicles split into contiguous ranges. The fleet's motion and
/// fault placement derive from `seed`, so a run can be repeated.
fn build_traffic(args: &RunArgs, seed: u64, connections: u32) -> Result<Vec<Traffic>> {
    let area = Area::new(args.center, args.radius_km);
    let run_start_ms = publish::wall_ms();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut fleet = Vec::with_capacity(args.fleet.vehicles as usize);
    for i in 0..args.fleet.vehicles {
        let id = register::external_id(&args.fleet.id_prefix, i)?;
        fleet.push(SimVehicle {
            topic: format!("{}fleet/{id}/telemetry", args.topic_prefix),
            motion: Vehicle::spawn(&area, &mut rng),
            clock: Clock::new(run_start_ms, &mut rng),
        });
    }
    let cfg = TrafficConfig {
        topic_prefix: args.topic_prefix.clone(),
        points_per_message: args.points_per_message,
        rate: args.rate,
        fault_rate: args.fault_rate,
        duplicate_rate: args.duplicate_rate,
        late_rate: args.late_rate,
        area,
    };
    let per_conn = fleet.len().div_ceil(connections as usize);
    let mut traffics = Vec::with_capacity(connections as usize);
    let mut rest = fleet.into_iter();
    for c in 0..connections as usize {
        let vehicles: Vec<SimVehicle> = rest.by_ref().take(per_conn).collect();
        if vehicles.is_empty() {
            break;
        }
        let conn_rng =
            SmallRng::seed_from_u64(seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        traffics.push(Traffic::new(cfg.clone(), vehicles, conn_rng, c));
    }
    Ok(traffics)
}

/// First ctrl-c: stop publishing and drain. Second: stop waiting for acknowledgements too.
async fn watch_interrupts(stop: Arc<Stop>, abandon: Arc<AtomicBool>) {
    while tokio::signal::ctrl_c().await.is_ok() {
        if stop.interrupted() {
            eprintln!("interrupted again: no longer waiting for broker acknowledgements");
            abandon.store(true, Relaxed);
            return;
        }
        eprintln!("interrupted: stopping; waiting for the broker to acknowledge what was sent (ctrl-c again to skip)");
        stop.interrupt();
    }
}

/// Waits until the broker confirmed every publish (QoS ≥ 1 acks, QoS 0 socket writes),
/// the timeout passes or the user gives up; returns when that happened.
async fn wait_for_confirmations(counters: &Counters, qos: u8, abandon: &AtomicBool) -> Instant {
    let deadline = Instant::now() + ACK_TIMEOUT;
    let published = counters.published.load(Relaxed);
    while counters.confirmed(qos) < published && Instant::now() < deadline && !abandon.load(Relaxed)
    {
        // Fine-grained so the measured elapsed time is not inflated by the polling itself.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Instant::now()
}
