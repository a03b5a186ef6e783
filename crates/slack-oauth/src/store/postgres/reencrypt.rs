//! Re-encrypting stored tokens under the current key (`slack-oauth keys rotate`) on PostgreSQL:
//! the reads and compare-and-swap writes the shared batch logic
//! ([`crate::store::reencrypt`]) runs on.
//!
//! A batch's rewrites in one table are one statement: it locks the batch's rows with
//! `FOR UPDATE SKIP LOCKED`, notes which sealed columns still hold the value that was read, and
//! rewrites those. It never waits for a lock while holding others, so it cannot deadlock with a
//! rotation or a reinstall mark updating several rows of one workspace in another order; the
//! rows it skipped (held by such a writer at that instant) are then rewritten one at a time,
//! each statement waiting for its one row's lock.

use sqlx::postgres::PgRow;
use sqlx::Row as _;

use super::rows::get;
use super::PostgresStore;
use crate::encryption::TokenCipher;
use crate::store::reencrypt::{self, Rewrite, TokenRow, TokenRows, TokenTable, TOKEN_TABLES};
use crate::store::{ReencryptCursor, ReencryptProgress, StoreError};

impl PostgresStore {
    /// How many rows of this app hold tokens (both tables): the total of a progress bar.
    ///
    /// # Errors
    /// When the database cannot be read.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::store::PostgresStore;
    /// if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
    ///     let store = PostgresStore::connect_in_schema(&url, "111.222", "slack_oauth_doctest_rows").await?;
    ///     assert_eq!(store.token_rows().await?, 0);
    /// #   sqlx::query("DROP SCHEMA slack_oauth_doctest_rows CASCADE").execute(store.pool()).await?;
    ///     store.close().await;
    /// }
    /// # Ok::<_, slack_oauth::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub async fn token_rows(&self) -> Result<u64, StoreError> {
        let sql = TOKEN_TABLES
            .iter()
            .map(|table| format!("(SELECT count(*) FROM {} WHERE client_id = $1)", table.name))
            .collect::<Vec<_>>()
            .join(" + ");
        let mut conn = self.conn().await?;
        let total = sqlx::query_scalar::<_, i64>(&format!("SELECT ({sql})::int8"))
            .bind(self.client_id.as_str())
            .fetch_one(conn.busy())
            .await;
        Ok(u64::try_from(conn.settle(total)?).unwrap_or(0))
    }

    /// Re-encrypts up to `limit` rows from `cursor` under the store's first key. Returns where
    /// to go on from (`None` once every row was visited) and what the batch did.
    ///
    /// Online: each value is rewritten with a compare-and-swap on its old stored form, so a
    /// concurrent save or rotation (from this process or another instance) is never
    /// overwritten; running it again after a kill finishes the rest.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the store has no keys; [`StoreError::Decrypt`] for a value
    /// under a key the store lacks or one that does not decrypt (nothing of the batch is then
    /// written); a database error when it cannot read or write.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use slack_oauth::encryption::{generate_key_entry, EncryptionKeys};
    /// use slack_oauth::store::{PostgresStore, ReencryptCursor, ReencryptProgress};
    /// let keys = EncryptionKeys::parse(&generate_key_entry("k2"))?;
    /// if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
    ///     // A client id of its own: the doctest sees no other test's rows.
    ///     let store = PostgresStore::connect_encrypted(&url, "doctest.reencrypt", Some(keys)).await?;
    ///     let mut cursor = Some(ReencryptCursor::start());
    ///     let mut total = ReencryptProgress::default();
    ///     while let Some(from) = cursor {
    ///         let (next, done) = store.reencrypt_batch(from, 500).await?;
    ///         total += done;
    ///         cursor = next;
    ///     }
    ///     assert_eq!(total.rows, 0);
    ///     store.close().await;
    /// }
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

    /// Runs [`rewrite_sql`] on `batch`; returns the values rewritten and the ids of the rows
    /// skipped because another transaction held them.
    async fn run_rewrite(&self, sql: &str, batch: &Batch) -> Result<(i64, Vec<i64>), StoreError> {
        let mut query = sqlx::query(sql)
            .bind(self.client_id.as_str())
            .bind(&batch.ids);
        for (old, new) in batch.old.iter().zip(&batch.new) {
            query = query.bind(old).bind(new);
        }
        let mut conn = self.conn().await?;
        let row = query.fetch_one(conn.busy()).await;
        let row = conn.settle(row)?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}

