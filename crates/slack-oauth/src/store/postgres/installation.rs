//! `InstallationStore` for [`PostgresStore`]: saves, "latest" lookups, deletes, listings, rotated
//! tokens and leases.
//!
//! Every query about one org or workspace binds the same parameters, `$1` client id, `$2`
//! enterprise id, `$3` team id (and `$4` user id), and matches a missing org or team (SQL `NULL`)
//! through `COALESCE(column, '')`, the form our indexes hold, so that each "latest" lookup reads
//! one index entry with no sort (see the migration for why not `IS NOT DISTINCT FROM`).

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Row as _};
use time::OffsetDateTime;

use super::conns::Conn;
use super::rows::{
    app_id_value, bot_from_row, installation_from_row, merged_select_list, select_list,
    BOT_COLUMNS, INSTALLATION_COLUMNS,
};
use super::{to_db_time, PostgresStore};
use crate::encryption::{Field, Owner};
use crate::ids::ClientId;
use crate::installation::{Bot, Installation};
use crate::store::memory::expiring_by;
use crate::store::{
    InstallationQuery, InstallationStore, LeaseAcquisition, LostGrant, RotatedToken, StoreError,
    TokenUpdate,
};

/// Which org and workspace a statement is about (`None` is stored as SQL `NULL`).
#[derive(Clone, Copy)]
struct Key<'a> {
    enterprise_id: Option<&'a str>,
    team_id: Option<&'a str>,
}

impl<'a> Key<'a> {
    /// The key a lookup uses: org-wide queries match the rows stored with no team.
    fn lookup(query: &'a InstallationQuery) -> Self {
        Self {
            enterprise_id: query.enterprise_id.as_ref().map(|id| id.as_str()),
            team_id: query.lookup_team_id().map(|id| id.as_str()),
        }
    }

    /// Whose values the key's rows hold (`user_id` for user columns): the associated data of
    /// their sealed columns.
    fn owner(self, client_id: &'a ClientId, user_id: Option<&'a str>) -> Owner<'a> {
        Owner {
            client_id: client_id.as_str(),
            enterprise_id: self.enterprise_id,
            team_id: self.team_id,
            user_id,
        }
    }

    /// `$1`..`$3` matched NULL-safely, in the form the `*_latest_idx` indexes serve.
    fn predicate(alias: &str) -> String {
        format!(
            "{alias}.client_id = $1 \
             AND COALESCE({alias}.enterprise_id, '') = COALESCE($2, '') \
             AND ({alias}.enterprise_id IS NULL) = ($2 IS NULL) \
             AND COALESCE({alias}.team_id, '') = COALESCE($3, '') \
             AND ({alias}.team_id IS NULL) = ($3 IS NULL)"
        )
    }

    /// Binds `$1`..`$3`.
    fn bind<'q>(
        self,
        query: Query<'q, Postgres, PgArguments>,
        client_id: &'q ClientId,
    ) -> Query<'q, Postgres, PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(client_id.as_str())
            .bind(self.enterprise_id)
            .bind(self.team_id)
    }
}

/// The latest bot of a key (`$1`..`$3`).
pub(super) static FIND_BOT: LazyLock<String> = LazyLock::new(|| find_bot_sql(""));

fn find_bot_sql(gate: &str) -> String {
    format!(
        "SELECT {} FROM slack_bots b WHERE {} AND b.bot_token IS NOT NULL{gate} \
         ORDER BY b.installed_at DESC, b.id DESC LIMIT 1",
        select_list("b", &BOT_COLUMNS),
        Key::predicate("b")
    )
}

/// The latest installation of a key (`$1`..`$3`), with the latest bot as `merged_*` columns
/// when the installation has no bot token of its own: only then does a workspace lookup merge
/// the bot (`installation_from_row`), so otherwise the bot's index is not even read (the
/// outer-only condition becomes a one-time filter in front of the bot's index scan).
pub(super) static FIND_INSTALLATION: LazyLock<String> =
    LazyLock::new(|| find_installation_sql("", " AND i.bot_token IS NULL"));

