//! `slack-oauth installations list | show | delete`: read and delete stored installations.
//!
//! Stores keep installations per app (client id). With `--client-id` or `SLACK_CLIENT_ID` the
//! commands look at that app only; without, `list` shows every app's installations and `show` /
//! `delete` work when the store holds a single app (as after `slack-oauth demo`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use slack_oauth::installation::Installation;
use slack_oauth::store::{AnyStore, InstallationQuery, InstallationStore as _};
use time::OffsetDateTime;

use crate::config::{self, StoreArgs};
use crate::UsageError;

/// The `installations` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum InstallationsCommand {
    /// List the latest installation of every workspace, org and installing user.
    List {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        output: OutputArgs,
        /// Only installations with a token marked as needing a reinstall (its refresh token
        /// was lost or revoked); exit 0 either way
        #[arg(long)]
        needs_reinstall: bool,
    },
    /// Show the latest installation of a workspace, an org, or one user in them.
    Show {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete a workspace's or org's installations and bot, or only one user's installations
    /// (with --user). Asks no question; prints what it deleted.
    Delete {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// The store and the app.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// The app whose installations to read (default: every app in the store)
    #[arg(long, env = "SLACK_CLIENT_ID")]
    client_id: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// Which installation: `--team` (optionally in `--enterprise`), or `--enterprise` alone for an
/// org-wide install; `--user` narrows to one installing user.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The org (Enterprise Grid); alone, it means the org-wide installation
    #[arg(long)]
    enterprise: Option<String>,
    /// The workspace
    #[arg(long)]
    team: Option<String>,
    /// Only this installing user's installation
    #[arg(long)]
    user: Option<String>,
}

/// How to print installations.
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Print JSON (slack_sdk's Installation.to_dict() field names)
    #[arg(long)]
    json: bool,
    /// Print tokens, refresh tokens and webhook URLs instead of their redacted form
    #[arg(long)]
    show_tokens: bool,
}

impl TargetArgs {
    fn query(&self) -> Result<InstallationQuery, UsageError> {
        let mut query =
            match (&self.team, &self.enterprise) {
                (Some(team), enterprise) => {
                    let query = InstallationQuery::team(team.as_str());
                    match enterprise {
                        Some(enterprise) => query.enterprise(enterprise.as_str()),
                        None => query,
                    }
                }
                (None, Some(enterprise)) => InstallationQuery::org(enterprise.as_str()),
                (None, None) => return Err(UsageError(
                    "say which installation: --team T…, or --enterprise E… for an org-wide install"
                        .to_owned(),
                )),
            };
        if let Some(user) = &self.user {
            query = query.user(user.as_str());
        }
        Ok(query)
    }

    fn describe(&self) -> String {
        let mut text = match (&self.team, &self.enterprise) {
            (Some(team), Some(enterprise)) => format!("team {team} (org {enterprise})"),
            (Some(team), None) => format!("team {team}"),
            (None, Some(enterprise)) => format!("org-wide installation of {enterprise}"),
            (None, None) => "nothing".to_owned(),
        };
        if let Some(user) = &self.user {
            text.push_str(&format!(", user {user}"));
        }
        text
    }
}

impl CommonArgs {
    /// The given client id, else every client id the store holds.
    async fn client_ids(&self) -> anyhow::Result<Vec<String>> {
        match &self.client_id {
            Some(client_id) => Ok(vec![client_id.clone()]),
            None => crate::apps::client_ids(self.store.url()).await,
        }
    }

    /// The store for the one app `show` and `delete` are about.
    async fn store_for_one_app(&self) -> anyhow::Result<AnyStore> {
        let ids = self.client_ids().await?;
        match ids.as_slice() {
            [client_id] => config::connect_store(self.store.url(), client_id).await,
            [] => Err(anyhow::anyhow!(
                "no installations in {}",
                config::redact_url(self.store.url())
            )),
            several => Err(UsageError(format!(
                "the store holds installations of several apps ({}): pass --client-id or set \
                 SLACK_CLIENT_ID",
                several.join(", ")
            ))
            .into()),
        }
    }
}

/// Runs one `installations` subcommand.
pub(crate) async fn run(command: InstallationsCommand) -> anyhow::Result<ExitCode> {
    match command {
        InstallationsCommand::List {
            common,
            output,
            needs_reinstall,
        } => {
            let mut installations = Vec::new();
            for client_id in common.client_ids().await? {
                let store = config::connect_store(common.store.url(), &client_id).await?;
                let listed = store
                    .list_installations()
                    .await
                    .with_context(|| format!("cannot list the installations of {client_id}"))?;
                installations.extend(
                    listed
                        .into_iter()
                        .filter(|i| !needs_reinstall || i.needs_reinstall())
                        .map(|i| (client_id.clone(), i)),
                );
            }
            print_list(&installations, &output)?;
            Ok(ExitCode::SUCCESS)
        }
        InstallationsCommand::Show {
            common,
            target,
            output,
        } => {
            let query = target.query()?;
            let store = common.store_for_one_app().await?;
            let found = store
                .find_installation(&query)
                .await
                .context("cannot read the installation")?;
            let Some(installation) = found else {
                anyhow::bail!("no installation found for {}", target.describe());
            };
            print_one(&installation, &output)?;
            Ok(ExitCode::SUCCESS)
        }
        InstallationsCommand::Delete { common, target } => {
            let query = target.query()?;
            let store = common.store_for_one_app().await?;
            if store
                .find_installation(&query)
                .await
                .context("cannot read the installation")?
                .is_none()
            {
                anyhow::bail!(
                    "no installation found for {}; nothing deleted",
                    target.describe()
                );
            }
            if query.user_id.is_some() {
                store
                    .delete_installation(&query)
                    .await
                    .context("cannot delete the installation")?;
                crate::announce(&format!(
                    "deleted every installation version of {}",
                    target.describe()
                ));
            } else {
                store
                    .delete_all(&query)
                    .await
                    .context("cannot delete the installation")?;
                crate::announce(&format!(
                    "deleted every installation and bot version of {}",
                    target.describe()
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// slack_sdk's `to_dict()`: custom values first, the standard fields over them. Tokens are
/// redacted unless `show_tokens`.
pub(crate) fn to_dict(
    installation: &Installation,
    show_tokens: bool,
) -> anyhow::Result<serde_json::Value> {
    let shown = if show_tokens {
        installation.clone()
    } else {
        installation.redacted()
    };
    let serde_json::Value::Object(mut standard) =
        serde_json::to_value(&shown).context("cannot encode the installation as JSON")?
    else {
        anyhow::bail!("an installation did not encode as a JSON object");
    };
    standard.remove("custom_values");
    // The reinstall mark as flat fields every row carries (a contract of `--json`).
    standard.remove("bot_needs_reinstall");
    standard.remove("user_needs_reinstall");
    let (token, flag) = match (
        &installation.bot_needs_reinstall,
        &installation.user_needs_reinstall,
    ) {
        (Some(flag), _) => (Some("bot"), Some(flag)),
        (None, Some(flag)) => (Some("user"), Some(flag)),
        (None, None) => (None, None),
    };
    standard.insert("needs_reinstall".to_owned(), flag.is_some().into());
    standard.insert(
        "needs_reinstall_reason".to_owned(),
        flag.map(|flag| flag.reason.clone()).into(),
    );
    standard.insert("needs_reinstall_token".to_owned(), token.into());
    standard.insert(
        "needs_reinstall_at".to_owned(),
        flag.map(|flag| flag.flagged_at.unix_timestamp()).into(),
    );
    let mut dict = shown.custom_values.clone();
    dict.extend(standard);
    Ok(serde_json::Value::Object(dict))
}

fn print_list(installations: &[(String, Installation)], output: &OutputArgs) -> anyhow::Result<()> {
    if output.json {
        let items = installations
            .iter()
            .map(|(_, i)| to_dict(i, output.show_tokens))
            .collect::<anyhow::Result<Vec<_>>>()?;
        crate::announce(&serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if installations.is_empty() {
        crate::announce("no installations");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = installations
        .iter()
        .map(|(client_id, i)| {
            vec![
                client_id.clone(),
                opt(i.team_id.as_ref()),
                opt(i.enterprise_id.as_ref()),
                i.user_id.to_string(),
                yes_no(i.bot_token.is_some()),
                yes_no(i.user_token.is_some()),
                opt_time(i.bot_token_expires_at),
                opt_time(i.user_token_expires_at),
                format_time(i.installed_at),
                reinstall(i),
            ]
        })
        .collect();
    let header = [
        "CLIENT ID",
        "TEAM",
        "ENTERPRISE",
        "USER",
        "BOT TOKEN",
        "USER TOKEN",
        "BOT EXPIRES",
        "USER EXPIRES",
        "INSTALLED AT",
        "NEEDS REINSTALL",
    ];
    print!("{}", crate::table::render(&header, &rows));
    Ok(())
}

fn print_one(installation: &Installation, output: &OutputArgs) -> anyhow::Result<()> {
    let dict = to_dict(installation, output.show_tokens)?;
    if output.json {
        crate::announce(&serde_json::to_string_pretty(&dict)?);
        return Ok(());
    }
    let serde_json::Value::Object(fields) = dict else {
        return Ok(());
    };
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in &fields {
        let value = match (name.as_str(), value) {
            ("installed_at", _) => format_time(installation.installed_at),
            ("needs_reinstall_at", v) if v.is_i64() => v
                .as_i64()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .map_or_else(|| v.to_string(), format_time),
            ("bot_token_expires_at" | "user_token_expires_at", v) if v.is_i64() => v
                .as_i64()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .map_or_else(|| v.to_string(), format_time),
            (_, serde_json::Value::String(s)) => s.clone(),
            (_, serde_json::Value::Null) => "-".to_owned(),
            (_, v) => v.to_string(),
        };
        println!("{name:width$}  {value}");
    }
    Ok(())
}

/// `bot: reason` / `user: reason` for a marked token, `-` otherwise.
fn reinstall(installation: &Installation) -> String {
    match (
        &installation.bot_needs_reinstall,
        &installation.user_needs_reinstall,
    ) {
        (Some(flag), _) => format!("bot: {}", flag.reason),
        (None, Some(flag)) => format!("user: {}", flag.reason),
        (None, None) => "-".to_owned(),
    }
}

fn opt<T: ToString>(value: Option<&T>) -> String {
    value.map_or_else(|| "-".to_owned(), ToString::to_string)
}

fn yes_no(present: bool) -> String {
    if present { "yes" } else { "no" }.to_owned()
}

fn opt_time(at: Option<OffsetDateTime>) -> String {
    at.map_or_else(|| "-".to_owned(), format_time)
}

fn format_time(at: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slack_oauth::secret::BotToken;

    fn installation() -> Installation {
        let mut i = Installation::new("U1", OffsetDateTime::UNIX_EPOCH);
        i.team_id = Some("T1".into());
        i.bot_token = Some(BotToken::new("xoxb-1-2-SECRETVALUE")); // fake: a sentinel to grep for
        i.set_custom_value("app_id", serde_json::json!("A-custom"));
        i.set_custom_value("extra", serde_json::json!(7));
        i
    }

    #[test]
    fn to_dict_redacts_tokens_unless_asked() {
        let dict = to_dict(&installation(), false).unwrap();
        assert!(!dict.to_string().contains("SECRETVALUE"));
        assert_eq!(dict["bot_token"], "xoxb-…(redacted)");
        let dict = to_dict(&installation(), true).unwrap();
        assert_eq!(dict["bot_token"], "xoxb-1-2-SECRETVALUE"); // fake: the sentinel above
    }

    #[test]
    fn to_dict_merges_custom_values_under_the_standard_ones() {
        let dict = to_dict(&installation(), false).unwrap();
        assert_eq!(dict["app_id"], serde_json::Value::Null);
        assert_eq!(dict["extra"], 7);
        assert!(dict.get("custom_values").is_none());
        assert_eq!(dict["team_id"], "T1");
    }

    #[test]
    fn every_json_row_says_whether_it_needs_a_reinstall() {
        let dict = to_dict(&installation(), false).unwrap();
        assert_eq!(dict["needs_reinstall"], false);
        assert_eq!(dict["needs_reinstall_reason"], serde_json::Value::Null);
        let mut marked = installation();
        marked.bot_needs_reinstall = Some(slack_oauth::installation::ReinstallFlag::new(
            "invalid_refresh_token",
            OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(60),
        ));
        let dict = to_dict(&marked, false).unwrap();
        assert_eq!(dict["needs_reinstall"], true);
        assert_eq!(dict["needs_reinstall_reason"], "invalid_refresh_token");
        assert_eq!(dict["needs_reinstall_token"], "bot");
        assert_eq!(dict["needs_reinstall_at"], 60);
        assert!(
            dict.get("bot_needs_reinstall").is_none(),
            "flat fields only"
        );
        assert_eq!(reinstall(&marked), "bot: invalid_refresh_token");
    }

    #[test]
    fn enterprise_alone_means_org_wide() {
        let target = TargetArgs {
            enterprise: Some("E1".to_owned()),
            team: None,
            user: None,
        };
        let query = target.query().unwrap();
        assert!(query.is_enterprise_install);
        let target = TargetArgs {
            enterprise: Some("E1".to_owned()),
            team: Some("T1".to_owned()),
            user: Some("U1".to_owned()),
        };
        let query = target.query().unwrap();
        assert!(!query.is_enterprise_install);
        assert_eq!(query.lookup_team_id().unwrap().as_str(), "T1");
        let none = TargetArgs {
            enterprise: None,
            team: None,
            user: None,
        };
        assert!(none.query().is_err());
    }

    #[test]
    fn times_are_utc_to_the_second() {
        assert_eq!(
            format_time(OffsetDateTime::UNIX_EPOCH),
            "1970-01-01 00:00:00Z"
        );
    }
}
