//! Request logs of the real binary: one JSON line per request, secrets never written.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

const PASSWORD: &str = "Tr0ub4dor-and-3";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn each_request_is_one_json_line_and_no_credential_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatchlog"))
        .args(["serve", "--log-format", "json", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--database")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("db.sqlite").display()
        ))
        .env("DISPATCHLOG_ADMIN", format!("admin:{PASSWORD}@acme"))
        // The most verbose level this service logs at: nothing secret even there.
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}@acme"));
    let res = client
        .post(format!("{base}/api/JobDispatchLog/Save"))
        .header("authorization", format!("Basic {token}"))
        .header("x-request-id", "log-test-1")
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"jobs_id":"{}","user_id":"{}"}}"#,
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let wrong = base64::engine::general_purpose::STANDARD.encode("admin:not-the-password@acme");
    let res = client
        .get(format!("{base}/api/JobDispatchLog/Changes"))
        .header("authorization", format!("Basic {wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

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

    for secret in [PASSWORD, token.as_str(), wrong.as_str(), "not-the-password"] {
        assert!(
            !stderr.contains(secret),
            "a credential was logged:\n{stderr}"
        );
    }
    let lower = stderr.to_ascii_lowercase();
    assert!(!lower.contains("authorization"), "{stderr}");
    assert!(!lower.contains("password"), "{stderr}");

    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request finished")
        .collect();
    let save = finished
        .iter()
        .find(|l| l["span"]["request_id"] == "log-test-1")
        .unwrap_or_else(|| panic!("no line for the save:\n{stderr}"));
    assert_eq!(save["level"], "INFO");
    assert_eq!(save["status"], 201);
    assert!(save["latency_ms"].as_f64().is_some());
    assert_eq!(save["span"]["method"], "POST");
    assert_eq!(save["span"]["route"], "/api/JobDispatchLog/Save");
    assert_eq!(save["span"]["tenant"], "acme");
    let refused = finished
        .iter()
        .find(|l| l["status"] == 401)
        .unwrap_or_else(|| panic!("no line for the refused request:\n{stderr}"));
    assert_eq!(refused["span"]["route"], "/api/JobDispatchLog/Changes");
    assert!(
        refused["span"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "a generated request id is logged"
    );
}
