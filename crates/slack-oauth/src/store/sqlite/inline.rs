//! Lookups and writes run on the calling thread, on connections of their own.
//!
//! sqlx runs every SQLite statement on a thread per connection and hands statements and rows
//! across with channels: two thread wake-ups per query, which cost more than the indexed lookup
//! itself (`find_bot` runs in under 15 µs inside SQLite). The hot lookups (`find_bot`,
//! `find_installation`, which authorize makes on every request that misses its cache) therefore
//! run synchronously on a small set of `rusqlite` connections to the same file, with cached
//! prepared statements. In WAL mode a reader never waits for a writer, and these connections
//! have no busy timeout: whenever one cannot answer at once (busy, no connection free, any
//! error), the lookup falls back to the pooled async path, which waits and reports errors
//! properly. So a lookup never blocks its thread on a lock; it can block on disk I/O when a page
//! is not in the OS cache, like any memory-mapped read.
//!
//! Writes do the same on one writer connection (see `write.rs`), under the process's write lock:
//! `BEGIN IMMEDIATE` fails at once when another process is writing, and the write goes to the
//! pool. With `synchronous=NORMAL` in WAL mode a commit does not fsync, and this connection never
//! checkpoints (a background task does), so an inline write costs what SQLite spends on it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};

use super::group::WriteQueue;
use super::installation::{
    bot_from_row, installation_from_row, FIND_BOT, FIND_INSTALLATION, FIND_INSTALLATION_OF_USER,
};
use super::write::Statement;
use super::{SqliteStore, CACHE_SIZE, MMAP_SIZE};
use crate::installation::{Bot, Installation};
use crate::store::StoreError;

/// At most this many inline connections: one per thread that runs lookups at the same moment;
/// more callers than that at once take the pooled path.
const MAX_INLINE_CONNECTIONS: usize = 16;

/// Page cache of the writer, in KiB (negative: SQLite's convention).
const WRITER_CACHE_SIZE: i64 = -2 * 1024;

/// Connections for inline lookups and writes on one database file.
pub(super) struct InlineConnections {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    opened: AtomicUsize,
    /// Cleared when a connection cannot be opened: every lookup then takes the pooled path.
    enabled: AtomicBool,
    /// The writer, opened on first use; only used under the store's write lock.
    writer: Mutex<Option<Connection>>,
    /// Commits made by the writer, to start checkpoints.
    pub(super) commits: AtomicU64,
    /// Whether a background checkpoint is running.
    pub(super) checkpointing: AtomicBool,
    /// Writers waiting to share a transaction.
    pub(super) queue: WriteQueue,
}

/// Why an inline lookup did not answer: the pooled path takes over.
struct Fallback;

impl InlineConnections {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            opened: AtomicUsize::new(0),
            enabled: AtomicBool::new(true),
            writer: Mutex::new(None),
            commits: AtomicU64::new(0),
            checkpointing: AtomicBool::new(false),
            queue: WriteQueue::default(),
        }
    }

    /// How many connections are open.
    pub(super) fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }

    fn open(&self, writer: bool) -> Result<Connection, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags)?;
        // Room for every statement the store runs (the default of 16 is about that many).
        connection.set_prepared_statement_cache_capacity(64);
        // Never wait: a busy database sends the statement to the pooled path.
        connection.busy_timeout(std::time::Duration::ZERO)?;
        if writer {
            // The only writer never has its cache invalidated by other writers, so it would
            // fill any size given; 2 MiB keeps the upper b-tree levels it writes through.
            connection.pragma_update(None, "cache_size", WRITER_CACHE_SIZE)?;
            connection.pragma_update(None, "synchronous", "NORMAL")?;
            connection.pragma_update(None, "wal_autocheckpoint", 0)?;
            // No memory map for the writer: it writes with pwrite anyway, and a map must be
            // redone whenever a checkpoint grows the file (measured: a third of the CPU time of
            // a rotation batch went to munmap and the TLB flushes it causes).
            connection.pragma_update(None, "mmap_size", 0)?;
        } else {
            connection.pragma_update(None, "query_only", true)?;
            connection.pragma_update(None, "cache_size", CACHE_SIZE)?;
            connection.pragma_update(None, "mmap_size", MMAP_SIZE)?;
        }
        Ok(connection)
    }

    /// Runs each group of statements in a savepoint of one `BEGIN IMMEDIATE` transaction on
    /// the writer (see `group.rs`). Returns each group's answer (`None`: rolled back, to be run
    /// through the pool) and whether a commit was made. When the transaction cannot be begun
    /// or committed, nothing is written and every answer is `None`.
    pub(super) fn write_group(&self, groups: &[&[Statement<'_>]]) -> (Vec<Option<Vec<u64>>>, bool) {
        let nothing = || (vec![None; groups.len()], false);
        if !self.enabled.load(Ordering::Relaxed) {
            return nothing();
        }
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.is_none() {
            match self.open(true) {
                Ok(connection) => *writer = Some(connection),
                Err(error) => {
                    self.enabled.store(false, Ordering::Relaxed);
                    tracing::warn!(%error, path = %self.path.display(), "cannot open a SQLite connection for inline writes; using the pool only");
                    return nothing();
                }
            }
        }
        let Some(connection) = writer.as_mut() else {
            return nothing();
        };
        match run_group(connection, groups) {
            Ok(answers) => (answers, true),
            Err(error) => {
                tracing::debug!(%error, "inline SQLite write fell back to the pool");
                let still_open =
                    !connection.is_autocommit() && connection.execute_batch("ROLLBACK").is_err();
                if still_open {
                    // A transaction that cannot be rolled back: never reuse the connection.
                    *writer = None;
                }
                nothing()
            }
        }
    }

    /// Runs `lookup` on an idle connection (opening one if none is idle and the limit allows).
    fn with<T>(
        &self,
        lookup: impl FnOnce(&Connection) -> Result<T, LookupError>,
    ) -> Result<T, Fallback> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Err(Fallback);
        }
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => {
                if self.opened.fetch_add(1, Ordering::Relaxed) >= MAX_INLINE_CONNECTIONS {
                    self.opened.fetch_sub(1, Ordering::Relaxed);
                    return Err(Fallback);
                }
                match self.open(false) {
                    Ok(connection) => connection,
                    Err(error) => {
                        self.opened.fetch_sub(1, Ordering::Relaxed);
                        self.enabled.store(false, Ordering::Relaxed);
                        tracing::warn!(%error, path = %self.path.display(), "cannot open a SQLite connection for inline lookups; using the pool only");
                        return Err(Fallback);
                    }
                }
            }
        };
        let result = lookup(&connection);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
        result.map_err(|error| {
            tracing::debug!(%error, "inline SQLite lookup fell back to the pool");
            Fallback
        })
    }
}

