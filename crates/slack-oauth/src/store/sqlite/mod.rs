//! `SqliteStore`: installations, bots, states and leases in one SQLite file, in slack_sdk's schema.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::clock::{Clock, SystemClock};
use crate::ids::ClientId;
use crate::store::StoreError;

mod codec;
mod group;
mod inline;
mod installation;
mod state;
mod write;

/// The schema: slack_sdk's tables (verbatim, `IF NOT EXISTS`) and our indexes and lease table.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a statement waits for another connection's (or process's) write lock before failing
/// with "database is locked". Writes take milliseconds; ten seconds rides out a checkpoint or a
/// slow disk without making a real deadlock wait forever.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of the database file read through a memory map instead of `read()` calls: lookups in
/// a large table then cost no system call per page. Address space only; the OS page cache backs
/// it either way.
pub(super) const MMAP_SIZE: u64 = 1 << 30;

/// Page cache per connection, in KiB when negative (SQLite's convention): 16 MiB keeps the upper
/// levels of every index and the hot workspaces' rows in memory.
pub(super) const CACHE_SIZE: i64 = -16 * 1024;

/// Pool size for database files. SQLite runs one writer at a time (writes queue on an in-process
/// lock instead), so more connections only add parallel readers.
const MAX_CONNECTIONS: u32 = 8;

