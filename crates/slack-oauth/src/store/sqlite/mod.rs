//! `SqliteStore`: installations, bots, states and leases in one SQLite file, in slack_sdk's
//! schema, on rusqlite.
//!
//! The design (threads, the life of a read and of a write) is documented on [`SqliteStore`],
//! where users see it too. Files: `open.rs` (URLs, connections and their settings),
//! `migrate.rs` (schema versions), `writer.rs` (the writer thread, group commit, checkpoints),
//! `readers.rs` (read connections, `block_in_place`), `statement.rs` (a write as data),
//! `codec.rs` (values as slack_sdk writes them), `installation.rs` and `state.rs` (the SQL).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::encryption::{EncryptionKeys, TokenCipher};
use crate::ids::ClientId;
use crate::store::reencrypt::{check_key_ids, TOKEN_TABLES};
use crate::store::StoreError;

mod codec;
mod installation;
mod migrate;
mod open;
mod readers;
mod reencrypt;
mod state;
mod statement;
mod writer;

use open::{Role, Target};
use readers::{blocking, Readers};
use statement::Statement;
use writer::Writer;

/// An installation and state store in a SQLite database: the embedded default, for one instance
/// (feature `sqlite`).
///
/// It uses the tables of slack_sdk's `SQLite3InstallationStore` and `SQLite3OAuthStateStore`
/// (`slack_installations`, `slack_bots`, `oauth_states`), so one database file can be shared with
/// a Python Bolt app, both ways, and rows are scoped by `client_id` like Python's. The schema is
/// created on [`connect`](Self::connect) (every statement `IF NOT EXISTS`, the version kept in
/// SQLite's `user_version`); a database created by Python, or migrated by an earlier release
/// through sqlx, opens unchanged.
///
/// **Values** are written the way Python writes them: `''` for no org or no team, token expiries
/// as INTEGER Unix seconds, `is_enterprise_install` as 0/1, bot scopes `''` when empty, user
/// scopes NULL when empty, state expiries as REAL Unix seconds. `installed_at` is the
/// installation's own time as UTC text `YYYY-MM-DD HH:MM:SS.ffffff`: Python reads it, and it
/// sorts correctly as text next to Python's whole-second `YYYY-MM-DD HH:MM:SS` values. Reading
/// accepts whatever any slack_sdk version wrote (INTEGER, REAL or text timestamps, NULL scopes,
/// scopes damaged by slack_sdk's rotation bug, which are repaired, `true`/`false` flags); a
/// value that cannot be read is a [`StoreError::Corrupt`] naming the table and column, never
/// "not installed". Custom values are not persisted, as in slack_sdk.
///
/// **Durability**: a write that returned `Ok` is on disk (WAL, `synchronous=FULL`); writes that
/// arrive together share one commit and one fsync. A write whose caller stopped waiting after
/// it was queued is still committed. A new database file is created with mode 0600 (owner
/// only), and so are its `-wal` and `-shm` files.
///
/// Clones share one engine. Call [`close`](Self::close) at shutdown to commit what is queued and
/// leave a checkpointed file with an empty WAL.
///
/// # Threads, and the life of a read and of a write
///
/// - **One writer thread** (`writer.rs`) owns the only connection that writes. A write (a save,
///   a delete, a state, a lease, a rotated token) is a list of statements with their values
///   (`statement.rs`). The calling task sends it over a channel and awaits the reply. The
///   thread takes it together with every write queued behind it and runs them in one
///   `BEGIN IMMEDIATE` transaction, each in its own savepoint (a bad write fails alone), then
///   `COMMIT`s with `synchronous=FULL` (one fsync of the WAL for the whole group) and replies.
///   A failed `BEGIN` or `COMMIT` fails every write of the group, and nothing is re-run. Between
///   groups, the thread checkpoints the WAL. On [`SqliteStore::close`] (or when the last handle
///   is dropped) it commits the queue, checkpoints and stops. On Linux it runs under
///   `SCHED_BATCH`: a write sent to it does not preempt the sender on a shared CPU.
/// - **Readers** (`readers.rs`): up to 8 read-only connections with cached prepared statements
///   and a memory map, used by the calling task through `block_in_place` (so tokio's worker
///   queue moves to another thread while SQLite may block on disk), `spawn_blocking` on a
///   current-thread runtime.
/// - Every connection has a 10 s busy timeout: when another process (a Python app sharing the
///   file) holds the write lock, the writer waits, then fails the group with a
///   [`StoreError::Sqlite`] of kind [`Unavailable`](crate::store::StoreErrorKind::Unavailable).
/// - The schema is migrated on open (`migrate.rs`: `user_version`); values are encoded as
///   slack_sdk writes them (`codec.rs`).
///
/// ```
/// use slack_oauth::store::{InstallationQuery, InstallationStore, SqliteStore};
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let store = SqliteStore::connect("sqlite::memory:", "111.222").await?;
/// let mut installation =
///     slack_oauth::installation::Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
/// installation.team_id = Some("T1".into());
/// store.save(&installation).await?;
/// assert!(store.find_installation(&InstallationQuery::team("T1")).await?.is_some());
/// store.close().await?;
/// # Ok::<_, slack_oauth::store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    engine: Arc<Engine>,
    client_id: ClientId,
    clock: Arc<dyn Clock>,
    /// How many states were issued, to purge expired ones every so often.
    issued: Arc<AtomicU64>,
    /// Seals and opens the token columns (plaintext without keys).
    cipher: TokenCipher,
}

