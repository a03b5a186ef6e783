//! `StoreError`: why a store operation failed, with a kind to branch on.

/// What kind of failure a [`StoreError`] is, for callers that branch (sqlx's `ErrorKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The database could not be reached, or was busy past the timeout: worth retrying.
    Unavailable,
    /// A stored row could not be read back (bad value in a column).
    Corrupt,
    /// The configuration (URL, options) is wrong: fix it, retrying will not help.
    Config,
    /// Anything else.
    Other,
}

/// A store operation failed.
///
/// Messages name the table or setting involved and never include a token.
///
/// ```
/// use slack_oauth::store::{StoreError, StoreErrorKind};
/// let error = StoreError::Config("DATABASE_URL must start with sqlite:// or postgres://".into());
/// assert_eq!(error.kind(), StoreErrorKind::Config);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database driver failed (connection, I/O, SQL).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A schema migration failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A stored row holds a value that cannot be read (for example an unparseable timestamp).
    #[error("unreadable row in {table}: {detail}")]
    Corrupt {
        /// The table the row is in.
        table: &'static str,
        /// What is wrong with it (never a token value).
        detail: String,
    },
    /// The store was configured wrongly.
    #[error("store configuration error: {0}")]
    Config(String),
}

impl StoreError {
    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Self::Database(error) => match error {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => StoreErrorKind::Unavailable,
                sqlx::Error::Database(db) if is_busy(db.as_ref()) => StoreErrorKind::Unavailable,
                sqlx::Error::Configuration(_) => StoreErrorKind::Config,
                sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                    StoreErrorKind::Corrupt
                }
                _ => StoreErrorKind::Other,
            },
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Self::Migrate(_) => StoreErrorKind::Other,
            Self::Corrupt { .. } => StoreErrorKind::Corrupt,
            Self::Config(_) => StoreErrorKind::Config,
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == StoreErrorKind::Unavailable
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn is_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    // SQLite: SQLITE_BUSY (5) / SQLITE_LOCKED (6); PostgreSQL: serialization failure, deadlock,
    // lock not available, too many connections, admin shutdown.
    matches!(
        error.code().as_deref(),
        Some("5" | "6" | "517" | "262" | "40001" | "40P01" | "55P03" | "53300" | "57P01")
    )
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(error)
    }
}
