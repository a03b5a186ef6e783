//! `PostgresStore`: installations, bots, states and leases in PostgreSQL, for apps that run many
//! instances.

use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::reencrypt::{check_key_ids, TOKEN_TABLES};
use super::StoreError;
use crate::clock::{Clock, SystemClock};
use crate::encryption::{EncryptionKeys, TokenCipher};
use crate::ids::ClientId;
use conns::{Conn, Connections};

mod changes;
mod conns;
mod installation;
#[cfg(test)]
mod plans;
mod reencrypt;
mod rows;
mod state;

/// Connections per store (and as many again, opened only if the app uses them, for
/// [`PostgresStore::pool`]): 10 instances stay well under PostgreSQL's default
/// `max_connections` of 100, shared with every other client of the server. More do not make
/// saves faster: with 32 saves in flight, 10 connections already share each WAL flush (group
/// commit) and reached 6,500-6,800 saves/s on a 2-core host, 24 connections no more.
const MAX_CONNECTIONS: u32 = 10;

/// How long an operation waits for a free connection before failing as
/// [`Unavailable`](super::StoreErrorKind::Unavailable): long enough to ride out a burst, short
/// enough that a stuck database surfaces as an error rather than a hung request.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema migrations, embedded at compile time.
///
/// Versions are timestamp-like (`20250101000001`) so that they do not collide with an app's own
/// small-numbered migrations should both share `_sqlx_migrations`. Migrations recorded there but
/// unknown to this build (an app's own, or a newer slack-oauth's during a rolling deploy) are
/// ignored rather than treated as an error.
fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// Installations, bots, OAuth states and rotation leases in PostgreSQL (feature `postgres`).
///
/// Installation, bot and lease rows are scoped by the app's `client_id`, so several apps can
/// share the tables (OAuth states are random and unscoped, as in slack_sdk). Clones share the
/// connections.
///
/// # Driver
///
/// sqlx 0.8, which also runs the migrations, with connections of the store's own: each lookup
/// is one round trip (a prepared statement, cached per connection) and each save one statement
/// (`WITH i AS (INSERT …) INSERT …`), one round trip and one transaction, committed durably
/// (`synchronous_commit` is left on). The connections are not in a sqlx `PgPool`, because that
/// pool pings a connection before handing it out (`test_before_acquire`, on by default) and
/// again, unconditionally, when it comes back: up to three round trips per lookup. A connection
/// that died is found on use instead (that operation fails, the next one gets a fresh
/// connection).
///
/// Measured with the same prepared `find_bot` lookup through each candidate, on a 2-core host
/// with PostgreSQL 15 over loopback (medians of 5,000 calls; the host's speed drifted between
/// runs, so each row is one run): `pgbench -S -M prepared -c 1` 56-69 µs average; sqlx `PgPool`
/// as configured before 212 µs, with `test_before_acquire(false)` 136-165 µs, a bare sqlx
/// `PgConnection` 37-78 µs; tokio-postgres with deadpool-postgres 57-93 µs, a bare
/// tokio-postgres `Client` 37-48 µs. The bare connections of both drivers are equally fast and
/// only the pools differ, so we kept sqlx (no new dependency, migrations and the public
/// `PgPool`-based API unchanged) and pool its connections ourselves. Through the store, the
/// median `find_bot` now takes 1.02-1.14x pgbench's average latency and `find_installation`
/// 1.10-1.33x, measured in the same run (`benches/stores_postgres.rs`, BENCHMARKS.md); 32 saves
/// in flight reach 5,400-6,700 saves/s.
///
/// # Schema
///
/// The tables are slack_sdk's `SQLAlchemyInstallationStore` / `SQLAlchemyOAuthStateStore` ones
/// (`slack_installations`, `slack_bots`, `slack_oauth_states`), created with the exact DDL that
/// SQLAlchemy emits, so a Python Bolt app and this crate can share one database. A missing org or
/// team is SQL `NULL`, and every timestamp is a naive `TIMESTAMP WITHOUT TIME ZONE` holding UTC
/// with microseconds. We always read those values as UTC, whatever the server's or session's
/// `TimeZone` (slack_sdk reads them as the host's local time, python-slack-sdk#1731).
///
/// Our additions break nothing for slack_sdk: indexes that serve "latest" lookups without a sort,
/// a unique index on `slack_oauth_states(state)`, a `slack_oauth_leases` table, the shared
/// `oauth.v2.access` budget (`slack_oauth_refresh_budget` and the function
/// `slack_oauth_spend_refresh_budget`), triggers that `NOTIFY slack_oauth_changes` on every
/// write to `slack_installations` and `slack_bots` by another writer (a Python app's writes;
/// the store's own sessions skip them and notify after each commit, see
/// [`changes`](Self::changes)), and the token,
/// refresh-token and webhook-URL columns widened from `VARCHAR(200)` to `TEXT` (an encrypted
/// token is longer than the token; slack_sdk reads and writes `TEXT` as it did). The schema is
/// created on first use by versioned migrations (`migrations/postgres/`, recorded in
/// `_sqlx_migrations`) that take sqlx's advisory lock, so several instances can start at once on
/// an empty database. If your app keeps its own sqlx migrations in the same schema, give the
/// store a schema of its own with [`connect_in_schema`](Self::connect_in_schema).
///
/// # Differences from slack_sdk
///
/// - `save` always inserts a new version. SQLAlchemy's store updates the row with the same
///   `(client_id, enterprise_id, team_id, installed_at)` instead: that overwrites history, ignores
///   `user_id` (so one user's install can replace another's, W13) and fails on `custom_values`
///   (W14). Token rotation writes in place through `update_rotated_token` instead.
/// - Consuming a state is one conditional `DELETE` (state matches and has not expired), so of two
///   racing callbacks exactly one succeeds (W20). Expired states are purged every 64 issues
///   (slack_sdk never purges, W10).
/// - Timestamps read back as UTC (W12).
///
/// # Tokens encrypted at rest
///
/// [`connect_encrypted`](Self::connect_encrypted) with keys stores every token, refresh token
/// and incoming-webhook URL as an envelope (see [`encryption`](crate::encryption)), exactly as
/// `SqliteStore` does (the same envelopes, bound to the same table, column, app, org, workspace
/// and user), and opens them on every read. The compare-and-swaps on a token (a rotation, a
/// reinstall mark) match every stored form of it (`= ANY($n::text[])`: the plaintext and its
/// envelope under each key), so they stay one statement. Opening refuses a database holding
/// this app's tokens under a key that was not given, or any envelope when no keys were
/// (every other constructor has no keys). Python's slack_sdk can no longer read the encrypted
/// tokens. [`reencrypt_batch`](Self::reencrypt_batch) moves every value to the first key,
/// online.
///
/// # Example
///
/// ```
/// use slack_oauth::installation::Installation;
/// use slack_oauth::store::{InstallationQuery, InstallationStore, PostgresStore, StoreErrorKind};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // A URL of another database is a configuration error, found before connecting.
/// let error = PostgresStore::connect("mysql://localhost/app", "111.222").await.unwrap_err();
/// assert_eq!(error.kind(), StoreErrorKind::Config);
///
/// // With a server (the tables go to a schema of their own here, dropped at the end):
/// if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
///     let store = PostgresStore::connect_in_schema(&url, "111.222", "slack_oauth_doctest").await?;
///     let mut installation = Installation::new("U1", time::OffsetDateTime::UNIX_EPOCH);
///     installation.team_id = Some("T1".into());
///     store.save(&installation).await?;
///     let found = store.find_installation(&InstallationQuery::team("T1")).await?;
///     assert_eq!(found.unwrap().user_id.as_str(), "U1");
/// #   sqlx::query("DROP SCHEMA slack_oauth_doctest CASCADE").execute(store.pool()).await?;
/// }
/// # Ok::<_, slack_oauth::store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct PostgresStore {
    /// The pool [`pool`](Self::pool) hands out; the store's statements run on it only when the
    /// app gave it to us ([`from_pool`](Self::from_pool)).
    pool: PgPool,
    /// The store's own connections (`None` for [`from_pool`](Self::from_pool)).
    own: Option<Connections>,
    client_id: ClientId,
    clock: Arc<dyn Clock>,
    /// How many states were issued, to purge expired ones every so often.
    issued: Arc<AtomicU64>,
    /// Seals and opens the token columns (plaintext without keys).
    cipher: TokenCipher,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://` or `postgresql://`) and creates or upgrades the schema.
    ///
    /// The store opens up to 10 connections of its own, as needed, and waits up to 10 s for a
    /// free one (see [Driver](Self#driver)); idle ones are closed after 10 minutes. To run the
    /// store's statements on a pool of your own instead (its size, timeouts and hooks), use
    /// [`from_pool`](Self::from_pool).
    ///
    /// # Errors
    /// [`StoreError::Config`] for a URL that is not a PostgreSQL one; a database or migration
    /// error when the server cannot be reached or the schema cannot be created;
    /// [`StoreError::Decrypt`] when the database holds this app's tokens encrypted (use
    /// [`connect_encrypted`](Self::connect_encrypted)).
    pub async fn connect(url: &str, client_id: impl Into<ClientId>) -> Result<Self, StoreError> {
        Self::connect_encrypted(url, client_id, None).await
    }

    /// Like [`connect`](Self::connect), with every token, refresh token and incoming-webhook
    /// URL written encrypted with `keys` (see [`encryption`](crate::encryption) and
    /// [Tokens encrypted at rest](Self#tokens-encrypted-at-rest)); `None` writes them as they
    /// are (the tables Python's slack_sdk reads). Values written before keys were set stay
    /// readable. To keep the tables in a schema of their own, name it in the URL:
    /// `?options[search_path]=my_schema` (the schema must exist).
    ///
    /// # Errors
    /// As [`connect`](Self::connect), plus [`StoreError::Decrypt`] when the database holds this
    /// app's tokens encrypted with a key that `keys` lacks (or any, without keys): the store
    /// never falls back to reading them as plaintext.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::encryption::{generate_key_entry, EncryptionKeys};
    /// use slack_oauth::store::{PostgresStore, StoreErrorKind};
    /// let keys = EncryptionKeys::parse(&generate_key_entry("k1"))?;
    /// // A URL of another database is a configuration error, found before connecting.
    /// let error = PostgresStore::connect_encrypted("sqlite::memory:", "111.222", Some(keys.clone()))
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), StoreErrorKind::Config);
    /// if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
    ///     let store = PostgresStore::connect_encrypted(&url, "doctest.encrypted", Some(keys)).await?;
    ///     store.close().await;
    /// }
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect_encrypted(
        url: &str,
        client_id: impl Into<ClientId>,
        keys: Option<EncryptionKeys>,
    ) -> Result<Self, StoreError> {
        let options = parse_url(url)?;
        Self::open(options, client_id.into(), keys).await
    }

    /// Like [`connect`](Self::connect), with every table in `schema` (created if missing) instead
    /// of the database's default search path. Useful to keep several apps, or tests, apart in one
    /// database.
    ///
    /// `schema` must be a plain identifier: ASCII letters, digits and `_`, not starting with a
    /// digit, at most 63 bytes.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), and [`StoreError::Config`] for an invalid schema name.
    pub async fn connect_in_schema(
        url: &str,
        client_id: impl Into<ClientId>,
        schema: &str,
    ) -> Result<Self, StoreError> {
        check_schema_name(schema)?;
        let options = parse_url(url)?;
        let mut conn = options.connect().await?;
        create_schema(&mut conn, schema).await?;
        conn.close().await?;
        Self::open(
            options.options([("search_path", schema)]),
            client_id.into(),
            None,
        )
        .await
    }

    /// Connects with explicit connection options and our pool defaults, and migrates. Tokens
    /// are stored as they are (no keys).
    ///
    /// # Errors
    /// A database or migration error; [`StoreError::Decrypt`] when the database holds this
    /// app's tokens encrypted.
    pub async fn connect_with(
        options: PgConnectOptions,
        client_id: impl Into<ClientId>,
    ) -> Result<Self, StoreError> {
        Self::open(options, client_id.into(), None).await
    }

    /// Connects, migrates, and checks the key ids of the stored envelopes against `keys`.
    async fn open(
        options: PgConnectOptions,
        client_id: ClientId,
        keys: Option<EncryptionKeys>,
    ) -> Result<Self, StoreError> {
        check_client_id(client_id.as_str())?;
        // Migrate on a connection of its own, closed afterwards: if a migration fails while
        // sqlx's advisory lock is held, closing the connection releases the lock, where a pooled
        // connection would keep it and block every other instance.
        let mut conn = conns::open(&options).await?;
        if let Err(error) = migrator().run_direct(&mut conn).await {
            let _ = conn.close().await;
            return Err(error.into());
        }
        // Migrated: the lock is released, and the connection becomes the first of our own.
        let own = Connections::new(options.clone(), MAX_CONNECTIONS, ACQUIRE_TIMEOUT);
        own.adopt(conn);
        // For the app's own queries through `pool()`: it opens connections only when used. No
        // ping before handing one out (a dead connection fails its statement and is replaced).
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let mut store = Self::new(pool, client_id, keys);
        store.own = Some(own);
        if let Err(error) = store.check_key_ids().await {
            store.close().await;
            return Err(error);
        }
        Ok(store)
    }

    /// Uses an existing pool (its own size, timeouts and hooks such as `after_connect`) for
    /// every statement, and creates or upgrades the schema. Tokens are stored as they are (no
    /// keys).
    ///
    /// sqlx's pool tests each connection when it comes back (and, unless you turned
    /// `test_before_acquire` off, before handing it out): each operation then costs one or two
    /// round trips more than with [`connect`](Self::connect)'s own connections.
    ///
    /// # Errors
    /// A database or migration error; [`StoreError::Decrypt`] when the database holds this
    /// app's tokens encrypted.
    pub async fn from_pool(
        pool: PgPool,
        client_id: impl Into<ClientId>,
    ) -> Result<Self, StoreError> {
        let client_id = client_id.into();
        check_client_id(client_id.as_str())?;
        let mut conn = pool.acquire().await?;
        if let Err(error) = migrator().run_direct(&mut *conn).await {
            // Do not return a connection that may still hold the migration lock to the pool.
            conn.close_on_drop();
            return Err(error.into());
        }
        drop(conn);
        let store = Self::new(pool, client_id, None);
        store.check_key_ids().await?;
        Ok(store)
    }

    /// Whether the database answers and every migration of this build is applied: for
    /// readiness checks (`/readyz`).
    ///
    /// # Errors
    /// A database error when it cannot be read; [`StoreError::Config`] naming the first
    /// migration of this build that the database lacks (or records as failed).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), slack_oauth::store::StoreError> {
    /// let store = slack_oauth::PostgresStore::connect("postgres://localhost/app", "111.222").await?;
    /// store.check().await?;
    /// # Ok(()) }
    /// ```
    pub async fn check(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let applied = sqlx::query_scalar::<_, i64>(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(conn.busy())
        .await;
        let applied = conn.settle(applied)?;
        match migrator()
            .iter()
            .find(|migration| applied.binary_search(&migration.version).is_err())
        {
            None => Ok(()),
            Some(missing) => Err(StoreError::Config(format!(
                "the PostgreSQL schema lacks migration {} ({}): restart an instance of this \
                 build to apply it",
                missing.version, missing.description
            ))),
        }
    }

    fn new(pool: PgPool, client_id: ClientId, keys: Option<EncryptionKeys>) -> Self {
        Self {
            pool,
            own: None,
            client_id,
            clock: Arc::new(SystemClock),
            issued: Arc::default(),
            cipher: TokenCipher::new(keys),
        }
    }

    /// Refuses a database holding this app's tokens encrypted with a key the store was not
    /// given. One pass over each table (the sealed columns side by side), keeping the distinct
    /// key ids in the server: cheap enough for a start-up, however many rows there are.
    async fn check_key_ids(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let rows = sqlx::query_as::<_, (i32, String)>(&KEY_IDS)
            .bind(self.client_id.as_str())
            .fetch_all(conn.busy())
            .await;
        let rows = conn.settle(rows)?;
        drop(conn);
        let found = rows.into_iter().filter_map(|(table, key_id)| {
            let table = TOKEN_TABLES.get(usize::try_from(table).ok()?)?;
            Some((table.name, key_id))
        });
        check_key_ids(&self.cipher, found)
    }

    /// Uses `clock` for the occasional purge of expired states in
    /// [`issue`](crate::store::StateStore::issue) (the only place the store needs "now" without
    /// being given it).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// A connection pool to the store's database, for health checks or your own queries: the
    /// one given to [`from_pool`](Self::from_pool), else one that opens its connections (up to
    /// 10) only when used, apart from the store's own.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The app's client id that scopes every row.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// Closes the store's connections and the pool, waiting for connections in use to be
    /// returned.
    pub async fn close(&self) {
        if let Some(own) = &self.own {
            own.close().await;
        }
        self.pool.close().await;
    }

    /// A connection for one operation.
    async fn conn(&self) -> Result<Conn, StoreError> {
        Ok(Conn::acquire(self.own.as_ref(), &self.pool).await?)
    }

    /// Runs one statement on a connection of the store's, which is then kept or closed
    /// according to how the statement ended (see `conns.rs`).
    async fn execute(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<sqlx::postgres::PgQueryResult, StoreError> {
        let mut conn = self.conn().await?;
        let done = query.execute(conn.busy()).await;
        Ok(conn.settle(done)?)
    }
}

/// The distinct key ids of this app's (`$1`) envelopes: `(index into TOKEN_TABLES, key id)`.
/// The key id sits between `enc:v1:` and the next `:`.
static KEY_IDS: LazyLock<String> = LazyLock::new(|| {
    TOKEN_TABLES
        .iter()
        .enumerate()
        .map(|(index, table)| {
            let columns: Vec<String> = table
                .columns
                .iter()
                .map(|column| format!("({})", column.name))
                .collect();
            format!(
                "SELECT {index}::int4, split_part(sealed.value, ':', 3) FROM {table}, \
                 LATERAL (VALUES {columns}) AS sealed(value) \
                 WHERE client_id = $1 AND sealed.value LIKE 'enc:v1:%'",
                table = table.name,
                columns = columns.join(", "),
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ")
});

fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Config(
            "a PostgreSQL URL must start with postgres:// or postgresql://".to_owned(),
        ));
    }
    // The URL may hold a password: report the parser's error, never the URL itself.
    PgConnectOptions::from_str(url).map_err(|error| {
        StoreError::Config(format!(
            "invalid PostgreSQL URL ({error}); expected postgres://user:password@host:port/database"
        ))
    })
}

/// `client_id` is `VARCHAR(32)` in slack_sdk's schema: reject longer ones up front with a clear
/// message rather than with PostgreSQL's "value too long" on the first save.
fn check_client_id(client_id: &str) -> Result<(), StoreError> {
    if client_id.is_empty() || client_id.len() > 32 {
        return Err(StoreError::Config(format!(
            "client id must be 1 to 32 characters (got {}); copy it from your app's Basic Information page",
            client_id.len()
        )));
    }
    Ok(())
}

fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && !schema.as_bytes()[0].is_ascii_digit()
        && schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "invalid schema name {schema:?}: use ASCII letters, digits and _ (not first), at most 63 bytes"
        )))
    }
}

