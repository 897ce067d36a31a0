//! The command line and its environment variables. Every setting has a flag, a variable and a
//! default; all are listed by `dispatchlog serve --help` and in the README.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::Login;
use crate::domain::Role;
use crate::store::DatabaseUrl;

#[derive(Debug, Parser)]
#[command(
    name = "dispatchlog",
    version,
    about = "Dispatch log service for field-service teams"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
    /// Manage users (works while a server runs on the same database).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database: sqlite://PATH (relative, or sqlite:///absolute), sqlite::memory:, postgres://…
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://dispatchlog.db",
        value_parser = parse_database
    )]
    pub database: DatabaseUrl,
}

fn parse_database(s: &str) -> Result<DatabaseUrl, String> {
    s.parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "DISPATCHLOG_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub db: DatabaseArgs,

    /// Make sure this admin exists at start-up: username:password@domain.
    #[arg(long, env = "DISPATCHLOG_ADMIN", hide_env_values = true, value_parser = parse_login)]
    pub admin: Option<Login>,

    /// Log lines as text or as JSON objects.
    #[arg(
        long,
        env = "DISPATCHLOG_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Failed logins allowed per client address per minute before 429.
    #[arg(
        long,
        env = "DISPATCHLOG_LOGIN_FAILURES_PER_MINUTE",
        default_value_t = 20
    )]
    pub login_failures_per_minute: u32,
}

fn parse_login(s: &str) -> Result<Login, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (and its tenant, when new).
    Add {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The technician's user_id in dispatch rows (required for technicians).
        #[arg(long)]
        user_id: Option<uuid::Uuid>,
        /// The password; when missing, a random one is generated and printed.
        #[arg(long, env = "DISPATCHLOG_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// List users, of one tenant or of all.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        domain: Option<String>,
    },
    /// Remove a user.
    Remove {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        username: String,
    },
    /// Set a user's password.
    Passwd {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        username: String,
        /// The new password; when missing, a random one is generated and printed.
        #[arg(long, env = "DISPATCHLOG_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}
