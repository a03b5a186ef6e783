//! Configuration shared by the subcommands: environment variables, flags that override them,
//! the store URL and the Web API client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use slack_oauth::api::Client;
use slack_oauth::encryption::{EncryptionKeys, ENCRYPTION_KEYS_ENV};
use slack_oauth::settings::{self, OAuthSettings};
use slack_oauth::store::AnyStore;

use crate::UsageError;

/// The default store: a SQLite file in the current folder.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://slack-oauth.db";
/// Slack's Web API.
pub(crate) const DEFAULT_API_URL: &str = "https://slack.com/api/";
/// Where `serve` listens by default.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// The OAuth settings as flags, each with the environment variable it overrides (clap reads
/// both: the flag, else the variable, else the default; a blank variable counts as unset, see
/// [`blank_env_is_unset`]).
#[derive(Debug, Default, Args)]
pub(crate) struct SettingsArgs {
    /// The app's client id
    #[arg(long, env = "SLACK_CLIENT_ID")]
    pub(crate) client_id: Option<String>,
    /// Bot scopes, comma-separated
    #[arg(long, env = "SLACK_SCOPES")]
    pub(crate) scopes: Option<String>,
    /// User scopes, comma-separated
    #[arg(long, env = "SLACK_USER_SCOPES")]
    pub(crate) user_scopes: Option<String>,
    /// The redirect URI registered with Slack
    #[arg(long, env = "SLACK_REDIRECT_URI")]
    pub(crate) redirect_uri: Option<String>,
    /// Slack's authorize page
    #[arg(long, env = "SLACK_AUTHORIZE_URL", default_value = settings::DEFAULT_AUTHORIZE_URL)]
    pub(crate) authorize_url: String,
    /// The install path
    #[arg(long, env = "SLACK_INSTALL_PATH", default_value = settings::DEFAULT_INSTALL_PATH)]
    pub(crate) install_path: String,
    /// The redirect (callback) path
    #[arg(
        long,
        env = "SLACK_REDIRECT_URI_PATH",
        default_value = settings::DEFAULT_REDIRECT_URI_PATH
    )]
    pub(crate) redirect_uri_path: String,
    /// Where to send the browser after a successful install
    #[arg(long, env = "SLACK_SUCCESS_URL")]
    pub(crate) success_url: Option<String>,
    /// Where to send the browser after a failed install
    #[arg(long, env = "SLACK_FAILURE_URL")]
    pub(crate) failure_url: Option<String>,
    #[command(flatten)]
    pub(crate) insecure: InsecureSlackUrlArg,
}

/// `--allow-insecure-slack-url`, for every command that talks to Slack.
#[derive(Debug, Default, Args)]
pub(crate) struct InsecureSlackUrlArg {
    /// Accept plain-http Slack URLs (API, authorize page) on hosts other than this machine; the
    /// client secret and tokens then cross the network unencrypted. For test networks only
    #[arg(long, env = settings::ALLOW_INSECURE_SLACK_URL_ENV)]
    pub(crate) allow_insecure_slack_url: bool,
}

impl SettingsArgs {
    /// The values of these flags (or of their variables, as clap read them) by variable name.
    fn overrides(&self) -> HashMap<&'static str, String> {
        let insecure = self.insecure.allow_insecure_slack_url.to_string();
        [
            ("SLACK_CLIENT_ID", self.client_id.as_deref()),
            ("SLACK_SCOPES", self.scopes.as_deref()),
            ("SLACK_USER_SCOPES", self.user_scopes.as_deref()),
            ("SLACK_REDIRECT_URI", self.redirect_uri.as_deref()),
            ("SLACK_AUTHORIZE_URL", Some(self.authorize_url.as_str())),
            ("SLACK_INSTALL_PATH", Some(self.install_path.as_str())),
            (
                "SLACK_REDIRECT_URI_PATH",
                Some(self.redirect_uri_path.as_str()),
            ),
            ("SLACK_SUCCESS_URL", self.success_url.as_deref()),
            ("SLACK_FAILURE_URL", self.failure_url.as_deref()),
            (
                settings::ALLOW_INSECURE_SLACK_URL_ENV,
                Some(insecure.as_str()),
            ),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value.to_owned())))
        .collect()
    }

    /// The settings from these flags and their variables; what has no flag comes from the
    /// environment: the client secret, only from `SLACK_CLIENT_SECRET` so that it never shows
    /// in a process list, and `SLACK_OAUTH_MAX_LIVE_STATES`.
    pub(crate) fn settings(&self) -> Result<OAuthSettings, settings::ConfigError> {
        let overrides = self.overrides();
        OAuthSettings::from_lookup(|name| {
            overrides
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        })
    }
}

/// Where installations live.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The store: sqlite://FILE, postgres://..., memory://
    // Its value is not shown in --help: a PostgreSQL URL may hold a password.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub(crate) database_url: String,
}

impl StoreArgs {
    /// The flag, else `DATABASE_URL`, else [`DEFAULT_DATABASE_URL`].
    pub(crate) fn url(&self) -> &str {
        &self.database_url
    }
}

/// The command line with every argument whose environment variable is set but blank left
/// without its variable, so that a blank variable counts as unset (the flag's default applies)
/// as it does for the variables read without clap ([`env_nonempty`]) and in
/// [`OAuthSettings::from_lookup`]. clap would take `NAME=` as the value "".
pub(crate) fn blank_env_is_unset(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let blank = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.to_string_lossy().trim().is_empty());
            if blank {
                arg.env(None)
            } else {
                arg
            }
        })
        .mut_subcommands(blank_env_is_unset)
}

