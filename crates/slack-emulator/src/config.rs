//! Emulator configuration: the app's credentials, token rotation, and what an install grants.

use std::fmt;
use std::time::Duration;

/// How an [`Emulator`](crate::Emulator) behaves. Every field has a default; override the ones a
/// test cares about with struct update syntax.
///
/// ```
/// use std::time::Duration;
/// use slack_emulator::EmulatorConfig;
///
/// let config = EmulatorConfig {
///     client_id: Some("111.222".to_owned()),
///     client_secret: Some("secret".to_owned()),
///     rotation: true,
///     refresh_grace: Duration::from_secs(5),
///     ..EmulatorConfig::default()
/// };
/// assert_eq!(config.token_ttl, Duration::from_secs(43_200));
/// assert!(config.strict_tokens);
/// ```
#[derive(Clone)]
pub struct EmulatorConfig {
    /// The only client id accepted by `authorize` and the `oauth.v2.*` methods; `None` accepts
    /// any (non-empty) client id.
    pub client_id: Option<String>,
    /// The only client secret accepted; `None` accepts any (non-empty) secret.
    pub client_secret: Option<String>,
    /// `authorize` redirects back with a code at once instead of showing the approve page. A
    /// request can also ask for this with `&auto_approve=1`.
    pub auto_approve: bool,
    /// Token rotation is on: installs get expiring `xoxe.xoxb-1-…` / `xoxe.xoxp-1-…` tokens plus
    /// `xoxe-1-…` refresh tokens, and `oauth.v2.access` accepts `grant_type=refresh_token`.
    /// Off, installs get long-lived `xoxb-…` / `xoxp-…` tokens, and refreshes and
    /// `oauth.v2.exchange` fail with `token_rotation_not_enabled`.
    pub rotation: bool,
    /// Lifetime of a rotating access token (`expires_in`); Slack's is always 12 hours.
    pub token_ttl: Duration,
    /// How long a spent refresh token is still served after its first redemption. Slack revokes
    /// it "after a short grace period" of undocumented length; the default 0 is the strictest.
    pub refresh_grace: Duration,
    /// Added to every `/api/` call before it is handled.
    pub latency: Duration,
    /// What an approved `authorize` installs. The request's `scope`, `user_scope` and `team`
    /// override the scopes and the workspace; the kind, ids and names come from here.
    pub default_grant: Grant,
    /// `auth.test` rejects unknown tokens (`invalid_auth`) and expired ones (`token_expired`).
    /// Off, both answer `ok` with the default grant (revoked tokens are still rejected).
    pub strict_tokens: bool,
    /// How long an authorization code can be redeemed (Slack: ten minutes).
    pub code_ttl: Duration,
    /// Redeeming a spent refresh token after its grace period also revokes its whole family
    /// (every access and refresh token descended from the same install token), as Auth0's
    /// reuse detection does. Slack does not document this; off by default.
    pub reuse_revokes_family: bool,
    /// Slack's "two active tokens" rule: refreshing keeps at most this many live access tokens
    /// per family and revokes the oldest beyond it. `None` (the default) never revokes.
    pub max_active_tokens: Option<usize>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            auto_approve: false,
            rotation: false,
            token_ttl: Duration::from_secs(43_200),
            refresh_grace: Duration::ZERO,
            latency: Duration::ZERO,
            default_grant: Grant::default(),
            strict_tokens: true,
            // Slack documents that codes expire after ten minutes (installing-with-oauth).
            code_ttl: Duration::from_secs(600),
            reuse_revokes_family: false,
            max_active_tokens: None,
        }
    }
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("auto_approve", &self.auto_approve)
            .field("rotation", &self.rotation)
            .field("token_ttl", &self.token_ttl)
            .field("refresh_grace", &self.refresh_grace)
            .field("latency", &self.latency)
            .field("default_grant", &self.default_grant)
            .field("strict_tokens", &self.strict_tokens)
            .field("code_ttl", &self.code_ttl)
            .field("reuse_revokes_family", &self.reuse_revokes_family)
            .field("max_active_tokens", &self.max_active_tokens)
            .finish()
    }
}

/// Where an app is installed, which decides the shape of the `oauth.v2.access` response.
///
/// ```
/// use slack_emulator::InstallKind;
/// assert_eq!(InstallKind::default(), InstallKind::Workspace);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InstallKind {
    /// A standalone workspace: `team` set, `enterprise: null`.
    #[default]
    Workspace,
    /// A workspace inside an Enterprise Grid org: `team` and `enterprise` set.
    WorkspaceInOrg,
    /// An org-wide install: `team: null`, `enterprise` set, `is_enterprise_install: true`.
    OrgWide,
    /// Only a user token (no bot scopes): no top-level bot fields, `authed_user` holds the token.
    UserOnly,
}

