//! The help pages in a real browser: headless Chromium opens /Help, follows the link to the
//! Save page, finds its field table, and leaves a screenshot in target/help-save.png.
//!
//! Skipped (with a message) where Chromium is not installed, unless CI is set: CI installs it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::spawn_app;

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(profile: &Path, args: &[String]) -> std::process::Output {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs")
}

fn dump_dom(profile: &Path, url: &str) -> String {
    let out = chromium(profile, &["--dump-dom".into(), url.into()]);
    assert!(
        out.status.success(),
        "chromium --dump-dom {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_follows_the_index_to_the_save_page_and_sees_its_field_table() {
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {CHROMIUM} is missing: apt-get install chromium chromium-driver"
        );
        println!("SKIPPED: {CHROMIUM} is not installed (apt-get install chromium); the browser test did not run");
        return;
    }
    let app = spawn_app().await;
    let base = app.url("");
    let profile = tempfile::tempdir().unwrap();
    let profile_path = profile.path().to_path_buf();
    let screenshot = target_dir().join("help-save.png");

    let shot = screenshot.clone();
    let (index, save) = tokio::task::spawn_blocking(move || {
        let index = dump_dom(&profile_path, &format!("{base}/Help"));
        // Follow the link the index actually renders.
        let marker = "href=\"";
        let href = index
            .match_indices(marker)
            .map(|(at, _)| {
                let from = at + marker.len();
                &index[from..from + index[from..].find('"').unwrap()]
            })
            .find(|h| h.ends_with("/POST-api-JobDispatchLog-Save"))
            .expect("the index links the Save page")
            .to_string();
        let url = format!("{base}{href}");
        let save = dump_dom(&profile_path, &url);
        let _ = std::fs::remove_file(&shot);
        let out = chromium(
            &profile_path,
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=412,2400".into(),
                url,
            ],
        );
        assert!(
            out.status.success(),
            "chromium --screenshot failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (index, save)
    })
    .await
    .unwrap();

    assert!(index.contains("<h1>dispatchlog API</h1>"), "{index}");
    assert!(
        save.contains("<h1>Add/update job_dispatch_log</h1>"),
        "{save}"
    );
    assert!(
        save.contains("<table class=\"fields\" data-type=\"job_dispatch_log\">"),
        "no field table in the rendered page"
    );
    for field in [
        "id",
        "jobs_id",
        "user_id",
        "modified_dateutc",
        "assigned_user_ids",
    ] {
        assert!(save.contains(&format!("data-field=\"{field}\"")), "{field}");
    }
    let png = std::fs::read(&screenshot).expect("the screenshot is written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    println!("screenshot: {}", screenshot.display());
    app.stop().await;
}
