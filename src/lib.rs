//! dispatchlog: the `job_dispatch_log` resource of a field-service platform as a standalone
//! service — wire-compatible with the original's clients, with exact sync and strict tenancy.
//!
//! `main` parses the command line and calls [`run`]; tests build an [`app::Application`].

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod docs;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod query;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod wire;

use config::{Cli, Command};

/// Runs one command of the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let _log = telemetry::init(args.log_format);
            let app = app::Application::build(app::Settings::from(&*args)).await?;
            app.run_until_stopped(app::shutdown_signal()).await
        }
        Command::Migrate(db) => admin::migrate(&db.database).await,
        Command::User { command } => admin::user(command).await,
        Command::Purge { db, older_than } => admin::purge(&db.database, older_than).await,
    }
}