/// The latest installation of one user (`$4`) in a key, with the latest bot merged.
pub(super) static FIND_USER_INSTALLATION: LazyLock<String> =
    LazyLock::new(|| find_installation_sql(" AND i.user_id = $4", ""));

fn find_installation_sql(user_predicate: &str, bot_gate: &str) -> String {
    format!(
        "SELECT {installation}, {merged} FROM (SELECT {installation} FROM \
         slack_installations i WHERE {predicate}{user_predicate} \
         ORDER BY i.installed_at DESC, i.id DESC LIMIT 1) i \
         LEFT JOIN LATERAL ({bot}) b ON TRUE",
        installation = select_list("i", &INSTALLATION_COLUMNS),
        merged = merged_select_list("b"),
        predicate = Key::predicate("i"),
        bot = find_bot_sql(bot_gate),
    )
}

/// The latest installation of every (org, workspace, user) of `$1`, with the workspace's latest
/// bot as `merged_*` columns. Both sides are computed once (`DISTINCT ON`) and hash-joined on a
/// NULL-safe key, so listing stays linear in the number of rows.
fn latest_per_user_sql() -> String {
    let columns = INSTALLATION_COLUMNS.join(", ");
    format!(
        "WITH latest AS ( \
           SELECT DISTINCT ON (enterprise_id, team_id, user_id) {columns} \
           FROM slack_installations WHERE client_id = $1 \
           ORDER BY enterprise_id, team_id, user_id, installed_at DESC, id DESC), \
         bots AS ( \
           SELECT DISTINCT ON (enterprise_id, team_id) enterprise_id, team_id, {bot_columns} \
           FROM slack_bots WHERE client_id = $1 AND bot_token IS NOT NULL \
           ORDER BY enterprise_id, team_id, installed_at DESC, id DESC) \
         SELECT {installation}, {merged} FROM latest i LEFT JOIN bots b \
           ON COALESCE(i.enterprise_id, '') = COALESCE(b.enterprise_id, '') \
           AND (i.enterprise_id IS NULL) = (b.enterprise_id IS NULL) \
           AND COALESCE(i.team_id, '') = COALESCE(b.team_id, '') \
           AND (i.team_id IS NULL) = (b.team_id IS NULL)",
        bot_columns = super::rows::MERGED_BOT_COLUMNS.join(", "),
        installation = select_list("i", &INSTALLATION_COLUMNS),
        merged = merged_select_list("b"),
    )
}

/// Orders like `Option<String>` in Rust: a missing org or team first, then bytewise (`"C"`
/// collation), whatever the database's locale.
const LIST_ORDER: &str = "i.enterprise_id COLLATE \"C\" NULLS FIRST, \
     i.team_id COLLATE \"C\" NULLS FIRST, i.user_id COLLATE \"C\"";

const INSERT_INSTALLATION: &str = "INSERT INTO slack_installations (client_id, app_id, \
     enterprise_id, enterprise_name, enterprise_url, team_id, team_name, bot_token, bot_id, \
     bot_user_id, bot_scopes, bot_refresh_token, bot_token_expires_at, user_id, user_token, \
     user_scopes, user_refresh_token, user_token_expires_at, incoming_webhook_url, \
     incoming_webhook_channel, incoming_webhook_channel_id, incoming_webhook_configuration_url, \
     is_enterprise_install, token_type, installed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
     $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)";

/// An installation and, when it has a bot token, its bot (`to_bot` copies the installation's
/// own values, so the bot row reuses the installation's parameters but for the bot token and
/// refresh token as stored in `slack_bots`, `$26` and `$27`: sealed, they are bound to their
/// table), in one statement: one round trip and one implicit transaction, where `BEGIN`, two
/// `INSERT`s and `COMMIT` took four. A data-modifying `WITH` runs whether or not the outer
/// statement reads it.
static SAVE_INSTALLATION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH i AS ({INSERT_INSTALLATION}) INSERT INTO slack_bots (client_id, app_id, \
         enterprise_id, enterprise_name, team_id, team_name, bot_token, bot_id, bot_user_id, \
         bot_scopes, bot_refresh_token, bot_token_expires_at, is_enterprise_install, \
         installed_at) SELECT $1, $2, $3, $4, $6, $7, $26, $9, $10, $11, $27, $13, $23, $25 \
         WHERE $26 IS NOT NULL"
    )
});

