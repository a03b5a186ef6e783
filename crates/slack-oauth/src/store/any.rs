//! `AnyStore`: a store backend chosen at runtime from a URL (`sqlite://…`, `memory://`, …).

use time::OffsetDateTime;

use super::{
    InstallationQuery, InstallationStore, MemoryStore, ReencryptCursor, ReencryptProgress,
    StateStore, StoreError, TokenUpdate,
};
use crate::ids::ClientId;
use crate::installation::{Bot, Installation};
use crate::secret::StateValue;

/// Any of the built-in stores, chosen at runtime from a URL (like sqlx's `Any`), so a binary can
/// take `DATABASE_URL` from its configuration without generics or `dyn`.
///
/// | URL | backend | feature |
/// |---|---|---|
/// | `sqlite://path/to/file.db`, `sqlite:file.db`, `sqlite::memory:` | [`SqliteStore`](super::SqliteStore) | `sqlite` |
/// | `postgres://…`, `postgresql://…` | [`PostgresStore`](super::PostgresStore) | `postgres` |
/// | `memory://` | [`MemoryStore`] | always |
///
/// ```
/// use slack_oauth::store::{AnyStore, StoreErrorKind};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = AnyStore::connect("memory://", "111.222").await?;
/// assert!(matches!(store, AnyStore::Memory(_)));
/// let error = AnyStore::connect("redis://localhost", "111.222").await.unwrap_err();
/// assert_eq!(error.kind(), StoreErrorKind::Config);
/// # Ok::<_, slack_oauth::store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// In process memory.
    Memory(MemoryStore),
    /// A SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(super::SqliteStore),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(super::PostgresStore),
}

/// The URL schemes this build accepts, for error messages.
fn accepted_schemes() -> String {
    let mut schemes = vec!["memory://"];
    if cfg!(feature = "sqlite") {
        schemes.push("sqlite://path/to/file.db");
        schemes.push("sqlite::memory:");
    }
    if cfg!(feature = "postgres") {
        schemes.push("postgres://…");
        schemes.push("postgresql://…");
    }
    schemes.join(", ")
}

impl AnyStore {
    /// Connects to the store that `url` names (see the table above). `client_id` scopes the
    /// rows of the SQL stores to one Slack app; the memory store ignores it.
    ///
    /// # Errors
    /// [`StoreError::Config`] for an unknown scheme (the message lists the accepted ones), or
    /// whatever the chosen backend's `connect` returns.
    pub async fn connect(url: &str, client_id: impl Into<ClientId>) -> Result<Self, StoreError> {
        Self::connect_encrypted(url, client_id, None).await
    }

