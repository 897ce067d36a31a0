//! Behind a load balancer (`--trusted-proxies`): the failed-login limiter and the request logs
//! key on the client named by the trusted proxies' `X-Forwarded-For` / `Forwarded`, and on
//! the socket peer for everyone else. The tests connect from 127.0.0.1.

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{spawn_app_adjusted, TestApp};
use dispatchlog::http::client_addr::ForwardedHeader;
use serde_json::Value;

const CHANGES: &str = "/api/JobDispatchLog/Changes";

async fn status_from(app: &TestApp, login: &str, header: Option<(&str, &str)>) -> u16 {
    let api = app.as_user(login);
    let mut req = api.request(reqwest::Method::GET, CHANGES);
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    api.send(req).await.status
}

#[tokio::test]
async fn behind_a_trusted_proxy_failed_logins_count_per_forwarded_client() {
    let app = spawn_app_adjusted(|s| {
        s.login_failures_per_minute = 3;
        s.trusted_proxies = "127.0.0.0/8".parse().unwrap();
    })
    .await;
    let attacker = Some(("x-forwarded-for", "203.0.113.66"));
    for _ in 0..3 {
        assert_eq!(status_from(&app, "admin:wrong@acme", attacker).await, 401);
    }
    assert_eq!(status_from(&app, "admin:wrong@acme", attacker).await, 429);
    assert_eq!(status_from(&app, common::ADMIN, attacker).await, 429);

    // Other clients behind the same proxy are not locked out with the attacker…
    let other = Some(("x-forwarded-for", "203.0.113.7"));
    assert_eq!(status_from(&app, common::ADMIN, other).await, 200);
    // …nor is the proxy itself.
    assert_eq!(status_from(&app, common::ADMIN, None).await, 200);
    // What the attacker writes to the left of its own address changes nothing: the right-most
    // hop the trusted proxy did not vouch for is the client.
    let prefixed = Some(("x-forwarded-for", "198.51.100.1, 203.0.113.66"));
    assert_eq!(status_from(&app, common::ADMIN, prefixed).await, 429);
    // The proxies maintain X-Forwarded-For, so a `Forwarded` header is the client's own.
    let other_header = Some(("forwarded", "for=198.51.100.2"));
    assert_eq!(status_from(&app, common::ADMIN, other_header).await, 200);
    app.stop().await;
}

#[tokio::test]
async fn forwarded_is_read_when_the_proxies_maintain_it() {
    let app = spawn_app_adjusted(|s| {
        s.login_failures_per_minute = 2;
        s.trusted_proxies = "127.0.0.0/8"
            .parse::<dispatchlog::http::client_addr::TrustedProxies>()
            .unwrap()
            .with_header(ForwardedHeader::Forwarded);
    })
    .await;
    let attacker = Some(("forwarded", "for=\"[2001:db8::66]:4711\";proto=https"));
    for _ in 0..2 {
        assert_eq!(status_from(&app, "admin:wrong@acme", attacker).await, 401);
    }
    assert_eq!(status_from(&app, common::ADMIN, attacker).await, 429);
    let other = Some(("forwarded", "for=2001:db8::7"));
    assert_eq!(status_from(&app, common::ADMIN, other).await, 200);
    app.stop().await;
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = spawn_app_adjusted(|s| s.login_failures_per_minute = 3).await;
    // Each attempt claims to come from somewhere else; all come from 127.0.0.1.
    for n in 1..=3 {
        let spoofed = format!("203.0.113.{n}");
        let header = Some(("x-forwarded-for", spoofed.as_str()));
        assert_eq!(status_from(&app, "admin:wrong@acme", header).await, 401);
    }
    let fresh = Some(("x-forwarded-for", "198.51.100.99"));
    assert_eq!(status_from(&app, common::ADMIN, fresh).await, 429);
    let fresh = Some(("forwarded", "for=198.51.100.98"));
    assert_eq!(status_from(&app, common::ADMIN, fresh).await, 429);
    app.stop().await;
}

/// Runs the binary with `DISPATCHLOG_TRUSTED_PROXIES` as given, sends one request claiming to
/// come from 203.0.113.50 through a proxy, and returns the `client` its log line names.
async fn logged_client(trusted_proxies: Option<&str>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dispatchlog"));
    command
        .args(["serve", "--log-format", "json", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--database")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .env("DISPATCHLOG_ADMIN", common::ADMIN)
        .env_remove("DISPATCHLOG_TRUSTED_PROXIES")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(trusted) = trusted_proxies {
        command.env("DISPATCHLOG_TRUSTED_PROXIES", trusted);
    }
    let mut child = command.spawn().expect("the binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "no start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = client
        .get(format!("{base}/health"))
        .header("x-request-id", "proxied-1")
        .header("x-forwarded-for", "203.0.113.50, 127.0.0.2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Stopped as an operator stops it (SIGTERM): the log is written by a thread of its own,
    // which writes out what is still queued when the service ends.
    // SAFETY: sends a signal to the child this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let line = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "request finished" && l["span"]["request_id"] == "proxied-1")
        .unwrap_or_else(|| panic!("no log line for the request:\n{stderr}"));
    line["span"]["client"].clone()
}

#[tokio::test]
async fn request_logs_name_the_forwarded_client_only_behind_a_trusted_proxy() {
    assert_eq!(logged_client(Some("127.0.0.0/8")).await, "203.0.113.50");
    assert_eq!(logged_client(None).await, "127.0.0.1");
}
