//! The application builder shared by `main` and the tests: open the store, make sure there is
//! someone who can log in, bind the listener (port 0 in tests), serve until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tower::Layer as _;

use crate::auth::{self, Authenticator, Bootstrap, FailureLimiter, Login};
use crate::config::ServeArgs;
use crate::http::client_addr::TrustedProxies;
use crate::http::service::MetricsSettings;
use crate::http::stream::Streams;
use crate::http::{self, AppState};
use crate::metrics::TenantFiguresCache;
use crate::server::{self, Limits};
use crate::store::{self, DatabaseUrl, Store, StoreOptions};

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    pub admin: Option<Login>,
    pub login_failures_per_minute: u32,
    /// How long a verified login is trusted before the user's row is read again.
    pub login_recheck: Duration,
    /// Deleted rows older than this are purged in the background.
    pub retention: Duration,
    pub purge_interval: Duration,
    /// Client connections: how many, and how long a slow client may take.
    pub limits: Limits,
    /// Database connections and, on SQLite, the WAL's size.
    pub store: StoreOptions,
    /// Peers whose forwarding header names the client (empty: none).
    pub trusted_proxies: TrustedProxies,
    /// A second address serving `/metrics` without credentials (None: no such listener).
    pub metrics_listen: Option<SocketAddr>,
    /// Label per-tenant series with the tenant's domain (not only its id).
    pub metrics_tenant_names: bool,
    /// Per-tenant row counts are taken at most this often.
    pub metrics_refresh: Duration,
}

impl From<&ServeArgs> for Settings {
    fn from(args: &ServeArgs) -> Self {
        Settings {
            listen: args.listen,
            database: args.db.database.clone(),
            admin: args.admin.clone(),
            login_failures_per_minute: args.login_failures_per_minute,
            login_recheck: args.login_recheck,
            retention: args.retention,
            purge_interval: args.purge_interval,
            limits: Limits {
                max_connections: args.limits.max_connections,
                max_streams: args.limits.max_streams,
                header_timeout: args.limits.header_timeout,
                body_timeout: args.limits.body_timeout,
                write_timeout: args.limits.write_timeout,
                shutdown_timeout: args.limits.shutdown_timeout,
            },
            store: StoreOptions {
                max_read_connections: args.limits.db_max_connections,
                acquire_timeout: args.limits.db_acquire_timeout,
                wal_limit: args.limits.sqlite_wal_limit_mib << 20,
            },
            trusted_proxies: args
                .trusted_proxies
                .clone()
                .unwrap_or_default()
                .with_header(args.forwarded_header),
            metrics_listen: args.metrics_listen,
            metrics_tenant_names: args.metrics_tenant_names,
            metrics_refresh: args.metrics_refresh,
        }
    }
}

pub struct Application {
    listener: TcpListener,
    /// The `--metrics-listen` listener and its router.
    metrics: Option<(TcpListener, axum::Router)>,
    store: Arc<dyn Store>,
    router: axum::Router,
    retention: Duration,
    purge_interval: Duration,
    limits: Limits,
    streams: Arc<Streams>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        store::shared::writer::observe_groups(crate::metrics::global());
        let store = store::open_with(&settings.database, &settings.store).await?;
        match auth::bootstrap(&*store, settings.admin.as_ref()).await? {
            Bootstrap::Generated { password } => eprintln!(
                "No user existed: created admin@default with password {password} \
                 (log in as admin:{password}@default; this is shown once)."
            ),
            Bootstrap::Ensured | Bootstrap::Nothing => {}
        }
        let limiter =
            FailureLimiter::new(settings.login_failures_per_minute, Duration::from_secs(60));
        let auth = Arc::new(Authenticator::new(
            store.clone(),
            limiter,
            settings.login_recheck,
        ));
        let state = AppState {
            store: store.clone(),
            auth,
            trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
            metrics: Arc::new(MetricsSettings {
                tenant_names: settings.metrics_tenant_names,
                tenant_figures: TenantFiguresCache::new(settings.metrics_refresh),
            }),
            streams: Arc::new(Streams::new(
                settings.limits.max_streams,
                settings.login_recheck,
            )),
        };
        let streams = state.streams.clone();
        let router = http::router(state.clone());
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let metrics = match settings.metrics_listen {
            Some(addr) => Some((
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?,
                http::metrics_router(state),
            )),
            None => None,
        };
        Ok(Application {
            listener,
            metrics,
            store,
            router,
            retention: settings.retention,
            purge_interval: settings.purge_interval,
            limits: settings.limits,
            streams,
        })
    }

    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The metrics address actually bound, when `--metrics-listen` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Serves until `shutdown` resolves, lets requests in flight finish, then closes the store.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let service = tower::util::MapRequestLayer::new(http::canonicalize_request)
            .layer(self.router.into_service());
        tracing::info!(address = %self.listener.local_addr()?, "listening");
        let purger = tokio::spawn(purge_periodically(
            self.store.clone(),
            self.retention,
            self.purge_interval,
        ));
        // The metrics listener stops when the API has stopped, so that a scrape can still see
        // the last requests being finished.
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let metrics_server = self.metrics.map(|(listener, router)| {
            tokio::spawn(async move {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(address = %addr, "serving metrics");
                }
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            })
        });
        // Open streams never end by themselves: they are ended when shutdown begins, so the
        // drain only waits for ordinary requests.
        let streams = self.streams.clone();
        let shutdown = async move {
            shutdown.await;
            streams.close();
        };
        server::serve(self.listener, service, self.limits, shutdown).await;
        let _ = stop.send(true);
        if let Some(metrics_server) = metrics_server {
            if let Ok(Err(e)) = metrics_server.await {
                tracing::warn!(error = %e, "the metrics listener failed");
            }
        }
        purger.abort();
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Removes long-deleted rows now and then (SPEC §7: purge).
async fn purge_periodically(store: Arc<dyn Store>, retention: Duration, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
    loop {
        ticker.tick().await;
        let outcome = store.purge(crate::admin::purge_cutoff(retention)).await;
        crate::metrics::global().record_purge(match &outcome {
            Ok(report) => Ok(report.rows),
            Err(_) => Err(()),
        });
        match outcome {
            Ok(report) if report.rows > 0 => {
                tracing::info!(rows = report.rows, "purged logically deleted rows")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Settings;
    use crate::config::{Cli, Command};
    use crate::server::Limits;

    /// The defaults the command line (and so `--help` and the README) states are the ones the
    /// server applies when built without it (as the tests build it).
    #[test]
    fn the_command_lines_default_limits_are_the_servers() {
        let cli = Cli::try_parse_from(["dispatchlog", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve parses as serve");
        };
        assert_eq!(Settings::from(&*args).limits, Limits::default());
    }
}
