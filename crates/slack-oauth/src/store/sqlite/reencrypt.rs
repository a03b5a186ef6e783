//! Re-encrypting stored tokens under the current key (`slack-oauth keys rotate`) on SQLite: the
//! reads and compare-and-swap writes the shared batch logic
//! ([`crate::store::reencrypt`]) runs on. A batch's rewrites are one write (one transaction).

use std::sync::LazyLock;

use super::codec::Reader;
use super::statement::{statement, Statement};
use super::{reading, SqliteStore};
use crate::encryption::TokenCipher;
use crate::store::reencrypt::{self, Rewrite, TokenRow, TokenRows, TokenTable, TOKEN_TABLES};
use crate::store::{ReencryptCursor, ReencryptProgress, StoreError};

/// The compare-and-swap of each sealed column (`?` new value, row id, old value), per table and
/// column of [`TOKEN_TABLES`].
static REWRITES: LazyLock<Vec<Vec<String>>> = LazyLock::new(|| {
    TOKEN_TABLES
        .iter()
        .map(|table| {
            table
                .columns
                .iter()
                .map(|column| {
                    format!(
                        "UPDATE {table} SET {column} = ? WHERE id = ? AND {column} = ?",
                        table = table.name,
                        column = column.name
                    )
                })
                .collect()
        })
        .collect()
});

impl SqliteStore {
    /// How many rows of this app hold tokens (both tables): the total of a progress bar.
    ///
    /// # Errors
    /// When the store cannot be read.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let store = slack_oauth::store::SqliteStore::connect("sqlite::memory:", "111.222").await?;
    /// assert_eq!(store.token_rows().await?, 0);
    /// # store.close().await?;
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn token_rows(&self) -> Result<u64, StoreError> {
        let client_id = self.client_id.clone();
        self.read(move |connection| {
            let mut total = 0_u64;
            for table in &TOKEN_TABLES {
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
    /// Online: each value is rewritten with a compare-and-swap on its old stored form, so a
    /// concurrent save or rotation is never overwritten; running it again after a kill finishes
    /// the rest.
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
        reencrypt::reencrypt_batch(self, cursor, limit).await
    }
}

impl TokenRows for SqliteStore {
    fn cipher(&self) -> &TokenCipher {
        &self.cipher
    }

    fn app(&self) -> &str {
        self.client_id.as_str()
    }

    async fn read_token_rows(
        &self,
        table: &'static TokenTable,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<TokenRow>, StoreError> {
        let client_id = self.client_id.clone();
        let user = if table.has_user {
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
                batch.push(TokenRow {
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

    async fn rewrite_token_values(
        &self,
        table: &'static TokenTable,
        rewrites: Vec<Rewrite>,
    ) -> Result<u64, StoreError> {
        let Some(sql) = TOKEN_TABLES
            .iter()
            .position(|known| known.name == table.name)
            .and_then(|index| REWRITES.get(index))
        else {
            return Err(StoreError::Config(format!(
                "{} holds no sealed columns",
                table.name
            )));
        };
        let mut statements: Vec<Statement<'_>> = Vec::with_capacity(rewrites.len());
        for rewrite in &rewrites {
            let Some(sql) = sql.get(rewrite.column) else {
                continue;
            };
            statements.push(statement!(
                sql.as_str(),
                rewrite.sealed.as_str(),
                rewrite.id,
                rewrite.stored.as_str()
            ));
        }
        let changed = self.write(statements).await?;
        Ok(changed.iter().sum())
    }
}
