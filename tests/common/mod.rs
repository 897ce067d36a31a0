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
    /// The `--metrics-listen` address, when the settings gave one.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub dir: TempDir,
    pub database: DatabaseUrl,
    /// Dropped with the app (PostgreSQL); false when several apps share it.
    pub owns_database: bool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The PostgreSQL server the suite runs on, when `DISPATCHLOG_TEST_POSTGRES` names one (for
/// example `postgres://postgres@127.0.0.1:5432/postgres`); otherwise the suite uses SQLite.
pub fn postgres_server() -> Option<String> {
    std::env::var("DISPATCHLOG_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// A database of its own for one test: a SQLite file in `dir`, or a new PostgreSQL database.
pub async fn fresh_database(dir: &TempDir) -> DatabaseUrl {
    let Some(server) = postgres_server() else {
        return DatabaseUrl::SqliteFile(dir.path().join("dispatchlog.db"));
    };
    let name = format!("dltest_{}", Uuid::new_v4().simple());
    let created = name.clone();
    let admin = server.clone();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is unreachable: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {created}"))
            .expect("a test database is created");
    })
    .await
    .unwrap();
    DatabaseUrl::Postgres(with_database(&server, &name))
}

/// Drops a test's PostgreSQL database (connections of a server still running are cut).
fn drop_database(database: &DatabaseUrl) {
    let (DatabaseUrl::Postgres(url), Some(server)) = (database, postgres_server()) else {
        return;
    };
    let Some(name) = url
        .rsplit('/')
        .next()
        .map(|n| n.split('?').next().unwrap_or(n).to_string())
    else {
        return;
    };
    if !name.starts_with("dltest_") {
        return;
    }
    // A plain thread: the client must not run inside the test's async runtime.
    let _ = std::thread::spawn(move || {
        if let Ok(mut client) = postgres::Client::connect(&server, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    })
    .join();
}

/// The server on a fresh database, with `admin:secret@acme` as admin.
pub async fn spawn_app() -> TestApp {
    spawn_app_adjusted(|_| {}).await
}

/// The server on a fresh database, with settings adjusted by `adjust`.
pub async fn spawn_app_adjusted(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    let database = fresh_database(&dir).await;
    let mut app = spawn_app_with(database, dir, adjust).await;
    app.owns_database = true;
    app
}

pub async fn spawn_app_on(database: DatabaseUrl, dir: TempDir) -> TestApp {
    spawn_app_with(database, dir, |_| {}).await
}

/// The `--database` value of a test app, for the command-line tools.
pub fn db_url(app: &TestApp) -> String {
    database_arg(&app.database)
}

/// The `--database` value naming `database`.
pub fn database_arg(database: &DatabaseUrl) -> String {
    match database {
        DatabaseUrl::SqliteFile(path) => format!("sqlite://{}", path.display()),
        DatabaseUrl::Postgres(url) => url.clone(),
        DatabaseUrl::SqliteMemory => "sqlite::memory:".into(),
    }
}

/// A fresh database for tests that run the real binary on it (SQLite or PostgreSQL, as for
/// [`spawn_app`]); a PostgreSQL one is dropped with this value, so declare it before the servers.
pub struct OwnedDatabase {
    pub database: DatabaseUrl,
    pub dir: TempDir,
}

impl OwnedDatabase {
    pub async fn new() -> OwnedDatabase {
        let dir = tempfile::tempdir().expect("a temp dir");
        let database = fresh_database(&dir).await;
        OwnedDatabase { database, dir }
    }

    /// The `--database` value.
    pub fn arg(&self) -> String {
        database_arg(&self.database)
    }
}

impl Drop for OwnedDatabase {
    fn drop(&mut self) {
        drop_database(&self.database);
    }
}

/// The server with settings adjusted by `adjust`.
pub async fn spawn_app_with(
    database: DatabaseUrl,
    dir: TempDir,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database,
        admin: Some(ADMIN.parse::<Login>().unwrap()),
        login_failures_per_minute: 1000,
        login_recheck: std::time::Duration::from_secs(2),
        retention: std::time::Duration::from_secs(90 * 86_400),
        purge_interval: std::time::Duration::from_secs(3600),
        limits: Default::default(),
        store: Default::default(),
        trusted_proxies: Default::default(),
        metrics_listen: None,
        metrics_tenant_names: false,
        metrics_refresh: std::time::Duration::ZERO,
    };
    adjust(&mut settings);
    let database = settings.database.clone();
    let app = Application::build(settings).await.expect("the app builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let store = app.store();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        client: reqwest::Client::new(),
        store,
        dir,
        database,
        owns_database: false,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Only the owner of the database drops it: a second instance on the same database
        // (several-instance tests) is stopped first and leaves it.
        if self.owns_database {
            drop_database(&self.database);
        }
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

pub const SAVE: &str = "/api/JobDispatchLog/Save";
pub const SAVE_MULTIPLE: &str = "/api/JobDispatchLog/SaveMultiple";

/// `/api/JobDispatchLog(<id>)`, the OData form of a row's address.
pub fn row_path(id: &str) -> String {
    format!("/api/JobDispatchLog({id})")
}

/// `/api/JobDispatchLog/<id>`, the REST form of a row's address.
pub fn row_path_slash(id: &str) -> String {
    format!("/api/JobDispatchLog/{id}")
}

/// Every field of SPEC §2, in the JSON wire order.
pub const JSON_FIELD_ORDER: [&str; 13] = [
    "id",
    "jobs_id",
    "user_id",
    "date_create",
    "date_proceeded",
    "is_accepted",
    "is_rejected",
    "rejected_reason",
    "sys_logical_delete",
    "is_workshop",
    "modified_dateutc",
    "sequence",
    "assigned_user_ids",
];

/// The JSON request sample of the original's help page, verbatim.
pub const SEED_JSON: &str = r#"{
  "id": "567c1c0c-91e3-4ca3-ac31-eb151e427f59",
  "jobs_id": "5f1e9a72-a0e8-4276-9cd5-3b00416d5f59",
  "user_id": "ab53b170-9ede-42f6-85e5-eac282e3ac0a",
  "date_create": "2026-01-11T21:02:31.7932294+00:00",
  "date_proceeded": "2026-01-11T21:02:31.7932294+00:00",
  "is_accepted": true,
  "is_rejected": true,
  "rejected_reason": "sample string 8",
  "sys_logical_delete": true,
  "is_workshop": true,
  "modified_dateutc": "2026-01-11T21:02:31.7932294+00:00",
  "sequence": 12,
  "assigned_user_ids": "sample string 13"
}"#;

/// The XML request sample of the original's help page, verbatim.
pub const SEED_XML: &str = r#"<job_dispatch_log xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <assigned_user_ids>sample string 13</assigned_user_ids>
  <date_create>2026-01-11T21:02:31.793Z</date_create>
  <date_proceeded>2026-01-11T21:02:31.793Z</date_proceeded>
  <id>567c1c0c-91e3-4ca3-ac31-eb151e427f59</id>
  <is_accepted>true</is_accepted>
  <is_rejected>true</is_rejected>
  <is_workshop>true</is_workshop>
  <jobs_id>5f1e9a72-a0e8-4276-9cd5-3b00416d5f59</jobs_id>
  <modified_dateutc>2026-01-11T21:02:31.793Z</modified_dateutc>
  <rejected_reason>sample string 8</rejected_reason>
  <sequence>12</sequence>
  <sys_logical_delete>true</sys_logical_delete>
  <user_id>ab53b170-9ede-42f6-85e5-eac282e3ac0a</user_id>
</job_dispatch_log>"#;

/// The seed's JSON sample as a value, to be edited into valid variants.
pub fn seed_json() -> Value {
    serde_json::from_str(SEED_JSON).unwrap()
}

/// The server clock as the service writes it in JSON, for bracketing server stamps.
pub fn now_json() -> String {
    let now = time::OffsetDateTime::now_utc();
    let ticks = now.nanosecond() / 100;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}+00:00",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        ticks
    )
}

