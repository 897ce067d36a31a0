//! A full disk under the embedded database: writes are refused with a 507 that says why,
//! reads go on, `/health` says the service is degraded, writes resume by themselves once space
//! is freed, nothing acknowledged is lost and the database stays consistent.
//!
//! The test mounts a small tmpfs of its own (CI runs as root); where mounting is impossible
//! outside CI it says so and skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{guid, spawn_app_with};
use dispatchlog::store::DatabaseUrl;
use serde_json::json;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Volume {
    path: PathBuf,
}

impl Volume {
    fn mount(path: &Path, size: &str) -> Result<Volume, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Volume {
                path: path.to_path_buf(),
            })
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the volume with one file until the disk refuses more.
fn fill(path: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&block) {
            let _ = file.sync_all();
            return if e.raw_os_error() == Some(libc::ENOSPC) {
                Ok(())
            } else {
                Err(e)
            };
        }
    }
}

#[tokio::test]
async fn a_full_disk_refuses_writes_with_507_keeps_reads_and_recovers_by_itself() {
    if common::postgres_server().is_some() {
        println!("SKIPPED on PostgreSQL: a full disk of the embedded database is SQLite's");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let volume = match Volume::mount(&dir.path().join("volume"), "24m") {
        Ok(volume) => volume,
        Err(e) if std::env::var_os("CI").is_none() => {
            println!("SKIPPED: cannot mount a tmpfs here ({e}); CI runs this test as root");
            return;
        }
        Err(e) => panic!("cannot mount a tmpfs: {e}"),
    };
    let db = volume.path.join("dispatchlog.db");
    let app_dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(DatabaseUrl::SqliteFile(db.clone()), app_dir, |s| {
        s.store.wal_limit = 4 << 20;
    })
    .await;
    let admin = app.admin();
    let row = |i: usize| {
        json!({
            "id": guid(), "jobs_id": guid(), "user_id": guid(),
            "date_proceeded": "2026-11-27T07:30:00.1234567+00:00",
            "is_rejected": i % 3 == 1,
            "rejected_reason": if i % 3 == 1 { "van broke down on the way to the site" } else { "" },
            "sequence": 1 + i % 3,
        })
    };
    let mut acknowledged = Vec::new();
    for i in 0..50 {
        let body = row(i);
        let res = admin.post_json("/api/JobDispatchLog/Save", &body).await;
        assert_eq!(res.status, 201, "{}", res.text);
        acknowledged.push(body["id"].as_str().unwrap().to_string());
    }

    let filler = volume.path.join("filler");
    fill(&filler).expect("the volume fills up");
    let mut refused = None;
    for i in 0..2000 {
        let body = row(i);
        let res = admin.post_json("/api/JobDispatchLog/Save", &body).await;
        match res.status {
            201 => acknowledged.push(body["id"].as_str().unwrap().to_string()),
            507 => {
                refused = Some((res, body["id"].as_str().unwrap().to_string()));
                break;
            }
            other => panic!("a write on a full disk answered {other}: {}", res.text),
        }
    }
    let (res, refused_id) = refused.expect("writes are refused once the disk is full");
    assert!(res.text.contains("disk is full"), "{}", res.text);
    // Reads go on, and the refused row was not stored.
    let first = &acknowledged[0];
    assert_eq!(
        admin
            .get(&format!("/api/JobDispatchLog/{first}"))
            .await
            .status,
        200
    );
    assert_eq!(
        admin
            .get(&format!("/api/JobDispatchLog/{refused_id}"))
            .await
            .status,
        404
    );
    let health = app.anonymous().get("/health").await;
    assert_eq!(health.status, 503, "{}", health.text);
    assert!(health.text.contains("disk is full"), "{}", health.text);

    // Space comes back: writes resume without a restart.
    std::fs::remove_file(&filler).unwrap();
    let body = row(0);
    let res = admin.post_json("/api/JobDispatchLog/Save", &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    acknowledged.push(body["id"].as_str().unwrap().to_string());
    assert_eq!(app.anonymous().get("/health").await.status, 200);

    for id in &acknowledged {
        let res = admin.get(&format!("/api/JobDispatchLog/{id}")).await;
        assert_eq!(res.status, 200, "acknowledged row {id} is lost");
    }
    app.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM job_dispatch_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as usize, acknowledged.len());
    drop(conn);
    drop(volume);
}
