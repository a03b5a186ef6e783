//! The writer thread: the one connection that writes, draining a channel of writes and
//! committing whatever is queued together (group commit).
//!
//! Each write is a list of statements sent over a channel with a reply slot. The thread takes
//! the first write, then every write already queued behind it (up to [`MAX_GROUP`]), and runs
//! them in one `BEGIN IMMEDIATE` transaction, each inside its own savepoint, so a write that
//! fails is rolled back alone and only its owner sees the error. Replies are sent only after
//! `COMMIT` returned: a write that got `Ok` is durable (`synchronous=FULL`).
//!
//! When the transaction as a whole fails (`BEGIN` timed out on another process's lock, SQLite
//! rolled the transaction back after an I/O error or a full disk, `COMMIT` failed) every write of
//! the group gets the error and nothing of the group is stored. Nothing is ever re-run: a
//! re-run after an ambiguous failure could write a history row twice or report a
//! compare-and-swap that won as lost.
//!
//! A write whose caller stopped waiting after it was queued is committed all the same: once
//! sent, the statements are the thread's (a rotated token must not be lost because the request
//! that fetched it was cancelled). A write never sent was never started.
//!
//! The thread checkpoints the WAL itself, between groups: when the channel is empty and at
//! least [`CHECKPOINT_EVERY`] commits went to the WAL, after [`IDLE_CHECKPOINT`] without writes,
//! and in any case every `4 × CHECKPOINT_EVERY` commits so that a writer that is never idle
//! still keeps the WAL bounded. On [`Writer::close`] or when every handle is dropped, it commits
//! what is queued, checkpoints with `TRUNCATE` (the WAL file is emptied) and exits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::statement::Statement;
use crate::store::StoreError;

/// At most this many writes share one transaction: a group's latency stays bounded, and a
/// steady stream of writers never keeps the first one waiting.
const MAX_GROUP: usize = 256;

/// Commits between checkpoints while writes keep coming (4 MiB of WAL for small writes).
const CHECKPOINT_EVERY: u64 = 1000;

/// A group is closed once no write arrived for this long (see [`run`]): a few times the gap
/// between two tasks' sends in a burst, a small fraction of a commit's fsync.
const GATHER_QUIET: Duration = Duration::from_micros(8);

/// How long the thread keeps polling for writes after a group before it sleeps (see
/// [`linger`]).
const LINGER: Duration = Duration::from_micros(50);

/// A WAL with any frames in it is checkpointed after this long without writes.
const IDLE_CHECKPOINT: Duration = Duration::from_secs(1);

/// What one write gets back: the rows each statement changed.
pub(super) type Reply = Result<Vec<u64>, StoreError>;