/// The compare-and-swap of a batch in `table`: `$1` client id, `$2` row ids, then for each
/// sealed column (in [`TokenTable::columns`] order) the old stored values and the new ones, one
/// per row id (`NULL` where that column is not rewritten). Returns the values rewritten and the
/// ids of the rows not locked (with `skip_locked`; without it, the statement waits for each
/// lock, so it must be given one row only).
fn rewrite_sql(table: &TokenTable, skip_locked: bool) -> String {
    let columns = table.columns.iter().enumerate();
    let arrays: Vec<String> = std::iter::once("$2::int8[]".to_owned())
        .chain(columns.clone().flat_map(|(k, _)| {
            [
                format!("${}::text[]", 3 + 2 * k),
                format!("${}::text[]", 4 + 2 * k),
            ]
        }))
        .collect();
    let names: Vec<String> = std::iter::once("id".to_owned())
        .chain(
            columns
                .clone()
                .flat_map(|(k, _)| [format!("old_{k}"), format!("new_{k}")]),
        )
        .collect();
    let matches: Vec<String> = columns
        .clone()
        .map(|(k, column)| {
            format!(
                "COALESCE(t.{column} = v.old_{k}, false) AS match_{k}",
                column = column.name
            )
        })
        .collect();
    let sets: Vec<String> = columns
        .clone()
        .map(|(k, column)| {
            format!(
                "{column} = CASE WHEN l.match_{k} THEN v.new_{k} ELSE t.{column} END",
                column = column.name
            )
        })
        .collect();
    let any_match: Vec<String> = columns
        .clone()
        .map(|(k, _)| format!("l.match_{k}"))
        .collect();
    let count: Vec<String> = columns.map(|(k, _)| format!("l.match_{k}::int4")).collect();
    format!(
        "WITH v AS MATERIALIZED (SELECT * FROM unnest({arrays}) AS v({names})), \
         locked AS MATERIALIZED (SELECT t.id, {matches} FROM {table} t JOIN v ON t.id = v.id \
           WHERE t.client_id = $1 FOR UPDATE OF t{skip}), \
         rewritten AS (UPDATE {table} t SET {sets} FROM v JOIN locked l ON l.id = v.id \
           WHERE t.id = v.id AND ({any_match}) RETURNING {count} AS n) \
         SELECT (SELECT COALESCE(sum(n), 0) FROM rewritten)::int8, \
           ARRAY(SELECT v.id FROM v WHERE NOT EXISTS (SELECT 1 FROM locked l WHERE l.id = v.id))",
        arrays = arrays.join(", "),
        names = names.join(", "),
        matches = matches.join(", "),
        table = table.name,
        skip = if skip_locked { " SKIP LOCKED" } else { "" },
        sets = sets.join(", "),
        any_match = any_match.join(" OR "),
        count = count.join(" + "),
    )
}

/// The rewrites of one table as the arrays [`rewrite_sql`] binds: one entry per row, and per
/// column the old and new stored values.
struct Batch {
    ids: Vec<i64>,
    old: Vec<Vec<Option<String>>>,
    new: Vec<Vec<Option<String>>>,
}

impl Batch {
    fn new(columns: usize) -> Self {
        Self {
            ids: Vec::new(),
            old: vec![Vec::new(); columns],
            new: vec![Vec::new(); columns],
        }
    }

    /// Adds `rewrite`, in its row's entry (rewrites of one row come one after the other).
    fn push(&mut self, rewrite: Rewrite) {
        if self.ids.last() != Some(&rewrite.id) {
            self.ids.push(rewrite.id);
            for values in self.old.iter_mut().chain(self.new.iter_mut()) {
                values.push(None);
            }
        }
        let row = self.ids.len() - 1;
        if let (Some(old), Some(new)) = (
            self.old
                .get_mut(rewrite.column)
                .and_then(|old| old.get_mut(row)),
            self.new
                .get_mut(rewrite.column)
                .and_then(|new| new.get_mut(row)),
        ) {
            *old = Some(rewrite.stored);
            *new = Some(rewrite.sealed);
        }
    }

    /// The entry of row `id` alone.
    fn only(&self, id: i64) -> Option<Self> {
        let row = self.ids.iter().position(|known| *known == id)?;
        let pick = |columns: &[Vec<Option<String>>]| -> Vec<Vec<Option<String>>> {
            columns
                .iter()
                .map(|values| vec![values.get(row).cloned().flatten()])
                .collect()
        };
        Some(Self {
            ids: vec![id],
            old: pick(&self.old),
            new: pick(&self.new),
        })
    }
}

impl TokenRows for PostgresStore {
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
        let user = if table.has_user {
            "user_id"
        } else {
            "NULL::text AS user_id"
        };
        let columns: Vec<&str> = table.columns.iter().map(|column| column.name).collect();
        let sql = format!(
            "SELECT id::int8 AS id, enterprise_id, team_id, {user}, {} FROM {} \
             WHERE client_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            columns.join(", "),
            table.name
        );
        let mut conn = self.conn().await?;
        let rows = sqlx::query(&sql)
            .bind(self.client_id.as_str())
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(conn.busy())
            .await;
        let rows = conn.settle(rows)?;
        drop(conn);
        rows.iter()
            .map(|row: &PgRow| {
                let values = columns
                    .iter()
                    .map(|column| {
                        get::<Option<String>>(row, table.name, column)
                            .map(|value| value.filter(|value| !value.is_empty()))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(TokenRow {
                    id: get(row, table.name, "id")?,
                    enterprise_id: get(row, table.name, "enterprise_id")?,
                    team_id: get(row, table.name, "team_id")?,
                    user_id: get(row, table.name, "user_id")?,
                    values,
                })
            })
            .collect()
    }

    async fn rewrite_token_values(
        &self,
        table: &'static TokenTable,
        rewrites: Vec<Rewrite>,
    ) -> Result<u64, StoreError> {
        let mut batch = Batch::new(table.columns.len());
        for rewrite in rewrites {
            batch.push(rewrite);
        }
        let (mut rewritten, skipped) = self.run_rewrite(&rewrite_sql(table, true), &batch).await?;
        if !skipped.is_empty() {
            let waiting = rewrite_sql(table, false);
            for id in skipped {
                if let Some(row) = batch.only(id) {
                    rewritten += self.run_rewrite(&waiting, &row).await?.0;
                }
            }
        }
        Ok(u64::try_from(rewritten).unwrap_or(0))
    }
}
