//! Writes: statements with their values, run as one transaction inline when possible, through
//! the pool otherwise.
//!
//! Every write of the store is a list of [`Statement`]s. [`SqliteStore::write`] takes this
//! process's write lock, then runs them on the inline writer connection (see `inline.rs`) inside
//! `BEGIN IMMEDIATE` ... `COMMIT`; when that connection cannot do it at once (another process
//! holds the database's write lock, an error), the transaction is rolled back and the same
//! statements run through sqlx's pool, which waits up to the busy timeout and reports errors.
//! One description of each write serves both paths.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use sqlx::sqlite::SqliteArguments;
use sqlx::Sqlite;

use super::SqliteStore;
use crate::store::StoreError;

/// A checkpoint (moving WAL frames into the database file) is started in the background after
/// this many inline commits. The inline writer never checkpoints itself: that would block the
/// calling thread for the WAL's fsync.
const CHECKPOINT_EVERY: u64 = 1000;

/// One bound value.
#[derive(Clone, Copy, Debug)]
pub(super) enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Self::Text(text)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(text: &'a String) -> Self {
        Self::Text(text)
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(text: Option<&'a str>) -> Self {
        text.map_or(Self::Null, Self::Text)
    }
}

impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Self::Integer(n)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(n: Option<i64>) -> Self {
        n.map_or(Self::Null, Self::Integer)
    }
}

impl From<bool> for Value<'_> {
    fn from(flag: bool) -> Self {
        Self::Integer(i64::from(flag))
    }
}

impl From<f64> for Value<'_> {
    fn from(x: f64) -> Self {
        Self::Real(x)
    }
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Self::Null => ValueRef::Null,
            Self::Integer(n) => ValueRef::Integer(n),
            Self::Real(x) => ValueRef::Real(x),
            Self::Text(text) => ValueRef::Text(text.as_bytes()),
        }))
    }
}

/// A statement and its values, in `?` order.
#[derive(Debug)]
pub(super) struct Statement<'a> {
    pub(super) sql: &'a str,
    pub(super) values: Vec<Value<'a>>,
}

impl<'a> Statement<'a> {
    pub(super) fn new(sql: &'a str, values: impl IntoIterator<Item = Value<'a>>) -> Self {
        Self {
            sql,
            values: values.into_iter().collect(),
        }
    }

    fn bind_to(&self) -> sqlx::query::Query<'_, Sqlite, SqliteArguments<'_>> {
        let mut query = sqlx::query(self.sql);
        for value in &self.values {
            query = match *value {
                Value::Null => query.bind(None::<i64>),
                Value::Integer(n) => query.bind(n),
                Value::Real(x) => query.bind(x),
                Value::Text(text) => query.bind(text),
            };
        }
        query
    }
}

/// Builds a [`Statement`] from an SQL string and values convertible to [`Value`].
macro_rules! statement {
    ($sql:expr $(, $value:expr)* $(,)?) => {
        $crate::store::sqlite::write::Statement::new(
            $sql,
            [$($crate::store::sqlite::write::Value::from($value)),*],
        )
    };
}
pub(super) use statement;

impl SqliteStore {
    /// Runs `statements` as one write transaction and returns the rows each one changed.
    pub(super) async fn write(&self, statements: &[Statement<'_>]) -> Result<Vec<u64>, StoreError> {
        let _lock = self.write_lock().await;
        if let Some(inline) = &self.inline {
            if let Ok(changed) = inline.write(statements) {
                let commits = inline.commits.fetch_add(1, Ordering::Relaxed) + 1;
                if commits % CHECKPOINT_EVERY == 0 {
                    self.checkpoint_in_background();
                }
                return Ok(changed);
            }
        }
        self.write_pooled(statements).await
    }

    async fn write_pooled(&self, statements: &[Statement<'_>]) -> Result<Vec<u64>, StoreError> {
        let mut changed = Vec::with_capacity(statements.len());
        if let [statement] = statements {
            let done = statement.bind_to().execute(&self.pool).await?;
            changed.push(done.rows_affected());
            return Ok(changed);
        }
        // Takes the database's write lock up front (waiting up to the busy timeout), so the
        // transaction cannot fail half way because another process wrote in between. Dropped
        // without commit, it rolls back.
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for statement in statements {
            let done = statement.bind_to().execute(&mut *transaction).await?;
            changed.push(done.rows_affected());
        }
        transaction.commit().await?;
        Ok(changed)
    }

    /// Moves WAL frames into the database file on a pooled connection (sqlx's thread), one at a
    /// time. It holds the write lock, as SQLite's own automatic checkpoint would, so that it can
    /// finish and the next write starts the WAL over instead of growing it; writers wait for it
    /// asynchronously, no thread blocks.
    fn checkpoint_in_background(&self) {
        let Some(inline) = self.inline.clone() else {
            return;
        };
        if inline.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = self.pool.clone();
        let writer = Arc::clone(&self.writer);
        tokio::spawn(async move {
            let _lock = writer.lock_owned().await;
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(%error, "SQLite WAL checkpoint failed; the next one retries");
            }
            inline.checkpointing.store(false, Ordering::Release);
        });
    }
}
