//! `meridian-sim`: drives realistic fleets over MQTT for Meridian demos, tests and benchmarks.
//! Everything lives in the modules; this file only wires logging, the command line and the exit code.

mod cli;
mod clock;
mod fleet;
mod payload;
mod publish;
mod register;
mod report;
mod run;
mod traffic;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr so stdout carries only the report.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let result = match cli::Cli::parse().command {
        cli::Command::Register(args) => register::run(args.fleet, args.db).await,
        cli::Command::Run(args) => run::run(*args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