    /// Like [`connect`](Self::connect), storing tokens encrypted with `keys` (see
    /// [`encryption`](crate::encryption)); `None` stores them as they are. Either way, a store
    /// holding tokens encrypted with a key not among `keys` refuses to open, naming the key.
    ///
    /// SQLite and PostgreSQL encrypt, alike
    /// ([`SqliteStore::connect_encrypted`](super::SqliteStore::connect_encrypted),
    /// [`PostgresStore::connect_encrypted`](super::PostgresStore::connect_encrypted)). The
    /// memory store keeps nothing at rest and ignores them.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), plus [`StoreError::Decrypt`] for a key that is missing.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::encryption::{generate_key_entry, EncryptionKeys};
    /// let keys = EncryptionKeys::parse(&generate_key_entry("k1"))?;
    /// let store = slack_oauth::store::AnyStore::connect_encrypted("sqlite::memory:", "111.222", Some(keys)).await?;
    /// # store.close().await?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect_encrypted(
        url: &str,
        client_id: impl Into<ClientId>,
        keys: Option<crate::encryption::EncryptionKeys>,
    ) -> Result<Self, StoreError> {
        let client_id = client_id.into();
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            "memory" => Ok(Self::Memory(MemoryStore::new())),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Self::Sqlite(
                super::SqliteStore::connect_encrypted(url, client_id, keys).await?,
            )),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Self::Postgres(
                super::PostgresStore::connect_encrypted(url, client_id, keys).await?,
            )),
            _ => {
                let _ = (client_id, keys);
                Err(StoreError::Config(format!(
                    "unsupported store URL scheme {scheme:?}: this build accepts {}",
                    accepted_schemes()
                )))
            }
        }
    }

    /// Finishes what the store has in flight: SQLite commits its queued writes, checkpoints and
    /// stops its writer thread ([`SqliteStore::close`](super::SqliteStore::close)); PostgreSQL
    /// closes its pool; memory has nothing to do. Call it at shutdown.
    ///
    /// # Errors
    /// What the backend's close reports.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = slack_oauth::store::AnyStore::connect("sqlite::memory:", "111.222").await?;
    /// store.close().await?;
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn close(&self) -> Result<(), StoreError> {
        match self {
            Self::Memory(_) => Ok(()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => {
                store.close().await;
                Ok(())
            }
        }
    }

    /// The changes other writers make, where the backend can tell: PostgreSQL's notifications
    /// ([`PostgresStore::changes`](super::PostgresStore::changes)); `None` for the memory and
    /// SQLite stores (an authorize cache over them relies on its TTL for writes from other
    /// processes).
    ///
    /// # Errors
    /// What [`PostgresStore::changes`](super::PostgresStore::changes) reports.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = slack_oauth::AnyStore::connect("memory://", "111.222").await?;
    /// assert!(store.changes().await?.is_none());
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn changes(
        &self,
    ) -> Result<Option<futures::stream::BoxStream<'static, super::StoreChange>>, StoreError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => {
                use futures::StreamExt as _;
                Ok(Some(store.changes().await?.boxed()))
            }
            _ => Ok(None),
        }
    }

    /// Whether the store answers and its schema is the one this build writes: for readiness
    /// checks. The memory store always is.
    ///
    /// # Errors
    /// A database error when the store cannot be read; [`StoreError::Config`] when its schema
    /// is not current (see [`SqliteStore::check`](super::SqliteStore::check) and
    /// [`PostgresStore::check`](super::PostgresStore::check)).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = slack_oauth::AnyStore::connect("sqlite::memory:", "111.222").await?;
    /// store.check().await?;
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn check(&self) -> Result<(), StoreError> {
        match self {
            Self::Memory(_) => Ok(()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.check().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.check().await,
        }
    }

    /// How many rows of this app hold tokens: the total of a re-encryption's progress bar
    /// ([`SqliteStore::token_rows`](super::SqliteStore::token_rows),
    /// [`PostgresStore::token_rows`](super::PostgresStore::token_rows)); 0 for the memory
    /// store, which keeps nothing at rest.
    ///
    /// # Errors
    /// When the store cannot be read.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = slack_oauth::store::AnyStore::connect("memory://", "111.222").await?;
    /// assert_eq!(store.token_rows().await?, 0);
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn token_rows(&self) -> Result<u64, StoreError> {
        match self {
            Self::Memory(_) => Ok(0),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.token_rows().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.token_rows().await,
        }
    }

    /// Re-encrypts up to `limit` rows from `cursor` under the store's first key, online: see
    /// [`SqliteStore::reencrypt_batch`](super::SqliteStore::reencrypt_batch) and
    /// [`PostgresStore::reencrypt_batch`](super::PostgresStore::reencrypt_batch). The memory
    /// store has nothing at rest: it is done at once.
    ///
    /// # Errors
    /// What the backend's `reencrypt_batch` reports ([`StoreError::Config`] without keys).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::encryption::{generate_key_entry, EncryptionKeys};
    /// use slack_oauth::store::{AnyStore, ReencryptCursor, ReencryptProgress};
    /// let keys = EncryptionKeys::parse(&generate_key_entry("k2"))?;
    /// let store = AnyStore::connect_encrypted("sqlite::memory:", "111.222", Some(keys)).await?;
    /// let mut cursor = Some(ReencryptCursor::start());
    /// let mut total = ReencryptProgress::default();
    /// while let Some(from) = cursor {
    ///     let (next, done) = store.reencrypt_batch(from, 500).await?;
    ///     total += done;
    ///     cursor = next;
    /// }
    /// assert_eq!(total.rewritten, 0);
    /// # store.close().await?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn reencrypt_batch(
        &self,
        cursor: ReencryptCursor,
        limit: u32,
    ) -> Result<(Option<ReencryptCursor>, ReencryptProgress), StoreError> {
        match self {
            Self::Memory(_) => {
                let _ = (cursor, limit);
                Ok((None, ReencryptProgress::default()))
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.reencrypt_batch(cursor, limit).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.reencrypt_batch(cursor, limit).await,
        }
    }

    /// The backend's name: `memory`, `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Calls `$call` on whichever store `$self` holds.
/// Calls `$call` on whichever store `$self` holds, recording its time and failure under the
/// operation's name ([`telemetry`](crate::telemetry)).
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($store) => $call,
        }
    };
    ($self:ident, $operation:literal, $store:ident => $call:expr) => {{
        let started = std::time::Instant::now();
        let result = delegate!($self, $store => $call);
        crate::telemetry::store_operation($operation, started, result.is_ok());
        result
    }};
}

