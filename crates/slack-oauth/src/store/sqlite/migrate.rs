//! The schema, in versions applied in order and counted in SQLite's `user_version`.
//!
//! Migration 1 is slack_sdk's DDL with `IF NOT EXISTS` plus our indexes and lease table, so it
//! runs unchanged on an empty file, on a database Python created (`user_version` 0, slack_sdk's
//! tables present) and on one an earlier slack-oauth release migrated through sqlx (its
//! `_sqlx_migrations` table is left as it is, so that release still opens the file). Each
//! Migration 2 adds nullable columns for reinstall flags and refresh intents, migration 3 the
//! table of the shared `oauth.v2.access` budget. Each
//! migration and the new `user_version` commit in one `BEGIN IMMEDIATE` transaction, so two
//! processes opening a new file at once apply it once.

use rusqlite::Connection;

use crate::store::StoreError;

/// `(version, SQL)`, in order; a version is its position, from 1.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/sqlite/0002_token_custody.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_refresh_budget.sql"),
    ),
];

/// The schema version this build writes.
pub(super) const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema of `connection`'s database to [`CURRENT_VERSION`].
///
/// # Errors
/// [`StoreError::Config`] when the database was migrated by a newer release (its version is
/// unknown here); [`StoreError::Sqlite`] when a migration fails (nothing of it is kept).
pub(super) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let failed = |source| StoreError::Sqlite {
        operation: "migrating the schema",
        source,
    };
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(failed)?;
    let version: i64 = transaction
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(failed)?;
    if version > CURRENT_VERSION {
        return Err(StoreError::Config(format!(
            "the SQLite database is at schema version {version}, newer than this build's \
             {CURRENT_VERSION}: upgrade slack-oauth"
        )));
    }
    for (number, sql) in MIGRATIONS.iter().filter(|(number, _)| *number > version) {
        transaction.execute_batch(sql).map_err(failed)?;
        // PRAGMA takes no bound parameters; `number` is one of our constants.
        transaction
            .execute_batch(&format!("PRAGMA user_version = {number}"))
            .map_err(failed)?;
    }
    // Crash tests kill the process here: every migration ran, none is committed.
    fail::fail_point!("sqlite::migrate-before-commit");
    transaction.commit().map_err(failed)
}

/// The schema version of `connection`'s database.
pub(super) fn version(connection: &Connection) -> Result<i64, StoreError> {
    connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|source| StoreError::Sqlite {
            operation: "reading the schema version",
            source,
        })
}
