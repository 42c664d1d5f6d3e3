//! Command line: `meridian serve` runs a node, `meridian migrate` only applies migrations,
//! `meridian apikey …` manages API keys, `meridian rollup` rebuilds history rollups. Everything else comes from the environment (`config`).

use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::domain::Role;

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
    /// Create, list or revoke API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Rebuild the hourly and daily rollups of a range from raw points (hours the job has not
    /// closed yet are closed, in order, if due), with a progress bar.
    Rollup {
        /// Start: a date (2026-11-01, UTC midnight) or an RFC 3339 time; widened to its hour.
        #[arg(long, value_parser = crate::rollup::rebuild::parse_time)]
        from: chrono::DateTime<chrono::Utc>,
        /// End (exclusive), same forms; widened to the end of its hour.
        #[arg(long, value_parser = crate::rollup::rebuild::parse_time)]
        to: chrono::DateTime<chrono::Utc>,
    },
    /// Print a statement the server runs, for benchmarks that must run the very same SQL.
    #[command(hide = true)]
    PrintSql {
        #[arg(value_enum)]
        statement: Statement,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Statement {
    /// One assignment attempt: lock the job, re-check the driver, insert, audit.
    Assign,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once, on stdout, and never shown again.
    Create {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        name: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id; requests with it then get 401.
    Revoke { id: Uuid },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: crate::domain::RoleError| e.to_string())
}
