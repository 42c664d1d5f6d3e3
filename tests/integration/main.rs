//! One integration binary: real PostgreSQL + PostGIS, real Mosquitto, one database and one
//! topic prefix per test. Run with `bash scripts/test.sh` (it starts what is needed).

mod alerts;
mod audit;
mod auth;
mod broker;
mod client;
mod cluster;
mod contract;
mod dead_letters;
mod dispatch;
mod dispatch_schema;
mod fleet;
mod geodesy;
mod geofence_events;
mod geofences;
mod health;
mod helpers;
mod history_export;
mod ingest;
mod live_updates;
mod maintenance;
mod mqtt_faults;
mod nearest;
mod partitions;
mod positions;
mod process;
mod restart;
mod rollups;
mod shifts;
mod track;
mod webhooks;
mod write_faults;
