//! One integration binary: real PostgreSQL + PostGIS, real Mosquitto, one database and one
//! topic prefix per test. Run with `bash scripts/test.sh` (it starts what is needed).

mod auth;
mod broker;
mod dead_letters;
mod health;
mod helpers;
mod ingest;
mod partitions;
mod process;