const INSERT_BOT: &str = "INSERT INTO slack_bots (client_id, app_id, enterprise_id, \
     enterprise_name, team_id, team_name, bot_token, bot_id, bot_user_id, bot_scopes, \
     bot_refresh_token, bot_token_expires_at, is_enterprise_install, installed_at) VALUES ($1, \
     $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// The change notification of a write by the store's own session, sent after the write
/// committed (`$1`..`$3` as [`Key::bind`] binds them), in a transaction that does not wait for
/// its commit to be flushed: the notification lock it takes is then held for microseconds, where
/// a NOTIFY inside the write would hold it through the write's durable commit and serialize all
/// concurrent writes. The payload is the one `slack_oauth_notify_change()` sends for a row.
const NOTIFY_CHANGE: &str = "SELECT set_config('synchronous_commit', 'off', true), \
     pg_notify('slack_oauth_changes', json_build_object('client_id', $1::text, \
     'enterprise_id', $2::text, 'team_id', $3::text, \
     'is_enterprise_install', $3::text IS NULL AND $2::text IS NOT NULL)::text)";

impl PostgresStore {
    /// Runs one write of `key`'s rows, then tells the other instances (their authorize caches)
    /// that `key` changed.
    async fn execute_and_notify(
        &self,
        query: Query<'_, Postgres, PgArguments>,
        key: Key<'_>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let done = query.execute(conn.busy()).await;
        conn.settle(done)?;
        self.notify_change(&mut conn, key).await;
        Ok(())
    }

    /// Notifies `slack_oauth_changes` that `key`'s rows changed, once their write committed.
    /// A failure is logged, not returned: the write is durable, and the other instances' caches
    /// fall back to their TTL (as they do when their `LISTEN` connection drops). On the app's
    /// pool ([`from_pool`](PostgresStore::from_pool)) the sessions are not the store's, so the
    /// triggers already notified.
    async fn notify_change(&self, conn: &mut Conn, key: Key<'_>) {
        if !matches!(conn, Conn::Own(_)) {
            return;
        }
        let notified = key
            .bind(sqlx::query(NOTIFY_CHANGE), &self.client_id)
            .execute(conn.busy())
            .await;
        if let Err(error) = conn.settle(notified) {
            tracing::warn!(%error, "a change notification could not be sent; other instances' authorize caches keep the old answer until their TTL");
        }
    }