/// A string field of a JSON row.
pub fn s(row: &Value, field: &str) -> String {
    row[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {row}"))
        .to_string()
}

impl Api<'_> {
    /// Posts `body` with the given `Content-Type` (none when None) and `Accept` (none when None).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Resp {
        let mut req = self.request(reqwest::Method::POST, path).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        self.send(req).await
    }

    /// GET with an `Accept` header.
    pub async fn get_accept(&self, path: &str, accept: &str) -> Resp {
        self.send(
            self.request(reqwest::Method::GET, path)
                .header("accept", accept),
        )
        .await
    }
}

/// A parsed XML element: name as written (with prefix), attributes, text and children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct El {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<El>,
}

impl El {
    pub fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of a child element; panics when missing.
    pub fn text_of(&self, name: &str) -> String {
        self.child(name)
            .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.name))
            .text
            .clone()
    }

    pub fn child_names(&self) -> Vec<String> {
        self.children.iter().map(|c| c.name.clone()).collect()
    }

    pub fn attr(&self, name: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Parses a whole XML document into its root element; panics when not well-formed.
pub fn parse_xml(doc: &str) -> El {
    use quick_xml::events::{BytesStart, Event};
    fn element(e: &BytesStart<'_>) -> El {
        El {
            name: e.name().as_ref().to_string(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        a.key.as_ref().to_string(),
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect(),
            text: String::new(),
            children: Vec::new(),
        }
    }
    let mut reader = quick_xml::Reader::from_str(doc);
    let mut stack: Vec<El> = Vec::new();
    let mut root = None;
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("not XML ({e}): {doc}"))
        {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => {
                let el = element(&e);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t);
                }
            }
            // `&…;` comes apart from the text around it.
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let text = match r.resolve_char_ref().unwrap() {
                        Some(c) => c.to_string(),
                        None => quick_xml::escape::resolve_predefined_entity(&r)
                            .unwrap_or_else(|| panic!("unknown entity &{};", &*r))
                            .to_string(),
                    };
                    top.text.push_str(&text);
                }
            }
            Event::End(_) => {
                let el = stack.pop().unwrap();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    root.unwrap_or_else(|| panic!("no root element: {doc}"))
}

