//! Re-encrypting stored tokens under the current key (`slack-oauth keys rotate`), online and in
//! batches: rows are visited in id order, each value not yet under the first key is rewritten
//! with a compare-and-swap on its old stored form, so a concurrent save or rotation (which
//! already writes under the first key) is never overwritten. Running it again is harmless and
//! picks up where a killed run stopped: values already current are skipped.

use super::codec::Reader;
use super::statement::{statement, Statement};
use super::{reading, SqliteStore};
use crate::encryption::{Field, Owner};
use crate::store::StoreError;

/// A token column: its name, whether it belongs to the row's user, and the compare-and-swap
/// that rewrites it (`?` new value, row id, old value).
struct Column {
    name: &'static str,
    of_user: bool,
    rewrite: &'static str,
}

/// The token columns of a table.
struct Table {
    name: &'static str,
    columns: &'static [Column],
}

macro_rules! column {
    ($table:literal, $column:literal, $of_user:expr) => {
        Column {
            name: $column,
            of_user: $of_user,
            rewrite: concat!(
                "UPDATE ",
                $table,
                " SET ",
                $column,
                " = ? WHERE id = ? AND ",
                $column,
                " = ?"
            ),
        }
    };
}

const TABLES: [Table; 2] = [
    Table {
        name: "slack_installations",
        columns: &[
            column!("slack_installations", "bot_token", false),
            column!("slack_installations", "bot_refresh_token", false),
            column!("slack_installations", "user_token", true),
            column!("slack_installations", "user_refresh_token", true),
            column!("slack_installations", "incoming_webhook_url", true),
        ],
    },
    Table {
        name: "slack_bots",
        columns: &[
            column!("slack_bots", "bot_token", false),
            column!("slack_bots", "bot_refresh_token", false),
        ],
    },
];

/// Every `(table, column)` that holds a sealed value: what opening a store checks key ids in.
pub(super) fn token_columns() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLES.iter().flat_map(|table| {
        table
            .columns
            .iter()
            .map(move |column| (table.name, column.name))
    })
}

/// Where a re-encryption goes on from: a table and the last row id done in it.
///
/// ```
/// let start = slack_oauth::store::ReencryptCursor::start();
/// assert_eq!(start, slack_oauth::store::ReencryptCursor::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReencryptCursor {
    table: usize,
    after_id: i64,
}

impl ReencryptCursor {
    /// The first row of the first table.
    pub fn start() -> Self {
        Self::default()
    }
}

/// What a batch (or a whole run, summed) of re-encryption did.
///
/// ```
/// let mut total = slack_oauth::store::ReencryptProgress::default();
/// total += slack_oauth::store::ReencryptProgress::default();
/// assert_eq!(total.rows, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReencryptProgress {
    /// Rows visited.
    pub rows: u64,
    /// Values rewritten under the first key (they were plaintext or under another key).
    pub rewritten: u64,
    /// Values already under the first key.
    pub current: u64,
}

impl std::ops::AddAssign for ReencryptProgress {
    fn add_assign(&mut self, other: Self) {
        self.rows += other.rows;
        self.rewritten += other.rewritten;
        self.current += other.current;
    }
}

/// One row's identity and token values, as read.
struct Row {
    id: i64,
    enterprise_id: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
    values: Vec<Option<String>>,
}

