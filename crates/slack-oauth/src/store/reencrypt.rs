//! Sealed token columns across the SQL stores: which columns hold sealed values (the one list
//! that opening a store checks key ids in and that re-encryption rewrites), and online
//! re-encryption (`slack-oauth keys rotate`).
//!
//! Re-encryption visits a table's rows in id order, in batches; each value not yet under the
//! first key is opened and sealed again, then written with a compare-and-swap on the old stored
//! form, so a concurrent save or rotation (which already writes under the first key) is never
//! overwritten. Running it again is harmless and picks up where a killed run stopped: values
//! already current are skipped. The batch logic is here; each store supplies its reads and its
//! compare-and-swap writes ([`TokenRows`]).

// Only the cursor and progress types are used when no SQL store is built.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use crate::encryption::{Field, Owner, TokenCipher};
use crate::store::StoreError;

/// A column holding a sealed value, and whether it belongs to the row's user (its associated
/// data then names the user).
#[derive(Debug)]
pub(crate) struct TokenColumn {
    pub(crate) name: &'static str,
    pub(crate) of_user: bool,
}

/// A table and its sealed columns.
#[derive(Debug)]
pub(crate) struct TokenTable {
    pub(crate) name: &'static str,
    /// Whether rows have a `user_id` column.
    pub(crate) has_user: bool,
    pub(crate) columns: &'static [TokenColumn],
}

/// Every sealed column, in the same tables and with the same names in every SQL store, so a
/// value's associated data is the same whichever store wrote it.
pub(crate) const TOKEN_TABLES: [TokenTable; 2] = [
    TokenTable {
        name: "slack_installations",
        has_user: true,
        columns: &[
            TokenColumn {
                name: "bot_token",
                of_user: false,
            },
            TokenColumn {
                name: "bot_refresh_token",
                of_user: false,
            },
            TokenColumn {
                name: "user_token",
                of_user: true,
            },
            TokenColumn {
                name: "user_refresh_token",
                of_user: true,
            },
            TokenColumn {
                name: "incoming_webhook_url",
                of_user: true,
            },
        ],
    },
    TokenTable {
        name: "slack_bots",
        has_user: false,
        columns: &[
            TokenColumn {
                name: "bot_token",
                of_user: false,
            },
            TokenColumn {
                name: "bot_refresh_token",
                of_user: false,
            },
        ],
    },
];

/// Refuses to open a store whose rows hold envelopes under key ids the store's keys lack (or
/// any envelope, without keys). `found` is every `(table, key id)` the store's scan found.
pub(crate) fn check_key_ids(
    cipher: &TokenCipher,
    found: impl IntoIterator<Item = (&'static str, String)>,
) -> Result<(), StoreError> {
    for (table, key_id) in found {
        cipher
            .check_key_id(&key_id)
            .map_err(|source| StoreError::Decrypt { table, source })?;
    }
    Ok(())
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

/// One row's identity and sealed values (in [`TokenTable::columns`] order; `None` for NULL or
/// `''`), as a store read them.
#[derive(Debug)]
pub(crate) struct TokenRow {
    pub(crate) id: i64,
    pub(crate) enterprise_id: Option<String>,
    pub(crate) team_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) values: Vec<Option<String>>,
}

/// One value to rewrite: in column `column` (an index into [`TokenTable::columns`]) of row
/// `id`, `sealed` where the column still holds `stored`.
pub(crate) struct Rewrite {
    pub(crate) column: usize,
    pub(crate) id: i64,
    pub(crate) sealed: String,
    pub(crate) stored: String,
}

impl std::fmt::Debug for Rewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The stored form may be plaintext: never shown.
        f.debug_struct("Rewrite")
            .field("column", &self.column)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a SQL store provides to re-encrypt its rows.
pub(crate) trait TokenRows {
    /// The store's cipher.
    fn cipher(&self) -> &TokenCipher;

    /// The app whose rows the store sees.
    fn app(&self) -> &str;

    /// Up to `limit` rows of this app in `table` with an id above `after_id`, in id order.
    async fn read_token_rows(
        &self,
        table: &'static TokenTable,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<TokenRow>, StoreError>;

    /// Writes `rewrites` (all in `table`), each with a compare-and-swap on its old stored form;
    /// returns how many were written (the others changed meanwhile).
    async fn rewrite_token_values(
        &self,
        table: &'static TokenTable,
        rewrites: Vec<Rewrite>,
    ) -> Result<u64, StoreError>;
}

/// Re-encrypts up to `limit` rows of `store` from `cursor` under its first key: the logic of
/// `SqliteStore::reencrypt_batch` and `PostgresStore::reencrypt_batch`.
pub(crate) async fn reencrypt_batch<S: TokenRows>(
    store: &S,
    cursor: ReencryptCursor,
    limit: u32,
) -> Result<(Option<ReencryptCursor>, ReencryptProgress), StoreError> {
    let cipher = store.cipher();
    if !cipher.encrypts() {
        return Err(StoreError::Config(format!(
            "re-encrypting needs keys: set {}",
            crate::encryption::ENCRYPTION_KEYS_ENV
        )));
    }
    let Some(table) = TOKEN_TABLES.get(cursor.table) else {
        return Ok((None, ReencryptProgress::default()));
    };
    let rows = store.read_token_rows(table, cursor.after_id, limit).await?;
    let mut progress = ReencryptProgress {
        rows: rows.len() as u64,
        ..ReencryptProgress::default()
    };
    let mut rewrites = Vec::new();
    for row in &rows {
        for (index, (column, stored)) in table.columns.iter().zip(&row.values).enumerate() {
            let Some(stored) = stored else { continue };
            if !cipher.needs_reseal(stored) {
                progress.current += 1;
                continue;
            }
            let owner = Owner {
                client_id: store.app(),
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
            let plaintext = cipher
                .open(field, &owner, stored.clone())
                .map_err(|source| StoreError::Decrypt {
                    table: table.name,
                    source,
                })?;
            rewrites.push(Rewrite {
                column: index,
                id: row.id,
                sealed: cipher.seal(field, &owner, &plaintext),
                stored: stored.clone(),
            });
        }
    }
    if !rewrites.is_empty() {
        progress.rewritten = store.rewrite_token_values(table, rewrites).await?;
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
    Ok(((next.table < TOKEN_TABLES.len()).then_some(next), progress))
}
