//! Command line of `meridian-sim`: `register` puts a fleet into `vehicles`, `run` drives it over MQTT.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use meridian::domain::LatLon;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/meridian";

#[derive(Debug, Parser)]
#[command(
    name = "meridian-sim",
    version,
    about = "Drives realistic fleets over MQTT for Meridian"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register vehicles `{prefix}{index:06}` in the `vehicles` table (idempotent).
    Register(RegisterArgs),
    /// Publish telemetry for a simulated fleet until a stop condition is met.
    /// Boxed: it is by far the larger variant and the enum is moved around once.
    Run(Box<RunArgs>),
}

/// What identifies the fleet; shared by `register` and `run --register` so both name vehicles alike.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Number of vehicles.
    #[arg(long, default_value_t = 100)]
    pub vehicles: u32,
    /// External ids are `{id_prefix}{index:06}`.
    #[arg(long, default_value = "sim-")]
    pub id_prefix: String,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Stored in `vehicles.vehicle_type` for newly registered vehicles.
    #[arg(long, default_value = "van")]
    pub vehicle_type: String,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Broker address: `mqtt://host:port` (or `tcp://`, or bare `host:port`).
    #[arg(long, env = "MQTT_URL", default_value = "mqtt://127.0.0.1:1884")]
    pub mqtt_url: String,
    /// Prepended verbatim to every topic (`t42/` gives `t42/fleet/sim-000001/telemetry`).
    #[arg(long, default_value = "")]
    pub topic_prefix: String,
    /// Messages per second per vehicle; 0 publishes as fast as the broker accepts.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    pub rate: f64,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many messages in total (faults and duplicates included).
    #[arg(long)]
    pub messages: Option<u64>,
    /// 1 publishes a JSON object per message; K > 1 a JSON array of K points.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub points_per_message: u32,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Centre of the area vehicles drive in, `lat,lon`.
    #[arg(long, default_value = "40.7128,-74.0060", value_parser = parse_center, allow_hyphen_values = true)]
    pub center: LatLon,
    #[arg(long, default_value_t = 20.0, value_parser = positive)]
    pub radius_km: f64,
    /// Fraction of messages replaced by malformed ones (kinds taken in turn).
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub fault_rate: f64,
    /// Fraction of messages that re-publish an already sent valid message byte for byte.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub duplicate_rate: f64,
    /// Fraction of points stamped between 1 hour and 7 days in the past.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub late_rate: f64,
    /// Register the fleet in the database before publishing (uses --database-url).
    #[arg(long)]
    pub register: bool,
    /// Parallel MQTT connections; vehicles are split among them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub connections: u32,
    /// Client id prefix; each connection appends `-<n>-<random>`.
    #[arg(long, default_value = "meridian-sim")]
    pub client_id: String,
    /// Seed for the motion model and fault placement (random if absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write the final report as a JSON object to this file.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
    /// Hide the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

fn parse_center(raw: &str) -> Result<LatLon, String> {
    let (lat, lon) = raw
        .split_once(',')
        .ok_or_else(|| "expected `lat,lon`, e.g. 40.7128,-74.0060".to_owned())?;
    let lat: f64 = lat.trim().parse().map_err(|e| format!("latitude: {e}"))?;
    let lon: f64 = lon.trim().parse().map_err(|e| format!("longitude: {e}"))?;
    LatLon::new(lat, lon).map_err(|e| e.to_string())
}

fn fraction(raw: &str) -> Result<f64, String> {
    let v: f64 = raw.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 1".into())
    }
}

fn non_negative(raw: &str) -> Result<f64, String> {
    let v: f64 = raw.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err("must be a finite number >= 0".into())
    }
}

fn positive(raw: &str) -> Result<f64, String> {
    let v = non_negative(raw)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err("must be > 0".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_a_southern_hemisphere_center_and_rejects_nonsense() {
        let cli = Cli::try_parse_from([
            "meridian-sim",
            "run",
            "--center",
            "-33.87,151.21",
            "--messages",
            "10",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        assert_eq!((args.center.lat(), args.center.lon()), (-33.87, 151.21));
        assert_eq!(args.messages, Some(10));
        assert!(parse_center("95,0").is_err());
        assert!(fraction("1.5").is_err());
        assert!(
            Cli::try_parse_from(["meridian-sim", "run", "--points-per-message", "1001"]).is_err()
        );
    }
}