/// The real `dispatchlog` binary, started as operators start it.
pub mod bin {
    use std::io::{BufRead, BufReader};
    use std::net::SocketAddr;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// The binary with none of its settings inherited from the environment.
    pub fn command() -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatchlog"));
        for var in [
            "DATABASE_URL",
            "DISPATCHLOG_ADMIN",
            "DISPATCHLOG_PASSWORD",
            "DISPATCHLOG_LISTEN",
            "DISPATCHLOG_LOG_FORMAT",
            "DISPATCHLOG_LOGIN_FAILURES_PER_MINUTE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("RUST_LOG", "info");
        cmd
    }

    /// `sqlite://<absolute path>`.
    pub fn database_url(path: &Path) -> String {
        format!("sqlite://{}", path.display())
    }

    /// A running `dispatchlog serve`; killed (SIGKILL) when dropped.
    pub struct Server {
        pub child: Child,
        pub addr: SocketAddr,
        /// Every stderr line so far.
        pub stderr: Arc<Mutex<Vec<String>>>,
    }

    impl Server {
        /// Starts `serve` on the SQLite file `db`; see [`Server::start_on`].
        pub fn start(db: &Path, admin: Option<&str>) -> Server {
            Server::start_on(&database_url(db), admin)
        }

        /// Starts `serve --database <database>` on a free port of 127.0.0.1 and waits for its
        /// "listening" line.
        pub fn start_on(database: &str, admin: Option<&str>) -> Server {
            let mut cmd = command();
            cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
                .arg("--database")
                .arg(database)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if let Some(admin) = admin {
                cmd.env("DISPATCHLOG_ADMIN", admin);
            }
            let mut child = cmd.spawn().expect("the binary starts");
            let stderr = child.stderr.take().unwrap();
            let lines = Arc::new(Mutex::new(Vec::new()));
            let (tx, rx) = mpsc::channel::<String>();
            let seen = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    seen.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
            let addr = loop {
                let line = match rx.recv_timeout(Duration::from_secs(120)) {
                    Ok(line) => line,
                    Err(_) => {
                        let _ = child.kill();
                        panic!(
                            "the server did not report listening; stderr: {:?}",
                            lines.lock().unwrap()
                        );
                    }
                };
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if event["message"] == "listening" {
                    break event["address"]
                        .as_str()
                        .expect("the listening line names the address")
                        .parse()
                        .unwrap();
                }
            };
            Server {
                child,
                addr,
                stderr: lines,
            }
        }

        pub fn url(&self, path: &str) -> String {
            format!("http://{}{}", self.addr, path)
        }

        pub fn stderr_text(&self) -> String {
            self.stderr.lock().unwrap().join("\n")
        }

        /// SIGKILL: no shutdown code runs.
        pub fn kill(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.kill();
        }
    }
}