/// The connections of one database, shared by every clone of a store.
struct Engine {
    target: Target,
    readers: Arc<Readers>,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url`, migrates its schema and starts
    /// its writer thread.
    ///
    /// `url` is `sqlite://path/to/file.db` (relative to the working directory;
    /// `sqlite:///abs/path.db` for an absolute path), `sqlite:path.db`, or `sqlite::memory:` for a
    /// private in-memory database (gone when the store is). `client_id` is the Slack app's client
    /// id: rows of other apps sharing the file are invisible.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a URL that is not `sqlite:`, a file that cannot be created, or a
    /// database migrated by a newer release; [`StoreError::Sqlite`] when the file cannot be
    /// opened or migrated (another process holding its lock for more than 10 s included).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::store::{SqliteStore, StoreErrorKind};
    /// let error = SqliteStore::connect("postgres://localhost/app", "111.222").await.unwrap_err();
    /// assert_eq!(error.kind(), StoreErrorKind::Config);
    /// # });
    /// ```
    pub async fn connect(url: &str, client_id: impl Into<ClientId>) -> Result<Self, StoreError> {
        Self::connect_encrypted(url, client_id, None).await
    }

    /// Like [`connect`](Self::connect), with every token, refresh token and incoming-webhook
    /// URL written encrypted with `keys` (see [`encryption`](crate::encryption)); `None` writes
    /// them as they are (the tables Python's slack_sdk reads). Values written before keys were
    /// set stay readable.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), plus [`StoreError::Decrypt`] when the file holds tokens
    /// encrypted with a key that `keys` lacks (or any, without keys): the store never falls back
    /// to reading them as plaintext.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::encryption::{generate_key_entry, EncryptionKeys};
    /// use slack_oauth::store::SqliteStore;
    /// let keys = EncryptionKeys::parse(&generate_key_entry("k1"))?;
    /// let store = SqliteStore::connect_encrypted("sqlite::memory:", "111.222", Some(keys)).await?;
    /// # store.close().await?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect_encrypted(
        url: &str,
        client_id: impl Into<ClientId>,
        keys: Option<EncryptionKeys>,
    ) -> Result<Self, StoreError> {
        let target = Target::from_url(url)?;
        let writer_target = target.clone();
        let connection = blocking(move || {
            let mut connection = open::open(&writer_target, Role::Writer)?;
            migrate::migrate(&mut connection)?;
            Ok::<_, StoreError>(connection)
        })
        .await?;
        let name = match target.path().and_then(Path::file_name) {
            Some(file) => format!("sqlite-writer {}", file.to_string_lossy()),
            None => "sqlite-writer :memory:".to_owned(),
        };
        let writer = Writer::start(connection, name)?;
        let store = Self {
            engine: Arc::new(Engine {
                readers: Arc::new(Readers::new(target.clone())),
                target,
                writer,
            }),
            client_id: client_id.into(),
            clock: Arc::new(SystemClock),
            issued: Arc::default(),
            cipher: TokenCipher::new(keys),
        };
        store.check_key_ids().await?;
        Ok(store)
    }

    /// Refuses a file holding this app's tokens encrypted with a key the store was not given.
    async fn check_key_ids(&self) -> Result<(), StoreError> {
        let client_id = self.client_id.clone();
        let found: Vec<(&'static str, String)> = self
            .read(move |connection| {
                let mut found = Vec::new();
                for table in &TOKEN_TABLES {
                    for column in table.columns {
                        // The key id sits between `enc:v1:` (7 characters) and the next `:`.
                        let sql = format!(
                            "SELECT DISTINCT substr({column}, 8, instr(substr({column}, 8), ':') - 1) \
                             FROM {table} WHERE client_id = ? AND {column} LIKE 'enc:v1:%'",
                            table = table.name,
                            column = column.name,
                        );
                        let mut statement = connection.prepare(&sql).map_err(reading)?;
                        let mut rows = statement.query([client_id.as_str()]).map_err(reading)?;
                        while let Some(row) = rows.next().map_err(reading)? {
                            let key_id: String = row.get(0).map_err(reading)?;
                            found.push((table.name, key_id));
                        }
                    }
                }
                Ok(found)
            })
            .await?;
        check_key_ids(&self.cipher, found)
    }

    /// Uses `clock` for the occasional purge of expired states in
    /// [`issue`](crate::store::StateStore::issue) (the only place the store needs "now" without
    /// being given it).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::clock::SystemClock;
    /// let store = slack_oauth::store::SqliteStore::connect("sqlite::memory:", "111.222")
    ///     .await?
    ///     .with_clock(SystemClock);
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The client id the store's rows are scoped to.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = slack_oauth::store::SqliteStore::connect("sqlite::memory:", "111.222").await?;
    /// assert_eq!(store.client_id().as_str(), "111.222");
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// The database file; `None` for an in-memory database.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = slack_oauth::store::SqliteStore::connect("sqlite::memory:", "111.222").await?;
    /// assert!(store.path().is_none());
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.engine.target.path()
    }

    /// Every client id (Slack app) that has installations or bots in the database, sorted: the
    /// apps sharing the file.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the database cannot be read.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = slack_oauth::store::SqliteStore::connect("sqlite::memory:", "111.222").await?;
    /// assert!(store.client_ids().await?.is_empty());
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn client_ids(&self) -> Result<Vec<String>, StoreError> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT client_id FROM slack_installations \
                     UNION SELECT client_id FROM slack_bots ORDER BY 1",
                )
                .map_err(reading)?;
            let ids = statement
                .query_map([], |row| row.get(0))
                .and_then(Iterator::collect)
                .map_err(reading)?;
            Ok(ids)
        })
        .await
    }

    /// Whether the database can be read and its schema is the one this build writes: for
    /// readiness checks.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the database cannot be read; [`StoreError::Config`] when
    /// its schema version is not this build's.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = slack_oauth::store::SqliteStore::connect("sqlite::memory:", "111.222").await?;
    /// store.check().await?;
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn check(&self) -> Result<(), StoreError> {
        let version = self.read(migrate::version).await?;
        if version == migrate::CURRENT_VERSION {
            Ok(())
        } else {
            Err(StoreError::Config(format!(
                "the SQLite schema is at version {version}, this build expects {}",
                migrate::CURRENT_VERSION
            )))
        }
    }

    /// Commits every write queued so far, checkpoints the WAL into the database file (leaving
    /// the `-wal` file empty) and stops the writer thread. Reads still work afterwards; writes
    /// fail with [`StoreError::Closed`]. Closing twice is harmless.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the final checkpoint fails (the data is safe in the WAL and
    /// is moved on the next open).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::store::{SqliteStore, StateStore, StoreErrorKind};
    /// let store = SqliteStore::connect("sqlite::memory:", "111.222").await?;
    /// store.close().await?;
    /// let error = store.issue(time::OffsetDateTime::now_utc()).await.unwrap_err();
    /// assert_eq!(error.kind(), StoreErrorKind::Unavailable);
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn close(&self) -> Result<(), StoreError> {
        self.engine.writer.close().await
    }

    /// Runs `read` on a reader connection, off tokio's worker threads.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = Arc::clone(&self.engine.readers);
        blocking(move || readers.with(read)).await
    }

    /// Runs `statements` as one write (see the module docs) and returns the rows each changed.
    async fn write(&self, statements: Vec<Statement<'_>>) -> Result<Vec<u64>, StoreError> {
        let owned = statements.into_iter().map(Statement::into_owned).collect();
        self.engine.writer.write(owned).await
    }

    /// What the writer thread did so far: transactions committed, writes in them (writes per
    /// commit is the mean group size), checkpoints run. For metrics and benchmarks.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::store::{SqliteStore, StateStore};
    /// let store = SqliteStore::connect("sqlite::memory:", "111.222").await?;
    /// store.issue(time::OffsetDateTime::now_utc()).await?;
    /// let stats = store.writer_stats();
    /// assert_eq!((stats.commits, stats.writes), (1, 1));
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn writer_stats(&self) -> WriterStats {
        let stats = self.engine.writer.stats();
        WriterStats {
            commits: stats.commits.load(Ordering::Relaxed),
            writes: stats.writes.load(Ordering::Relaxed),
            checkpoints: stats.checkpoints.load(Ordering::Relaxed),
        }
    }
}

/// Counters of a [`SqliteStore`]'s writer thread ([`SqliteStore::writer_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Writes committed in them (each `save`, `issue`, `consume`... is one write).
    pub writes: u64,
    /// WAL checkpoints run.
    pub checkpoints: u64,
}

/// A read failed inside SQLite.
pub(super) fn reading(source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        operation: "reading",
        source,
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("client_id", &self.client_id)
            .field("database", &self.engine.target)
            .field("readers", &self.engine.readers.opened())
            .field("writer", &self.writer_stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
