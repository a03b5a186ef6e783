//! `InstallationStore` for `SqliteStore`: `slack_installations` and `slack_bots` rows.

use std::sync::LazyLock;

use time::OffsetDateTime;

use super::codec::{expiry_seconds, format_installed_at, id_or_empty, Reader, RowRef};
use super::statement::{statement, Statement};
use super::{reading, SqliteStore};
use crate::encryption::{Field, Owner, TokenCipher};
use crate::installation::{Bot, Installation};
use crate::store::memory::expiring_by;
use crate::store::{
    InstallationQuery, InstallationStore, LostGrant, RotatedToken, StoreError, TokenUpdate,
};

const INSERT_INSTALLATION: &str = "INSERT INTO slack_installations (client_id, app_id, \
    enterprise_id, enterprise_name, enterprise_url, team_id, team_name, bot_token, bot_id, \
    bot_user_id, bot_scopes, bot_refresh_token, bot_token_expires_at, user_id, user_token, \
    user_scopes, user_refresh_token, user_token_expires_at, incoming_webhook_url, \
    incoming_webhook_channel, incoming_webhook_channel_id, incoming_webhook_configuration_url, \
    is_enterprise_install, token_type, installed_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const INSERT_BOT: &str = "INSERT INTO slack_bots (client_id, app_id, enterprise_id, \
    enterprise_name, team_id, team_name, bot_token, bot_id, bot_user_id, bot_scopes, \
    bot_refresh_token, bot_token_expires_at, is_enterprise_install, installed_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// The installation columns, read from alias `i`, and the latest bot's, from alias `b`.
const SELECT_INSTALLATION: &str = "SELECT i.app_id, i.enterprise_id, i.enterprise_name, \
    i.enterprise_url, i.team_id, i.team_name, i.bot_token, i.bot_id, i.bot_user_id, \
    i.bot_scopes, i.bot_refresh_token, i.bot_token_expires_at, i.user_id, i.user_token, \
    i.user_scopes, i.user_refresh_token, i.user_token_expires_at, i.incoming_webhook_url, \
    i.incoming_webhook_channel, i.incoming_webhook_channel_id, \
    i.incoming_webhook_configuration_url, i.is_enterprise_install, i.token_type, i.installed_at, \
    i.bot_needs_reinstall_reason, i.bot_needs_reinstall_at, \
    i.user_needs_reinstall_reason, i.user_needs_reinstall_at, \
    b.bot_token AS latest_bot_token, b.bot_id AS latest_bot_id, \
    b.bot_user_id AS latest_bot_user_id, b.bot_scopes AS latest_bot_scopes, \
    b.bot_refresh_token AS latest_bot_refresh_token, \
    b.bot_token_expires_at AS latest_bot_token_expires_at, \
    b.needs_reinstall_reason AS latest_bot_needs_reinstall_reason, \
    b.needs_reinstall_at AS latest_bot_needs_reinstall_at";

const SELECT_BOT: &str = "SELECT app_id, enterprise_id, enterprise_name, team_id, team_name, \
    bot_token, bot_id, bot_user_id, bot_scopes, bot_refresh_token, bot_token_expires_at, \
    is_enterprise_install, installed_at, needs_reinstall_reason, needs_reinstall_at \
    FROM slack_bots";

/// "Latest" everywhere: newest `installed_at`, ties to the newest row. Both orders are served
/// by index seeks (see the migration), with no sort.
const LATEST: &str = "ORDER BY installed_at DESC, id DESC";

/// The compare-and-swap of a rotated bot token in one table (`slack_installations` or
/// `slack_bots`): new token, refresh token and expiry where the old refresh token still is.
macro_rules! update_bot_token {
    ($table:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET bot_token = ?, bot_refresh_token = ?, bot_token_expires_at = ? \
             WHERE client_id = ? AND enterprise_id = ? AND team_id = ? \
             AND bot_refresh_token IN (SELECT value FROM json_each(?))"
        )
    };
}