impl SqliteStore {
    /// How many rows of this app hold tokens (both tables): the total of a progress bar.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub async fn token_rows(&self) -> Result<u64, StoreError> {
        let client_id = self.client_id.clone();
        self.read(move |connection| {
            let mut total = 0_u64;
            for table in &TABLES {
                let count: i64 = connection
                    .query_row(
                        &format!("SELECT count(*) FROM {} WHERE client_id = ?", table.name),
                        [client_id.as_str()],
                        |row| row.get(0),
                    )
                    .map_err(reading)?;
                total += u64::try_from(count).unwrap_or(0);
            }
            Ok(total)
        })
        .await
    }

    /// Re-encrypts up to `limit` rows from `cursor` under the store's first key. Returns where
    /// to go on from (`None` once every row was visited) and what the batch did.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the store has no keys; [`StoreError::Decrypt`] for a value
    /// under a key the store lacks or one that does not decrypt (nothing of the batch is then
    /// written); what the store reports when it cannot read or write.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::encryption::{generate_key_entry, EncryptionKeys};
    /// use slack_oauth::store::{ReencryptCursor, ReencryptProgress, SqliteStore};
    /// let keys = EncryptionKeys::parse(&generate_key_entry("k2"))?;
    /// let store = SqliteStore::connect_encrypted("sqlite::memory:", "111.222", Some(keys)).await?;
    /// let mut cursor = Some(ReencryptCursor::start());
    /// let mut total = ReencryptProgress::default();
    /// while let Some(from) = cursor {
    ///     let (next, done) = store.reencrypt_batch(from, 500).await?;
    ///     total += done;
    ///     cursor = next;
    /// }
    /// assert_eq!(total.rows, 0);
    /// # store.close().await?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn reencrypt_batch(
        &self,
        cursor: ReencryptCursor,
        limit: u32,
    ) -> Result<(Option<ReencryptCursor>, ReencryptProgress), StoreError> {
        if !self.cipher.encrypts() {
            return Err(StoreError::Config(format!(
                "re-encrypting needs keys: set {}",
                crate::encryption::ENCRYPTION_KEYS_ENV
            )));
        }
        let Some(table) = TABLES.get(cursor.table) else {
            return Ok((None, ReencryptProgress::default()));
        };
        let rows = self.read_batch(table, cursor.after_id, limit).await?;
        let mut progress = ReencryptProgress {
            rows: rows.len() as u64,
            ..ReencryptProgress::default()
        };
        // (sql, new value, row id, old value) of every value to rewrite.
        let mut rewrites: Vec<(&'static str, String, i64, String)> = Vec::new();
        for row in &rows {
            for (column, stored) in table.columns.iter().zip(&row.values) {
                let Some(stored) = stored else { continue };
                if !self.cipher.needs_reseal(stored) {
                    progress.current += 1;
                    continue;
                }
                let owner = Owner {
                    client_id: self.client_id.as_str(),
                    enterprise_id: row.enterprise_id.as_deref(),
                    team_id: row.team_id.as_deref(),
                    user_id: if column.of_user {
                        row.user_id.as_deref()
                    } else {
                        None
                    },
                };
                let field = Field {
                    table: table.name,
                    column: column.name,
                };
                let plaintext =
                    self.cipher
                        .open(field, &owner, stored.clone())
                        .map_err(|source| StoreError::Decrypt {
                            table: table.name,
                            source,
                        })?;
                rewrites.push((
                    column.rewrite,
                    self.cipher.seal(field, &owner, &plaintext),
                    row.id,
                    stored.clone(),
                ));
            }
        }
        if !rewrites.is_empty() {
            let statements: Vec<Statement<'_>> = rewrites
                .iter()
                .map(|(sql, sealed, id, old)| statement!(*sql, sealed.as_str(), *id, old.as_str()))
                .collect();
            let changed = self.write(statements).await?;
            progress.rewritten = changed.iter().sum();
        }
        let next = match rows.last() {
            Some(last) if rows.len() as u64 == u64::from(limit) => ReencryptCursor {
                table: cursor.table,
                after_id: last.id,
            },
            _ => ReencryptCursor {
                table: cursor.table + 1,
                after_id: 0,
            },
        };
        Ok(((next.table < TABLES.len()).then_some(next), progress))
    }

    async fn read_batch(
        &self,
        table: &'static Table,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Row>, StoreError> {
        let client_id = self.client_id.clone();
        let user = if table.name == "slack_installations" {
            "user_id"
        } else {
            "NULL AS user_id"
        };
        let columns: Vec<&str> = table.columns.iter().map(|column| column.name).collect();
        let sql = format!(
            "SELECT id, enterprise_id, team_id, {user}, {} FROM {} WHERE client_id = ? AND id > ? \
             ORDER BY id LIMIT ?",
            columns.join(", "),
            table.name
        );
        self.read(move |connection| {
            let mut statement = connection.prepare(&sql).map_err(reading)?;
            let mut rows = statement
                .query(rusqlite::params![client_id.as_str(), after_id, limit])
                .map_err(reading)?;
            let mut batch = Vec::new();
            while let Some(row) = rows.next().map_err(reading)? {
                let reader = Reader {
                    row,
                    table: table.name,
                };
                let mut values = Vec::with_capacity(columns.len());
                for column in &columns {
                    values.push(reader.text(column)?.filter(|value| !value.is_empty()));
                }
                batch.push(Row {
                    id: row.get(0).map_err(reading)?,
                    enterprise_id: reader.optional("enterprise_id")?,
                    team_id: reader.optional("team_id")?,
                    user_id: reader.optional("user_id")?,
                    values,
                });
            }
            Ok(batch)
        })
        .await
    }
}
