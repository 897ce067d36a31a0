//! Commits of other instances, heard through PostgreSQL's `LISTEN`: every write group ends
//! with `NOTIFY dispatchlog_commits, '<tenant id>'` (delivered only if it commits), and each
//! instance keeps one session listening, which passes the tenant ids on to its live streams.
//!
//! A notification is only a hint that there is something to read: the changes feed stays the
//! truth. While the session is down nothing is heard, so after every (re)connection the
//! listener says "every tenant" ([`EVERY_TENANT`]) and the streams read from their cursors.

use std::time::Duration;

use futures_util::future::poll_fn;
use tokio::sync::broadcast::Sender;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Socket};

use super::pipeline::COMMIT_CHANNEL;
use super::PgTarget;
use crate::store::{TenantId, EVERY_TENANT};

/// Listens until the task is aborted (when the store closes), reconnecting after a failure.
pub async fn listen_for_commits(target: PgTarget, commits: Sender<TenantId>) {
    let mut config = target.config.clone();
    config.application_name("dispatchlog-listen");
    config.connect_timeout(Duration::from_secs(5));
    loop {
        let ended = match target.tls.clone() {
            Some(tls) => listen_once(&config, tls, &commits).await,
            None => listen_once(&config, tokio_postgres::NoTls, &commits).await,
        };
        if let Err(e) = ended {
            tracing::warn!(error = %e, "the commit listener lost its session; reconnecting");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once<T>(
    config: &tokio_postgres::Config,
    tls: T,
    commits: &Sender<TenantId>,
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let forward = commits.clone();
    // The session's messages must be read for any statement to complete, LISTEN included.
    let driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Ok(tenant) = n.payload().parse::<TenantId>() {
                        let _ = forward.send(tenant);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {COMMIT_CHANNEL}"))
        .await?;
    // Whatever committed while nobody listened is found by reading.
    let _ = commits.send(EVERY_TENANT);
    let ended = driver.await.unwrap_or(Ok(()));
    drop(client);
    ended
}