/// Every version of the org's or workspace's bots: `?` client id, org, team.
const DELETE_BOTS: &str =
    "DELETE FROM slack_bots WHERE client_id = ? AND enterprise_id = ? AND team_id = ?";

/// Every installation version of the org or workspace: `?` client id, org, team.
const DELETE_INSTALLATIONS: &str =
    "DELETE FROM slack_installations WHERE client_id = ? AND enterprise_id = ? AND team_id = ?";

/// The latest bot of an org or workspace: `?1` client id, `?2` org, `?3` team.
static FIND_BOT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{SELECT_BOT} WHERE client_id = ?1 AND enterprise_id = ?2 AND team_id = ?3 {LATEST} \
         LIMIT 1"
    )
});

/// The latest installation of an org or workspace (`?1` to `?3` as in [`FIND_BOT`]), with its
/// latest bot, in one statement so that both come from one snapshot.
static FIND_INSTALLATION: LazyLock<String> = LazyLock::new(|| find_installation_sql(""));

/// [`FIND_INSTALLATION`] of one user, `?4`.
static FIND_INSTALLATION_OF_USER: LazyLock<String> =
    LazyLock::new(|| find_installation_sql("AND user_id = ?4"));

fn find_installation_sql(user_filter: &str) -> String {
    format!(
        "{SELECT_INSTALLATION} FROM (SELECT * FROM slack_installations WHERE client_id = ?1 \
         AND enterprise_id = ?2 AND team_id = ?3 {user_filter} {LATEST} LIMIT 1) AS i \
         LEFT JOIN (SELECT bot_token, bot_id, bot_user_id, bot_scopes, bot_refresh_token, \
         bot_token_expires_at, needs_reinstall_reason, needs_reinstall_at FROM slack_bots WHERE client_id = ?1 AND enterprise_id = ?2 \
         AND team_id = ?3 {LATEST} LIMIT 1) AS b ON 1 = 1"
    )
}

/// The latest installation of every (org, team, user) with the latest bot of its org/team.
/// `?1` is the client id; the caller appends a filter on `i` and the order.
fn select_latest_per_user() -> String {
    format!(
        "WITH i AS (SELECT *, row_number() OVER (PARTITION BY enterprise_id, team_id, user_id \
         {LATEST}) AS latest_rank FROM slack_installations WHERE client_id = ?1), \
         b AS (SELECT *, row_number() OVER (PARTITION BY enterprise_id, team_id {LATEST}) \
         AS latest_rank \
         FROM slack_bots WHERE client_id = ?1) \
         {SELECT_INSTALLATION} FROM i LEFT JOIN b ON b.latest_rank = 1 \
         AND b.enterprise_id = i.enterprise_id AND b.team_id = i.team_id WHERE i.latest_rank = 1"
    )
}

/// Which rows a query names: the client, the org (`''` for none), the team (`''` for none or
/// org-wide).
fn scope<'q>(store: &'q SqliteStore, query: &'q InstallationQuery) -> [&'q str; 3] {
    [
        store.client_id.as_str(),
        id_or_empty(query.enterprise_id.as_ref()),
        id_or_empty(query.lookup_team_id()),
    ]
}