enum Command {
    Write {
        statements: Vec<Statement<'static>>,
        reply: oneshot::Sender<Reply>,
    },
    /// Commit what is queued before it, checkpoint, stop.
    Close {
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// The handle of the writer thread; dropping it lets the thread finish the queue and stop.
pub(super) struct Writer {
    commands: Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<WriterStats>,
}

/// Counters the thread keeps, for tests and `Debug`.
#[derive(Debug, Default)]
pub(super) struct WriterStats {
    /// Transactions committed.
    pub(super) commits: AtomicU64,
    /// Writes committed (a commit holds one or more).
    pub(super) writes: AtomicU64,
    /// Checkpoints run.
    pub(super) checkpoints: AtomicU64,
}

impl Writer {
    /// Starts the thread on `connection` (opened, configured and migrated).
    pub(super) fn start(connection: Connection, name: String) -> Result<Self, StoreError> {
        let (commands, receiver) = mpsc::channel();
        let stats = Arc::new(WriterStats::default());
        let thread = {
            let stats = Arc::clone(&stats);
            std::thread::Builder::new()
                .name(name)
                .spawn(move || run(&connection, &receiver, &stats))
                .map_err(|_| StoreError::Closed("cannot start the SQLite writer thread"))?
        };
        Ok(Self {
            commands,
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    pub(super) fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Queues `statements` as one write and waits for its commit.
    pub(super) async fn write(&self, statements: Vec<Statement<'static>>) -> Reply {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Write { statements, reply })
            .map_err(|_| StoreError::Closed("the SQLite writer thread has stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::Closed("the SQLite writer thread stopped before committing"))?
    }

    /// Commits every write queued so far, checkpoints the WAL into the database file (emptying
    /// it) and stops the thread. Writes sent afterwards fail with [`StoreError::Closed`].
    pub(super) async fn close(&self) -> Result<(), StoreError> {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Close { done }).is_err() {
            return Ok(()); // already stopped
        }
        let result = finished.await.unwrap_or(Ok(()));
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // The thread has sent its answer and returns at once; joining cannot block for long.
            let _ = thread.join();
        }
        result
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// One queued write.
struct Job {
    statements: Vec<Statement<'static>>,
    reply: oneshot::Sender<Reply>,
}

/// The thread's loop.
fn run(connection: &Connection, commands: &Receiver<Command>, stats: &WriterStats) {
    batch_scheduling();
    let mut since_checkpoint: u64 = 0;
    // The CPUs this process may run on (its affinity mask included).
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    loop {
        // Between groups: checkpoint when idle enough, or when the WAL grew regardless.
        let next = match commands.try_recv() {
            Ok(command) => {
                if since_checkpoint >= 4 * CHECKPOINT_EVERY {
                    checkpoint(connection, "PASSIVE", stats, &mut since_checkpoint);
                }
                command
            }
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                if since_checkpoint >= CHECKPOINT_EVERY {
                    checkpoint(connection, "PASSIVE", stats, &mut since_checkpoint);
                }
                if let Some(command) = linger(commands, cpus) {
                    command
                } else {
                    match wait(commands, since_checkpoint > 0) {
                        Ok(command) => command,
                        Err(RecvTimeoutError::Timeout) => {
                            checkpoint(connection, "PASSIVE", stats, &mut since_checkpoint);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            }
        };
        let mut group = Vec::new();
        let mut close = None;
        match next {
            Command::Write { statements, reply } => group.push(Job { statements, reply }),
            Command::Close { done } => close = Some(done),
        }
        // Writers that arrive in a burst (the tasks of one tick, a batch) are still sending:
        // collect until none arrived for GATHER_QUIET, so that they share this commit's fsync
        // instead of waiting for the next one (the "commit delay" of PostgreSQL and MySQL).
        let mut last_arrival = Instant::now();
        while close.is_none() && group.len() < MAX_GROUP {
            match commands.try_recv() {
                Ok(Command::Write { statements, reply }) => {
                    group.push(Job { statements, reply });
                    last_arrival = Instant::now();
                }
                Ok(Command::Close { done }) => close = Some(done),
                Err(TryRecvError::Empty) if last_arrival.elapsed() < GATHER_QUIET => {
                    // On a busy CPU, let the senders run.
                    std::thread::yield_now();
                }
                Err(_) => break,
            }
        }
        if !group.is_empty() && commit_group(connection, group, stats) {
            since_checkpoint += 1;
        }
        if let Some(done) = close {
            let _ = done.send(truncate_wal(connection, stats));
            return;
        }
    }
    // Every handle was dropped: the queue is drained (the channel is empty and closed).
    if let Err(error) = truncate_wal(connection, stats) {
        tracing::warn!(%error, "SQLite checkpoint at shutdown failed; the WAL is replayed on the next open");
    }
}

/// Polls for the next command for up to [`LINGER`] before the thread goes to sleep: a caller
/// that writes again right after its reply (a request's next write, the next token of a
/// rotation batch) then finds the thread awake, instead of paying for a sleeping CPU's wake-up
/// (20-40 µs on a small VM, measured). Yields between polls, so that on a busy CPU the tasks
/// that produce the writes run instead. On a single CPU it does not poll at all: the callers
/// cannot run while it does, and the yields only add context switches (measured on the install
/// flow benchmark with `serve` pinned to one core).
fn linger(commands: &Receiver<Command>, cpus: usize) -> Option<Command> {
    if cpus < 2 {
        // The writers cannot run while this thread polls: sleep at once.
        return None;
    }
    let started = Instant::now();
    while started.elapsed() < LINGER {
        match commands.try_recv() {
            Ok(command) => return Some(command),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    None
}

/// Asks Linux to schedule this thread as a batch thread (`SCHED_BATCH`): a write sent to it then
/// does not preempt the task that sent it on the same CPU; the thread runs when that CPU is
/// free, with every write queued by then. Elsewhere, and when refused, nothing changes.
fn batch_scheduling() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        if let Err(error) = set_thread_priority_and_policy(
            thread_native_id(),
            // Niceness 0, as before: only the policy changes.
            thread_priority::ThreadPriority::Os(thread_priority::ThreadPriorityOsValue::default()),
            policy,
        ) {
            tracing::debug!(?error, "SQLite writer thread: SCHED_BATCH refused");
        }
    }
}

/// Blocks for the next command; with `timeout`, for at most [`IDLE_CHECKPOINT`].
fn wait(commands: &Receiver<Command>, timeout: bool) -> Result<Command, RecvTimeoutError> {
    if timeout {
        commands.recv_timeout(IDLE_CHECKPOINT)
    } else {
        commands.recv().map_err(|_| RecvTimeoutError::Disconnected)
    }
}

/// Runs `group` in one transaction and replies to each write. Returns whether it committed.
fn commit_group(connection: &Connection, group: Vec<Job>, stats: &WriterStats) -> bool {
    let outcome = run_group(connection, &group);
    let committed = outcome.is_ok();
    let answers = match outcome {
        Ok(answers) => answers,
        Err(failure) => {
            if !connection.is_autocommit() {
                // Nothing of the group may stay behind; a connection that cannot even roll
                // back reports that on its next BEGIN.
                if let Err(error) = connection.execute_batch("ROLLBACK") {
                    tracing::warn!(%error, "SQLite ROLLBACK after a failed write group failed");
                }
            }
            tracing::warn!(error = %failure.error, writes = group.len(), "a SQLite write transaction failed; every write in it reports the error");
            group
                .iter()
                .map(|_| {
                    Err(StoreError::Sqlite {
                        operation: failure.operation,
                        source: duplicate(&failure.error),
                    })
                })
                .collect()
        }
    };
    if committed {
        stats.commits.fetch_add(1, Ordering::Relaxed);
        let made = answers.iter().filter(|answer| answer.is_ok()).count();
        stats
            .writes
            .fetch_add(u64::try_from(made).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
    for (job, answer) in group.into_iter().zip(answers) {
        // A caller that stopped waiting had its write made (or not) all the same.
        let _ = job.reply.send(answer);
    }
    committed
}

/// Why a whole group failed.
struct GroupFailure {
    operation: &'static str,
    error: rusqlite::Error,
}

fn failed(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> GroupFailure {
    move |error| GroupFailure { operation, error }
}

/// The transaction of [`commit_group`]: each write's answer, or why the whole group failed.
fn run_group(connection: &Connection, group: &[Job]) -> Result<Vec<Reply>, GroupFailure> {
    connection
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut begin| begin.execute([]))
        .map_err(failed("beginning a write transaction"))?;
    let mut answers = Vec::with_capacity(group.len());
    if let [only] = group {
        // Alone in its transaction: its failure is the transaction's, no savepoint needed.
        let changed = run_statements(connection, &only.statements).map_err(failed("writing"))?;
        answers.push(Ok(changed));
    } else {
        for job in group {
            run_cached(connection, "SAVEPOINT write").map_err(failed("writing"))?;
            match run_statements(connection, &job.statements) {
                Ok(changed) => answers.push(Ok(changed)),
                Err(error) if connection.is_autocommit() => {
                    // SQLite rolled the whole transaction back (I/O error, full disk): the
                    // writes before this one are gone too.
                    return Err(failed("writing")(error));
                }
                Err(error) => {
                    run_cached(connection, "ROLLBACK TO write").map_err(failed("writing"))?;
                    answers.push(Err(StoreError::Sqlite {
                        operation: "writing",
                        source: error,
                    }));
                }
            }
            run_cached(connection, "RELEASE write").map_err(failed("writing"))?;
        }
    }
    // Crash tests kill the process here: the group's writes are in the WAL, not committed.
    fail::fail_point!("sqlite::before-commit");
    run_cached(connection, "COMMIT").map_err(failed("committing"))?;
    Ok(answers)
}

fn run_cached(connection: &Connection, sql: &str) -> rusqlite::Result<usize> {
    // Cached like the statements: parsing these on every write shows in profiles.
    connection.prepare_cached(sql)?.execute([])
}

fn run_statements(
    connection: &Connection,
    statements: &[Statement<'_>],
) -> rusqlite::Result<Vec<u64>> {
    statements
        .iter()
        .map(|statement| statement.execute(connection))
        .collect()
}

/// Moves WAL frames into the database file.
fn checkpoint(connection: &Connection, mode: &str, stats: &WriterStats, since: &mut u64) {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    match connection.query_row(&sql, [], |_| Ok(())) {
        Ok(()) => {
            stats.checkpoints.fetch_add(1, Ordering::Relaxed);
            *since = 0;
        }
        // Another connection busy, or an I/O error: the next one retries.
        Err(error) => {
            tracing::debug!(%error, "SQLite WAL checkpoint did not run");
            *since = since.saturating_sub(CHECKPOINT_EVERY / 2);
        }
    }
}

/// The checkpoint at shutdown: every frame into the database file, the WAL truncated to zero
/// bytes. Needs the readers of other processes to be done; one still reading makes it partial,
/// which is reported.
fn truncate_wal(connection: &Connection, stats: &WriterStats) -> Result<(), StoreError> {
    let busy: i64 = connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .map_err(|source| StoreError::Sqlite {
            operation: "checkpointing at shutdown",
            source,
        })?;
    stats.checkpoints.fetch_add(1, Ordering::Relaxed);
    if busy != 0 {
        tracing::debug!("SQLite checkpoint at shutdown was partial: another connection is reading");
    }
    Ok(())
}

/// A copy of `error` for each write of a failed group (`rusqlite::Error` is not `Clone`): the
/// SQLite code and message are kept.
fn duplicate(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}
