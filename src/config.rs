//! The command line and its environment variables. Every setting has a flag, a variable and a
//! default; all are listed by `dispatchlog serve --help` and in the README.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::Login;
use crate::domain::Role;
use crate::http::client_addr::{ForwardedHeader, TrustedProxies};
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
    Serve(Box<ServeArgs>),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
    /// Manage users (works while a server runs on the same database).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Physically remove rows logically deleted longer ago than --older-than.
    Purge {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Age of deleted rows to remove, e.g. 90d, 12h, 30m, 45s.
        #[arg(long, default_value = "90d", value_parser = parse_duration)]
        older_than: std::time::Duration,
    },
}

/// Reads `90d`, `12h`, `30m`, `45s` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a duration such as 90d, 12h, 30m or 45s"))?;
    let seconds = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => None,
    }
    .ok_or_else(|| format!("'{s}' is not a duration such as 90d, 12h, 30m or 45s"))?;
    Ok(std::time::Duration::from_secs(seconds))
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

    /// How long logically deleted rows are kept before the background purge removes them.
    #[arg(long, env = "DISPATCHLOG_RETENTION", default_value = "90d", value_parser = parse_duration)]
    pub retention: std::time::Duration,

    /// How often the background purge runs.
    #[arg(long, env = "DISPATCHLOG_PURGE_INTERVAL", default_value = "1h", value_parser = parse_duration)]
    pub purge_interval: std::time::Duration,

    /// How long a verified login is trusted before the user's row is read again: a password
    /// change, user removal or token revocation takes effect within this time.
    #[arg(long, env = "DISPATCHLOG_LOGIN_RECHECK", default_value = "2s", value_parser = parse_duration)]
    pub login_recheck: std::time::Duration,

    /// Failed logins allowed per client address per minute before 429.
    #[arg(
        long,
        env = "DISPATCHLOG_LOGIN_FAILURES_PER_MINUTE",
        default_value_t = 20
    )]
    pub login_failures_per_minute: u32,

    /// Proxies (comma-separated addresses or CIDRs, e.g. 10.0.0.0/8,192.168.1.7) whose
    /// forwarding header names the client; for other peers the socket address is the client.
    /// The failed-login limit and the request logs use that address.
    #[arg(long, env = "DISPATCHLOG_TRUSTED_PROXIES", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: Option<TrustedProxies>,

    /// The header the trusted proxies maintain: x-forwarded-for or forwarded (RFC 7239).
    /// Only that one is read, so a client cannot slip its own value through in the other.
    #[arg(
        long,
        env = "DISPATCHLOG_FORWARDED_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    pub forwarded_header: ForwardedHeader,

    /// Serve /metrics without credentials on this second address (e.g. 10.0.0.5:9090), for
    /// the monitoring network only. Off by default; the API's own /metrics always needs an
    /// admin login and shows only the admin's tenant.
    #[arg(long, env = "DISPATCHLOG_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Label per-tenant metrics with the tenant's domain name, not only its id.
    #[arg(long, env = "DISPATCHLOG_METRICS_TENANT_NAMES")]
    pub metrics_tenant_names: bool,

    /// How often the per-tenant row counts of /metrics are taken at most (they read every row).
    #[arg(long, env = "DISPATCHLOG_METRICS_REFRESH", default_value = "60s", value_parser = parse_duration)]
    pub metrics_refresh: std::time::Duration,

    #[command(flatten)]
    pub limits: LimitArgs,
}

/// What one instance holds at most, and how long it waits for slow clients and the database.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Client connections open at once; beyond it a new connection is answered 503 and closed.
    #[arg(long, env = "DISPATCHLOG_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Change streams (`/Changes/Stream`) open at once; beyond it a stream is answered 503.
    #[arg(long, env = "DISPATCHLOG_MAX_STREAMS", default_value_t = 10_000)]
    pub max_streams: usize,

    /// Time a client has to send a request's headers, counted from when the connection is
    /// ready for a request: for a kept-alive connection this is also how long it may stay idle.
    #[arg(long, env = "DISPATCHLOG_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: std::time::Duration,

    /// Time a client has to send a request's whole body (408 after it).
    #[arg(long, env = "DISPATCHLOG_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: std::time::Duration,

    /// How long an answer (a list, a live stream) may wait for a client that accepts none of
    /// its bytes before the connection is closed: a client that stops reading gives back its
    /// connection and its stream within this time.
    #[arg(long, env = "DISPATCHLOG_WRITE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: std::time::Duration,

    /// On SIGTERM, how long requests in flight and open streams may take before the process
    /// exits anyway.
    #[arg(long, env = "DISPATCHLOG_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: std::time::Duration,

    /// Read connections to the database at most (the writer holds one more).
    #[arg(long, env = "DISPATCHLOG_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: usize,

    /// How long a request waits for a free database connection before it is answered 503
    /// with Retry-After.
    #[arg(long, env = "DISPATCHLOG_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub db_acquire_timeout: std::time::Duration,

    /// SQLite: the write-ahead log's size limit, in MiB (the writer empties it at half).
    #[arg(long, env = "DISPATCHLOG_SQLITE_WAL_LIMIT_MIB", default_value_t = 1024)]
    pub sqlite_wal_limit_mib: u64,
}

fn parse_trusted_proxies(s: &str) -> Result<TrustedProxies, String> {
    s.parse()
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
        /// The password; when missing it is asked at the terminal (not echoed), or, without a
        /// terminal, generated and printed.
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
    /// Issue a bearer token for a user (printed once, stored hashed), or revoke all of theirs.
    Token {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        username: String,
        /// Revoke every token of the user instead of issuing one.
        #[arg(long)]
        revoke: bool,
    },
    /// Set a user's password.
    Passwd {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        username: String,
        /// The new password; when missing it is asked at the terminal (not echoed), or,
        /// without a terminal, generated and printed.
        #[arg(long, env = "DISPATCHLOG_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}
