//! The queue drain: each node walks the queue when availability grows (a driver freed here,
//! or heard of through the live index) and at least every `drain_interval`, offering each
//! waiting job, in priority-then-age order, to its nearest fitting driver. Jobs past their time
//! window are cancelled first. Nodes share the work through `FOR UPDATE SKIP LOCKED` on the job:
//! a job another node is assigning is skipped, never doubled (the partial unique indexes would
//! refuse a double anyway).

use std::collections::HashSet;
use std::time::Instant;

use uuid::Uuid;

use super::{Desk, DispatchError, Want};
use crate::observability;
use crate::shutdown::Shutdown;
use crate::store::dispatches::{self, Attempt, JobLock};
use crate::store::queue;

/// Queued jobs read per round trip while walking the queue.
const PAGE: i64 = 256;

/// Runs until shutdown (spawned and watched by the supervisor).
pub async fn run(desk: Desk, shutdown: Shutdown) {
    let mut grew = desk.live.availability_grew();
    let mut tick = tokio::time::interval(desk.settings.drain_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.triggered() => return,
            _ = tick.tick() => {}
            _ = desk.wake.notified() => {}
            // A driver freed on any node, a shift started, a silent vehicle reported again.
            _ = grew.changed() => {}
        }
        let started = Instant::now();
        match drain(&desk).await {
            Ok(expired) => observability::queue_drained(expired, started.elapsed()),
            // The index not loaded yet, or the database away: the next round retries.
            Err(e) => tracing::warn!(error = %e, "queue drain failed; will retry"),
        }
    }
}

/// One walk of the queue; returns how many jobs expired.
pub async fn drain(desk: &Desk) -> Result<i64, DispatchError> {
    let client = desk.pool.get().await?;
    let expired = queue::expire(&**client).await?;
    // Drivers given out (or refused by the database) during this walk: not offered again.
    let mut taken: HashSet<Uuid> = HashSet::new();
    let mut dispatched = Vec::new();
    let mut after = None;
    loop {
        let page = queue::waiting(&**client, after.as_ref(), PAGE).await?;
        for job in &page {
            let want = Want {
                lat: job.lat,
                lon: job.lon,
                vehicle_type: &job.vehicle_type,
                max_radius_m: job.max_radius_m,
            };
            let mut tried = 0;
            'candidates: for driver_id in desk.candidates(&want, &taken)? {
                tried += 1;
                let attempt = dispatches::assign(
                    &client,
                    JobLock::SkipLocked,
                    job.job_id,
                    driver_id,
                    None,
                    desk.max_age_s(),
                    job.max_radius_m,
                )
                .await?;
                match attempt {
                    Attempt::Dispatched(d) => {
                        taken.insert(driver_id);
                        dispatched.push(d.driver_id);
                        observability::dispatch_attempts("drained", tried);
                        break 'candidates;
                    }
                    Attempt::DriverNotAvailable => {
                        taken.insert(driver_id);
                    }
                    // Another node holds it (or just served it): its business. The driver
                    // we would have offered is most likely the one that node is offering it,
                    // so it is not offered to the lower-priority jobs after it in this walk —
                    // otherwise two nodes walking at once could serve them out of order.
                    Attempt::NoJob | Attempt::JobNotOpen(_) => {
                        taken.insert(driver_id);
                        break 'candidates;
                    }
                }
            }
        }
        if (page.len() as i64) < PAGE {
            break;
        }
        after = page.last().cloned();
    }
    drop(client);
    desk.live.drivers_changed(&dispatched).await;
    Ok(expired)
}
