//! Writes: statements with their values, run as one transaction inline when possible, through
//! the pool otherwise.
//!
//! Every write of the store is a list of [`Statement`]s. [`SqliteStore::write`] takes this
//! process's write lock, then runs them on the inline writer connection (see `inline.rs`) inside
//! `BEGIN IMMEDIATE` ... `COMMIT`; when that connection cannot do it at once (another process
//! holds the database's write lock, an error), the transaction is rolled back and the same
//! statements run through sqlx's pool, which waits up to the busy timeout and reports errors.
//! One description of each write serves both paths.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use sqlx::sqlite::SqliteArguments;
use sqlx::Sqlite;

use super::group::Role;
use super::inline::InlineConnections;
use super::SqliteStore;
use crate::store::StoreError;

/// A checkpoint (moving WAL frames into the database file) is started in the background after
/// this many inline commits. The inline writer never checkpoints itself: that would block the
/// calling thread for the WAL's fsync.
const CHECKPOINT_EVERY: u64 = 1000;

/// One bound value.
#[derive(Clone, Debug)]
pub(super) enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(Cow<'a, str>),
}

impl Value<'_> {
    fn to_owned_value(&self) -> Value<'static> {
        match self {
            Self::Null => Value::Null,
            Self::Integer(n) => Value::Integer(*n),
            Self::Real(x) => Value::Real(*x),
            Self::Text(text) => Value::Text(Cow::Owned(text.clone().into_owned())),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Self::Text(Cow::Borrowed(text))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(text: Option<&'a str>) -> Self {
        text.map_or(Self::Null, |text| Self::Text(Cow::Borrowed(text)))
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
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Integer(n) => ValueRef::Integer(*n),
            Self::Real(x) => ValueRef::Real(*x),
            Self::Text(text) => ValueRef::Text(text.as_bytes()),
        }))
    }
}

/// A statement and its values, in `?` order.
#[derive(Debug)]
pub(super) struct Statement<'a> {
    pub(super) sql: &'static str,
    pub(super) values: Vec<Value<'a>>,
}

impl<'a> Statement<'a> {
    pub(super) fn new(sql: &'static str, values: impl IntoIterator<Item = Value<'a>>) -> Self {
        Self {
            sql,
            values: values.into_iter().collect(),
        }
    }

    /// A copy that owns its values, to be handed to another task.
    pub(super) fn to_owned_statement(&self) -> Statement<'static> {
        Statement {
            sql: self.sql,
            values: self.values.iter().map(Value::to_owned_value).collect(),
        }
    }

    fn bind_to(&self) -> sqlx::query::Query<'_, Sqlite, SqliteArguments<'_>> {
        let mut query = sqlx::query(self.sql);
        for value in &self.values {
            query = match value {
                Value::Null => query.bind(None::<i64>),
                Value::Integer(n) => query.bind(*n),
                Value::Real(x) => query.bind(*x),
                Value::Text(text) => query.bind(&**text),
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
    /// Runs `statements` as one write transaction and returns the rows each one changed:
    /// grouped with concurrent writes in one inline transaction (`group.rs`) when possible,
    /// alone through the pool otherwise.
    pub(super) async fn write(&self, statements: &[Statement<'_>]) -> Result<Vec<u64>, StoreError> {
        if let Some(inline) = &self.inline {
            loop {
                match inline.queue.join(statements) {
                    Role::Leader(leader) => {
                        // Let the other tasks that are ready reach their writes and queue them.
                        tokio::task::yield_now().await;
                        let _lock = self.write_lock().await;
                        let (answer, commits) = leader.run(inline, statements);
                        self.count_commits(inline, commits);
                        return match answer {
                            Some(changed) => Ok(changed),
                            None => self.write_pooled(statements).await,
                        };
                    }
                    Role::Follower(answer) => match answer.await {
                        Ok(Some(changed)) => return Ok(changed),
                        Ok(None) => break,
                        // The leader was dropped before running the group: join again.
                        Err(_) => continue,
                    },
                }
            }
        }
        let _lock = self.write_lock().await;
        self.write_pooled(statements).await
    }

    /// Starts a background checkpoint every [`CHECKPOINT_EVERY`] inline commits.
    fn count_commits(&self, inline: &InlineConnections, commits: u64) {
        let before = inline.commits.fetch_add(commits, Ordering::Relaxed);
        if (before + commits) / CHECKPOINT_EVERY > before / CHECKPOINT_EVERY {
            self.checkpoint_in_background();
        }
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
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No Tokio runtime to run it on (the store polled by another executor): skipped;
            // the next one, 1,000 commits later, tries again.
            inline.checkpointing.store(false, Ordering::Release);
            return;
        };
        let pool = self.pool.clone();
        let writer = Arc::clone(&self.writer);
        runtime.spawn(async move {
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

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::super::SqliteStore;

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("group.db").display());
        SqliteStore::connect(&url, "111.222").await.unwrap()
    }

    async fn leases(store: &SqliteStore) -> Vec<String> {
        sqlx::query_scalar("SELECT name FROM slack_oauth_leases ORDER BY name")
            .fetch_all(store.pool())
            .await
            .unwrap()
    }

    fn insert_lease(name: &str) -> super::Statement<'_> {
        statement!(
            "INSERT INTO slack_oauth_leases (name, holder, expires_at) VALUES (?, 'h', 0)",
            name,
        )
    }

    /// Many concurrent writers share transactions; each gets its own row counts, and a write
    /// that fails inside a group is rolled back alone and reported to its owner with the
    /// database's error, while the others commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_writes_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let mut tasks = Vec::new();
        for n in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("lease-{n:03}");
                if n % 50 == 7 {
                    // Fails inside SQLite: there is no such table.
                    store
                        .write(&[statement!(
                            "INSERT INTO no_such_table VALUES (?)",
                            name.as_str()
                        )])
                        .await
                } else {
                    store.write(&[insert_lease(&name)]).await
                }
            }));
        }
        let mut failed = 0;
        for (n, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(changed) => assert_eq!(changed, vec![1], "write {n}"),
                Err(error) => {
                    assert_eq!(n % 50, 7, "only the bad writes fail: {error}");
                    assert!(error.to_string().contains("no_such_table"), "{error}");
                    failed += 1;
                }
            }
        }
        assert_eq!(failed, 4);
        assert_eq!(
            leases(&store).await.len(),
            196,
            "every good write committed"
        );
        let commits = store
            .inline
            .as_ref()
            .unwrap()
            .commits
            .load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            (1..200).contains(&commits),
            "200 concurrent writes were grouped into fewer commits: {commits}"
        );
    }

    /// A leader dropped before it ran its group leaves no writer behind: the queued writer
    /// starts over and commits; the dropped write is not made.
    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_leader_hands_the_queue_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let dropped = insert_lease("dropped");
        let mut leader = Box::pin(store.write(std::slice::from_ref(&dropped)));
        // First poll: it becomes the leader and yields.
        assert!(matches!(futures::poll!(&mut leader), Poll::Pending));
        let follower = {
            let store = store.clone();
            tokio::spawn(async move { store.write(&[insert_lease("follower")]).await })
        };
        // Let the follower queue behind the leader, then drop the leader.
        tokio::task::yield_now().await;
        drop(leader);
        assert_eq!(follower.await.unwrap().unwrap(), vec![1]);
        assert_eq!(leases(&store).await, vec!["follower".to_owned()]);
    }
}
