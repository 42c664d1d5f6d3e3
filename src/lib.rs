//! Meridian: fleet telemetry from MQTT into daily-partitioned PostGIS, with the
//! read side a dispatch desk needs. The module tree follows a telemetry message:
//! `ingest` (mqtt source → decode → batcher) → `store` (COPY writer, partitions,
//! positions, dead letters) → `api` (health, metrics; queries come later).

pub mod config;
pub mod domain;
pub mod ingest;
