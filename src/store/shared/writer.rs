//! The writer: one connection, one thread, group commit — for either engine.
//!
//! Every commit waits for the disk (`synchronous=FULL` on SQLite, `synchronous_commit` on
//! PostgreSQL). Rather than have each request pay for its own sync, every write is a job sent to
//! this thread; the thread takes all jobs waiting, runs each inside its own savepoint (so one
//! failing job does not undo the others), commits once, and only then answers them. A reply
//! therefore always means "on disk".
//!
//! Where a round trip to the database costs much (PostgreSQL), the jobs that arrived while a
//! group ran form the next group, which is begun in the same exchange as the commit of the
//! previous one ([`super::conn::GroupConn::commit_then_begin`]).
//!
//! **Stamps in commit order.** At the start of a group the writer locks the row of every tenant
//! the group writes to (in id order, so writers of several instances never deadlock) and reads
//! its last stamp. Each change takes `max(server clock, previous stamp + 100 ns)`; the new last
//! stamps are written back just before the commit, which releases the locks. A later
//! transaction of the same tenant waits for the lock, so it both commits later and stamps higher:
//! stamp order is commit order, which is what sync needs (SPEC §7).

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use super::conn::{Conn, Prefetch};
use crate::domain::Timestamp;
use crate::store::{StoreError, TenantId};

/// The most jobs committed together; bounds the latency one commit adds to its first job.
const MAX_GROUP: usize = 512;

/// Told of every group the writer runs. The service's metrics registry listens: it sits above
/// the store, so the writer reports through this rather than import it.
pub trait GroupObserver: Send + Sync {
    /// A group of `jobs` write jobs starts; `still_queued` jobs wait behind it.
    fn group_formed(&self, jobs: usize, still_queued: usize);
}

static GROUP_OBSERVER: OnceLock<&'static dyn GroupObserver> = OnceLock::new();

/// Sets, once per process, who hears of the writers' groups.
pub fn observe_groups(observer: &'static dyn GroupObserver) {
    let _ = GROUP_OBSERVER.set(observer);
}

/// The last stamp of each tenant locked by the current group.
#[derive(Debug, Default)]
pub struct StampBook {
    last: HashMap<TenantId, (Timestamp, bool)>,
}

/// What a write job sees: the connection inside the group's transaction, and the stamps.
pub struct WriteCtx<'a, C: Conn> {
    pub conn: &'a mut C,
    stamps: &'a mut StampBook,
}

impl<C: Conn> WriteCtx<'_, C> {
    /// The stamp the tenant's next change would get; it is only used by [`WriteCtx::take`].
    pub fn peek(&mut self, tenant: TenantId) -> Result<Timestamp, StoreError> {
        let last = match self.stamps.last.get(&tenant) {
            Some((last, _)) => *last,
            None => {
                let last = self.conn.lock_tenant_stamp(tenant)?;
                self.stamps.last.insert(tenant, (last, false));
                last
            }
        };
        Ok(Timestamp::now().max(last.succ()))
    }

    /// Marks `stamp` (from [`WriteCtx::peek`]) as used by a change of the tenant.
    pub fn take(&mut self, tenant: TenantId, stamp: Timestamp) {
        self.stamps.last.insert(tenant, (stamp, true));
    }
}

