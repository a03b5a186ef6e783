//! The code exchange: `oauth.v2.access`, then `auth.test` for the bot, then the `Installation`.

use time::OffsetDateTime;

use crate::api::{
    AccessGrant, ApiError, AuthTestResponse, Client, ClientCredentials, OAuthV2AccessResponse,
};
use crate::installation::Installation;
use crate::secret::{AccessToken, AuthorizationCode, BotToken};
use crate::settings::OAuthSettings;

/// Exchanges `code` for tokens and builds the installation, as of `now`.
///
/// One `oauth.v2.access` with the configured `redirect_uri`; then, only when Slack returned a bot
/// token, one `auth.test` with it for the bot id (and the org URL of an org-wide install). A
/// user-only install, org-wide or not, makes no second call (Bolt's async flow crashes there, W6).
pub(crate) async fn run_installation(
    client: &Client,
    settings: &OAuthSettings,
    code: AuthorizationCode,
    now: OffsetDateTime,
) -> Result<Installation, ApiError> {
    let credentials =
        ClientCredentials::new(settings.client_id.clone(), settings.client_secret.clone());
    let grant = AccessGrant::Code {
        code,
        redirect_uri: settings.redirect_uri.clone(),
        code_verifier: None,
    };
    let response = client.oauth_v2_access(&credentials, &grant).await?;
    let auth_test = match &response.access_token {
        Some(token) => Some(client.auth_test(token).await?),
        None => None,
    };
    build_installation(response, auth_test, now)
}

