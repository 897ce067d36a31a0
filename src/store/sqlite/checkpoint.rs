//! The checkpoint thread: copies the WAL back into the database file beside the writer, so that
//! the writer's commits only ever wait for the WAL's own sync.
//!
//! It runs a PASSIVE checkpoint every [`Checkpointer::INTERVAL`] when the writer has committed
//! since the last one, and passes back to back when
//! the writer asks ([`Checkpoints::request`]). The writer asks when the WAL passes half its
//! limit, and starts the log over (its RESTART checkpoint, during which no Save commits) once
//! those passes are done: each copies and syncs what was committed during the one before while
//! the writer goes on, until a pass is quick, so the RESTART is left with almost nothing to
//! copy and sync. Started over right when the limit was reached, it had to copy and sync up to
//! a whole interval's pages while every Save waited (the sync of a page costs about 9 µs here,
//! so 2–35 ms at each of 6–7 resets a second under realistic Saves: that bench's p99;
//! `bench/README.md`).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// What the writer and the checkpoint thread tell each other.
#[derive(Default)]
pub struct Checkpoints {
    state: Mutex<State>,
    wake: Condvar,
    /// The writer's commits so far (counted by its WAL hook).
    commits: AtomicU64,
}

#[derive(Default)]
struct State {
    /// The writer wants to start the WAL over.
    requested: bool,
    /// Passes run for the request so far (those that started after it).
    passes: u32,
    /// The passes for the request have left little to copy: starting over is quick now.
    ready: bool,
    stopped: bool,
}

impl State {
    /// The writer waits for passes.
    fn wanted(&self) -> bool {
        self.requested && !self.ready
    }
}

/// A pass this short had little to copy, so little was committed meanwhile.
const QUICK_PASS: Duration = Duration::from_millis(2);
/// Passes run for one request at most: each copies what was committed during the one before.
const MAX_PASSES: u32 = 4;

impl Checkpoints {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for passes until little is left to copy (a request already made is kept).
    pub fn request(&self) {
        let mut state = self.lock();
        if !state.requested {
            state.requested = true;
            state.passes = 0;
            state.ready = false;
            self.wake.notify_all();
        }
    }

    /// Whether the passes asked for have run.
    pub fn ready(&self) -> bool {
        self.lock().ready
    }

    /// The writer committed (from its WAL hook).
    pub fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Release);
    }

    /// The WAL was started over; the next reset asks again.
    pub fn reset_done(&self) {
        let mut state = self.lock();
        state.requested = false;
        state.ready = false;
    }
}

pub struct Checkpointer {
    shared: Arc<Checkpoints>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    /// Between passes nobody asked for.
    const INTERVAL: Duration = Duration::from_millis(100);

    pub fn start(
        path: &Path,
        shared: Arc<Checkpoints>,
        open: fn(&Path) -> rusqlite::Result<Connection>,
    ) -> std::io::Result<Checkpointer> {
        let path = path.to_path_buf();
        let signals = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let conn = match open(&path) {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::error!(error = %e, "the checkpoint connection cannot open");
                        return;
                    }
                };
                run(&conn, &signals);
            })?;
        Ok(Checkpointer { shared, thread })
    }

    pub fn stop(self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_all();
        let _ = self.thread.join();
    }
}

fn run(conn: &Connection, signals: &Checkpoints) {
    // The commits counted when the last pass started: an interval without a commit since
    // needs no pass (an idle service's thread then only wakes up to see that).
    let mut passed_at: Option<u64> = None;
    let mut state = signals.lock();
    while !state.stopped {
        // Only a pass that starts after the request copies everything committed before it.
        let for_request = state.wanted();
        let commits = signals.commits.load(Ordering::Acquire);
        if for_request || passed_at != Some(commits) {
            drop(state);
            let started = Instant::now();
            // PASSIVE never blocks the writer or readers; it copies what it can.
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "checkpoint failed");
            }
            passed_at = Some(commits);
            let took = started.elapsed();
            state = signals.lock();
            if state.wanted() {
                if for_request {
                    state.passes += 1;
                    state.ready = took < QUICK_PASS || state.passes >= MAX_PASSES;
                }
                if !state.ready {
                    continue;
                }
            }
        }
        // Until the interval is up, the writer asks for a pass, or the service stops.
        while !state.stopped && !state.wanted() {
            let (next, timeout) = signals
                .wake
                .wait_timeout(state, Checkpointer::INTERVAL)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            if timeout.timed_out() {
                break;
            }
        }
    }
}
