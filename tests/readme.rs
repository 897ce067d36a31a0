//! The README's "Run it" and "Use it" sections, run as a newcomer would copy them: in a fresh
//! directory, the first "Run it" block as the server, every later block of both sections in
//! order in one second shell, and each answer checked. The commands are read from README.md, so
//! an edit there that breaks the first run fails here.
//!
//! What stands in for a newcomer's checkout: the fresh directory has `target/release/dispatchlog`
//! (the binary cargo built for this test), `cargo run --release --` is run as that binary (cargo
//! cannot build while it runs the tests), and the README's address `127.0.0.1:8080` becomes a
//! free port (`DISPATCHLOG_LISTEN` for the server, the same text replaced in the commands), so
//! the test can run beside other servers. The environment is emptied but for `PATH` (without any
//! other `dispatchlog`) and `HOME`. It always runs on SQLite: the README's first run does.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

/// The fenced `sh` blocks of the `## {section}` of the README (its `###` subsections included).
fn sh_blocks(readme: &str, section: &str) -> Vec<String> {
    let heading = format!("## {section}\n");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("README has no '## {section}'"))
        + heading.len();
    let body = &readme[start..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut blocks = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("```sh\n") {
        rest = &rest[at + "```sh\n".len()..];
        let end = rest.find("```").expect("a closed code block");
        blocks.push(rest[..end].to_string());
        rest = &rest[end + 3..];
    }
    blocks
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `PATH` without directories that hold another `dispatchlog`, so the README's own way of
/// putting the command on the PATH is what finds it.
fn path_without_dispatchlog() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("dispatchlog").exists())
        .collect();
    std::env::join_paths(dirs)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn command(dir: &Path, script: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .env("PATH", path_without_dispatchlog())
        .env("HOME", dir)
        .stdin(Stdio::null());
    cmd
}

#[tokio::test]
async fn the_readme_run_it_and_use_it_commands_work_as_written_on_a_fresh_machine() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "curl is needed to run the README's examples"
        );
        eprintln!("SKIPPED: curl is not installed; the README's examples use it");
        return;
    }
    let readme = include_str!("../README.md");
    let run_it = sh_blocks(readme, "Run it");
    let use_it = sh_blocks(readme, "Use it");
    assert!(
        !run_it.is_empty() && !use_it.is_empty(),
        "no commands found"
    );

    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_dispatchlog"),
        release.join("dispatchlog"),
    )
    .unwrap();
    let port = free_port();
    let as_here = |block: &str| {
        block
            .replace("cargo run --release --", "target/release/dispatchlog")
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
    };

    // The server: the first "Run it" block, left running.
    let server_log = dir.path().join("server.log");
    let mut server = command(dir.path(), &as_here(&run_it[0]))
        .env("DISPATCHLOG_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&server_log).unwrap())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let health = format!("http://127.0.0.1:{port}/health");
    let started = Instant::now();
    loop {
        if let Ok(res) = reqwest::get(&health).await {
            if res.status() == 200 {
                break;
            }
        }
        if let Ok(Some(status)) = server.try_wait() {
            panic!(
                "the server exited ({status}): {}",
                std::fs::read_to_string(&server_log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not start: {}",
            std::fs::read_to_string(&server_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The second terminal: every later block, in order. `curl` reports each answer's status on
    // stderr, so the answers can be checked one by one without changing the commands.
    let mut script = String::from(
        "set -eo pipefail\n\
         curl() { command curl -sS -w '%{stderr}HTTP %{http_code}\\n' \"$@\"; echo; }\n",
    );
    for block in run_it[1..].iter().chain(&use_it) {
        script.push_str(&as_here(block));
        script.push('\n');
    }
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        command(dir.path(), &script).output(),
    )
    .await
    .expect("the examples finish")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(
        out.status.success(),
        "the examples failed ({}):\n{context}",
        out.status
    );

    // One answer per request, in the README's order.
    let statuses: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("HTTP "))
        .collect();
    assert_eq!(
        statuses,
        [
            "201", // Save as JSON
            "201", // Save as XML
            "200", // read back as XML
            "200", // Dispatch
            "200", // Tom accepts
            "200", // Ann rejects
            "200", // Tom's row's history
        ],
        "{context}"
    );
    for expected in [
        // The XML row read back, by the id the client chose.
        "<id>0c4f1d2e-8a7b-4c3d-9e5f-6a7b8c9d0e1f</id>",
        // Both technicians dispatched.
        "\"user_id\":\"4b5fa680-7b78-4ca4-b71a-1be31b3e65d1\"",
        // Tom's offline decision time kept, Ann's reason stored.
        "\"is_accepted\":true",
        "\"date_proceeded\":\"2026-11-27T06:30:00.0000000+00:00\"",
        "\"rejected_reason\":\"van broke down\"",
        // The history names Tom's accept.
        "\"actor\":\"tom@acme\"",
    ] {
        assert!(stdout.contains(expected), "{expected} missing:\n{context}");
    }

    // With DISPATCHLOG_ADMIN set, no random admin was made up.
    let _ = nix_kill(server.id());
    let _ = tokio::time::timeout(Duration::from_secs(10), server.wait()).await;
    let log = std::fs::read_to_string(&server_log).unwrap_or_default();
    assert!(!log.contains("admin@default"), "{log}");
}

/// Stops the server the way Ctrl-C in its terminal would.
fn nix_kill(pid: Option<u32>) -> std::io::Result<()> {
    let pid = pid.ok_or_else(|| std::io::Error::other("already exited"))?;
    // The server runs in its own process group (the shell and what it started).
    let rc = unsafe { libc::kill(-(pid as i32), libc::SIGINT) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
