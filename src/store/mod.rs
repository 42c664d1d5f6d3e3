//! Everything that touches PostgreSQL on the write side: migrations, daily partitions,
//! the binary COPY of telemetry, latest positions and dead letters.

pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod copy;
pub mod dead_letters;
pub mod dispatches;
pub mod export;
pub mod fleet;
pub mod geofence_events;
pub mod geofence_state;
pub mod geofences;
pub mod jobs;
pub mod known_states;
pub mod live;
pub mod maintenance;
pub mod migrate;
pub mod odometer;
pub mod outbox;
pub mod partitions;
pub mod positions;
pub mod positions_read;
pub mod prepared;
pub mod queue;
pub mod rollups;
pub mod shifts;
pub mod stream;
pub mod telemetry;
pub mod track;
pub mod vehicles;
pub mod webhooks;

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{error::SqlState, Client, Config, NoTls};

use prepared::{Prepared, Session};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("migrations: {0}")]
    Migrate(#[from] refinery::Error),
    #[error("database did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("connection lost: {0}")]
    Lost(&'static str),
    #[error("invalid DATABASE_URL: {0}")]
    Url(String),
}

impl StoreError {
    pub fn sqlstate(&self) -> Option<&SqlState> {
        match self {
            StoreError::Db(e) => e.code(),
            _ => None,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        self.sqlstate() == Some(&SqlState::UNIQUE_VIOLATION)
    }

    /// The rows themselves were refused (bad value, failed check): retrying the same
    /// batch can never succeed, so the caller must isolate the culprit instead.
    pub fn is_data_error(&self) -> bool {
        self.sqlstate().is_some_and(|s| {
            let code = s.code();
            (code.starts_with("22") || code.starts_with("23")) && *s != SqlState::UNIQUE_VIOLATION
        })
    }
}

/// Opens one dedicated connection (writers and the migrator each own one).
pub async fn connect(url: &str) -> Result<Client, StoreError> {
    let config = Config::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
    connect_with(config).await
}

/// A connection that names itself in `pg_stat_activity` (the rollup job finds the ingest
/// writers' transactions by it).
pub async fn connect_as(url: &str, application_name: &str) -> Result<Client, StoreError> {
    let mut config = Config::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
    config.application_name(application_name);
    connect_with(config).await
}

/// A dedicated connection whose statements are prepared once (see `prepared`): it plans each
/// execution for its arguments. `options` adds settings of its own (`-c name=value ...`).
pub async fn connect_session(
    url: &str,
    application_name: Option<&str>,
    options: &str,
) -> Result<Session, StoreError> {
    let mut config = Config::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
    if let Some(name) = application_name {
        config.application_name(name);
    }
    config.options(format!("-c plan_cache_mode=force_custom_plan {options}"));
    Ok(Session {
        client: connect_with(config).await?,
        prepared: Prepared::default(),
    })
}

async fn connect_with(config: Config) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}

/// The pool for short queries (health, lookups). `Verified` recycling tests a connection before
/// handing it out, so a restarted database costs one failed check, not one failed request.
pub fn pool(url: &str, max_size: usize) -> Result<Pool, StoreError> {
    let config = Config::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
    pool_of(config, max_size)
}

/// The dispatch desk's pool. Its statements are prepared once per connection and their
/// parameters never change the best plan, but PostgreSQL re-plans a prepared statement for each
/// execution until it trusts the generic plan — and planning the assignment (a seven-CTE
/// statement over the availability view) costs more than running it (~3 ms against ~2.5 ms).
pub fn dispatch_pool(url: &str, max_size: usize) -> Result<Pool, StoreError> {
    let mut config = Config::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
    config.options("-c plan_cache_mode=force_generic_plan");
    pool_of(config, max_size)
}

/// The webhook worker's pool. Its commits (a claim's lease, a delivery's outcome) do not wait
/// for the disk: one lost in a crash costs a delivery sent again, which the event id — the
/// idempotency key the receiver dedupes by — absorbs; waiting for an fsync per delivery capped
/// the worker at the disk's commit rate.
pub fn delivery_pool(url: &str, max_size: usize) -> Result<Pool, StoreError> {
    let mut config = Config::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
    config.options("-c synchronous_commit=off");
    pool_of(config, max_size)
}

fn pool_of(config: Config, max_size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Verified,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .build()
        .map_err(|e| StoreError::Url(e.to_string()))
}
