//! Typed requests and responses of the Web API methods this crate calls.
//!
//! Responses accept every documented shape (bot + user, user-only, org-wide with `team: null`,
//! workspace inside an org, incoming webhook, rotation fields) and ignore unknown fields.

use serde::Deserialize;

use crate::ids::{AppId, BotId, ClientId, EnterpriseId, TeamId, UserId};
use crate::installation::Scopes;
use crate::secret::{AccessToken, AuthorizationCode, ClientSecret, RefreshToken, UserToken};

/// The app's OAuth credentials, sent with HTTP Basic auth to `oauth.v2.access`.
///
/// ```
/// use slack_oauth::api::ClientCredentials;
/// let credentials = ClientCredentials::new("111.222", "secret");
/// assert!(!format!("{credentials:?}").contains("secret\""));
/// ```
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    /// The client id.
    pub client_id: ClientId,
    /// The client secret.
    pub client_secret: ClientSecret,
}

impl ClientCredentials {
    /// Credentials from an id and a secret.
    pub fn new(client_id: impl Into<ClientId>, client_secret: impl Into<ClientSecret>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }
}

/// What `oauth.v2.access` is asked to redeem.
///
/// ```
/// use slack_oauth::api::AccessGrant;
/// use slack_oauth::secret::{AuthorizationCode, RefreshToken};
///
/// let install = AccessGrant::Code {
///     code: AuthorizationCode::new("123.456.abc"),
///     redirect_uri: Some("https://example.com/slack/oauth_redirect".to_owned()),
///     code_verifier: None,
/// };
/// let refresh = AccessGrant::RefreshToken(RefreshToken::new("xoxe-1-abc"));
/// assert!(!format!("{install:?}{refresh:?}").contains("abc"));
/// ```
///
/// `Debug` redacts the code, the refresh token and the PKCE verifier (with the code, the
/// verifier is enough to redeem it).
#[derive(Clone)]
#[non_exhaustive]
pub enum AccessGrant {
    /// An authorization code from the install redirect.
    Code {
        /// The code.
        code: AuthorizationCode,
        /// The `redirect_uri` given to the authorize URL, if any; Slack requires the same value.
        redirect_uri: Option<String>,
        /// The PKCE `code_verifier`, if the authorize URL carried a `code_challenge`.
        code_verifier: Option<String>,
    },
    /// A refresh token (`grant_type=refresh_token`).
    RefreshToken(RefreshToken),
}

/// A workspace or org reference in an OAuth response (`{"id": "...", "name": "..."}`).
///
/// ```
/// use slack_oauth::api::NamedRef;
/// use slack_oauth::ids::TeamId;
///
/// let team: NamedRef<TeamId> = serde_json::from_str(r#"{"id":"T1","name":"Team"}"#)?;
/// assert_eq!(team.id, Some(TeamId::new("T1")));
/// assert_eq!(team.name.as_deref(), Some("Team"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct NamedRef<Id> {
    /// The id.
    pub id: Option<Id>,
    /// The display name.
    pub name: Option<String>,
}

/// The `authed_user` object of `oauth.v2.access`.
///
/// ```
/// use slack_oauth::api::AuthedUser;
///
/// let user: AuthedUser = serde_json::from_str(
///     r#"{"id":"U1","scope":"search:read","access_token":"xoxp-1-abc","token_type":"user"}"#,
/// )?;
/// assert!(user.scope.contains("search:read"));
/// assert_eq!(user.access_token.unwrap().secret(), "xoxp-1-abc");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AuthedUser {
    /// The installing user.
    pub id: Option<UserId>,
    /// The user token's scopes.
    #[serde(default, deserialize_with = "scopes_or_empty")]
    pub scope: Scopes,
    /// The user token, when user scopes were requested.
    pub access_token: Option<UserToken>,
    /// `user`.
    pub token_type: Option<String>,
    /// The user token's refresh token, with token rotation.
    pub refresh_token: Option<RefreshToken>,
    /// Seconds until the user token expires, with token rotation.
    pub expires_in: Option<i64>,
}

/// The `incoming_webhook` object of `oauth.v2.access`.
///
/// The URL is a credential (anyone holding it can post to the channel), so `Debug` hides it.
///
/// ```
/// use slack_oauth::api::IncomingWebhook;
///
/// let hook: IncomingWebhook = serde_json::from_str(
///     r##"{"url":"https://hooks.slack.com/services/T1/B1/XYZ","channel":"#general"}"##,
/// )?;
/// assert_eq!(hook.channel.as_deref(), Some("#general"));
/// assert!(!format!("{hook:?}").contains("XYZ"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct IncomingWebhook {
    /// The webhook URL (a credential).
    pub url: Option<String>,
    /// The channel name.
    pub channel: Option<String>,
    /// The channel id.
    pub channel_id: Option<String>,
    /// Where the user can change the webhook.
    pub configuration_url: Option<String>,
}

