//! Builders for realistic installations (workspace, org-wide, user-only, rotating) and times.
//!
//! Every token a builder makes is unique to its team, user and generation, so a test can tell
//! versions apart by token alone. Times are whole seconds, which every backend stores exactly.
//!
//! ```
//! use slack_oauth_test::fixtures::{self, at};
//! let installation = fixtures::workspace("T1", "U1")
//!     .generation(2)
//!     .installed_at(at(60))
//!     .with_rotation(at(43_200))
//!     .build();
//! assert_eq!(installation.bot_token.unwrap().secret(), "xoxe.xoxb-T1-U1-2");
//! assert_eq!(installation.bot_refresh_token.unwrap().secret(), "xoxe-1-bot-T1-U1-2");
//! ```

use slack_oauth::clock::{Clock, SystemClock};
use slack_oauth::ids::{BotId, TeamId, UserId};
use slack_oauth::installation::{Installation, Scopes};
use slack_oauth::secret::{BotToken, RefreshToken, UserToken};
use time::OffsetDateTime;

/// The client id the SQL stores of the suite are scoped to (the one slack_sdk's tests use).
pub const CLIENT_ID: &str = "111.222";

/// The app id every fixture installation carries.
pub const APP_ID: &str = "A111";

/// Bot scopes of fixture installations.
pub const BOT_SCOPES: &str = "chat:write,commands";

/// User scopes of fixture installations that have a user token.
pub const USER_SCOPES: &str = "search:read,users:read";

