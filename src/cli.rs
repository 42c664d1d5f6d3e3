//! Command line: `meridian serve` runs a node, `meridian migrate` only applies migrations.
//! Everything else is configured through the environment (see `config`).

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "meridian",
    version,
    about = "Fleet telemetry engine: MQTT → PostGIS, dispatch queries over HTTP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run ingest, the HTTP API and maintenance (MERIDIAN_INGEST=false for an HTTP-only node).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}
