//! The dispatch desk: turns a job into a driver on the road. Candidates come from this node's
//! live index (nearest first, microseconds); the database decides (`store::dispatches::assign`
//! re-checks each candidate, locked, in one statement). A lost race moves on to the next
//! candidate; when nobody fits, the job waits in the queue, which every node drains
//! (`drain`).

mod diagnose;
pub mod drain;

use std::collections::HashSet;
use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::DispatchSettings;
use crate::domain::Timestamp;
use crate::live::nearest::NearestQuery;
use crate::live::Live;
use crate::observability;
use diagnose::diagnose;
pub use diagnose::Unavailable;

use crate::store::dispatches::{self, Attempt, Dispatch, JobLock};
use crate::store::queue::{self, Enqueued};
use crate::store::{jobs, StoreError};

/// Candidates asked of the index at a time.
const BATCH: usize = 8;
/// Past this many refused candidates a request stops and queues the job: the index is far
/// behind the database, and the drain will retry with a fresher one.
const MAX_ATTEMPTS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("no job {0}")]
    NoJob(Uuid),
    #[error("job {job_id} is {status}: only pending or queued jobs can be dispatched")]
    JobNotOpen { job_id: Uuid, status: String },
    #[error("no driver {0}")]
    NoDriver(Uuid),
    #[error("driver {driver_id} cannot take this job: {detail}")]
    DriverUnavailable {
        driver_id: Uuid,
        reason: Unavailable,
        detail: String,
    },
    #[error("the live index is loading or has lost the database")]
    IndexUnavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// What an automatic dispatch did.
#[derive(Debug)]
pub enum Outcome {
    Dispatched(Dispatch),
    /// Nobody fits now: the job waits at this 1-based place in the queue.
    Queued {
        position: i64,
    },
}

#[derive(Clone)]
pub struct Desk {
    pool: Pool,
    live: Arc<Live>,
    settings: DispatchSettings,
    /// Wakes this node's queue drain (a driver became free here).
    wake: Arc<Notify>,
}

impl Desk {
    pub fn new(pool: Pool, live: Arc<Live>, settings: DispatchSettings) -> Self {
        Self {
            pool,
            live,
            settings,
            wake: Arc::new(Notify::new()),
        }
    }

    fn max_age_s(&self) -> f64 {
        self.settings.max_age.as_secs_f64()
    }

    /// Something freed a driver or a vehicle: walk the queue now rather than at the next tick.
    pub fn availability_grew(&self) {
        self.wake.notify_one();
    }

    /// The nearest fitting driver, assigned in one transaction; the job is queued when nobody
    /// fits.
    pub async fn dispatch_nearest(
        &self,
        job_id: Uuid,
        actor: Uuid,
    ) -> Result<Outcome, DispatchError> {
        let client = self.pool.get().await?;
        let job = jobs::get(&client, job_id)
            .await?
            .ok_or(DispatchError::NoJob(job_id))?;
        if !matches!(job.status.as_str(), "pending" | "queued") {
            return Err(DispatchError::JobNotOpen {
                job_id,
                status: job.status,
            });
        }
        let want = Want {
            lat: job.pickup.1,
            lon: job.pickup.0,
            vehicle_type: &job.vehicle_type,
            max_radius_m: job.max_radius_m,
        };
        let mut tried = HashSet::new();
        while tried.len() < MAX_ATTEMPTS {
            let candidates = self.candidates(&want, &tried)?;
            if candidates.is_empty() {
                break;
            }
            for driver_id in candidates {
                tried.insert(driver_id);
                let attempt = dispatches::assign(
                    &client,
                    JobLock::Wait,
                    job_id,
                    driver_id,
                    Some(actor),
                    self.max_age_s(),
                    job.max_radius_m,
                )
                .await?;
                match attempt {
                    Attempt::Dispatched(d) => {
                        observability::dispatch_attempts("nearest", tried.len());
                        // The connection goes back first: only this node's index is waited on.
                        drop(client);
                        self.live.drivers_changed(&[d.driver_id]).await;
                        return Ok(Outcome::Dispatched(d));
                    }
                    Attempt::DriverNotAvailable => continue,
                    Attempt::NoJob => return Err(DispatchError::NoJob(job_id)),
                    Attempt::JobNotOpen(status) => {
                        return Err(DispatchError::JobNotOpen { job_id, status })
                    }
                }
            }
        }
        observability::dispatch_attempts("queued", tried.len());
        match queue::enqueue(&**client, job_id, Some(actor)).await? {
            Enqueued::At(position) => Ok(Outcome::Queued { position }),
            Enqueued::NoJob => Err(DispatchError::NoJob(job_id)),
            Enqueued::NotOpen(status) => {
                // The drain may have dispatched it between our attempts and the enqueue.
                let active = dispatches::of_job(&**client, job_id)
                    .await?
                    .into_iter()
                    .rev()
                    .find(|d| d.status == "dispatched");
                match active {
                    Some(d) if status == "dispatched" => Ok(Outcome::Dispatched(d)),
                    _ => Err(DispatchError::JobNotOpen { job_id, status }),
                }
            }
        }
    }

    /// This driver for this job, or why not. The job's radius does not apply: the dispatcher
    /// chose the driver.
    pub async fn dispatch_to(
        &self,
        job_id: Uuid,
        driver_id: Uuid,
        actor: Uuid,
    ) -> Result<Dispatch, DispatchError> {
        let client = self.pool.get().await?;
        let attempt = dispatches::assign(
            &client,
            JobLock::Wait,
            job_id,
            driver_id,
            Some(actor),
            self.max_age_s(),
            None,
        )
        .await?;
        match attempt {
            Attempt::Dispatched(d) => {
                observability::dispatch_attempts("named", 1);
                drop(client);
                self.live.drivers_changed(&[d.driver_id]).await;
                Ok(d)
            }
            Attempt::NoJob => Err(DispatchError::NoJob(job_id)),
            Attempt::JobNotOpen(status) => Err(DispatchError::JobNotOpen { job_id, status }),
            Attempt::DriverNotAvailable => {
                let job = jobs::get(&client, job_id)
                    .await?
                    .ok_or(DispatchError::NoJob(job_id))?;
                let state = dispatches::driver_state(&**client, driver_id)
                    .await?
                    .ok_or(DispatchError::NoDriver(driver_id))?;
                let (reason, detail) = diagnose(&state, &job.vehicle_type, self.max_age_s());
                Err(DispatchError::DriverUnavailable {
                    driver_id,
                    reason,
                    detail,
                })
            }
        }
    }

    /// The nearest fitting drivers not yet tried, from this node's index.
    fn candidates(
        &self,
        want: &Want<'_>,
        tried: &HashSet<Uuid>,
    ) -> Result<Vec<Uuid>, DispatchError> {
        if !self.live.is_current() {
            return Err(DispatchError::IndexUnavailable);
        }
        let query = NearestQuery {
            lat: want.lat,
            lon: want.lon,
            limit: tried.len() + BATCH,
            radius_m: want.max_radius_m,
            max_age_us: self.settings.max_age.as_micros().min(i64::MAX as u128) as i64,
            vehicle_type: Some(want.vehicle_type.to_owned()),
            now_us: Timestamp::now().unix_micros(),
        };
        Ok(self
            .live
            .nearest(&query)
            .into_iter()
            .map(|h| h.candidate.shift.driver_id)
            .filter(|d| !tried.contains(d))
            .collect())
    }
}

/// Where a job needs a driver.
struct Want<'a> {
    lat: f64,
    lon: f64,
    vehicle_type: &'a str,
    max_radius_m: Option<f64>,
}