/// A successful `oauth.v2.access` (or `oauth.v2.exchange`) response.
///
/// For an install, the top-level token is the bot token (`token_type: "bot"`). For a refresh it
/// is whichever kind was refreshed (`token_type` says which).
///
/// ```
/// use slack_oauth::api::OAuthV2AccessResponse;
///
/// // An org-wide install: no workspace, the org instead.
/// let response: OAuthV2AccessResponse = serde_json::from_str(r#"{
///     "ok": true, "app_id": "A1", "access_token": "xoxb-1-abc", "token_type": "bot",
///     "scope": "commands", "team": null, "enterprise": {"id": "E1", "name": "Org"},
///     "is_enterprise_install": true, "authed_user": {"id": "U1"}
/// }"#)?;
/// assert!(response.is_enterprise_install);
/// assert!(response.team.is_none());
/// assert!(response.scope.contains("commands"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OAuthV2AccessResponse {
    /// The app's id.
    pub app_id: Option<AppId>,
    /// The top-level access token (bot token on install; absent for user-only installs).
    pub access_token: Option<AccessToken>,
    /// `bot` or `user`.
    pub token_type: Option<String>,
    /// The top-level token's scopes.
    #[serde(default, deserialize_with = "scopes_or_empty")]
    pub scope: Scopes,
    /// The bot's user id.
    pub bot_user_id: Option<UserId>,
    /// The top-level token's refresh token, with token rotation.
    pub refresh_token: Option<RefreshToken>,
    /// Seconds until the top-level token expires, with token rotation.
    pub expires_in: Option<i64>,
    /// The workspace; `null` for org-wide installs.
    pub team: Option<NamedRef<TeamId>>,
    /// The org, for Enterprise Grid.
    pub enterprise: Option<NamedRef<EnterpriseId>>,
    /// Whether this is an org-wide install.
    #[serde(default, deserialize_with = "bool_or_false")]
    pub is_enterprise_install: bool,
    /// The installing user and their token.
    pub authed_user: Option<AuthedUser>,
    /// The incoming webhook, when the `incoming-webhook` scope was granted.
    pub incoming_webhook: Option<IncomingWebhook>,
}

/// A successful `auth.test` response.
///
/// ```
/// use slack_oauth::api::AuthTestResponse;
///
/// let identity: AuthTestResponse = serde_json::from_str(
///     r#"{"ok":true,"team_id":"T1","user_id":"W1","bot_id":"B1","user":"bot"}"#,
/// )?;
/// assert_eq!(identity.bot_id.unwrap().as_str(), "B1");
/// assert!(!identity.is_enterprise_install);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AuthTestResponse {
    /// The workspace (or org) URL, ending in `/`.
    pub url: Option<String>,
    /// The workspace name.
    pub team: Option<String>,
    /// The token's user name (for a bot token, the bot's name).
    pub user: Option<String>,
    /// The workspace id.
    pub team_id: Option<TeamId>,
    /// The token's user id (for a bot token, the bot's user id).
    pub user_id: Option<UserId>,
    /// The bot id, for bot tokens.
    pub bot_id: Option<BotId>,
    /// The org id, for Enterprise Grid.
    pub enterprise_id: Option<EnterpriseId>,
    /// Whether the token belongs to an org-wide install.
    #[serde(default, deserialize_with = "bool_or_false")]
    pub is_enterprise_install: bool,
}

/// A successful `auth.revoke` response.
///
/// ```
/// use slack_oauth::api::AuthRevokeResponse;
///
/// let answer: AuthRevokeResponse = serde_json::from_str(r#"{"ok":true,"revoked":true}"#)?;
/// assert!(answer.revoked);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AuthRevokeResponse {
    /// Whether the token was revoked.
    #[serde(default, deserialize_with = "bool_or_false")]
    pub revoked: bool,
}

impl std::fmt::Debug for AccessGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code {
                code,
                redirect_uri,
                code_verifier,
            } => f
                .debug_struct("Code")
                .field("code", code)
                .field("redirect_uri", redirect_uri)
                .field(
                    "code_verifier",
                    &code_verifier.as_ref().map(|_| "[redacted]"),
                )
                .finish(),
            Self::RefreshToken(token) => f.debug_tuple("RefreshToken").field(token).finish(),
        }
    }
}

impl std::fmt::Debug for IncomingWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingWebhook")
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("channel", &self.channel)
            .field("channel_id", &self.channel_id)
            .field("configuration_url", &self.configuration_url)
            .finish()
    }
}

fn scopes_or_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Scopes, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .map(|joined| Scopes::parse(&joined))
        .unwrap_or_default())
}

fn bool_or_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

#[cfg(test)]
mod tests;