/// The first row of `sql` with `values`, decoded.
fn first_row<T>(
    connection: &rusqlite::Connection,
    sql: &str,
    values: &[String],
    decode: impl FnOnce(RowRef<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(reading)?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(values))
        .map_err(reading)?;
    match rows.next().map_err(reading)? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Decodes an installation row of [`SELECT_INSTALLATION`], merging the latest bot when `merge`
/// says so (a user lookup, or an installation without a bot token).
fn installation_from_row(
    row: RowRef<'_>,
    always_merge: bool,
    cipher: &TokenCipher,
    client_id: &str,
) -> Result<Installation, StoreError> {
    let r = Reader {
        row,
        table: "slack_installations",
    };
    let user_id: String = r.required("user_id")?;
    let enterprise_id: Option<String> = r.optional("enterprise_id")?;
    let team_id: Option<String> = r.optional("team_id")?;
    let workspace = Owner {
        client_id,
        enterprise_id: enterprise_id.as_deref(),
        team_id: team_id.as_deref(),
        user_id: None,
    };
    let user = Owner {
        user_id: Some(&user_id),
        ..workspace
    };
    let mut i = Installation::new(user_id.as_str(), r.installed_at("installed_at")?);
    i.app_id = r.optional("app_id")?;
    i.enterprise_name = r.text("enterprise_name")?;
    i.enterprise_url = r.text("enterprise_url")?;
    i.team_name = r.text("team_name")?;
    i.bot_token = r.sealed("bot_token", "bot_token", cipher, &workspace)?;
    i.bot_id = r.optional("bot_id")?;
    i.bot_user_id = r.optional("bot_user_id")?;
    i.bot_scopes = r.scopes("bot_scopes")?;
    i.bot_refresh_token = r.sealed("bot_refresh_token", "bot_refresh_token", cipher, &workspace)?;
    i.bot_token_expires_at = r.expiry("bot_token_expires_at")?;
    i.user_token = r.sealed("user_token", "user_token", cipher, &user)?;
    i.user_scopes = r.scopes("user_scopes")?;
    i.user_refresh_token = r.sealed("user_refresh_token", "user_refresh_token", cipher, &user)?;
    i.user_token_expires_at = r.expiry("user_token_expires_at")?;
    i.incoming_webhook_url = r.sealed(
        "incoming_webhook_url",
        "incoming_webhook_url",
        cipher,
        &user,
    )?;
    i.incoming_webhook_channel = r.text("incoming_webhook_channel")?;
    i.incoming_webhook_channel_id = r.text("incoming_webhook_channel_id")?;
    i.incoming_webhook_configuration_url = r.text("incoming_webhook_configuration_url")?;
    i.is_enterprise_install = r.flag("is_enterprise_install")?;
    i.token_type = r.text("token_type")?;
    i.bot_needs_reinstall =
        r.reinstall_flag("bot_needs_reinstall_reason", "bot_needs_reinstall_at")?;
    i.user_needs_reinstall =
        r.reinstall_flag("user_needs_reinstall_reason", "user_needs_reinstall_at")?;

    let b = Reader {
        row,
        table: "slack_bots",
    };
    if always_merge || i.bot_token.is_none() {
        // The latest bot is of the same org and workspace (the join's condition).
        if let Some(token) = b.sealed("latest_bot_token", "bot_token", cipher, &workspace)? {
            i.bot_token = Some(token);
            i.bot_id = b.optional("latest_bot_id")?;
            i.bot_user_id = b.optional("latest_bot_user_id")?;
            i.bot_scopes = b.scopes("latest_bot_scopes")?;
            i.bot_refresh_token = b.sealed(
                "latest_bot_refresh_token",
                "bot_refresh_token",
                cipher,
                &workspace,
            )?;
            i.bot_token_expires_at = b.expiry("latest_bot_token_expires_at")?;
            i.bot_needs_reinstall = b.reinstall_flag(
                "latest_bot_needs_reinstall_reason",
                "latest_bot_needs_reinstall_at",
            )?;
        }
    }
    i.enterprise_id = enterprise_id.map(Into::into);
    i.team_id = team_id.map(Into::into);
    Ok(i)
}

fn bot_from_row(row: RowRef<'_>, cipher: &TokenCipher, client_id: &str) -> Result<Bot, StoreError> {
    let r = Reader {
        row,
        table: "slack_bots",
    };
    let enterprise_id: Option<String> = r.optional("enterprise_id")?;
    let team_id: Option<String> = r.optional("team_id")?;
    let workspace = Owner {
        client_id,
        enterprise_id: enterprise_id.as_deref(),
        team_id: team_id.as_deref(),
        user_id: None,
    };
    let token: String = r
        .sealed("bot_token", "bot_token", cipher, &workspace)?
        .ok_or_else(|| StoreError::Corrupt {
            table: "slack_bots",
            detail: "column bot_token: is empty, expected a token".to_owned(),
        })?;
    let mut bot = Bot::new(token.into(), r.installed_at("installed_at")?);
    bot.app_id = r.optional("app_id")?;
    bot.enterprise_name = r.text("enterprise_name")?;
    bot.team_name = r.text("team_name")?;
    bot.bot_id = r.optional("bot_id")?;
    bot.bot_user_id = r.optional("bot_user_id")?;
    bot.bot_scopes = r.scopes("bot_scopes")?;
    bot.bot_refresh_token =
        r.sealed("bot_refresh_token", "bot_refresh_token", cipher, &workspace)?;
    bot.bot_token_expires_at = r.expiry("bot_token_expires_at")?;
    bot.is_enterprise_install = r.flag("is_enterprise_install")?;
    bot.needs_reinstall = r.reinstall_flag("needs_reinstall_reason", "needs_reinstall_at")?;
    bot.enterprise_id = enterprise_id.map(Into::into);
    bot.team_id = team_id.map(Into::into);
    Ok(bot)
}

impl SqliteStore {
    /// The bot's tokens as stored in `slack_bots`: sealed when the store encrypts.
    fn sealed_bot_tokens(&self, bot: &Bot) -> (String, Option<String>) {
        let team_id = if bot.is_enterprise_install {
            None
        } else {
            bot.team_id.as_ref()
        };
        let owner = Owner {
            client_id: self.client_id.as_str(),
            enterprise_id: bot.enterprise_id.as_ref().map(|id| id.as_str()),
            team_id: team_id.map(|id| id.as_str()),
            user_id: None,
        };
        let seal = |column, plaintext: &str| {
            self.cipher.seal(
                Field {
                    table: "slack_bots",
                    column,
                },
                &owner,
                plaintext,
            )
        };
        (
            seal("bot_token", bot.bot_token.secret()),
            bot.bot_refresh_token
                .as_ref()
                .map(|token| seal("bot_refresh_token", token.secret())),
        )
    }

    /// The insert of a bot version; `tokens` from [`sealed_bot_tokens`](Self::sealed_bot_tokens).
    fn insert_bot_statement<'a>(
        &'a self,
        bot: &'a Bot,
        tokens: &'a (String, Option<String>),
        installed_at: &'a str,
        scopes: &'a str,
    ) -> Statement<'a> {
        // Org-wide bots are stored with no team, where org-wide lookups look.
        let team_id = if bot.is_enterprise_install {
            None
        } else {
            bot.team_id.as_ref()
        };
        statement!(
            INSERT_BOT,
            self.client_id.as_str(),
            id_or_empty(bot.app_id.as_ref()),
            id_or_empty(bot.enterprise_id.as_ref()),
            bot.enterprise_name.as_deref(),
            id_or_empty(team_id),
            bot.team_name.as_deref(),
            tokens.0.as_str(),
            id_or_empty(bot.bot_id.as_ref()),
            id_or_empty(bot.bot_user_id.as_ref()),
            scopes,
            tokens.1.as_deref(),
            expiry_seconds(bot.bot_token_expires_at),
            bot.is_enterprise_install,
            installed_at,
        )
    }

    /// The latest installations per (org, team, user), restricted by `filter` (SQL on `i` and
    /// `b`, binding `?2` when it needs a parameter).
    async fn latest_per_user(
        &self,
        filter: &str,
        deadline: Option<i64>,
    ) -> Result<Vec<Installation>, StoreError> {
        let sql = format!(
            "{} {filter} ORDER BY i.enterprise_id, i.team_id, i.user_id",
            select_latest_per_user()
        );
        let client_id = self.client_id.clone();
        let cipher = self.cipher.clone();
        self.read(move |connection| {
            // Listing runs rarely (rotation sweeps, the CLI): not worth a cache slot.
            let mut statement = connection.prepare(&sql).map_err(reading)?;
            let mut rows = match deadline {
                Some(deadline) => statement.query(rusqlite::params![client_id.as_str(), deadline]),
                None => statement.query([client_id.as_str()]),
            }
            .map_err(reading)?;
            let mut installations = Vec::new();
            while let Some(row) = rows.next().map_err(reading)? {
                installations.push(installation_from_row(
                    row,
                    true,
                    &cipher,
                    client_id.as_str(),
                )?);
            }
            Ok(installations)
        })
        .await
    }
}

