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