/// Connects to the store at `url` for the app `client_id`.
pub(crate) async fn connect_store(url: &str, client_id: &str) -> anyhow::Result<AnyStore> {
    let shown = redact_url(url);
    AnyStore::connect_encrypted(url, client_id, encryption_keys()?)
        .await
        .with_context(|| format!("cannot open the store {shown} (DATABASE_URL)"))
}

/// The keys that encrypt tokens at rest, from `SLACK_TOKEN_ENCRYPTION_KEYS` (unset: none). An
/// environment variable only, never a flag: flags show in process lists.
pub(crate) fn encryption_keys() -> Result<Option<EncryptionKeys>, UsageError> {
    env_nonempty(ENCRYPTION_KEYS_ENV)
        .map(|value| EncryptionKeys::parse(&value).map_err(|error| UsageError(error.to_string())))
        .transpose()
}

/// How `serve`, `rotate` and `exchange` reach Slack's Web API.
#[derive(Debug, Args)]
pub(crate) struct SlackApiArgs {
    /// Slack's Web API base URL
    #[arg(long, env = "SLACK_API_URL", default_value = DEFAULT_API_URL)]
    pub(crate) api_url: String,
    /// Hard deadline of one Slack API call (the code exchange, a token refresh), in seconds,
    /// retries and Retry-After waits included; a refresh is abandoned at it and the next
    /// attempt checks whether the refresh token was spent
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_slack_timeout)]
    pub(crate) slack_timeout: Duration,
}

impl SlackApiArgs {
    /// A Web API client for `--api-url` (else `SLACK_API_URL`, else Slack's).
    pub(crate) fn client(&self, insecure: &InsecureSlackUrlArg) -> anyhow::Result<Client> {
        let url = &self.api_url;
        Client::builder()
            .base_url(url)
            .allow_insecure_base_url(insecure.allow_insecure_slack_url)
            .request_timeout(self.slack_timeout)
            .build()
            .with_context(|| format!("invalid SLACK_API_URL {url:?}"))
            .map_err(|error| UsageError(format!("{error:#}")).into())
    }
}

/// `--slack-timeout SECONDS`: the hard deadline of one Slack API call, retries and
/// `Retry-After` waits included (a token refresh is abandoned at it, under a lease that
/// outlives it).
pub(crate) fn parse_slack_timeout(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1 second".to_owned()),
        Ok(seconds) if seconds <= 600 => Ok(Duration::from_secs(seconds)),
        Ok(_) => Err("must be at most 600 seconds".to_owned()),
        Err(_) => Err(format!("{value:?} is not a whole number of seconds")),
    }
}

/// Parses a listen address such as `127.0.0.1:3000` or `[::1]:0`.
pub(crate) fn parse_addr(value: &str, source: &str) -> Result<SocketAddr, UsageError> {
    value.parse().map_err(|_| {
        UsageError(format!(
            "{source} = {value:?} is not an address: use IP:PORT, such as 127.0.0.1:3000"
        ))
    })
}

/// An environment variable, if set to something other than blanks: for the variables that have
/// no flag (flags and their variables are clap's).
pub(crate) fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `url` without its secrets, for messages: the password of the user part and the value of
/// every query parameter that names one (`password`, `sslpassword`, ...), as libpq accepts
/// both (`postgres://user:pw@host`, `postgres://host/db?password=pw`). A string that does not
/// parse as a URL shows only its scheme: it may still hold a password.
pub(crate) fn redact_url(raw: &str) -> String {
    const HIDDEN: &str = "***";
    let Ok(mut url) = url::Url::parse(raw) else {
        return match raw.split_once(':') {
            Some((scheme, _)) if !scheme.is_empty() && !scheme.contains(['/', '@']) => {
                format!("{scheme}:<not shown: not a parseable URL>")
            }
            _ => "<not shown: not a parseable URL>".to_owned(),
        };
    };
    if url.password().is_some() {
        // Only fails for URLs that cannot have a user part, which then have no password.
        let _ = url.set_password(Some(HIDDEN));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let lowered = key.to_ascii_lowercase();
                let secret = ["password", "passwd", "pwd", "secret", "token", "key"]
                    .iter()
                    .any(|word| lowered.contains(word));
                let value = if secret { HIDDEN.into() } else { value };
                (key.into_owned(), value.into_owned())
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_from_store_urls() {
        assert_eq!(
            redact_url("postgres://root:hunter2@db:5432/app"),
            "postgres://root:***@db:5432/app"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(redact_url("sqlite:data/x.db"), "sqlite:data/x.db");
        let shown = redact_url(
            "postgres://db/app?sslmode=require&password=hunter2&sslpassword=hunter3&user=root",
        );
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
        assert!(shown.contains("user=root"), "{shown}");
        let shown = redact_url("postgres://root:hunter2@db:5432/app?password=hunter3");
        assert!(!shown.contains("hunter"), "{shown}");
        // Not a URL: nothing after the scheme is shown.
        let shown = redact_url("postgres://root:hun ter2@db:bad-port/app");
        assert!(!shown.contains("hun"), "{shown}");
        assert!(shown.starts_with("postgres:"), "{shown}");
    }

    #[test]
    fn flags_override_the_environment() {
        let args = SettingsArgs {
            client_id: Some("111.222".to_owned()),
            scopes: Some("chat:write".to_owned()),
            ..SettingsArgs::default()
        };
        let overrides = args.overrides();
        assert_eq!(overrides["SLACK_CLIENT_ID"], "111.222");
        assert_eq!(overrides["SLACK_SCOPES"], "chat:write");
        assert!(!overrides.contains_key("SLACK_USER_SCOPES"));
    }

    #[test]
    fn bad_addresses_are_usage_errors() {
        assert!(parse_addr("127.0.0.1:0", "--addr").is_ok());
        let error = parse_addr("localhost", "--addr").unwrap_err();
        assert!(error.to_string().contains("--addr = \"localhost\""));
    }
}