impl InstallationStore for AnyStore {
    async fn save(&self, installation: &Installation) -> Result<(), StoreError> {
        delegate!(self, "save", store => store.save(installation).await)
    }

    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        delegate!(self, "save_bot", store => store.save_bot(bot).await)
    }

    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        delegate!(self, "find_bot", store => store.find_bot(query).await)
    }

    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        delegate!(self, "find_installation", store => store.find_installation(query).await)
    }

    async fn delete_bot(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        delegate!(self, "delete_bot", store => store.delete_bot(query).await)
    }

    async fn delete_installation(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        delegate!(self, "delete_installation", store => store.delete_installation(query).await)
    }

    async fn delete_all(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        delegate!(self, "delete_all", store => store.delete_all(query).await)
    }

    async fn list_installations(&self) -> Result<Vec<Installation>, StoreError> {
        delegate!(self, "list_installations", store => store.list_installations().await)
    }

    async fn list_expiring(
        &self,
        deadline: OffsetDateTime,
    ) -> Result<Vec<Installation>, StoreError> {
        delegate!(self, "list_expiring", store => store.list_expiring(deadline).await)
    }

    async fn update_rotated_token(&self, update: &TokenUpdate) -> Result<bool, StoreError> {
        delegate!(self, "update_rotated_token", store => store.update_rotated_token(update).await)
    }

    async fn update_rotated_token_and_release_lease(
        &self,
        update: &TokenUpdate,
        name: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        delegate!(self, "update_rotated_token_and_release_lease", store => store.update_rotated_token_and_release_lease(update, name, holder).await)
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<super::LeaseAcquisition, StoreError> {
        delegate!(self, "try_acquire_lease", store => store.try_acquire_lease(name, holder, ttl).await)
    }

    async fn record_refresh_intent(
        &self,
        name: &str,
        holder: &str,
        fingerprint: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        delegate!(self, "record_refresh_intent", store => store.record_refresh_intent(name, holder, fingerprint, ttl).await)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        delegate!(self, "release_lease", store => store.release_lease(name, holder).await)
    }

    async fn abandon_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        delegate!(self, "abandon_lease", store => store.abandon_lease(name, holder).await)
    }

    async fn flag_reinstall(&self, grant: &super::LostGrant) -> Result<bool, StoreError> {
        delegate!(self, "flag_reinstall", store => store.flag_reinstall(grant).await)
    }

    async fn spend_refresh_budget(&self, limit: u32) -> Result<super::BudgetSpend, StoreError> {
        delegate!(self, "spend_refresh_budget", store => store.spend_refresh_budget(limit).await)
    }
}

impl StateStore for AnyStore {
    async fn issue(&self, expires_at: OffsetDateTime) -> Result<StateValue, StoreError> {
        delegate!(self, "issue", store => store.issue(expires_at).await)
    }

    async fn consume(&self, state: &StateValue, now: OffsetDateTime) -> Result<bool, StoreError> {
        delegate!(self, "consume", store => store.consume(state, now).await)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        delegate!(self, "purge_expired", store => store.purge_expired(now).await)
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        delegate!(self, "count_live", store => store.count_live(now).await)
    }
}