/// An installation and state store in a SQLite database: the embedded default, for one instance
/// (feature `sqlite`).
///
/// It uses the tables of slack_sdk's `SQLite3InstallationStore` and `SQLite3OAuthStateStore`
/// (`slack_installations`, `slack_bots`, `oauth_states`), so one database file can be shared with
/// a Python Bolt app, both ways, and rows are scoped by `client_id` like Python's. The schema is
/// created on [`connect`](Self::connect) through versioned migrations
/// (`migrations/sqlite/`, every statement `IF NOT EXISTS`); a database created by Python opens
/// unchanged.
///
/// **Values** are written the way Python writes them: `''` for no org or no team, token expiries
/// as INTEGER Unix seconds, `is_enterprise_install` as 0/1, bot scopes `''` when empty, user
/// scopes NULL when empty, state expiries as REAL Unix seconds. `installed_at` is the
/// installation's own time as UTC text `YYYY-MM-DD HH:MM:SS.ffffff`: Python reads it, and it
/// sorts correctly as text next to Python's whole-second `YYYY-MM-DD HH:MM:SS` values. Reading
/// accepts whatever any slack_sdk version wrote (INTEGER, REAL or text timestamps, NULL scopes,
/// scopes damaged by slack_sdk's rotation bug, which are repaired, `true`/`false` flags); a
/// value that cannot be read is a [`StoreError::Corrupt`] naming the table and column, never "not installed".
/// Custom values are not persisted, as in slack_sdk.
///
/// **Concurrency**: WAL journal, `synchronous=NORMAL`, a 10 s busy timeout. Writes are
/// serialized by an in-process lock and run in `BEGIN IMMEDIATE` transactions, so concurrent
/// writers (in this process or another one, Python included) wait for each other instead of
/// failing with "database is locked".
///
/// **Fast paths** on a database file opened with [`connect`](Self::connect) (a store made with
/// [`from_pool`](Self::from_pool), and in-memory databases, use sqlx's pool only):
///
/// - **Lookups** (`find_bot`, `find_installation`) run on the calling thread, on up to 16
///   connections of their own with cached prepared statements, instead of a round trip to
///   sqlx's connection thread: a lookup costs about what SQLite spends on it (~20 µs, see
///   BENCHMARKS.md).
/// - **Writes** run on the calling thread too, on one writer connection, and writes that arrive
///   together share one transaction (*group commit*), each in its own savepoint: the pages they
///   all touch are written to the WAL once. A write that fails inside a group is rolled back
///   alone and retried through the pool. The WAL is checkpointed in the background every 1,000
///   commits (the writer never checkpoints on the calling thread).
/// - These connections never wait on a lock: whenever one cannot answer at once (another
///   process writing, an error, all in use), the operation takes the pooled path, which waits
///   up to the busy timeout and reports errors. A lookup can still block its thread on disk I/O
///   for a page that is not in the OS cache.
///
/// ```
/// use slack_oauth::store::{InstallationQuery, InstallationStore, SqliteStore};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = SqliteStore::connect("sqlite::memory:", "111.222").await?;
/// let mut installation =
///     slack_oauth::installation::Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
/// installation.team_id = Some("T1".into());
/// store.save(&installation).await?;
/// assert!(store.find_installation(&InstallationQuery::team("T1")).await?.is_some());
/// # Ok::<_, slack_oauth::store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    client_id: ClientId,
    /// Serializes this process's writes: SQLite allows one writer at a time, and queueing here
    /// is fair and wakes immediately, where SQLite's busy handler polls with sleeps.
    writer: Arc<Mutex<()>>,
    clock: Arc<dyn Clock>,
    /// How many states were issued, to purge expired ones every so often.
    issued: Arc<AtomicU64>,
    /// Connections for lookups on the calling thread (database files opened by
    /// [`connect`](Self::connect) only; see `inline.rs`).
    inline: Option<Arc<inline::InlineConnections>>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url` and migrates its schema.
    ///
    /// `url` is `sqlite://path/to/file.db` (relative to the working directory;
    /// `sqlite:///abs/path.db` for an absolute path), `sqlite:path.db`, or `sqlite::memory:` for a
    /// private in-memory database. `client_id` is the Slack app's client id: rows of other apps
    /// sharing the file are invisible.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a URL that is not `sqlite:`; [`StoreError::Database`] when the
    /// file cannot be opened or created; [`StoreError::Migrate`] when the schema cannot be
    /// created.
    pub async fn connect(url: &str, client_id: impl Into<ClientId>) -> Result<Self, StoreError> {
        let options = Self::connect_options(url)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // Each connection to `:memory:` would see its own database; one connection shares it.
        let max_connections = if in_memory { 1 } else { MAX_CONNECTIONS };
        let path = options.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        let mut store = Self::from_pool(pool, client_id).await?;
        if !in_memory {
            store.inline = Some(Arc::new(inline::InlineConnections::new(path)));
        }
        Ok(store)
    }

    /// The connection options [`connect`](Self::connect) uses for `url`: file created if missing,
    /// WAL, `synchronous=NORMAL`, 10 s busy timeout. For building a pool of your own.
    ///
    /// # Errors
    /// [`StoreError::Config`] when `url` is not a valid `sqlite:` URL.
    ///
    /// ```
    /// let options = slack_oauth::store::SqliteStore::connect_options("sqlite://app.db")?;
    /// assert_eq!(options.get_filename().to_str(), Some("app.db"));
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// ```
    pub fn connect_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Config(format!(
                "{url:?} is not a SQLite URL: use sqlite://path/to/file.db or sqlite::memory:"
            )));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| StoreError::Config(format!("invalid SQLite URL {url:?}: {error}")))?;
        Ok(options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("mmap_size", MMAP_SIZE.to_string())
            .pragma("cache_size", CACHE_SIZE.to_string()))
    }

    /// Uses an existing pool (configure WAL and a busy timeout on it, see
    /// [`connect_options`](Self::connect_options)) and migrates its schema.
    ///
    /// # Errors
    /// [`StoreError::Migrate`] when the schema cannot be created.
    pub async fn from_pool(
        pool: SqlitePool,
        client_id: impl Into<ClientId>,
    ) -> Result<Self, StoreError> {
        migrate(&pool).await?;
        Ok(Self {
            pool,
            client_id: client_id.into(),
            writer: Arc::default(),
            clock: Arc::new(SystemClock),
            issued: Arc::default(),
            inline: None,
        })
    }

    /// Uses `clock` for the occasional purge of expired states in
    /// [`issue`](crate::store::StateStore::issue) (the only place the store needs "now" without
    /// being given it).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The connection pool, for queries of your own.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The client id the store's rows are scoped to.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// Takes this process's write lock, for a single-statement write.
    async fn write_lock(&self) -> OwnedMutexGuard<()> {
        Arc::clone(&self.writer).lock_owned().await
    }
}

/// Runs the migrations. A second attempt covers two processes creating the same new file at
/// once: sqlx's SQLite migrator takes no lock, so the slower one fails recording the version the
/// faster one recorded, and on retry finds it applied.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    if MIGRATOR.run(pool).await.is_ok() {
        return Ok(());
    }
    MIGRATOR.run(pool).await.map_err(StoreError::from)
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("client_id", &self.client_id)
            .field("connections", &self.pool.size())
            .field(
                "inline_connections",
                &self.inline.as_ref().map(|inline| inline.opened()),
            )
            .finish_non_exhaustive()
    }
}