/// The installation an `oauth.v2.access` response (and the bot's `auth.test`) describe (Bolt's
/// field mapping, docs/reference-sections.md §8.5). Expiries are `now + expires_in`, in whole
/// seconds; missing scopes are empty (Bolt stores `None` and crashes on save, W5); a missing
/// `bot_id` stays `None`.
pub(crate) fn build_installation(
    response: OAuthV2AccessResponse,
    auth_test: Option<AuthTestResponse>,
    now: OffsetDateTime,
) -> Result<Installation, ApiError> {
    let decode = |detail: &str| ApiError::Decode {
        method: "oauth.v2.access",
        detail: detail.to_owned(),
    };
    let authed_user = response.authed_user.unwrap_or_default();
    let user_id = authed_user
        .id
        .ok_or_else(|| decode("authed_user.id is missing"))?;
    let whole_seconds = now.replace_nanosecond(0).unwrap_or(now);
    let expires_at = |expires_in: Option<i64>, field: &str| {
        expires_in
            .map(|seconds| {
                whole_seconds
                    .checked_add(time::Duration::seconds(seconds))
                    .ok_or_else(|| decode(&format!("{field} is out of range")))
            })
            .transpose()
    };

    let mut installation = Installation::new(user_id, now);
    installation.app_id = response.app_id;
    if let Some(enterprise) = response.enterprise {
        installation.enterprise_id = enterprise.id;
        installation.enterprise_name = enterprise.name;
    }
    if let Some(team) = response.team {
        installation.team_id = team.id;
        installation.team_name = team.name;
    }
    installation.bot_token_expires_at = expires_at(response.expires_in, "expires_in")?;
    installation.bot_token = response
        .access_token
        .map(|token: AccessToken| BotToken::new(token.into_secret()));
    installation.bot_user_id = response.bot_user_id;
    installation.bot_scopes = response.scope;
    installation.bot_refresh_token = response.refresh_token;
    installation.user_token = authed_user.access_token;
    installation.user_scopes = authed_user.scope;
    installation.user_refresh_token = authed_user.refresh_token;
    installation.user_token_expires_at =
        expires_at(authed_user.expires_in, "authed_user.expires_in")?;
    if let Some(webhook) = response.incoming_webhook {
        installation.incoming_webhook_url = webhook.url;
        installation.incoming_webhook_channel = webhook.channel;
        installation.incoming_webhook_channel_id = webhook.channel_id;
        installation.incoming_webhook_configuration_url = webhook.configuration_url;
    }
    installation.is_enterprise_install = response.is_enterprise_install;
    installation.token_type = response.token_type;
    if let Some(auth_test) = auth_test {
        installation.bot_id = auth_test.bot_id;
        if installation.is_enterprise_install {
            installation.enterprise_url = auth_test.url;
        }
    }
    Ok(installation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_750_000_000).unwrap()
    }

    fn response(json: serde_json::Value) -> OAuthV2AccessResponse {
        serde_json::from_value(json).unwrap()
    }

    fn bolt_response() -> OAuthV2AccessResponse {
        response(serde_json::json!({
            "ok": true,
            // fake: the sample response of Slack's oauth.v2.access docs, as Bolt's tests use it
            "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", // fake
            "token_type": "bot",
            "scope": "chat:write,commands",
            "bot_user_id": "U0KRQLJ9H",
            "app_id": "A0KRD7HC3",
            "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
            "enterprise": {"name": "slack-sports", "id": "E12345678"},
            "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234", "token_type": "user"},
            "incoming_webhook": {"url": "https://hooks.slack.com/x", "channel": "#general",
                                 "channel_id": "C1", "configuration_url": "https://a.slack.com/c"}
        }))
    }

    fn bot_auth_test() -> AuthTestResponse {
        serde_json::from_value(serde_json::json!({
            "ok": true, "url": "https://subarachnoid.slack.com/", "team": "Subarachnoid Workspace",
            "user": "bot", "team_id": "T0G9PQBBK", "user_id": "W23456789", "bot_id": "BZYBOTHED"
        }))
        .unwrap()
    }

    #[test]
    fn every_field_is_mapped() {
        let i = build_installation(bolt_response(), Some(bot_auth_test()), now()).unwrap();
        assert_eq!(i.app_id.as_ref().unwrap(), "A0KRD7HC3");
        assert_eq!(i.enterprise_id.as_ref().unwrap(), "E12345678");
        assert_eq!(i.enterprise_name.as_deref(), Some("slack-sports"));
        assert_eq!(
            i.enterprise_url, None,
            "only org-wide installs keep the URL"
        );
        assert_eq!(i.team_id.as_ref().unwrap(), "T9TK3CUKW");
        assert_eq!(i.team_name.as_deref(), Some("Slack Softball Team"));
        assert_eq!(
            i.bot_token.as_ref().unwrap().secret(),
            "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy" // fake: Slack's docs example
        );
        assert_eq!(i.bot_id.as_ref().unwrap(), "BZYBOTHED");
        assert_eq!(i.bot_user_id.as_ref().unwrap(), "U0KRQLJ9H");
        assert_eq!(i.bot_scopes.to_string(), "chat:write,commands");
        assert_eq!(i.user_id, "U1234");
        assert_eq!(i.user_token.as_ref().unwrap().secret(), "xoxp-1234");
        assert_eq!(i.user_scopes.to_string(), "chat:write");
        assert_eq!(
            i.incoming_webhook_url.as_deref(),
            Some("https://hooks.slack.com/x")
        );
        assert_eq!(i.incoming_webhook_channel.as_deref(), Some("#general"));
        assert_eq!(i.incoming_webhook_channel_id.as_deref(), Some("C1"));
        assert_eq!(
            i.incoming_webhook_configuration_url.as_deref(),
            Some("https://a.slack.com/c")
        );
        assert!(!i.is_enterprise_install);
        assert_eq!(i.token_type.as_deref(), Some("bot"));
        assert_eq!(i.installed_at, now());
        assert_eq!(i.bot_token_expires_at, None);
        assert_eq!(i.bot_refresh_token, None);
    }

    #[test]
    fn rotation_expiries_are_now_plus_expires_in_in_whole_seconds() {
        let r = response(serde_json::json!({
            "access_token": "xoxe.xoxb-1", "refresh_token": "xoxe-1-b", "expires_in": 43200,
            "authed_user": {"id": "U1", "access_token": "xoxe.xoxp-1", "refresh_token": "xoxe-1-u",
                            "expires_in": 3600}
        }));
        let i = build_installation(r, None, now()).unwrap();
        assert_eq!(
            i.bot_token_expires_at.unwrap().unix_timestamp(),
            1_700_000_000 + 43_200
        );
        assert_eq!(i.bot_token_expires_at.unwrap().nanosecond(), 0);
        assert_eq!(
            i.user_token_expires_at.unwrap().unix_timestamp(),
            1_700_000_000 + 3_600
        );
        assert_eq!(i.bot_refresh_token.unwrap().secret(), "xoxe-1-b");
        assert_eq!(i.user_refresh_token.unwrap().secret(), "xoxe-1-u");
    }

    #[test]
    fn user_only_org_wide_install_builds_without_auth_test() {
        let r = response(serde_json::json!({
            "app_id": "A1", "team": null, "enterprise": {"id": "E1", "name": "Org"},
            "is_enterprise_install": true,
            "authed_user": {"id": "U1", "scope": "search:read", "access_token": "xoxp-1"}
        }));
        let i = build_installation(r, None, now()).unwrap();
        assert!(i.is_enterprise_install);
        assert!(i.bot_token.is_none() && i.bot_id.is_none());
        assert!(
            i.bot_scopes.is_empty(),
            "absent scope is empty, not a crash (W5)"
        );
        assert_eq!(i.team_id, None);
        assert_eq!(i.enterprise_url, None);
    }

    #[test]
    fn org_wide_bot_install_keeps_the_org_url_and_a_missing_bot_id_is_none() {
        let r = response(serde_json::json!({
            "access_token": "xoxb-1", "is_enterprise_install": true, "team": null,
            "enterprise": {"id": "E1"}, "authed_user": {"id": "U1"}
        }));
        let mut auth_test = bot_auth_test();
        auth_test.url = Some("https://org.enterprise.slack.com/".to_owned());
        auth_test.bot_id = None;
        let i = build_installation(r, Some(auth_test), now()).unwrap();
        assert_eq!(
            i.enterprise_url.as_deref(),
            Some("https://org.enterprise.slack.com/")
        );
        assert_eq!(i.bot_id, None);
    }

    #[test]
    fn missing_installer_or_absurd_expiry_is_a_decode_error() {
        let error = build_installation(response(serde_json::json!({})), None, now()).unwrap_err();
        assert!(error.to_string().contains("authed_user.id"), "{error}");
        let r = response(serde_json::json!({
            "access_token": "xoxb-1", "expires_in": i64::MAX, "authed_user": {"id": "U1"}
        }));
        let error = build_installation(r, None, now()).unwrap_err();
        assert!(error.to_string().contains("expires_in"), "{error}");
    }
}
