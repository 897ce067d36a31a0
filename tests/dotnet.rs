//! Clients of the original were written in .NET. `tests/dotnet/Client.cs` is such a client on
//! Debian's Mono: DataContractSerializer (XML), DataContractJsonSerializer and
//! JavaScriptSerializer (Microsoft JSON dates), the ASP.NET Web API client formatters
//! (`PostAsJsonAsync`, `ReadAsAsync<T>`, Json.NET inside), every kind of error read as
//! `HttpError` in JSON and XML, and `HttpWebRequest` with `Expect: 100-continue`, chunked bodies
//! and a `CredentialCache` answering the Basic challenge. This test compiles it with `mcs`, runs
//! it with `mono` against the real server (SQLite, or PostgreSQL with
//! `DISPATCHLOG_TEST_POSTGRES`), and requires every one of its checks to pass.
//!
//! Without Mono the test is skipped with a message, except in CI (`CI` set), where `.ci/run`
//! installs it and its absence is a failure.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{db_url, new_row, row_path, spawn_app_adjusted};
use dispatchlog::domain::Role;
use tokio::process::Command;

/// Every check the client makes; each must print `ok NAME`.
const CHECKS: &[&str] = &[
    "datacontractserializer-xml-save-and-read",
    "datacontractjsonserializer-microsoft-dates",
    "datacontractjsonserializer-local-offset",
    "datacontractjsonserializer-unset-dates",
    "javascriptserializer-microsoft-dates",
    "webapi-json-formatter-round-trip",
    "webapi-xml-formatter-round-trip",
    "webapi-list-json-and-xml",
    "httpwebrequest-100-continue-basic-challenge",
    "httpwebrequest-chunked-xml",
    "problem-json-only-when-asked",
    "httperror-json-400",
    "httperror-json-401",
    "httperror-json-403",
    "httperror-json-404",
    "httperror-json-405",
    "httperror-json-409",
    "httperror-json-410",
    "httperror-json-412",
    "httperror-json-413",
    "httperror-json-415",
    "httperror-xml-400",
    "httperror-xml-401",
    "httperror-xml-403",
    "httperror-xml-404",
    "httperror-xml-405",
    "httperror-xml-409",
    "httperror-xml-410",
    "httperror-xml-412",
    "httperror-xml-413",
    "httperror-xml-415",
    "httperror-json-and-xml-429",
];

/// The assemblies the client uses, all from Debian's Mono packages (`.ci/run` installs them).
const REFERENCES: &[&str] = &[
    "System.Runtime.Serialization",
    "System.Net.Http",
    "System.Net.Http.Formatting",
    "System.Web.Extensions",
    "System.Xml",
];

fn installed(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Compiles the client into `dir`; returns the executable.
async fn compile_client(dir: &Path) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dotnet/Client.cs");
    let exe = dir.join("Client.exe");
    let mut mcs = Command::new("mcs");
    mcs.arg("-nologo").arg(format!("-out:{}", exe.display()));
    for reference in REFERENCES {
        mcs.arg(format!("-r:{reference}"));
    }
    let out = mcs.arg(&source).output().await.expect("mcs runs");
    assert!(
        out.status.success(),
        "mcs could not compile the client:\n{}",
        text(&out)
    );
    exe
}

#[tokio::test]
async fn a_dotnet_client_of_the_original_works_against_the_service() {
    if !installed("mcs") || !installed("mono") {
        assert!(
            std::env::var_os("CI").is_none(),
            "Mono (mcs, mono) is required in CI; .ci/run installs it"
        );
        eprintln!(
            "SKIPPED: the .NET client test needs Mono (apt-get install mono-mcs mono-runtime \
             libmono-system-runtime-serialization4.0-cil libmono-system-net-http4.0-cil \
             libmono-system-net-http-formatting4.0-cil libmono-system-web-extensions4.0-cil \
             libmono-system-xml4.0-cil)"
        );
        return;
    }
    let build = tempfile::tempdir().unwrap();
    let exe = compile_client(build.path()).await;

    // The service's default limit of failed logins, so the client's last check meets a 429.
    let app = spawn_app_adjusted(|s| s.login_failures_per_minute = 20).await;
    let tech_user = uuid::Uuid::new_v4();
    app.add_user("tina:pw@acme", Role::Technician, tech_user)
        .await;

    // A sync cursor from before a purge: what a client that was away too long holds.
    let admin = app.admin();
    admin.save(&new_row()).await;
    let stale = admin.get("/api/JobDispatchLog/Changes").await.json()["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let gone = admin.save(&new_row()).await;
    admin.delete(&row_path(gone["id"].as_str().unwrap())).await;
    let purge = Command::new(env!("CARGO_BIN_EXE_dispatchlog"))
        .args(["purge", "--older-than", "0s", "--database", &db_url(&app)])
        .output()
        .await
        .unwrap();
    assert!(purge.status.success(), "{}", text(&purge));

    // West of Greenwich, so local dates carry a non-zero offset (Mono's
    // DataContractJsonSerializer cannot write an unset local DateTime east of it).
    let run = Command::new("mono")
        .arg(&exe)
        .arg(app.url("/"))
        .arg(common::ADMIN)
        .arg("tina:pw@acme")
        .arg(tech_user.to_string())
        .arg(&stale)
        .env("TZ", "America/New_York")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the .NET client finishes within 5 minutes")
        .expect("mono runs");
    let transcript = text(&out);
    println!("{transcript}");
    let missing: Vec<&&str> = CHECKS
        .iter()
        .filter(|name| !transcript.lines().any(|l| l == format!("ok {name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "checks that did not pass: {missing:?}\n{transcript}"
    );
    assert!(
        out.status.success(),
        "the client failed ({}):\n{transcript}",
        out.status
    );
    app.stop().await;
}
