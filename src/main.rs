//! The `meridian` binary: parse the command, load settings, run, report how it ended.

use anyhow::Context;
use clap::Parser;
use meridian::app::Application;
use meridian::cli::{Cli, Command, Statement};
use meridian::config::Settings;
use meridian::{observability, store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    observability::init_tracing();
    let cli = Cli::parse();
    let settings = Settings::from_env().context("reading configuration")?;
    match cli.command {
        Command::PrintSql { statement } => match statement {
            Statement::Assign => println!("{}", store::dispatches::assign_statement()),
        },
        Command::Migrate => {
            let mut client = store::connect(&settings.database_url).await?;
            let applied = store::migrate::run(&mut client).await?;
            tracing::info!(applied, "database is at the current schema");
        }
        Command::Rollup { from, to } => {
            anyhow::ensure!(from < to, "--from must be before --to");
            let mut client = store::connect(&settings.database_url).await?;
            store::migrate::run(&mut client).await?;
            let done = meridian::rollup::rebuild::run(&mut client, from, to).await?;
            eprintln!(
                "rebuilt {} hours and {} days, closed {} more hours; {} points read",
                done.hours_rebuilt, done.days, done.hours_closed, done.points
            );
            if done.hours_left > 0 {
                eprintln!(
                    "{} hours of the range are not due yet (an hour closes {} s after it ends); \
                     the job in `meridian serve` closes them",
                    done.hours_left,
                    store::rollups::CLOSE_AFTER.as_secs()
                );
            }
        }
        Command::Apikey(command) => {
            meridian::admin::apikey(&settings.database_url, command).await?
        }
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "meridian serving");
            app.shutdown_handle().on_signals();
            app.run_until_stopped().await?;
        }
    }
    Ok(())
}