/// A fixed instant (2026-01-01 00:00:00 UTC) plus `seconds`: for installation times and token
/// expiries, which stores only compare with each other.
pub fn at(seconds: i64) -> OffsetDateTime {
    const BASE: i64 = 1_767_225_600;
    OffsetDateTime::from_unix_timestamp(BASE + seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The current time truncated to whole seconds: for states and leases, because stores may purge
/// expired states against their own clock.
pub fn now() -> OffsetDateTime {
    let now = SystemClock.now();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// Builds an [`Installation`] step by step. Start from [`workspace`], [`org_wide`] or
/// [`user_only`].
#[derive(Debug, Clone)]
pub struct InstallationBuilder {
    installation: Installation,
    generation: u32,
    rotation: Option<OffsetDateTime>,
}

/// A workspace install (team `team_id`, no org) by `user_id`, with a bot token, bot scopes, a
/// user token and user scopes, installed at [`at(0)`](at).
pub fn workspace(team_id: &str, user_id: &str) -> InstallationBuilder {
    let mut installation = Installation::new(user_id, at(0));
    installation.app_id = Some(APP_ID.into());
    installation.team_id = Some(team_id.into());
    installation.team_name = Some(format!("Team {team_id}"));
    installation.bot_scopes = Scopes::parse(BOT_SCOPES);
    installation.bot_id = Some(BotId::new(format!("B{team_id}")));
    installation.bot_user_id = Some(UserId::new(format!("UB{team_id}")));
    installation.user_scopes = Scopes::parse(USER_SCOPES);
    installation.token_type = Some("bot".to_owned());
    InstallationBuilder {
        installation,
        generation: 0,
        rotation: None,
    }
    .with_bot()
    .with_user_token()
}

/// An org-wide install of Enterprise Grid org `enterprise_id` by `user_id` (no team), with a bot
/// token and the org's URL.
pub fn org_wide(enterprise_id: &str, user_id: &str) -> InstallationBuilder {
    let mut builder = workspace("", user_id).enterprise(enterprise_id);
    let installation = &mut builder.installation;
    installation.team_id = None;
    installation.team_name = None;
    installation.is_enterprise_install = true;
    installation.enterprise_url = Some(format!(
        "https://{}.enterprise.slack.com/",
        enterprise_id.to_lowercase()
    ));
    installation.bot_id = Some(BotId::new(format!("B{enterprise_id}")));
    installation.bot_user_id = Some(UserId::new(format!("UB{enterprise_id}")));
    builder.with_bot().with_user_token()
}

/// A user-token-only install (no bot token, no bot scopes) of `user_id` in `team_id`.
pub fn user_only(team_id: &str, user_id: &str) -> InstallationBuilder {
    let mut builder = workspace(team_id, user_id);
    let installation = &mut builder.installation;
    installation.bot_token = None;
    installation.bot_id = None;
    installation.bot_user_id = None;
    installation.bot_scopes = Scopes::default();
    installation.token_type = None;
    builder
}

impl InstallationBuilder {
    /// Puts the installation in Enterprise Grid org `enterprise_id` (it stays a workspace
    /// install unless built with [`org_wide`]).
    #[must_use]
    pub fn enterprise(mut self, enterprise_id: &str) -> Self {
        self.installation.enterprise_id = Some(enterprise_id.into());
        self.installation.enterprise_name = Some(format!("Org {enterprise_id}"));
        self
    }

    /// Sets when the installation was saved.
    #[must_use]
    pub fn installed_at(mut self, installed_at: OffsetDateTime) -> Self {
        self.installation.installed_at = installed_at;
        self
    }

    /// Sets the generation that token values carry, so versions are told apart by token.
    #[must_use]
    pub fn generation(mut self, generation: u32) -> Self {
        self.generation = generation;
        self.retoken()
    }

    /// Turns token rotation on: `xoxe.`-prefixed tokens, refresh tokens (`xoxe-1-bot-…`,
    /// `xoxe-1-user-…`) and both tokens expiring at `expires_at`.
    #[must_use]
    pub fn with_rotation(mut self, expires_at: OffsetDateTime) -> Self {
        self.rotation = Some(expires_at);
        self.retoken()
    }

    /// Drops the user token (a bot-only install).
    #[must_use]
    pub fn without_user_token(mut self) -> Self {
        let installation = &mut self.installation;
        installation.user_token = None;
        installation.user_refresh_token = None;
        installation.user_token_expires_at = None;
        installation.user_scopes = Scopes::default();
        self
    }

    /// Adds an incoming webhook (URL, channel, channel id, configuration URL).
    #[must_use]
    pub fn with_webhook(mut self) -> Self {
        let team = self.label();
        let installation = &mut self.installation;
        installation.incoming_webhook_url = Some(format!(
            "https://hooks.slack.com/services/{team}/B999/secret{}",
            self.generation
        ));
        installation.incoming_webhook_channel = Some("#general".to_owned());
        installation.incoming_webhook_channel_id = Some("C0GENERAL".to_owned());
        installation.incoming_webhook_configuration_url = Some(format!(
            "https://example.slack.com/services/B999?team={team}"
        ));
        self
    }

    /// Sets a custom value (kept by the memory store, dropped by the SQL stores).
    #[must_use]
    pub fn custom_value(mut self, name: &str, value: serde_json::Value) -> Self {
        self.installation.set_custom_value(name, value);
        self
    }

    /// The finished installation.
    pub fn build(self) -> Installation {
        self.installation
    }

    fn label(&self) -> String {
        let installation = &self.installation;
        let team = installation.team_id.as_ref().map(TeamId::as_str);
        let org = installation.enterprise_id.as_ref().map(|e| e.as_str());
        team.filter(|t| !t.is_empty())
            .or(org)
            .unwrap_or("none")
            .to_owned()
    }

    fn with_bot(mut self) -> Self {
        self.installation.bot_token = Some(BotToken::new(String::new()));
        self.retoken()
    }

    fn with_user_token(mut self) -> Self {
        self.installation.user_token = Some(UserToken::new(String::new()));
        self.retoken()
    }

    /// Rewrites every present token from the team, user, generation and rotation settings.
    fn retoken(mut self) -> Self {
        let tag = format!(
            "{}-{}-{}",
            self.label(),
            self.installation.user_id,
            self.generation
        );
        let rotating = self.rotation.is_some();
        let prefix = if rotating { "xoxe." } else { "" };
        let installation = &mut self.installation;
        if installation.bot_token.is_some() {
            installation.bot_token = Some(BotToken::new(format!("{prefix}xoxb-{tag}")));
            if let Some(expires_at) = self.rotation {
                installation.bot_refresh_token =
                    Some(RefreshToken::new(format!("xoxe-1-bot-{tag}")));
                installation.bot_token_expires_at = Some(expires_at);
            }
        }
        if installation.user_token.is_some() {
            installation.user_token = Some(UserToken::new(format!("{prefix}xoxp-{tag}")));
            if let Some(expires_at) = self.rotation {
                installation.user_refresh_token =
                    Some(RefreshToken::new(format!("xoxe-1-user-{tag}")));
                installation.user_token_expires_at = Some(expires_at);
            }
        }
        self
    }
}