/// What one approved install grants: the ids and names Slack reports and the granted scopes.
///
/// The default is a standalone workspace (`T0EMULATOR`) with app `A0EMULATOR`, installer
/// `U0EMULATOR`, bot `B0EMULATOR` / `U0EMULBOT`, bot scopes `chat:write,commands` and user scope
/// `search:read`.
///
/// ```
/// use slack_emulator::{Grant, InstallKind};
///
/// let grant = Grant {
///     kind: InstallKind::OrgWide,
///     ..Grant::for_team("T042")
/// };
/// assert_eq!(grant.team_id, "T042");
/// assert_eq!(grant.enterprise_id, "E0EMULATOR");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The kind of install.
    pub kind: InstallKind,
    /// The app id (`app_id`).
    pub app_id: String,
    /// The workspace id (`team.id`); unused for org-wide installs.
    pub team_id: String,
    /// The workspace name (`team.name`).
    pub team_name: String,
    /// The org id (`enterprise.id`), for `WorkspaceInOrg` and `OrgWide`.
    pub enterprise_id: String,
    /// The org name (`enterprise.name`).
    pub enterprise_name: String,
    /// The installing user (`authed_user.id`).
    pub user_id: String,
    /// The bot id (`auth.test` `bot_id`).
    pub bot_id: String,
    /// The bot's user id (`bot_user_id`).
    pub bot_user_id: String,
    /// The bot token's scopes.
    pub bot_scopes: Vec<String>,
    /// The user token's scopes; empty means no user token.
    pub user_scopes: Vec<String>,
    /// Whether the response carries an `incoming_webhook` object (also implied by the
    /// `incoming-webhook` bot scope).
    pub incoming_webhook: bool,
}

impl Default for Grant {
    fn default() -> Self {
        Self {
            kind: InstallKind::Workspace,
            app_id: "A0EMULATOR".to_owned(),
            team_id: "T0EMULATOR".to_owned(),
            team_name: "Emulated Workspace".to_owned(),
            enterprise_id: "E0EMULATOR".to_owned(),
            enterprise_name: "Emulated Org".to_owned(),
            user_id: "U0EMULATOR".to_owned(),
            bot_id: "B0EMULATOR".to_owned(),
            bot_user_id: "U0EMULBOT".to_owned(),
            bot_scopes: vec!["chat:write".to_owned(), "commands".to_owned()],
            user_scopes: vec!["search:read".to_owned()],
            incoming_webhook: false,
        }
    }
}

impl Grant {
    /// The default grant for another workspace: `team_id` set, `team_name` "Workspace {id}".
    ///
    /// ```
    /// let grant = slack_emulator::Grant::for_team("T123");
    /// assert_eq!(grant.team_name, "Workspace T123");
    /// ```
    pub fn for_team(team_id: impl Into<String>) -> Self {
        let team_id = team_id.into();
        Self {
            team_name: format!("Workspace {team_id}"),
            team_id,
            ..Self::default()
        }
    }

    /// `(id, name)` of the workspace the response names, `None` for org-wide installs.
    pub(crate) fn team(&self) -> Option<(&str, &str)> {
        match self.kind {
            InstallKind::OrgWide => None,
            _ => Some((&self.team_id, &self.team_name)),
        }
    }

    /// `(id, name)` of the org the response names, if any.
    pub(crate) fn enterprise(&self) -> Option<(&str, &str)> {
        match self.kind {
            InstallKind::WorkspaceInOrg | InstallKind::OrgWide => {
                Some((&self.enterprise_id, &self.enterprise_name))
            }
            _ => None,
        }
    }

    /// Whether the install has a bot token.
    pub(crate) fn has_bot(&self) -> bool {
        self.kind != InstallKind::UserOnly
    }

    /// Whether the install has a user token.
    pub(crate) fn has_user(&self) -> bool {
        self.kind == InstallKind::UserOnly || !self.user_scopes.is_empty()
    }

    /// Whether the response carries an `incoming_webhook`.
    pub(crate) fn has_webhook(&self) -> bool {
        self.has_bot()
            && (self.incoming_webhook || self.bot_scopes.iter().any(|s| s == "incoming-webhook"))
    }

    /// The workspace (or org) URL that `auth.test` reports.
    pub(crate) fn url(&self) -> String {
        match self.kind {
            InstallKind::OrgWide => {
                format!(
                    "https://{}.enterprise.slack.com/",
                    slug(&self.enterprise_name)
                )
            }
            _ => format!("https://{}.slack.com/", slug(&self.team_name)),
        }
    }
}

/// A subdomain-safe version of a display name ("Emulated Workspace" → "emulated-workspace").
fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("workspace");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_keeps_alphanumerics_and_single_dashes() {
        assert_eq!(slug("Emulated Workspace"), "emulated-workspace");
        assert_eq!(slug("  A--b!! "), "a-b");
        assert_eq!(slug("日本"), "workspace");
    }

    #[test]
    fn debug_redacts_the_client_secret() {
        let config = EmulatorConfig {
            client_secret: Some("hunter2-secret".to_owned()),
            ..EmulatorConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn kinds_decide_team_and_enterprise() {
        let org = Grant {
            kind: InstallKind::OrgWide,
            ..Grant::default()
        };
        assert_eq!(org.team(), None);
        assert_eq!(org.enterprise().map(|e| e.0), Some("E0EMULATOR"));
        assert!(org.url().contains(".enterprise.slack.com"));
        let user = Grant {
            kind: InstallKind::UserOnly,
            user_scopes: Vec::new(),
            ..Grant::default()
        };
        assert!(!user.has_bot() && user.has_user());
    }
}
