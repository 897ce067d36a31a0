//! The application builder shared by `main` and the tests: open the store, make sure there is
//! someone who can log in, bind the listener (port 0 in tests), serve until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::ServiceExt as _;
use tokio::net::TcpListener;
use tower::Layer as _;

use crate::auth::{self, Authenticator, Bootstrap, FailureLimiter, Login};
use crate::config::ServeArgs;
use crate::http::{self, AppState};
use crate::store::{self, DatabaseUrl, Store};

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
        }
    }
}

pub struct Application {
    listener: TcpListener,
    store: Arc<dyn Store>,
    router: axum::Router,
    retention: Duration,
    purge_interval: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        store::shared::writer::observe_groups(crate::metrics::global());
        let store = store::open(&settings.database).await?;
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
        let router = http::router(AppState {
            store: store.clone(),
            auth,
        });
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        Ok(Application {
            listener,
            store,
            router,
            retention: settings.retention,
            purge_interval: settings.purge_interval,
        })
    }

    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
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
            .layer(self.router)
            .into_make_service_with_connect_info::<SocketAddr>();
        tracing::info!(address = %self.listener.local_addr()?, "listening");
        let purger = tokio::spawn(purge_periodically(
            self.store.clone(),
            self.retention,
            self.purge_interval,
        ));
        let served = axum::serve(self.listener, service)
            .with_graceful_shutdown(shutdown)
            .await;
        purger.abort();
        self.store.close().await;
        tracing::info!("stopped");
        Ok(served?)
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