    async fn insert_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        // Org-wide installs are stored with no team, so that lookups by enterprise find them.
        let team_id = if bot.is_enterprise_install {
            None
        } else {
            bot.team_id.as_ref().map(|id| id.as_str())
        };
        let key = Key {
            enterprise_id: bot.enterprise_id.as_ref().map(|id| id.as_str()),
            team_id,
        };
        let (token, refresh_token) = self.sealed_bot_tokens(
            "slack_bots",
            &key.owner(&self.client_id, None),
            Some(bot.bot_token.secret()),
            bot.bot_refresh_token.as_ref().map(|t| t.secret()),
        );
        let query = sqlx::query(INSERT_BOT)
            .bind(self.client_id.as_str())
            .bind(app_id_value(bot.app_id.as_ref().map(|id| id.as_str())))
            .bind(bot.enterprise_id.as_ref().map(|id| id.as_str()))
            .bind(bot.enterprise_name.as_deref())
            .bind(team_id)
            .bind(bot.team_name.as_deref())
            .bind(token)
            .bind(bot.bot_id.as_ref().map(|id| id.as_str()))
            .bind(bot.bot_user_id.as_ref().map(|id| id.as_str()))
            .bind(bot.bot_scopes.to_optional_string())
            .bind(refresh_token)
            .bind(bot.bot_token_expires_at.map(to_db_time))
            .bind(bot.is_enterprise_install)
            .bind(to_db_time(bot.installed_at));
        self.execute_and_notify(query, key).await
    }

    /// The latest installation of every (org, workspace, user), in [`LIST_ORDER`]; with a
    /// `deadline`, only those whose bot or user token expires at or before it, soonest first.
    async fn list(
        &self,
        deadline: Option<OffsetDateTime>,
    ) -> Result<Vec<Installation>, StoreError> {
        let sql = match deadline {
            None => format!("{} ORDER BY {LIST_ORDER}", latest_per_user_sql()),
            // A coarse filter in SQL: any of the expiries that may count (the merged bot's
            // counts when the merge applies, which needs the tokens compared as plaintext, and
            // sealed they are not); the exact one, on decoded values, below.
            Some(_) => format!(
                "{} WHERE LEAST(i.bot_token_expires_at, b.bot_token_expires_at, \
                 i.user_token_expires_at) <= $2 ORDER BY {LIST_ORDER}",
                latest_per_user_sql(),
            ),
        };
        let mut conn = self.conn().await?;
        let rows = sqlx::query(&sql)
            .bind(self.client_id.as_str())
            .bind(deadline.map(to_db_time))
            .fetch_all(conn.busy())
            .await;
        let rows = conn.settle(rows)?;
        drop(conn);
        let installations = rows
            .iter()
            .map(|row| installation_from_row(row, true, &self.cipher, self.client_id.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(deadline) = deadline else {
            return Ok(installations);
        };
        Ok(expiring_by(installations, deadline))
    }

    /// A bot's token and refresh token as stored in `table` (`slack_bots` or
    /// `slack_installations`) for `owner`: sealed when the store encrypts.
    fn sealed_bot_tokens(
        &self,
        table: &'static str,
        owner: &Owner<'_>,
        token: Option<&str>,
        refresh_token: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        let seal = |column, plaintext: Option<&str>| {
            plaintext.map(|plaintext| self.cipher.seal(Field { table, column }, owner, plaintext))
        };
        (
            seal("bot_token", token),
            seal("bot_refresh_token", refresh_token),
        )
    }

    /// The lease key: leases of apps sharing the table stay apart.
    fn lease_key(&self, name: &str) -> String {
        format!("{}/{name}", self.client_id)
    }

    /// The compare-and-swap of a rotated token, and the release of a lease `(name, holder)` in
    /// the same transaction.
    async fn write_rotated_token(
        &self,
        update: &TokenUpdate,
        release: Option<(&str, &str)>,
    ) -> Result<bool, StoreError> {
        let key = Key {
            enterprise_id: update.enterprise_id.as_ref().map(|id| id.as_str()),
            team_id: update.team_id.as_ref().map(|id| id.as_str()),
        };
        let expires_at = update.expires_at.map(to_db_time);
        let (lease_name, lease_holder) = match release {
            Some((name, holder)) => (Some(self.lease_key(name)), Some(holder)),
            None => (None, None),
        };
        // One statement, so one round trip between Slack's answer and the durable commit (the
        // window in which a killed process loses the new tokens): the compare-and-swap updates
        // and the lease release are data-modifying CTEs, atomic together. Bots before
        // installations, as in every write: a racing rotation blocks on the first row it shares
        // with us, then sees the refresh token changed and updates nothing. Each table gets the
        // new tokens as stored there, and matches every stored form of the old refresh token
        // there (plaintext, and its envelope under each key: [`RotatedColumns`]), `$7`..`$9`
        // for the first table and `$10`..`$12` for the second.
        let (sql, token, columns, tables, user_id): (_, _, _, &[&'static str], _) =
            match &update.token {
                RotatedToken::Bot { token } => (
                    format!(
                        "WITH bots AS (UPDATE slack_bots b SET bot_token = $7, \
                         bot_refresh_token = $8, bot_token_expires_at = $4 \
                         WHERE {} AND b.bot_refresh_token = ANY($9::text[]) RETURNING 1), \
                         installations AS (UPDATE slack_installations i SET bot_token = $10, \
                         bot_refresh_token = $11, bot_token_expires_at = $4 \
                         WHERE {} AND i.bot_refresh_token = ANY($12::text[]) RETURNING 1), \
                         released AS ({RELEASE_LEASE_CTE}) \
                         SELECT (SELECT count(*) FROM bots) + (SELECT count(*) FROM installations)",
                        Key::predicate("b"),
                        Key::predicate("i"),
                    ),
                    token.secret(),
                    ("bot_token", "bot_refresh_token"),
                    &["slack_bots", "slack_installations"],
                    None,
                ),
                RotatedToken::User { user_id, token } => (
                    format!(
                        "WITH installations AS (UPDATE slack_installations i SET user_token = $7, \
                         user_refresh_token = $8, user_token_expires_at = $4 \
                         WHERE {} AND i.user_refresh_token = ANY($9::text[]) AND i.user_id = $10 \
                         RETURNING 1), \
                         released AS ({RELEASE_LEASE_CTE}) \
                         SELECT count(*) FROM installations",
                        Key::predicate("i"),
                    ),
                    token.secret(),
                    ("user_token", "user_refresh_token"),
                    &["slack_installations"],
                    Some(user_id.as_str()),
                ),
            };
        let owner = key.owner(&self.client_id, user_id);
        let sealed: Vec<RotatedColumns> = tables
            .iter()
            .map(|table| RotatedColumns::seal(self, table, columns, &owner, token, update))
            .collect();
        let mut query = key
            .bind(sqlx::query(&sql), &self.client_id)
            .bind(expires_at)
            .bind(lease_name)
            .bind(lease_holder);
        for sealed in &sealed {
            query = query
                .bind(sealed.token.as_str())
                .bind(sealed.refresh_token.as_str())
                .bind(&sealed.previous_forms);
        }
        if let Some(user_id) = user_id {
            query = query.bind(user_id);
        }
        let mut conn = self.conn().await?;
        let changed = query
            .fetch_one(conn.busy())
            .await
            .and_then(|row| row.try_get::<i64, _>(0));
        let changed = conn.settle(changed)? > 0;
        if changed {
            self.notify_change(&mut conn, key).await;
        }
        Ok(changed)
    }
}

/// A rotated token's columns in one table, as stored there: the new token and refresh token
/// sealed for that table, and every stored form of the old refresh token there (for
/// `= ANY($n::text[])`).
struct RotatedColumns {
    token: String,
    refresh_token: String,
    previous_forms: Vec<String>,
}

impl RotatedColumns {
    /// `columns`: the token's column and its refresh token's in `table`.
    fn seal(
        store: &PostgresStore,
        table: &'static str,
        (token_column, refresh_column): (&'static str, &'static str),
        owner: &Owner<'_>,
        token: &str,
        update: &TokenUpdate,
    ) -> Self {
        let field = |column| Field { table, column };
        Self {
            token: store.cipher.seal(field(token_column), owner, token),
            refresh_token: store.cipher.seal(
                field(refresh_column),
                owner,
                update.refresh_token.secret(),
            ),
            previous_forms: store.cipher.stored_forms(
                field(refresh_column),
                owner,
                update.previous_refresh_token.secret(),
            ),
        }
    }
}

impl InstallationStore for PostgresStore {
    async fn save(&self, installation: &Installation) -> Result<(), StoreError> {
        let i = installation;
        let team_id = if i.is_enterprise_install {
            None
        } else {
            i.team_id.as_ref().map(|id| id.as_str())
        };
        let key = Key {
            enterprise_id: i.enterprise_id.as_ref().map(|id| id.as_str()),
            team_id,
        };
        let workspace = key.owner(&self.client_id, None);
        let user = key.owner(&self.client_id, Some(i.user_id.as_str()));
        let bot_token = i.bot_token.as_ref().map(|t| t.secret());
        let bot_refresh_token = i.bot_refresh_token.as_ref().map(|t| t.secret());
        let (installation_bot_token, installation_bot_refresh_token) = self.sealed_bot_tokens(
            "slack_installations",
            &workspace,
            bot_token,
            bot_refresh_token,
        );
        let (bots_bot_token, bots_bot_refresh_token) =
            self.sealed_bot_tokens("slack_bots", &workspace, bot_token, bot_refresh_token);
        let seal_user = |column, plaintext: Option<&str>| {
            plaintext.map(|plaintext| {
                let field = Field {
                    table: "slack_installations",
                    column,
                };
                self.cipher.seal(field, &user, plaintext)
            })
        };
        let user_token = seal_user("user_token", i.user_token.as_ref().map(|t| t.secret()));
        let user_refresh_token = seal_user(
            "user_refresh_token",
            i.user_refresh_token.as_ref().map(|t| t.secret()),
        );
        let incoming_webhook_url =
            seal_user("incoming_webhook_url", i.incoming_webhook_url.as_deref());
        let query = sqlx::query(&SAVE_INSTALLATION)
            .bind(self.client_id.as_str())
            .bind(app_id_value(i.app_id.as_ref().map(|id| id.as_str())))
            .bind(key.enterprise_id)
            .bind(i.enterprise_name.as_deref())
            .bind(i.enterprise_url.as_deref())
            .bind(team_id)
            .bind(i.team_name.as_deref())
            .bind(installation_bot_token)
            .bind(i.bot_id.as_ref().map(|id| id.as_str()))
            .bind(i.bot_user_id.as_ref().map(|id| id.as_str()))
            .bind(i.bot_scopes.to_optional_string())
            .bind(installation_bot_refresh_token)
            .bind(i.bot_token_expires_at.map(to_db_time))
            .bind(i.user_id.as_str())
            .bind(user_token)
            .bind(i.user_scopes.to_optional_string())
            .bind(user_refresh_token)
            .bind(i.user_token_expires_at.map(to_db_time))
            .bind(incoming_webhook_url)
            .bind(i.incoming_webhook_channel.as_deref())
            .bind(i.incoming_webhook_channel_id.as_deref())
            .bind(i.incoming_webhook_configuration_url.as_deref())
            .bind(i.is_enterprise_install)
            .bind(i.token_type.as_deref())
            .bind(to_db_time(i.installed_at))
            .bind(bots_bot_token)
            .bind(bots_bot_refresh_token);
        self.execute_and_notify(query, key).await
    }

    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        self.insert_bot(bot).await
    }

    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        let mut conn = self.conn().await?;
        let row = Key::lookup(query)
            .bind(sqlx::query(&FIND_BOT), &self.client_id)
            .fetch_optional(conn.busy())
            .await;
        let row = conn.settle(row)?;
        drop(conn);
        row.as_ref()
            .map(|row| bot_from_row(row, &self.cipher, self.client_id.as_str()))
            .transpose()
    }

    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        let (sql, user_id) = match &query.user_id {
            Some(user_id) => (&*FIND_USER_INSTALLATION, Some(user_id.as_str())),
            None => (&*FIND_INSTALLATION, None),
        };
        let mut statement = Key::lookup(query).bind(sqlx::query(sql), &self.client_id);
        if user_id.is_some() {
            statement = statement.bind(user_id);
        }
        let mut conn = self.conn().await?;
        let row = statement.fetch_optional(conn.busy()).await;
        let row = conn.settle(row)?;
        drop(conn);
        row.as_ref()
            .map(|row| {
                installation_from_row(
                    row,
                    query.user_id.is_some(),
                    &self.cipher,
                    self.client_id.as_str(),
                )
            })
            .transpose()
    }

    async fn delete_bot(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let key = Key::lookup(query);
        let sql = format!("DELETE FROM slack_bots b WHERE {}", Key::predicate("b"));
        self.execute_and_notify(key.bind(sqlx::query(&sql), &self.client_id), key)
            .await
    }

    async fn delete_installation(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let key = Key::lookup(query);
        let user = if query.user_id.is_some() {
            " AND i.user_id = $4"
        } else {
            ""
        };
        let sql = format!(
            "DELETE FROM slack_installations i WHERE {}{user}",
            Key::predicate("i")
        );
        self.execute_and_notify(
            key.bind(sqlx::query(&sql), &self.client_id)
                .bind(query.user_id.as_ref().map(|id| id.as_str())),
            key,
        )
        .await
    }

    async fn list_installations(&self) -> Result<Vec<Installation>, StoreError> {
        self.list(None).await
    }

    async fn list_expiring(
        &self,
        deadline: OffsetDateTime,
    ) -> Result<Vec<Installation>, StoreError> {
        self.list(Some(deadline)).await
    }

    async fn update_rotated_token(&self, update: &TokenUpdate) -> Result<bool, StoreError> {
        self.write_rotated_token(update, None).await
    }

    async fn update_rotated_token_and_release_lease(
        &self,
        update: &TokenUpdate,
        name: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        self.write_rotated_token(update, Some((name, holder))).await
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseAcquisition, StoreError> {
        // One statement: PostgreSQL serializes racing upserts on the primary key, and the loser
        // re-checks the WHERE against the winner's row, so exactly one holder gets a row. Expiry
        // is PostgreSQL's clock (clock_timestamp(), not the caller's nor the transaction's
        // start), so instances with skewed clocks agree.
        let upsert = sqlx::query(
            "INSERT INTO slack_oauth_leases AS l (name, holder, expires_at) VALUES ($1, $2, \
             (clock_timestamp() AT TIME ZONE 'UTC') + make_interval(secs => $3)) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
             expires_at = EXCLUDED.expires_at \
             WHERE l.expires_at <= (clock_timestamp() AT TIME ZONE 'UTC') \
             OR l.holder = EXCLUDED.holder \
             RETURNING l.intent",
        )
        .bind(self.lease_key(name))
        .bind(holder)
        .bind(ttl.as_secs_f64());
        let mut conn = self.conn().await?;
        let row = upsert.fetch_optional(conn.busy()).await;
        let row = conn.settle(row)?;
        match row {
            None => Ok(LeaseAcquisition::Busy),
            Some(row) => Ok(LeaseAcquisition::Held {
                pending_intent: row.try_get::<Option<String>, _>(0)?,
            }),
        }
    }

    async fn record_refresh_intent(
        &self,
        name: &str,
        holder: &str,
        fingerprint: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let recorded = self
            .execute(
                sqlx::query(
                    "UPDATE slack_oauth_leases SET intent = $3, \
                     expires_at = (clock_timestamp() AT TIME ZONE 'UTC') + make_interval(secs => $4) \
                     WHERE name = $1 AND holder = $2 \
                     AND expires_at > (clock_timestamp() AT TIME ZONE 'UTC')",
                )
                .bind(self.lease_key(name))
                .bind(holder)
                .bind(fingerprint)
                .bind(ttl.as_secs_f64()),
            )
            .await?;
        Ok(recorded.rows_affected() == 1)
    }

    async fn spend_refresh_budget(
        &self,
        limit: u32,
    ) -> Result<crate::store::BudgetSpend, StoreError> {
        // One statement: the function takes the app's advisory lock for its transaction.
        let spend = sqlx::query_as::<_, (bool, i32, f64)>(
            "SELECT spent, used, retry_after_seconds FROM slack_oauth_spend_refresh_budget($1, $2)",
        )
        .bind(self.client_id.as_str())
        .bind(i32::try_from(limit).unwrap_or(i32::MAX));
        let mut conn = self.conn().await?;
        let row = spend.fetch_one(conn.busy()).await;
        let (spent, used, retry_after) = conn.settle(row)?;
        let used = u32::try_from(used).unwrap_or(0);
        Ok(if spent {
            crate::store::BudgetSpend::Spent { used }
        } else {
            crate::store::BudgetSpend::Exhausted {
                used,
                retry_after: Duration::try_from_secs_f64(retry_after)
                    .unwrap_or(crate::store::BUDGET_WINDOW)
                    .clamp(Duration::from_millis(1), crate::store::BUDGET_WINDOW),
            }
        })
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(RELEASE_LEASE)
                .bind(self.lease_key(name))
                .bind(holder),
        )
        .await?;
        Ok(())
    }

    async fn abandon_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        // One statement: a row without an intent goes; one with an intent stays, expired.
        self.execute(
            sqlx::query(
                "WITH gone AS (DELETE FROM slack_oauth_leases WHERE name = $1 AND holder = $2 \
                 AND intent IS NULL RETURNING name) \
                 UPDATE slack_oauth_leases SET expires_at = '-infinity' \
                 WHERE name = $1 AND holder = $2 AND intent IS NOT NULL",
            )
            .bind(self.lease_key(name))
            .bind(holder),
        )
        .await?;
        Ok(())
    }

    async fn flag_reinstall(&self, grant: &LostGrant) -> Result<bool, StoreError> {
        let key = Key {
            enterprise_id: grant.enterprise_id.as_ref().map(|id| id.as_str()),
            team_id: grant.team_id.as_ref().map(|id| id.as_str()),
        };
        let user_id = grant.user_id.as_ref().map(|id| id.as_str());
        let owner = key.owner(&self.client_id, user_id);
        // Every stored form of the lost refresh token in `table` (`$6`, and `$7` for the second
        // table of a bot's grant).
        let lost_in = |table: &'static str, column: &'static str| {
            self.cipher.stored_forms(
                Field { table, column },
                &owner,
                grant.refresh_token.secret(),
            )
        };
        let (sql, lost) = match user_id {
            None => (
                format!(
                    "WITH bots AS (UPDATE slack_bots b SET needs_reinstall_reason = $4, \
                     needs_reinstall_at = $5 WHERE {bots} \
                     AND b.bot_refresh_token = ANY($6::text[]) \
                     AND b.needs_reinstall_reason IS NULL RETURNING 1), \
                     installations AS (UPDATE slack_installations i \
                     SET bot_needs_reinstall_reason = $4, bot_needs_reinstall_at = $5 \
                     WHERE {installations} AND i.bot_refresh_token = ANY($7::text[]) \
                     AND i.bot_needs_reinstall_reason IS NULL RETURNING 1) \
                     SELECT (SELECT count(*) FROM bots) + (SELECT count(*) FROM installations)",
                    bots = Key::predicate("b"),
                    installations = Key::predicate("i"),
                ),
                vec![
                    lost_in("slack_bots", "bot_refresh_token"),
                    lost_in("slack_installations", "bot_refresh_token"),
                ],
            ),
            Some(_) => (
                format!(
                    "WITH flagged AS (UPDATE slack_installations i \
                     SET user_needs_reinstall_reason = $4, user_needs_reinstall_at = $5 \
                     WHERE {} AND i.user_refresh_token = ANY($6::text[]) AND i.user_id = $7 \
                     AND i.user_needs_reinstall_reason IS NULL RETURNING 1) \
                     SELECT count(*) FROM flagged",
                    Key::predicate("i"),
                ),
                vec![lost_in("slack_installations", "user_refresh_token")],
            ),
        };
        let mut query = key
            .bind(sqlx::query(&sql), &self.client_id)
            .bind(grant.flag.reason.as_str())
            .bind(to_db_time(grant.flag.flagged_at));
        for forms in &lost {
            query = query.bind(forms);
        }
        if let Some(user_id) = user_id {
            query = query.bind(user_id);
        }
        let mut conn = self.conn().await?;
        let row = query.fetch_one(conn.busy()).await;
        let flagged = conn.settle(row)?.try_get::<i64, _>(0)? > 0;
        if flagged {
            self.notify_change(&mut conn, key).await;
        }
        Ok(flagged)
    }
}

