//! Column lists and row ↔ model conversion for `slack_installations` and `slack_bots`.

use sqlx::postgres::PgRow;
use sqlx::Row;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::from_db_time;
use crate::encryption::{Field, Owner, TokenCipher};
use crate::installation::{Bot, Installation, ReinstallFlag, Scopes};
use crate::store::StoreError;

/// The `slack_installations` columns we read, in `SELECT` order (prefix each with the alias).
pub(super) const INSTALLATION_COLUMNS: [&str; 28] = [
    "app_id",
    "enterprise_id",
    "enterprise_name",
    "enterprise_url",
    "team_id",
    "team_name",
    "bot_token",
    "bot_id",
    "bot_user_id",
    "bot_scopes",
    "bot_refresh_token",
    "bot_token_expires_at",
    "user_id",
    "user_token",
    "user_scopes",
    "user_refresh_token",
    "user_token_expires_at",
    "incoming_webhook_url",
    "incoming_webhook_channel",
    "incoming_webhook_channel_id",
    "incoming_webhook_configuration_url",
    "is_enterprise_install",
    "token_type",
    "installed_at",
    "bot_needs_reinstall_reason",
    "bot_needs_reinstall_at",
    "user_needs_reinstall_reason",
    "user_needs_reinstall_at",
];

/// The `slack_bots` columns we read.
pub(super) const BOT_COLUMNS: [&str; 15] = [
    "app_id",
    "enterprise_id",
    "enterprise_name",
    "team_id",
    "team_name",
    "bot_token",
    "bot_id",
    "bot_user_id",
    "bot_scopes",
    "bot_refresh_token",
    "bot_token_expires_at",
    "is_enterprise_install",
    "installed_at",
    "needs_reinstall_reason",
    "needs_reinstall_at",
];

/// The bot columns merged into an installation, selected from a `slack_bots` alias as
/// `merged_<column>`.
pub(super) const MERGED_BOT_COLUMNS: [&str; 8] = [
    "bot_token",
    "bot_id",
    "bot_user_id",
    "bot_scopes",
    "bot_refresh_token",
    "bot_token_expires_at",
    "needs_reinstall_reason",
    "needs_reinstall_at",
];

