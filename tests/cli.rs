//! The command line (SPEC §3): `migrate`, `user add|list|passwd|remove`, first-start bootstrap
//! and `serve --help`, run as the real binary.

mod common;

use std::path::Path;
use std::process::Output;

use common::bin::{command, database_url, Server};
use common::{new_row, SAVE};

fn run(db: &Path, args: &[&str]) -> Output {
    let mut cmd = command();
    cmd.args(args).arg("--database").arg(database_url(db));
    cmd.output().expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn migrate_creates_the_database_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    let out = run(&db, &["migrate"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(db.exists());
    let out = run(&db, &["migrate"]);
    assert!(out.status.success(), "{}", describe(&out));
    // The schema is there: users can be managed.
    let out = run(&db, &["user", "list"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out).trim(), "");
}

#[test]
fn the_database_can_also_come_from_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let out = command()
        .arg("migrate")
        .env("DATABASE_URL", database_url(&db))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(db.exists());
}

#[test]
fn users_are_added_listed_and_removed_and_duplicates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.db");
    let tech = uuid::Uuid::new_v4().to_string();
    for args in [
        vec![
            "user",
            "add",
            "--domain",
            "acme",
            "--username",
            "ann",
            "--role",
            "admin",
            "--password",
            "pw1",
        ],
        vec![
            "user",
            "add",
            "--domain",
            "acme",
            "--username",
            "dan",
            "--role",
            "dispatcher",
            "--password",
            "pw2",
        ],
        vec![
            "user",
            "add",
            "--domain",
            "other",
            "--username",
            "tim",
            "--role",
            "technician",
            "--user-id",
            &tech,
            "--password",
            "pw3",
        ],
    ] {
        let out = run(&db, &args);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
    }
    let all = stdout(&run(&db, &["user", "list"]));
    for expected in [
        "ann@acme",
        "dan@acme",
        "tim@other",
        "admin",
        "dispatcher",
        "technician",
        &tech,
    ] {
        assert!(all.contains(expected), "{expected} in {all}");
    }
    let acme = stdout(&run(&db, &["user", "list", "--domain", "acme"]));
    assert!(
        acme.contains("ann@acme") && acme.contains("dan@acme"),
        "{acme}"
    );
    assert!(!acme.contains("tim@other"), "{acme}");

    let again = run(
        &db,
        &[
            "user",
            "add",
            "--domain",
            "acme",
            "--username",
            "ann",
            "--role",
            "admin",
            "--password",
            "x",
        ],
    );
    assert!(!again.status.success(), "{}", describe(&again));
    let no_link = run(
        &db,
        &[
            "user",
            "add",
            "--domain",
            "acme",
            "--username",
            "t2",
            "--role",
            "technician",
            "--password",
            "x",
        ],
    );
    assert!(!no_link.status.success(), "{}", describe(&no_link));
    let bad_role = run(
        &db,
        &[
            "user",
            "add",
            "--domain",
            "acme",
            "--username",
            "r",
            "--role",
            "root",
            "--password",
            "x",
        ],
    );
    assert!(!bad_role.status.success(), "{}", describe(&bad_role));

    let out = run(
        &db,
        &["user", "remove", "--domain", "acme", "--username", "dan"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let acme = stdout(&run(&db, &["user", "list", "--domain", "acme"]));
    assert!(!acme.contains("dan@acme"), "{acme}");
    let out = run(
        &db,
        &["user", "remove", "--domain", "acme", "--username", "dan"],
    );
    assert!(
        !out.status.success(),
        "removing twice fails: {}",
        describe(&out)
    );
    let out = run(
        &db,
        &[
            "user",
            "passwd",
            "--domain",
            "acme",
            "--username",
            "nobody",
            "--password",
            "x",
        ],
    );
    assert!(!out.status.success(), "{}", describe(&out));
}

#[tokio::test]
async fn a_user_managed_by_the_cli_logs_in_over_http_while_the_server_runs() {
    // With no recheck interval, every change from the command line applies to the next request.
    let app = common::spawn_app_adjusted(|s| s.login_recheck = std::time::Duration::ZERO).await;
    let db = common::db_url(&app);
    let cli = move |args: Vec<&'static str>| {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            command()
                .args(&args)
                .arg("--database")
                .arg(&db)
                .output()
                .expect("the binary runs")
        })
    };

    let out = cli(vec![
        "user",
        "add",
        "--domain",
        "acme",
        "--username",
        "dan",
        "--role",
        "dispatcher",
        "--password",
        "first",
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let res = app
        .as_user("dan:first@acme")
        .post_json(SAVE, &new_row())
        .await;
    assert_eq!(res.status, 201, "{}", res.text);

    let out = cli(vec![
        "user",
        "passwd",
        "--domain",
        "acme",
        "--username",
        "dan",
        "--password",
        "second",
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let res = app
        .as_user("dan:first@acme")
        .post_json(SAVE, &new_row())
        .await;
    assert_eq!(res.status, 401, "the old password no longer works");
    let res = app
        .as_user("dan:second@acme")
        .post_json(SAVE, &new_row())
        .await;
    assert_eq!(res.status, 201, "{}", res.text);

    let out = cli(vec![
        "user",
        "remove",
        "--domain",
        "acme",
        "--username",
        "dan",
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let res = app
        .as_user("dan:second@acme")
        .post_json(SAVE, &new_row())
        .await;
    assert_eq!(res.status, 401, "a removed user cannot log in");

    // Without --password a password is generated and printed.
    let out = cli(vec![
        "user",
        "add",
        "--domain",
        "newco",
        "--username",
        "gen",
        "--role",
        "admin",
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("Password: "))
        .unwrap_or_else(|| panic!("no generated password in {text}"))
        .trim()
        .to_string();
    let res = app
        .as_user(&format!("gen:{password}@newco"))
        .post_json(SAVE, &new_row())
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    app.stop().await;
}

/// The password of the "created admin@default with password X" start-up line.
fn generated_password(stderr: &str) -> Option<String> {
    let rest = stderr.split("admin@default with password ").nth(1)?;
    Some(rest.split_whitespace().next()?.to_string())
}

#[tokio::test]
async fn the_first_start_without_an_admin_prints_a_working_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("first.db");
    let client = reqwest::Client::new();

    let server = Server::start(&db, None);
    let stderr = server.stderr_text();
    let password =
        generated_password(&stderr).unwrap_or_else(|| panic!("no generated password in {stderr}"));
    let res = client
        .post(server.url(SAVE))
        .basic_auth("admin", Some(format!("{password}@default")))
        .json(&new_row())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = client
        .post(server.url(SAVE))
        .basic_auth("admin", Some("wrong@default"))
        .json(&new_row())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    drop(server);

    let server = Server::start(&db, None);
    let stderr = server.stderr_text();
    assert_eq!(
        generated_password(&stderr),
        None,
        "shown once only: {stderr}"
    );
    assert!(!stderr.contains(&password), "{stderr}");
    let res = client
        .post(server.url(SAVE))
        .basic_auth("admin", Some(format!("{password}@default")))
        .json(&new_row())
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        201,
        "the password still works after a restart"
    );
}

#[tokio::test]
async fn dispatchlog_admin_makes_sure_its_admin_exists_with_that_password() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("boot.db");
    let client = reqwest::Client::new();
    for password in ["one", "one", "two"] {
        let server = Server::start(&db, Some(&format!("boss:{password}@corp")));
        assert_eq!(generated_password(&server.stderr_text()), None);
        let res = client
            .post(server.url(SAVE))
            .basic_auth("boss", Some(format!("{password}@corp")))
            .json(&new_row())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "boss:{password}@corp");
    }
    let users = stdout(&run(&db, &["user", "list"]));
    assert_eq!(users.lines().count(), 1, "{users}");
    assert!(users.contains("boss@corp"), "{users}");
}

#[test]
fn serve_help_lists_every_setting_with_its_environment_variable() {
    let out = command().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let help = stdout(&out);
    for expected in [
        "--listen",
        "DISPATCHLOG_LISTEN",
        "127.0.0.1:8080",
        "--database",
        "DATABASE_URL",
        "sqlite://dispatchlog.db",
        "--admin",
        "DISPATCHLOG_ADMIN",
        "--log-format",
        "DISPATCHLOG_LOG_FORMAT",
        "--login-failures-per-minute",
        "DISPATCHLOG_LOGIN_FAILURES_PER_MINUTE",
        "--trusted-proxies",
        "DISPATCHLOG_TRUSTED_PROXIES",
        "--forwarded-header",
        "DISPATCHLOG_FORWARDED_HEADER",
        "--metrics-listen",
        "DISPATCHLOG_METRICS_LISTEN",
        "--metrics-tenant-names",
        "DISPATCHLOG_METRICS_TENANT_NAMES",
        "--metrics-refresh",
        "DISPATCHLOG_METRICS_REFRESH",
        "--write-timeout",
        "DISPATCHLOG_WRITE_TIMEOUT",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
}

#[tokio::test]
async fn a_password_left_out_is_asked_at_the_terminal_without_echo() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: `script` (util-linux) is needed to give the command a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dispatchlog.db");
    let bin = env!("CARGO_BIN_EXE_dispatchlog");
    let line = format!(
        "{bin} user add --database {} --domain acme --username tom --role dispatcher",
        database_url(&db)
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        stdin.write_all(b"typed-secret\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        stdin.write_all(b"typed-secret\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Password:"), "{shown}");
    assert!(
        !shown.contains("typed-secret"),
        "the password was echoed: {shown}"
    );

    let store = dispatchlog::store::open(&dispatchlog::store::DatabaseUrl::SqliteFile(db))
        .await
        .unwrap();
    let login = store.find_login("acme", "tom").await.unwrap().unwrap();
    store.close().await;
    assert!(dispatchlog::auth::password::verify(
        "typed-secret",
        &login.password_hash
    ));
}