impl InstallationStore for SqliteStore {
    async fn save(&self, installation: &Installation) -> Result<(), StoreError> {
        let i = installation;
        let team_id = if i.is_enterprise_install {
            None
        } else {
            i.team_id.as_ref()
        };
        let installed_at = format_installed_at(i.installed_at)?;
        let bot_scopes = i.bot_scopes.to_string();
        let user_scopes = i.user_scopes.to_optional_string();
        let workspace = Owner {
            client_id: self.client_id.as_str(),
            enterprise_id: i.enterprise_id.as_ref().map(|id| id.as_str()),
            team_id: team_id.map(|id| id.as_str()),
            user_id: None,
        };
        let user = Owner {
            user_id: Some(i.user_id.as_str()),
            ..workspace
        };
        let seal = |column, owner: &Owner<'_>, plaintext: Option<&str>| {
            plaintext.map(|plaintext| {
                let field = Field {
                    table: "slack_installations",
                    column,
                };
                self.cipher.seal(field, owner, plaintext)
            })
        };
        let bot_token = seal(
            "bot_token",
            &workspace,
            i.bot_token.as_ref().map(|t| t.secret()),
        );
        let bot_refresh_token = seal(
            "bot_refresh_token",
            &workspace,
            i.bot_refresh_token.as_ref().map(|t| t.secret()),
        );
        let user_token = seal(
            "user_token",
            &user,
            i.user_token.as_ref().map(|t| t.secret()),
        );
        let user_refresh_token = seal(
            "user_refresh_token",
            &user,
            i.user_refresh_token.as_ref().map(|t| t.secret()),
        );
        let incoming_webhook_url = seal(
            "incoming_webhook_url",
            &user,
            i.incoming_webhook_url.as_deref(),
        );
        let mut statements = vec![statement!(
            INSERT_INSTALLATION,
            self.client_id.as_str(),
            id_or_empty(i.app_id.as_ref()),
            id_or_empty(i.enterprise_id.as_ref()),
            i.enterprise_name.as_deref(),
            i.enterprise_url.as_deref(),
            id_or_empty(team_id),
            i.team_name.as_deref(),
            bot_token.as_deref(),
            i.bot_id.as_ref().map(|id| id.as_str()),
            i.bot_user_id.as_ref().map(|id| id.as_str()),
            bot_scopes.as_str(),
            bot_refresh_token.as_deref(),
            expiry_seconds(i.bot_token_expires_at),
            i.user_id.as_str(),
            user_token.as_deref(),
            user_scopes.as_deref(),
            user_refresh_token.as_deref(),
            expiry_seconds(i.user_token_expires_at),
            incoming_webhook_url.as_deref(),
            i.incoming_webhook_channel.as_deref(),
            i.incoming_webhook_channel_id.as_deref(),
            i.incoming_webhook_configuration_url.as_deref(),
            i.is_enterprise_install,
            i.token_type.as_deref(),
            installed_at.as_str(),
        )];
        let bot = i
            .to_bot()
            .map(|bot| {
                let installed_at = format_installed_at(bot.installed_at)?;
                let scopes = bot.bot_scopes.to_string();
                let tokens = self.sealed_bot_tokens(&bot);
                Ok::<_, StoreError>((bot, tokens, installed_at, scopes))
            })
            .transpose()?;
        if let Some((bot, tokens, installed_at, scopes)) = &bot {
            statements.push(self.insert_bot_statement(bot, tokens, installed_at, scopes));
        }
        self.write(statements).await?;
        Ok(())
    }

    async fn save_bot(&self, bot: &Bot) -> Result<(), StoreError> {
        let installed_at = format_installed_at(bot.installed_at)?;
        let scopes = bot.bot_scopes.to_string();
        let tokens = self.sealed_bot_tokens(bot);
        self.write(vec![self.insert_bot_statement(
            bot,
            &tokens,
            &installed_at,
            &scopes,
        )])
        .await?;
        Ok(())
    }

    async fn find_bot(&self, query: &InstallationQuery) -> Result<Option<Bot>, StoreError> {
        let values = scope(self, query).map(str::to_owned);
        let (cipher, client_id) = (self.cipher.clone(), self.client_id.clone());
        self.read(move |connection| {
            first_row(connection, &FIND_BOT, &values, |row| {
                bot_from_row(row, &cipher, client_id.as_str())
            })
        })
        .await
    }

    async fn find_installation(
        &self,
        query: &InstallationQuery,
    ) -> Result<Option<Installation>, StoreError> {
        let mut values: Vec<String> = scope(self, query).map(str::to_owned).into();
        let of_user = match &query.user_id {
            Some(user_id) => {
                values.push(user_id.as_str().to_owned());
                true
            }
            None => false,
        };
        let (cipher, client_id) = (self.cipher.clone(), self.client_id.clone());
        self.read(move |connection| {
            let sql = if of_user {
                &*FIND_INSTALLATION_OF_USER
            } else {
                &*FIND_INSTALLATION
            };
            first_row(connection, sql, &values, |row| {
                installation_from_row(row, of_user, &cipher, client_id.as_str())
            })
        })
        .await
    }

    async fn delete_bot(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let [client_id, enterprise_id, team_id] = scope(self, query);
        self.write(vec![statement!(
            DELETE_BOTS,
            client_id,
            enterprise_id,
            team_id
        )])
        .await?;
        Ok(())
    }

    async fn delete_installation(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let [client_id, enterprise_id, team_id] = scope(self, query);
        let statement = match &query.user_id {
            Some(user_id) => statement!(
                "DELETE FROM slack_installations WHERE client_id = ? AND enterprise_id = ? \
                 AND team_id = ? AND user_id = ?",
                client_id,
                enterprise_id,
                team_id,
                user_id.as_str(),
            ),
            None => statement!(DELETE_INSTALLATIONS, client_id, enterprise_id, team_id),
        };
        self.write(vec![statement]).await?;
        Ok(())
    }

    async fn delete_all(&self, query: &InstallationQuery) -> Result<(), StoreError> {
        let [client_id, enterprise_id, team_id] = scope(self, query);
        self.write(vec![
            statement!(DELETE_BOTS, client_id, enterprise_id, team_id),
            statement!(DELETE_INSTALLATIONS, client_id, enterprise_id, team_id),
        ])
        .await?;
        Ok(())
    }

    async fn list_installations(&self) -> Result<Vec<Installation>, StoreError> {
        self.latest_per_user("", None).await
    }

    async fn list_expiring(
        &self,
        deadline: OffsetDateTime,
    ) -> Result<Vec<Installation>, StoreError> {
        // A coarse filter in SQL (text expiries, which Python may have written, always pass it);
        // the exact one, on decoded values, below.
        let merged_bot_expiry = "CASE WHEN b.bot_token IS NOT NULL THEN b.bot_token_expires_at \
            ELSE i.bot_token_expires_at END";
        let filter = format!(
            "AND ((COALESCE(b.bot_token, i.bot_token) IS NOT NULL \
             AND (typeof({merged_bot_expiry}) = 'text' OR {merged_bot_expiry} <= ?2)) \
             OR (i.user_token IS NOT NULL \
             AND (typeof(i.user_token_expires_at) = 'text' OR i.user_token_expires_at <= ?2)))"
        );
        let candidates = self
            .latest_per_user(&filter, Some(deadline.unix_timestamp()))
            .await?;
        Ok(expiring_by(candidates, deadline))
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
        ttl: std::time::Duration,
    ) -> Result<crate::store::LeaseAcquisition, StoreError> {
        super::state::try_acquire_lease(self, name, holder, ttl).await
    }

    async fn record_refresh_intent(
        &self,
        name: &str,
        holder: &str,
        fingerprint: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        super::state::record_refresh_intent(self, name, holder, fingerprint, ttl).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        super::state::release_lease(self, name, holder).await
    }

    async fn abandon_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        super::state::abandon_lease(self, name, holder).await
    }

    async fn spend_refresh_budget(
        &self,
        limit: u32,
    ) -> Result<crate::store::BudgetSpend, StoreError> {
        super::state::spend_refresh_budget(self, limit).await
    }

    async fn flag_reinstall(&self, grant: &LostGrant) -> Result<bool, StoreError> {
        let client_id = self.client_id.as_str();
        let enterprise_id = id_or_empty(grant.enterprise_id.as_ref());
        let team_id = id_or_empty(grant.team_id.as_ref());
        let reason = grant.flag.reason.as_str();
        let at = grant.flag.flagged_at.unix_timestamp();
        let owner = Owner {
            client_id,
            enterprise_id: Some(enterprise_id),
            team_id: Some(team_id),
            user_id: grant.user_id.as_ref().map(|id| id.as_str()),
        };
        // Every stored form of the lost refresh token in `table`, as a JSON array.
        let lost_in = |table: &'static str, column: &'static str| {
            let forms = self.cipher.stored_forms(
                Field { table, column },
                &owner,
                grant.refresh_token.secret(),
            );
            serde_json::to_string(&forms)
                .map_err(|error| StoreError::Config(format!("cannot encode a query: {error}")))
        };
        let changed = match &grant.user_id {
            None => {
                let lost_bots = lost_in("slack_bots", "bot_refresh_token")?;
                let lost_installations = lost_in("slack_installations", "bot_refresh_token")?;
                let statements = [
                    (
                        "UPDATE slack_bots SET needs_reinstall_reason = ?, \
                         needs_reinstall_at = ? WHERE client_id = ? AND enterprise_id = ? \
                         AND team_id = ? AND bot_refresh_token IN (SELECT value FROM json_each(?)) \
                         AND needs_reinstall_reason IS NULL",
                        lost_bots.as_str(),
                    ),
                    (
                        "UPDATE slack_installations SET bot_needs_reinstall_reason = ?, \
                         bot_needs_reinstall_at = ? WHERE client_id = ? AND enterprise_id = ? \
                         AND team_id = ? AND bot_refresh_token IN (SELECT value FROM json_each(?)) \
                         AND bot_needs_reinstall_reason IS NULL",
                        lost_installations.as_str(),
                    ),
                ]
                .into_iter()
                .map(|(sql, lost)| {
                    statement!(sql, reason, at, client_id, enterprise_id, team_id, lost)
                })
                .collect();
                self.write(statements).await?
            }
            Some(user_id) => {
                let lost = lost_in("slack_installations", "user_refresh_token")?;
                self.write(vec![statement!(
                    "UPDATE slack_installations SET user_needs_reinstall_reason = ?, \
                     user_needs_reinstall_at = ? WHERE client_id = ? AND enterprise_id = ? \
                     AND team_id = ? AND user_id = ? \
                     AND user_refresh_token IN (SELECT value FROM json_each(?)) \
                     AND user_needs_reinstall_reason IS NULL",
                    reason,
                    at,
                    client_id,
                    enterprise_id,
                    team_id,
                    user_id.as_str(),
                    lost.as_str(),
                )])
                .await?
            }
        };
        Ok(changed.iter().sum::<u64>() > 0)
    }
}