trait WriteJob<C: Conn>: Send {
    fn tenant(&self) -> Option<TenantId>;
    fn prefetch(&self) -> Option<&Prefetch>;
    fn run(self: Box<Self>, ctx: &mut WriteCtx<'_, C>) -> Box<dyn Finish>;
    fn abort(self: Box<Self>, error: StoreError);
}

trait Finish: Send {
    /// False: the job failed and its savepoint is rolled back.
    fn keep(&self) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct ClosureJob<F, T> {
    tenant: Option<TenantId>,
    prefetch: Option<Prefetch>,
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

struct PendingReply<T> {
    result: Result<T, StoreError>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<C, F, T> WriteJob<C> for ClosureJob<F, T>
where
    C: Conn,
    F: FnOnce(&mut WriteCtx<'_, C>) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    fn tenant(&self) -> Option<TenantId> {
        self.tenant
    }

    fn prefetch(&self) -> Option<&Prefetch> {
        self.prefetch.as_ref()
    }

    fn run(self: Box<Self>, ctx: &mut WriteCtx<'_, C>) -> Box<dyn Finish> {
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
            Err(message) if message == StoreError::DISK_FULL => Err(StoreError::DiskFull),
            Err(message) => Err(StoreError::Unavailable(anyhow::anyhow!(
                "commit failed: {message}"
            ))),
        };
        let _ = self.reply.send(result);
    }
}

type ReadJob<C> = Box<dyn FnOnce(&mut C) + Send>;

enum Job<C: Conn> {
    Write(Box<dyn WriteJob<C>>),
    /// Runs between groups, never inside a transaction (used when there is no reader pool).
    Read(ReadJob<C>),
}

/// Opens a connection for the writer (again, after the database went away).
pub type Connect<C> = Box<dyn FnMut() -> Result<C, StoreError> + Send>;

/// The handle requests use to reach the writer thread.
pub struct Writer<C: Conn> {
    /// None once closed; dropping the sender lets the thread drain its queue and stop.
    jobs: Mutex<Option<Sender<Job<C>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<C: Conn> Writer<C> {
    pub fn start(first: Option<C>, connect: Connect<C>) -> std::io::Result<Writer<C>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || run(first, connect, rx))?;
        Ok(Writer {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `f` in the next group's transaction; resolves once that group is committed.
    /// `tenant` is the tenant whose rows `f` changes (its stamp is locked for the group), and
    /// `prefetch` the rows of that tenant `f` is about to read.
    pub async fn write<T, F>(
        &self,
        tenant: Option<TenantId>,
        prefetch: Option<Prefetch>,
        f: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(&mut WriteCtx<'_, C>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Write(Box::new(ClosureJob {
            tenant,
            prefetch,
            f,
            reply,
        })))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Internal(anyhow::anyhow!(
                "the write job ended without an answer"
            )))
        })
    }

    /// Runs `f` on the writer's connection outside any transaction.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut C) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Read(Box::new(move |conn: &mut C| {
            let _ = reply.send(f(conn));
        })))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(anyhow::anyhow!(
                "the database is not available"
            )))
        })
    }

    /// Jobs waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, Sender::len)
    }

    fn send(&self, job: Job<C>) -> Result<(), StoreError> {
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

/// The new last stamp of each tenant a group changed.
type UsedStamps = Vec<(TenantId, Timestamp)>;

/// A group whose transaction is open: its jobs and the tenants' last stamps.
struct Begun<C: Conn> {
    jobs: Vec<Box<dyn WriteJob<C>>>,
    stamps: StampBook,
}

fn run<C: Conn>(mut conn: Option<C>, mut connect: Connect<C>, rx: Receiver<Job<C>>) {
    let replier = Replier::start();
    let mut reads: Vec<ReadJob<C>> = Vec::new();
    // The next group, already begun together with the previous commit.
    let mut carried: Option<Begun<C>> = None;
    loop {
        let begun = match carried.take() {
            Some(begun) => begun,
            None => {
                let Ok(first) = rx.recv() else { break };
                let mut writes = Vec::with_capacity(MAX_GROUP);
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
                if conn.as_ref().is_none_or(|c| c.is_broken()) {
                    conn = match connect() {
                        Ok(c) => Some(c),
                        Err(e) => {
                            let message = e.to_string();
                            for job in writes {
                                job.abort(StoreError::Unavailable(anyhow::anyhow!("{message}")));
                            }
                            // Read jobs are dropped: their callers see the database as
                            // unavailable.
                            reads.clear();
                            continue;
                        }
                    };
                }
                let Some(c) = conn.as_mut() else { continue };
                run_reads(c, &mut reads);
                if writes.is_empty() {
                    continue;
                }
                let tenants = plan(&writes);
                let opened = c.begin_group(&tenants);
                match begin(c, writes, &tenants, opened) {
                    Some(begun) => begun,
                    None => continue,
                }
            }
        };
        let Some(c) = conn.as_mut() else { continue };
        if let Some(observer) = GROUP_OBSERVER.get() {
            observer.group_formed(begun.jobs.len(), rx.len());
        }
        let (finished, used) = run_jobs(c, begun);
        // Where the engine sends the next group's start with this commit, jobs that came
        // meanwhile form that group; a read waits for the commit and runs between the groups.
        // Otherwise the next group is formed after the commit, from every job waiting then.
        let mut next_writes: Vec<Box<dyn WriteJob<C>>> = Vec::new();
        while c.pipelines_groups() && next_writes.len() < MAX_GROUP && reads.is_empty() {
            match rx.try_recv() {
                Ok(Job::Write(w)) => next_writes.push(w),
                Ok(Job::Read(r)) => reads.push(r),
                Err(_) => break,
            }
        }
        if !next_writes.is_empty() && reads.is_empty() {
            let tenants = plan(&next_writes);
            // The group's requests are answered as soon as its commit is known, without waiting
            // for the next group's locks.
            let mut answers = Some(finished);
            let (committed, opened) =
                c.commit_then_begin(&used, &tenants, &mut |outcome: Result<(), String>| {
                    if let Some(finished) = answers.take() {
                        replier.finish(finished, outcome);
                    }
                });
            if let Some(finished) = answers.take() {
                replier.finish(finished, committed.map_err(|e| e.to_string()));
            }
            carried = begin(c, next_writes, &tenants, opened);
        } else {
            let committed = c.commit_group(&used);
            if committed.is_err() {
                c.rollback_group();
            }
            replier.finish(finished, committed.map_err(|e| e.to_string()));
            run_reads(c, &mut reads);
            c.between_groups();
            if !next_writes.is_empty() {
                let tenants = plan(&next_writes);
                let opened = c.begin_group(&tenants);
                carried = begin(c, next_writes, &tenants, opened);
            }
        }
    }
}

/// Runs the read jobs waiting, between groups (a panicking one only loses its own answer).
fn run_reads<C: Conn>(conn: &mut C, reads: &mut Vec<ReadJob<C>>) {
    for read in reads.drain(..) {
        let _ = catch_unwind(AssertUnwindSafe(|| read(conn)));
    }
}

/// The tenants a group writes to (in id order, so that writers of several instances never
/// deadlock), each with the rows its jobs are about to read.
fn plan<C: Conn>(jobs: &[Box<dyn WriteJob<C>>]) -> Vec<(TenantId, Prefetch)> {
    let mut tenants: Vec<(TenantId, Prefetch)> = jobs
        .iter()
        .filter_map(|j| j.tenant())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|tenant| (tenant, Prefetch::default()))
        .collect();
    for (tenant, rows) in &mut tenants {
        for job in jobs.iter().filter(|j| j.tenant() == Some(*tenant)) {
            if let Some(p) = job.prefetch() {
                rows.ids.extend_from_slice(&p.ids);
                rows.jobs.extend_from_slice(&p.jobs);
            }
        }
        rows.ids.sort_unstable();
        rows.ids.dedup();
        rows.jobs.sort_unstable();
        rows.jobs.dedup();
    }
    tenants
}