/// Deletes the lease row `$1` if `$2` holds it (its intent goes with it).
const RELEASE_LEASE: &str = "DELETE FROM slack_oauth_leases WHERE name = $1 AND holder = $2";
/// [`RELEASE_LEASE`] inside the rotated-token write (`$5`, `$6`; NULL when there is no lease to
/// release, which matches no row).
const RELEASE_LEASE_CTE: &str =
    "DELETE FROM slack_oauth_leases WHERE name = $5 AND holder = $6 RETURNING 1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_wide_lookups_ignore_the_team() {
        let mut org_via_workspace = InstallationQuery::org("E1").user("U1");
        org_via_workspace.team_id = Some("T9".into());
        let key = Key::lookup(&org_via_workspace);
        assert_eq!(key.enterprise_id, Some("E1"));
        assert_eq!(key.team_id, None);
        let team = InstallationQuery::team("T1");
        let key = Key::lookup(&team);
        assert_eq!((key.enterprise_id, key.team_id), (None, Some("T1")));
    }

    #[test]
    fn key_predicate_matches_the_index_expressions() {
        let predicate = Key::predicate("b");
        assert!(predicate.contains("COALESCE(b.enterprise_id, '') = COALESCE($2, '')"));
        assert!(predicate.contains("(b.team_id IS NULL) = ($3 IS NULL)"));
    }
}