/// `CREATE SCHEMA IF NOT EXISTS` can still fail when two sessions create the same schema at once
/// (the catalog's unique index catches the loser); that loser's schema exists all the same.
async fn create_schema(conn: &mut PgConnection, schema: &str) -> Result<(), StoreError> {
    // `schema` was checked to be a plain identifier, so quoting it is enough.
    let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    match sqlx::query(&sql).execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(error))
            if matches!(error.code().as_deref(), Some("23505" | "42P06")) =>
        {
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// A time as the naive UTC value stored in `TIMESTAMP WITHOUT TIME ZONE` columns, truncated to
/// the microseconds PostgreSQL keeps (so that what is read back equals what was written).
fn to_db_time(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    let micros = utc.nanosecond() / 1_000 * 1_000;
    let utc = utc.replace_nanosecond(micros).unwrap_or(utc);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

/// A stored naive timestamp, read as UTC (never as local time: W12).
fn from_db_time(at: PrimitiveDateTime) -> OffsetDateTime {
    at.assume_utc()
}

/// `TEST_DATABASE_URL` for the unit tests that need a server; without it, a loud `SKIPPED`
/// line and `None` (a failure under `CI=true`).
#[cfg(test)]
fn test_database_url() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok();
    if url.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "TEST_DATABASE_URL is not set: CI must run the postgres tests"
        );
        slack_oauth_test::skip("postgres tests: TEST_DATABASE_URL is not set");
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreErrorKind;

    #[test]
    fn urls_of_other_databases_are_config_errors() {
        for url in ["sqlite://x.db", "mysql://h/db", "", "postgres:/nohost"] {
            let kind = parse_url(url).err().map(|e| e.kind());
            assert_eq!(kind, Some(StoreErrorKind::Config), "{url}");
        }
        assert!(parse_url("postgres://localhost/db").is_ok());
        assert!(parse_url("postgresql://u:p@localhost:5432/db").is_ok());
    }

    #[test]
    fn url_errors_do_not_echo_the_password() {
        let error = parse_url("postgres://user:hunter2@host:notaport/db").unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::Config);
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema_name("slack_oauth_test_1a2b").is_ok());
        for bad in ["", "1abc", "a-b", "a\"b", "a;drop", &"x".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_ids_fit_the_column() {
        assert!(check_client_id("1111111111.2222222222").is_ok());
        assert!(check_client_id("").is_err());
        assert!(check_client_id(&"1".repeat(33)).is_err());
    }

    #[test]
    fn times_are_stored_as_naive_utc_microseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .unwrap()
            .to_offset(UtcOffset::from_hms(9, 0, 0).unwrap());
        let stored = to_db_time(at);
        assert_eq!(stored.to_string(), "2023-11-14 22:13:20.123456");
        assert_eq!(
            from_db_time(stored).unix_timestamp_nanos(),
            1_700_000_000_123_456_000
        );
    }
}