/// A rotated token's columns in one table, as stored there: the new token and refresh token
/// sealed for that table, and every stored form of the old refresh token (a JSON array for
/// `json_each`) for the compare-and-swap.
struct RotatedColumns {
    token: String,
    refresh_token: String,
    previous_forms: String,
}

impl RotatedColumns {
    /// `columns`: the token's column and its refresh token's in `table`.
    fn seal(
        cipher: &TokenCipher,
        table: &'static str,
        (token_column, refresh_column): (&'static str, &'static str),
        owner: &Owner<'_>,
        token: &str,
        update: &TokenUpdate,
    ) -> Result<Self, StoreError> {
        let field = |column| Field { table, column };
        let previous = cipher.stored_forms(
            field(refresh_column),
            owner,
            update.previous_refresh_token.secret(),
        );
        Ok(Self {
            token: cipher.seal(field(token_column), owner, token),
            refresh_token: cipher.seal(field(refresh_column), owner, update.refresh_token.secret()),
            previous_forms: serde_json::to_string(&previous)
                .map_err(|error| StoreError::Config(format!("cannot encode a query: {error}")))?,
        })
    }
}

impl SqliteStore {
    /// The compare-and-swap of a rotated token, and the release of a lease `(name, holder)` in
    /// the same transaction.
    async fn write_rotated_token(
        &self,
        update: &TokenUpdate,
        release: Option<(&str, &str)>,
    ) -> Result<bool, StoreError> {
        let client_id = self.client_id.as_str();
        let enterprise_id = id_or_empty(update.enterprise_id.as_ref());
        let team_id = id_or_empty(update.team_id.as_ref());
        let expires_at = expiry_seconds(update.expires_at);
        let (user_id, token, columns, tables): (_, _, _, &[&'static str]) = match &update.token {
            RotatedToken::Bot { token } => (
                None,
                token.secret(),
                ("bot_token", "bot_refresh_token"),
                &["slack_installations", "slack_bots"],
            ),
            RotatedToken::User { user_id, token } => (
                Some(user_id.as_str()),
                token.secret(),
                ("user_token", "user_refresh_token"),
                &["slack_installations"],
            ),
        };
        let owner = Owner {
            client_id,
            enterprise_id: Some(enterprise_id),
            team_id: Some(team_id),
            user_id,
        };
        let sealed: Vec<RotatedColumns> = tables
            .iter()
            .map(|table| RotatedColumns::seal(&self.cipher, table, columns, &owner, token, update))
            .collect::<Result<_, _>>()?;
        let mut statements = match &update.token {
            RotatedToken::Bot { .. } => [
                update_bot_token!("slack_installations"),
                update_bot_token!("slack_bots"),
            ]
            .into_iter()
            .zip(&sealed)
            .map(|(sql, sealed)| {
                statement!(
                    sql,
                    sealed.token.as_str(),
                    sealed.refresh_token.as_str(),
                    expires_at,
                    client_id,
                    enterprise_id,
                    team_id,
                    sealed.previous_forms.as_str(),
                )
            })
            .collect::<Vec<_>>(),
            RotatedToken::User { user_id, .. } => vec![statement!(
                "UPDATE slack_installations SET user_token = ?, user_refresh_token = ?, \
                 user_token_expires_at = ? WHERE client_id = ? AND enterprise_id = ? \
                 AND team_id = ? AND user_id = ? \
                 AND user_refresh_token IN (SELECT value FROM json_each(?))",
                sealed[0].token.as_str(),
                sealed[0].refresh_token.as_str(),
                expires_at,
                client_id,
                enterprise_id,
                team_id,
                user_id.as_str(),
                sealed[0].previous_forms.as_str(),
            )],
        };
        let updates = statements.len();
        if let Some((name, holder)) = release {
            statements.push(super::state::release_lease_statement(name, holder));
        }
        let changed = self.write(statements).await?;
        Ok(changed[..updates].iter().sum::<u64>() > 0)
    }
}
