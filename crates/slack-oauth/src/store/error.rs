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
    /// The PostgreSQL driver failed (connection, I/O, SQL).
    #[cfg(feature = "postgres")]
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A PostgreSQL schema migration failed.
    #[cfg(feature = "postgres")]
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// SQLite failed: the file could not be opened, another process held the write lock past
    /// the busy timeout (kind [`Unavailable`](StoreErrorKind::Unavailable)), the disk is full, a
    /// statement or the commit failed. `operation` says what the store was doing.
    #[cfg(feature = "sqlite")]
    #[error("SQLite error while {operation}: {source}")]
    Sqlite {
        /// What the store was doing (`"saving"`, `"opening app.db"`, `"committing"`...).
        operation: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The store was closed (or its writer thread stopped) before the operation could run;
    /// nothing of it was written.
    #[error("the store is closed: {0}")]
    Closed(&'static str),
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
    /// A stored token is encrypted and could not be decrypted: its key is not configured
    /// (kind [`Config`](StoreErrorKind::Config)), or it was altered or moved from another row
    /// or column (kind [`Corrupt`](StoreErrorKind::Corrupt)).
    #[error("cannot decrypt a value in {table}: {source}")]
    Decrypt {
        /// The table the value is in.
        table: &'static str,
        /// Why.
        #[source]
        source: crate::encryption::DecryptError,
    },
}

impl StoreError {
    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            #[cfg(feature = "postgres")]
            Self::Database(error) => match error {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
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
            #[cfg(feature = "postgres")]
            Self::Migrate(_) => StoreErrorKind::Other,
            #[cfg(feature = "sqlite")]
            Self::Sqlite { source, .. } => sqlite_kind(source),
            Self::Closed(_) => StoreErrorKind::Unavailable,
            Self::Corrupt { .. } => StoreErrorKind::Corrupt,
            Self::Config(_) => StoreErrorKind::Config,
            Self::Decrypt { source, .. } => match source {
                crate::encryption::DecryptError::Invalid => StoreErrorKind::Corrupt,
                _ => StoreErrorKind::Config,
            },
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == StoreErrorKind::Unavailable
    }
}

#[cfg(feature = "postgres")]
fn is_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    // By SQLSTATE: connection exceptions (class 08), insufficient resources (53: disk full,
    // out of memory, too many connections), operator intervention (57P01 admin shutdown,
    // 57P02 crash shutdown, 57P03 cannot connect now: a restarting server), serialization
    // failure, deadlock, lock not available.
    let Some(code) = error.code() else {
        return false;
    };
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code.as_ref(),
            "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03"
        )
}

/// SQLite's primary result codes, sorted into kinds: busy or locked past the timeout, I/O and
/// full disks are worth retrying later; a file that is not a database, or is damaged, is
/// corrupt; a path that cannot be opened is configuration.
#[cfg(feature = "sqlite")]
fn sqlite_kind(error: &rusqlite::Error) -> StoreErrorKind {
    use rusqlite::ErrorCode;
    match error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::OutOfMemory => StoreErrorKind::Unavailable,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreErrorKind::Corrupt,
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly => {
                StoreErrorKind::Config
            }
            _ => StoreErrorKind::Other,
        },
        rusqlite::Error::InvalidPath(_) => StoreErrorKind::Config,
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(_)
        | rusqlite::Error::InvalidColumnType(..) => StoreErrorKind::Corrupt,
        _ => StoreErrorKind::Other,
    }
}

#[cfg(feature = "postgres")]
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

#[cfg(feature = "postgres")]
impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(error)
    }
}