/// The transaction of [`InlineConnections::write_group`]. An error of one group rolls back
/// its savepoint only; an error outside them (begin, commit) fails the whole group.
fn run_group(
    connection: &Connection,
    groups: &[&[Statement<'_>]],
) -> Result<Vec<Option<Vec<u64>>>, rusqlite::Error> {
    // Cached like the statements: parsing these on every write showed in profiles.
    connection.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let mut answers = Vec::with_capacity(groups.len());
    if let [only] = groups {
        answers.push(Some(run_statements(connection, only)?));
    } else {
        for group in groups {
            connection.prepare_cached("SAVEPOINT write")?.execute([])?;
            match run_statements(connection, group) {
                Ok(changed) => answers.push(Some(changed)),
                Err(error) => {
                    tracing::debug!(%error, "a grouped SQLite write failed; its owner retries it");
                    connection
                        .prepare_cached("ROLLBACK TO write")?
                        .execute([])?;
                    answers.push(None);
                }
            }
            connection.prepare_cached("RELEASE write")?.execute([])?;
        }
    }
    connection.prepare_cached("COMMIT")?.execute([])?;
    Ok(answers)
}

fn run_statements(
    connection: &Connection,
    statements: &[Statement<'_>],
) -> Result<Vec<u64>, rusqlite::Error> {
    let mut changed = Vec::with_capacity(statements.len());
    for statement in statements {
        let mut prepared = connection.prepare_cached(statement.sql)?;
        let rows = prepared.execute(rusqlite::params_from_iter(&statement.values))?;
        changed.push(u64::try_from(rows).unwrap_or(u64::MAX));
    }
    Ok(changed)
}

/// An inline lookup failed: SQLite's error (busy, I/O...) or an undecodable row.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Decode(StoreError),
}

impl SqliteStore {
    /// [`find_bot`](crate::store::InstallationStore::find_bot) inline; `None` when the pooled
    /// path must answer.
    pub(super) fn inline_find_bot(
        &self,
        scope: [&str; 3],
    ) -> Option<Result<Option<Bot>, StoreError>> {
        self.inline_first_row(&FIND_BOT, &scope, |row| bot_from_row(row))
    }

    /// [`find_installation`](crate::store::InstallationStore::find_installation) inline; `None`
    /// when the pooled path must answer.
    pub(super) fn inline_find_installation(
        &self,
        scope: [&str; 3],
        user_id: Option<&str>,
    ) -> Option<Result<Option<Installation>, StoreError>> {
        let [client, enterprise, team] = scope;
        let merge = user_id.is_some();
        let decode = |row: &rusqlite::Row<'_>| installation_from_row(row, merge);
        match user_id {
            Some(user) => self.inline_first_row(
                &FIND_INSTALLATION_OF_USER,
                &[client, enterprise, team, user],
                decode,
            ),
            None => self.inline_first_row(&FIND_INSTALLATION, &scope, decode),
        }
    }

    /// The first row of `sql` with `values`, decoded; `None` when the pooled path must answer
    /// (no inline connections, or any error: the pool reports it).
    fn inline_first_row<T>(
        &self,
        sql: &str,
        values: &[&str],
        decode: impl FnOnce(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Option<Result<Option<T>, StoreError>> {
        let readers = self.inline.as_ref()?;
        let found = readers.with(|connection| {
            let mut statement = connection.prepare_cached(sql)?;
            let mut rows = statement.query(rusqlite::params_from_iter(values))?;
            match rows.next()? {
                Some(row) => decode(row).map(Some).map_err(LookupError::Decode),
                None => Ok(None),
            }
        });
        found.ok().map(Ok)
    }
}