/// `a.col1, a.col2, ...`
pub(super) fn select_list(alias: &str, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|column| format!("{alias}.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `b.col1 AS merged_col1, ...`
pub(super) fn merged_select_list(alias: &str) -> String {
    MERGED_BOT_COLUMNS
        .iter()
        .map(|column| format!("{alias}.{column} AS merged_{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An installation row, with the workspace's latest bot (the `merged_*` columns) merged in when
/// `merge` says so: for user lookups, or when the row itself has no bot token, and only when the
/// tokens differ (slack_sdk's rule, docs/reference-sections.md §2.2). Sealed columns are opened
/// with `cipher`, as values of `client_id`'s rows.
pub(super) fn installation_from_row(
    row: &PgRow,
    user_lookup: bool,
    cipher: &TokenCipher,
    client_id: &str,
) -> Result<Installation, StoreError> {
    const TABLE: &str = "slack_installations";
    let user_id: String = get(row, TABLE, "user_id")?;
    let enterprise_id: Option<String> = get(row, TABLE, "enterprise_id")?;
    let team_id: Option<String> = get(row, TABLE, "team_id")?;
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
    let installation_token =
        |column: &'static str, owner: &Owner<'_>| sealed(row, TABLE, column, column, cipher, owner);
    let installed_at: PrimitiveDateTime = get(row, TABLE, "installed_at")?;
    let mut installation = Installation::new(user_id.as_str(), from_db_time(installed_at));
    installation.app_id = non_empty(get(row, TABLE, "app_id")?).map(Into::into);
    installation.enterprise_name = get(row, TABLE, "enterprise_name")?;
    installation.enterprise_url = get(row, TABLE, "enterprise_url")?;
    installation.team_name = get(row, TABLE, "team_name")?;
    installation.bot_token = installation_token("bot_token", &workspace)?.map(Into::into);
    installation.bot_id = get::<Option<String>>(row, TABLE, "bot_id")?.map(Into::into);
    installation.bot_user_id = get::<Option<String>>(row, TABLE, "bot_user_id")?.map(Into::into);
    installation.bot_scopes = scopes(get(row, TABLE, "bot_scopes")?);
    installation.bot_refresh_token =
        installation_token("bot_refresh_token", &workspace)?.map(Into::into);
    installation.bot_token_expires_at = time_opt(get(row, TABLE, "bot_token_expires_at")?);
    installation.user_token = installation_token("user_token", &user)?.map(Into::into);
    installation.user_scopes = scopes(get(row, TABLE, "user_scopes")?);
    installation.user_refresh_token =
        installation_token("user_refresh_token", &user)?.map(Into::into);
    installation.user_token_expires_at = time_opt(get(row, TABLE, "user_token_expires_at")?);
    installation.incoming_webhook_url = installation_token("incoming_webhook_url", &user)?;
    installation.incoming_webhook_channel = get(row, TABLE, "incoming_webhook_channel")?;
    installation.incoming_webhook_channel_id = get(row, TABLE, "incoming_webhook_channel_id")?;
    installation.incoming_webhook_configuration_url =
        get(row, TABLE, "incoming_webhook_configuration_url")?;
    installation.is_enterprise_install = get(row, TABLE, "is_enterprise_install")?;
    installation.token_type = get(row, TABLE, "token_type")?;
    installation.bot_needs_reinstall = reinstall_flag(
        row,
        TABLE,
        "bot_needs_reinstall_reason",
        "bot_needs_reinstall_at",
    )?;
    installation.user_needs_reinstall = reinstall_flag(
        row,
        TABLE,
        "user_needs_reinstall_reason",
        "user_needs_reinstall_at",
    )?;

    // The latest bot is of the same org and workspace (the join's condition). Its token is
    // opened only when a merge is wanted; sealed, the two rows' forms of one token differ
    // (each is bound to its table), so the tokens are compared as plaintext.
    let wanted = user_lookup || installation.bot_token.is_none();
    let bot_token = |column: &'static str, field: &'static str| {
        sealed(row, "slack_bots", column, field, cipher, &workspace)
    };
    if let Some(merged_token) = wanted
        .then(|| bot_token("merged_bot_token", "bot_token"))
        .transpose()?
        .flatten()
    {
        let differs = installation
            .bot_token
            .as_ref()
            .is_none_or(|own| own.secret() != merged_token);
        if differs {
            installation.bot_token = Some(merged_token.into());
            installation.bot_id =
                get::<Option<String>>(row, "slack_bots", "merged_bot_id")?.map(Into::into);
            installation.bot_user_id =
                get::<Option<String>>(row, "slack_bots", "merged_bot_user_id")?.map(Into::into);
            installation.bot_scopes = scopes(get(row, "slack_bots", "merged_bot_scopes")?);
            installation.bot_refresh_token =
                bot_token("merged_bot_refresh_token", "bot_refresh_token")?.map(Into::into);
            installation.bot_token_expires_at =
                time_opt(get(row, "slack_bots", "merged_bot_token_expires_at")?);
            installation.bot_needs_reinstall = reinstall_flag(
                row,
                "slack_bots",
                "merged_needs_reinstall_reason",
                "merged_needs_reinstall_at",
            )?;
        }
    }
    installation.enterprise_id = enterprise_id.map(Into::into);
    installation.team_id = team_id.map(Into::into);
    Ok(installation)
}

/// A `slack_bots` row (queries select only rows with a bot token), its sealed columns opened
/// with `cipher` as values of `client_id`'s rows.
pub(super) fn bot_from_row(
    row: &PgRow,
    cipher: &TokenCipher,
    client_id: &str,
) -> Result<Bot, StoreError> {
    const TABLE: &str = "slack_bots";
    let enterprise_id: Option<String> = get(row, TABLE, "enterprise_id")?;
    let team_id: Option<String> = get(row, TABLE, "team_id")?;
    let workspace = Owner {
        client_id,
        enterprise_id: enterprise_id.as_deref(),
        team_id: team_id.as_deref(),
        user_id: None,
    };
    let token = sealed(row, TABLE, "bot_token", "bot_token", cipher, &workspace)?;
    let token = token.ok_or_else(|| StoreError::Corrupt {
        table: TABLE,
        detail: "bot_token is NULL".to_owned(),
    })?;
    let installed_at: PrimitiveDateTime = get(row, TABLE, "installed_at")?;
    let mut bot = Bot::new(token.into(), from_db_time(installed_at));
    bot.app_id = non_empty(get(row, TABLE, "app_id")?).map(Into::into);
    bot.enterprise_name = get(row, TABLE, "enterprise_name")?;
    bot.team_name = get(row, TABLE, "team_name")?;
    bot.bot_id = get::<Option<String>>(row, TABLE, "bot_id")?.map(Into::into);
    bot.bot_user_id = get::<Option<String>>(row, TABLE, "bot_user_id")?.map(Into::into);
    bot.bot_scopes = scopes(get(row, TABLE, "bot_scopes")?);
    bot.bot_refresh_token = sealed(
        row,
        TABLE,
        "bot_refresh_token",
        "bot_refresh_token",
        cipher,
        &workspace,
    )?
    .map(Into::into);
    bot.bot_token_expires_at = time_opt(get(row, TABLE, "bot_token_expires_at")?);
    bot.is_enterprise_install = get(row, TABLE, "is_enterprise_install")?;
    bot.needs_reinstall =
        reinstall_flag(row, TABLE, "needs_reinstall_reason", "needs_reinstall_at")?;
    bot.enterprise_id = enterprise_id.map(Into::into);
    bot.team_id = team_id.map(Into::into);
    Ok(bot)
}

/// A sealed column (`column` in the row; `field` its name in `table`), opened when it is an
/// envelope.
fn sealed(
    row: &PgRow,
    table: &'static str,
    column: &str,
    field: &'static str,
    cipher: &TokenCipher,
    owner: &Owner<'_>,
) -> Result<Option<String>, StoreError> {
    let Some(stored) = get::<Option<String>>(row, table, column)? else {
        return Ok(None);
    };
    cipher
        .open(
            Field {
                table,
                column: field,
            },
            owner,
            stored,
        )
        .map(Some)
        .map_err(|source| StoreError::Decrypt { table, source })
}

/// `app_id` is `NOT NULL` in slack_sdk's schema; an installation without one is stored as `''`
/// and read back as `None`.
pub(super) fn app_id_value(app_id: Option<&str>) -> &str {
    app_id.unwrap_or("")
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn scopes(value: Option<String>) -> Scopes {
    value.as_deref().map(Scopes::parse).unwrap_or_default()
}

/// A reinstall mark: the reason column and its time; absent when the reason is NULL.
fn reinstall_flag(
    row: &PgRow,
    table: &'static str,
    reason: &str,
    at: &str,
) -> Result<Option<ReinstallFlag>, StoreError> {
    let Some(reason) = get::<Option<String>>(row, table, reason)? else {
        return Ok(None);
    };
    let at = time_opt(get(row, table, at)?).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Ok(Some(ReinstallFlag::new(reason, at)))
}

fn time_opt(value: Option<PrimitiveDateTime>) -> Option<OffsetDateTime> {
    value.map(from_db_time)
}

/// Reads one column, naming the table and column (never the value) when it cannot be decoded.
pub(super) fn get<'r, T>(row: &'r PgRow, table: &'static str, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(|error| StoreError::Corrupt {
        table,
        detail: format!("column {column}: {error}"),
    })
}
