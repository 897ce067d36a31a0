//! The single SQLite writer: one thread, one connection, group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit waits for the
//! disk. Rather than have requests queue for the write lock and pay one sync each, every write
//! is a job sent to this thread; the thread takes all jobs waiting, runs each inside its own
//! savepoint (so one failing job does not undo the others), commits once, and only then answers
//! them. A reply therefore always means "on disk".
//!
//! Because this thread is the only writer, the order in which it hands out `modified_dateutc`
//! stamps is the commit order, which is what sync needs (SPEC §7).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::domain::Timestamp;
use crate::store::StoreError;

/// The most jobs committed together; bounds the latency one commit adds to its first job.
const MAX_GROUP: usize = 512;

/// Hands out `modified_dateutc` stamps: the server clock, but always after the previous stamp,
/// so stamps are unique and increase in commit order even when the clock stalls or steps back.
#[derive(Debug)]
pub struct StampClock {
    last: Timestamp,
}

impl StampClock {
    pub fn starting_after(last: Timestamp) -> Self {
        StampClock { last }
    }

    /// The stamp the next change would get; it is only taken by [`StampClock::take`].
    pub fn peek(&self) -> Timestamp {
        Timestamp::now().max(self.last.succ())
    }

    pub fn take(&mut self, stamp: Timestamp) {
        debug_assert!(stamp > self.last);
        self.last = stamp;
    }
}

/// What a write job sees: the connection inside the group's transaction, and the clock.
pub struct WriteCtx<'a> {
    pub conn: &'a Connection,
    pub clock: &'a mut StampClock,
}

trait WriteJob: Send {
    fn run(self: Box<Self>, ctx: &mut WriteCtx<'_>) -> Box<dyn Finish>;
    fn abort(self: Box<Self>, error: StoreError);
}

trait Finish: Send {
    /// False: the job failed and its savepoint is rolled back.
    fn keep(&self) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct ClosureJob<F, T> {
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

struct PendingReply<T> {
    result: Result<T, StoreError>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> WriteJob for ClosureJob<F, T>
where
    F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, ctx: &mut WriteCtx<'_>) -> Box<dyn Finish> {
        let result = (self.f)(ctx);
        Box::new(PendingReply {
            result,
            reply: self.reply,
        })
    }

    fn abort(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T: Send + 'static> Finish for PendingReply<T> {
    fn keep(&self) -> bool {
        self.result.is_ok()
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let result = match commit {
            Ok(()) => self.result,
            Err(message) => Err(StoreError::Unavailable(anyhow::anyhow!(
                "commit failed: {message}"
            ))),
        };
        let _ = self.reply.send(result);
    }
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

enum Job {
    Write(Box<dyn WriteJob>),
    /// Runs between groups, never inside a transaction (used when there is no reader pool).
    Read(ReadJob),
}

/// The handle requests use to reach the writer thread.
pub struct Writer {
    /// None once closed; dropping the sender lets the thread drain its queue and stop.
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub fn start(conn: Connection, clock: StampClock) -> std::io::Result<Writer> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, clock))?;
        Ok(Writer {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` in the next group's transaction; resolves once that group is committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Write(Box::new(ClosureJob { f, reply })))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Internal(anyhow::anyhow!(
                "the write job ended without an answer"
            )))
        })
    }

    /// Runs `f` on the writer's connection outside any transaction.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Read(Box::new(move |conn| {
            let _ = reply.send(f(conn));
        })))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Internal(anyhow::anyhow!(
                "the read job ended without an answer"
            )))
        })
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let sent = match jobs.as_ref() {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            Err(StoreError::Unavailable(anyhow::anyhow!(
                "the database is closed"
            )))
        }
    }

    /// Lets queued jobs finish, then stops the thread and closes its connection. Blocks.
    pub fn close(&self) {
        drop(self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn run(conn: Connection, rx: Receiver<Job>, mut clock: StampClock) {
    let mut writes: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_GROUP);
    let mut reads: Vec<ReadJob> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write(w) => writes.push(w),
                Job::Read(r) => reads.push(r),
            }
            if writes.len() < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        if !writes.is_empty() {
            crate::metrics::global().record_group_commit(writes.len(), rx.len());
            commit_group(&conn, &mut clock, writes.drain(..));
        }
        for read in reads.drain(..) {
            let _ = catch_unwind(AssertUnwindSafe(|| read(&conn)));
        }
    }
    // All senders are gone: close the connection (checkpointing the WAL).
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the database failed");
    }
}

fn commit_group(
    conn: &Connection,
    clock: &mut StampClock,
    jobs: impl ExactSizeIterator<Item = Box<dyn WriteJob>>,
) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let message = e.to_string();
        for job in jobs {
            job.abort(StoreError::Unavailable(anyhow::anyhow!(
                "cannot start a transaction: {message}"
            )));
        }
        return;
    }
    let mut finished: Vec<Box<dyn Finish>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            job.abort(StoreError::Unavailable(e.into()));
            continue;
        }
        let mut ctx = WriteCtx {
            conn,
            clock: &mut *clock,
        };
        match catch_unwind(AssertUnwindSafe(|| job.run(&mut ctx))) {
            Ok(done) => {
                let end = if done.keep() {
                    "RELEASE job"
                } else {
                    "ROLLBACK TO job; RELEASE job"
                };
                if let Err(e) = conn.execute_batch(end) {
                    tracing::error!(error = %e, "ending a savepoint failed");
                }
                finished.push(done);
            }
            Err(_) => {
                // The job's reply channel is gone with the panic; its caller sees an error.
                tracing::error!("a write job panicked; its changes are rolled back");
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            }
        }
    }
    let commit = conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    });
    for done in finished {
        done.finish(commit.clone());
    }
}
