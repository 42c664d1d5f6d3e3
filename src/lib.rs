//! Meridian: fleet telemetry from MQTT into daily-partitioned PostGIS, with the
//! read side a dispatch desk needs. The module tree follows a telemetry message:
//! `ingest` (mqtt source → decode → batcher → writer) → `store` (COPY, partitions,
//! positions, dead letters) → `api` (health, auth, fleet, live positions; nearest drivers and
//! geofences come next).

pub mod admin;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod dispatch;
pub mod domain;
pub mod geofencing;
pub mod history;
pub mod ingest;
pub mod live;
pub mod observability;
pub mod readiness;
pub mod rollup;
pub mod shutdown;
pub mod store;
pub mod stream;
pub mod supervisor;
#[cfg(test)]
mod test_rng;