/// Takes in the outcome of beginning a group: its tenants' last stamps, or an error that every
/// job of the group gets.
fn begin<C: Conn>(
    conn: &mut C,
    jobs: Vec<Box<dyn WriteJob<C>>>,
    tenants: &[(TenantId, Prefetch)],
    opened: Result<Vec<Timestamp>, StoreError>,
) -> Option<Begun<C>> {
    match opened {
        Ok(lasts) => {
            let mut stamps = StampBook::default();
            for ((tenant, _), last) in tenants.iter().zip(lasts) {
                stamps.last.insert(*tenant, (last, false));
            }
            Some(Begun { jobs, stamps })
        }
        Err(e) => {
            conn.rollback_group();
            let message = e.to_string();
            for job in jobs {
                job.abort(StoreError::Unavailable(anyhow::anyhow!(
                    "cannot start a transaction: {message}"
                )));
            }
            None
        }
    }
}

/// Runs each job of the group in its own savepoint; answers their pending replies and the
/// stamps the group used.
fn run_jobs<C: Conn>(conn: &mut C, begun: Begun<C>) -> (Vec<Box<dyn Finish>>, UsedStamps) {
    let Begun { jobs, mut stamps } = begun;
    let mut finished: Vec<Box<dyn Finish>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(e) = conn.job_begin() {
            job.abort(e);
            continue;
        }
        let mut ctx = WriteCtx {
            conn: &mut *conn,
            stamps: &mut stamps,
        };
        match catch_unwind(AssertUnwindSafe(|| job.run(&mut ctx))) {
            Ok(done) => {
                if let Err(e) = conn.job_end(done.keep()) {
                    tracing::error!(error = %e, "ending a job's savepoint failed");
                }
                finished.push(done);
            }
            Err(_) => {
                // The job's reply channel is gone with the panic; its caller sees an error.
                tracing::error!("a write job panicked; its changes are rolled back");
                let _ = conn.job_end(false);
            }
        }
    }
    let used = stamps
        .last
        .iter()
        .filter(|(_, (_, used))| *used)
        .map(|(tenant, (stamp, _))| (*tenant, *stamp))
        .collect();
    (finished, used)
}

/// A committed (or failed) group's jobs, to be answered.
type Answers = (Vec<Box<dyn Finish>>, Result<(), String>);

/// Answers groups on a thread of its own. Each answer wakes the request waiting for it, which
/// costs a system call; made by the writer, those would delay the next group by as many calls
/// as the group had jobs, while the server waits. The writer hands over the whole group in one
/// message instead. Without that thread (it could not start), the writer answers itself.
struct Replier {
    groups: Option<Sender<Answers>>,
    thread: Option<JoinHandle<()>>,
}

impl Replier {
    fn start() -> Replier {
        let (tx, rx) = crossbeam_channel::unbounded::<Answers>();
        let thread = std::thread::Builder::new()
            .name("db-replier".into())
            .spawn(move || {
                for (finished, committed) in rx {
                    finish(finished, committed);
                }
            });
        match thread {
            Ok(thread) => Replier {
                groups: Some(tx),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!(error = %e, "the writer answers its jobs itself");
                Replier {
                    groups: None,
                    thread: None,
                }
            }
        }
    }

    fn finish(&self, finished: Vec<Box<dyn Finish>>, committed: Result<(), String>) {
        match &self.groups {
            Some(groups) => {
                if let Err(unsent) = groups.send((finished, committed)) {
                    let (finished, committed) = unsent.into_inner();
                    finish(finished, committed);
                }
            }
            None => finish(finished, committed),
        }
    }
}

impl Drop for Replier {
    /// Answers every group handed over before the writer stops.
    fn drop(&mut self) {
        drop(self.groups.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers the group's jobs once its commit is known: a reply always means "on disk".
fn finish(finished: Vec<Box<dyn Finish>>, committed: Result<(), String>) {
    for done in finished {
        done.finish(committed.clone());
    }
}
