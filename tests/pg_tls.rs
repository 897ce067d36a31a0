//! TLS to PostgreSQL (`sslmode`, `sslrootcert` in the database URL). Runs on the PostgreSQL
//! half of the suite: the test server has TLS on with a self-signed certificate for
//! `localhost` (Debian's snakeoil). On SQLite these tests have nothing to check and return.

mod common;

use std::process::Command;

use common::{postgres_server, spawn_app_with, OwnedDatabase};
use dispatchlog::app::{Application, Settings};
use dispatchlog::store::DatabaseUrl;

/// A public root CA that did not sign the test server's certificate.
const UNTRUSTED_CA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/untrusted-ca.pem"
);

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

fn postgres_url(db: &OwnedDatabase) -> String {
    match &db.database {
        DatabaseUrl::Postgres(url) => url.clone(),
        other => panic!("not PostgreSQL: {other:?}"),
    }
}

/// Whether each of the service's sessions on `database` is encrypted (from `pg_stat_ssl`).
async fn sessions_encrypted(database: &str) -> Vec<bool> {
    let server = postgres_server().unwrap();
    let database = database.to_string();
    tokio::task::spawn_blocking(move || {
        let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        admin
            .query(
                "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.datname = $1 AND a.application_name = 'dispatchlog'",
                &[&database],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, bool>(0))
            .collect()
    })
    .await
    .unwrap()
}

fn database_name(url: &str) -> String {
    let without_query = url.split('?').next().unwrap();
    without_query.rsplit('/').next().unwrap().to_string()
}

/// Starts the service on `url`, saves a row (so the writer and a reader are connected), and
/// reports whether its sessions are encrypted.
async fn serve_and_look(db: OwnedDatabase, url: String) -> Vec<bool> {
    let name = database_name(&url);
    let app = spawn_app_with(
        DatabaseUrl::Postgres(url),
        tempfile::tempdir().unwrap(),
        |_| {},
    )
    .await;
    let saved = app.admin().save(&common::new_row()).await;
    assert!(saved["id"].is_string(), "{saved}");
    let encrypted = sessions_encrypted(&name).await;
    app.stop().await;
    drop(db);
    encrypted
}

#[tokio::test]
async fn sslmode_require_encrypts_every_session_and_disable_none() {
    if postgres_server().is_none() {
        return;
    }
    let db = OwnedDatabase::new().await;
    let url = with_params(&postgres_url(&db), "sslmode=require");
    let encrypted = serve_and_look(db, url).await;
    assert!(!encrypted.is_empty(), "the service's sessions are listed");
    assert!(encrypted.iter().all(|e| *e), "{encrypted:?}");

    let db = OwnedDatabase::new().await;
    let url = with_params(&postgres_url(&db), "sslmode=disable");
    let encrypted = serve_and_look(db, url).await;
    assert!(!encrypted.is_empty());
    assert!(encrypted.iter().all(|e| !*e), "{encrypted:?}");
}

async fn build_error(url: String) -> String {
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database: DatabaseUrl::Postgres(url),
        admin: Some(common::ADMIN.parse().unwrap()),
        login_failures_per_minute: 10,
        login_recheck: std::time::Duration::from_secs(2),
        retention: std::time::Duration::from_secs(86_400),
        purge_interval: std::time::Duration::from_secs(3600),
        trusted_proxies: Default::default(),
        metrics_listen: None,
        metrics_tenant_names: false,
        metrics_refresh: std::time::Duration::ZERO,
        limits: Default::default(),
        store: Default::default(),
    };
    settings.login_failures_per_minute = 10;
    match Application::build(settings).await {
        Ok(_) => panic!("the application started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn verify_full_against_an_untrusted_certificate_stops_start_up_saying_why() {
    if postgres_server().is_none() {
        return;
    }
    let db = OwnedDatabase::new().await;
    let url = with_params(
        &postgres_url(&db),
        &format!("sslmode=verify-full&sslrootcert={UNTRUSTED_CA}"),
    );
    let error = build_error(url.clone()).await;
    assert!(
        error.contains("cannot connect to the PostgreSQL database")
            && error.contains("invalid peer certificate")
            && error.contains("UnknownIssuer"),
        "{error}"
    );

    // The operator commands connect the same way.
    let out = Command::new(env!("CARGO_BIN_EXE_dispatchlog"))
        .args(["migrate", "--database", &url])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    // No CA given at all: start-up says what is missing.
    let url = with_params(&postgres_url(&db), "sslmode=verify-full");
    let error = build_error(url).await;
    assert!(error.contains("add sslrootcert="), "{error}");
}

/// The test server's own certificate, as the CA to trust, when this machine can read it.
async fn server_certificate() -> Option<String> {
    let server = postgres_server()?;
    let file: String = tokio::task::spawn_blocking(move || {
        let mut admin = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        admin.query_one("SHOW ssl_cert_file", &[]).unwrap().get(0)
    })
    .await
    .unwrap();
    let readable = std::fs::read(&file).is_ok();
    if !readable {
        eprintln!("{file} is not readable here: the verify-ca half of this test is skipped");
    }
    readable.then_some(file)
}

#[tokio::test]
async fn a_certificate_signed_by_the_given_ca_is_accepted_and_its_host_name_checked() {
    let Some(ca) = server_certificate().await else {
        return;
    };
    let db = OwnedDatabase::new().await;
    let base = postgres_url(&db);
    if !base.contains("@127.0.0.1") {
        eprintln!("the test server is not 127.0.0.1: the host name checks are skipped");
        return;
    }
    // verify-ca: the chain is checked, the host name (127.0.0.1, the certificate says
    // localhost) is not.
    let url = with_params(&base, &format!("sslmode=verify-ca&sslrootcert={ca}"));
    let encrypted = serve_and_look(db, url).await;
    assert!(
        !encrypted.is_empty() && encrypted.iter().all(|e| *e),
        "{encrypted:?}"
    );

    // verify-full: the certificate must name the host connected to.
    let db = OwnedDatabase::new().await;
    let base = postgres_url(&db);
    let error = build_error(with_params(
        &base,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    assert!(
        error.contains("certificate not valid for name \"127.0.0.1\""),
        "{error}"
    );
    let by_name = base.replacen("@127.0.0.1", "@localhost", 1);
    let url = with_params(&by_name, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let encrypted = serve_and_look(db, url).await;
    assert!(
        !encrypted.is_empty() && encrypted.iter().all(|e| *e),
        "{encrypted:?}"
    );
}
