//! Test harness: the real server on port 0 with a fresh database, and typed HTTP helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use dispatchlog::app::{Application, Settings};
use dispatchlog::auth::{password, Login};
use dispatchlog::domain::Role;
use dispatchlog::store::{DatabaseUrl, NewUser, Store};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use uuid::Uuid;

pub const DOMAIN: &str = "acme";
pub const ADMIN: &str = "admin:secret@acme";

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The server on a fresh SQLite file, with `admin:secret@acme` as admin.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    spawn_app_on(
        DatabaseUrl::SqliteFile(dir.path().join("dispatchlog.db")),
        dir,
    )
    .await
}

pub async fn spawn_app_on(database: DatabaseUrl, dir: TempDir) -> TestApp {
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database,
        admin: Some(ADMIN.parse::<Login>().unwrap()),
        login_failures_per_minute: 1000,
    };
    let app = Application::build(settings).await.expect("the app builds");
    let addr = app.local_addr();
    let store = app.store();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        store,
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Creates a user (and its tenant) directly in the store, as `dispatchlog user add` does.
    pub async fn add_user(&self, login: &str, role: Role, user_id: Uuid) {
        let login: Login = login.parse().unwrap();
        self.store
            .add_user(NewUser {
                domain: login.domain,
                username: login.username,
                password_hash: password::hash(&login.password),
                role,
                user_id,
            })
            .await
            .expect("the user is added");
    }

    /// Requests as the tenant's admin.
    pub fn admin(&self) -> Api<'_> {
        self.as_user(ADMIN)
    }

    /// Requests with `Authorization: Basic base64(login)`.
    pub fn as_user(&self, login: &str) -> Api<'_> {
        let token = base64::engine::general_purpose::STANDARD.encode(login);
        Api {
            app: self,
            authorization: Some(format!("Basic {token}")),
        }
    }

    /// Requests without credentials.
    pub fn anonymous(&self) -> Api<'_> {
        Api {
            app: self,
            authorization: None,
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

pub struct Api<'a> {
    pub app: &'a TestApp,
    pub authorization: Option<String>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    pub fn content_type(&self) -> String {
        self.header("content-type").unwrap_or_default()
    }

    /// The messages of a validation problem for one field.
    pub fn field_errors(&self, field: &str) -> Vec<String> {
        self.json()["errors"][field]
            .as_array()
            .map(|a| a.iter().map(|m| m.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }
}

impl Api<'_> {
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.app.client.request(method, self.app.url(path));
        if let Some(auth) = &self.authorization {
            req = req.header("authorization", auth);
        }
        req
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("the request is answered");
        Resp {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            text: res.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn get_xml(&self, path: &str) -> Resp {
        self.send(
            self.request(reqwest::Method::GET, path)
                .header("accept", "application/xml"),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(
            self.request(reqwest::Method::POST, path)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.send(
            self.request(reqwest::Method::PUT, path)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// Posts an XML body and asks for XML back.
    pub async fn post_xml(&self, path: &str, body: &str) -> Resp {
        self.send(
            self.request(reqwest::Method::POST, path)
                .header("content-type", "application/xml")
                .header("accept", "application/xml")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Saves a row and returns the stored row as JSON; panics unless 200/201.
    pub async fn save(&self, body: &Value) -> Value {
        let res = self.post_json("/api/JobDispatchLog/Save", body).await;
        assert!(
            res.status == 200 || res.status == 201,
            "save failed: {} {}",
            res.status,
            res.text
        );
        res.json()
    }
}

/// A new random GUID as text.
pub fn guid() -> String {
    Uuid::new_v4().to_string()
}

/// A valid minimal row body for a new job and technician.
pub fn new_row() -> Value {
    serde_json::json!({ "jobs_id": guid(), "user_id": guid() })
}
