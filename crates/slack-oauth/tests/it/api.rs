//! `slack_oauth::api::Client` over real HTTP. This file: each Web API method against the emulator
//! (install kinds, Slack's errors, PKCE, refresh rotation, auth.test, exchange, revoke).

// HTTP-level failures: 429 retries, 5xx, decoding, body cap, timeouts, connection failures, and
// that no error shows a secret.
mod failures;
// What goes on the wire, recorded by a canned server: auth headers, form bodies, user agent.
mod requests;

use slack_emulator::{Grant, InstallKind};
use slack_oauth::api::{AccessGrant, ClientCredentials, OAuthV2AccessResponse};
use slack_oauth::secret::{AccessToken, AuthorizationCode, RefreshToken};

use crate::support::{
    assert_no_secret, assert_slack_error, client, code_grant, config, credentials, emulator,
    pkce_code, rotating_config, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
};

/// Installs `grant` through a code and returns the `oauth.v2.access` answer.
async fn install(grant: Grant) -> OAuthV2AccessResponse {
    let emulator = emulator(config()).await;
    let code = emulator.issue_code(grant, Some(REDIRECT_URI));
    let response = client(&emulator)
        .oauth_v2_access(&credentials(), &code_grant(&code, Some(REDIRECT_URI)))
        .await
        .unwrap();
    assert_eq!(emulator.counters().codes_redeemed, 1);
    response
}

fn calls(emulator: &slack_emulator::Emulator, method: &str) -> u64 {
    emulator.counters().calls.get(method).copied().unwrap_or(0)
}

// ---- oauth.v2.access with a code -------------------------------------------------------------

#[tokio::test]
async fn workspace_install_gives_bot_and_user_tokens() {
    let r = install(Grant::default()).await;
    assert_eq!(r.app_id.unwrap().as_str(), "A0EMULATOR");
    assert!(r.access_token.unwrap().secret().starts_with("xoxb-"));
    assert_eq!(r.token_type.as_deref(), Some("bot"));
    assert!(r.scope.contains("chat:write") && r.scope.contains("commands"));
    assert_eq!(r.bot_user_id.unwrap().as_str(), "U0EMULBOT");
    let team = r.team.unwrap();
    assert_eq!(team.id.unwrap().as_str(), "T0EMULATOR");
    assert_eq!(team.name.as_deref(), Some("Emulated Workspace"));
    assert!(r.enterprise.is_none());
    assert!(!r.is_enterprise_install);
    assert!(r.refresh_token.is_none() && r.expires_in.is_none());
    let user = r.authed_user.unwrap();
    assert_eq!(user.id.unwrap().as_str(), "U0EMULATOR");
    assert!(user.access_token.unwrap().secret().starts_with("xoxp-"));
    assert!(user.scope.contains("search:read"));
    assert!(r.incoming_webhook.is_none());
}

#[tokio::test]
async fn org_wide_install_has_no_team() {
    let r = install(Grant {
        kind: InstallKind::OrgWide,
        ..Grant::default()
    })
    .await;
    assert!(r.team.is_none());
    assert!(r.is_enterprise_install);
    assert_eq!(r.enterprise.unwrap().id.unwrap().as_str(), "E0EMULATOR");
    assert!(r.access_token.is_some());
}

#[tokio::test]
async fn user_only_install_has_no_bot_token() {
    let r = install(Grant {
        kind: InstallKind::UserOnly,
        ..Grant::default()
    })
    .await;
    assert!(r.access_token.is_none());
    assert!(r.token_type.is_none());
    assert!(r.scope.is_empty());
    assert!(r.bot_user_id.is_none());
    let user = r.authed_user.unwrap();
    assert!(user.access_token.unwrap().secret().starts_with("xoxp-"));
    assert_eq!(user.token_type.as_deref(), Some("user"));
}

#[tokio::test]
async fn workspace_in_org_install_has_team_and_enterprise() {
    let r = install(Grant {
        kind: InstallKind::WorkspaceInOrg,
        ..Grant::for_team("T0INORG")
    })
    .await;
    assert_eq!(r.team.unwrap().id.unwrap().as_str(), "T0INORG");
    assert_eq!(r.enterprise.unwrap().id.unwrap().as_str(), "E0EMULATOR");
    assert!(!r.is_enterprise_install);
}

#[tokio::test]
async fn install_with_incoming_webhook() {
    let r = install(Grant {
        incoming_webhook: true,
        ..Grant::default()
    })
    .await;
    let hook = r.incoming_webhook.unwrap();
    assert!(hook.url.unwrap().starts_with("http://127.0.0.1:"));
    assert_eq!(hook.channel_id.as_deref(), Some("C0EMULATOR"));
    assert_eq!(hook.channel.as_deref(), Some("#general"));
    assert!(hook.configuration_url.is_some());
}

#[tokio::test]
async fn reused_code_is_invalid_code() {
    let emulator = emulator(config()).await;
    let client = client(&emulator);
    let code = emulator.issue_code(Grant::default(), Some(REDIRECT_URI));
    let grant = code_grant(&code, Some(REDIRECT_URI));
    client
        .oauth_v2_access(&credentials(), &grant)
        .await
        .unwrap();
    let second = client.oauth_v2_access(&credentials(), &grant).await;
    assert_slack_error(second, "invalid_code");
    let unknown = code_grant("1.2.unknown", Some(REDIRECT_URI));
    assert_slack_error(
        client.oauth_v2_access(&credentials(), &unknown).await,
        "invalid_code",
    );
}

#[tokio::test]
async fn other_redirect_uri_is_bad_redirect_uri() {
    let emulator = emulator(config()).await;
    let client = client(&emulator);
    let code = emulator.issue_code(Grant::default(), Some(REDIRECT_URI));
    let other = code_grant(&code, Some("https://evil.test/callback"));
    assert_slack_error(
        client.oauth_v2_access(&credentials(), &other).await,
        "bad_redirect_uri",
    );
    let missing = code_grant(&code, None);
    assert_slack_error(
        client.oauth_v2_access(&credentials(), &missing).await,
        "bad_redirect_uri",
    );
}

#[tokio::test]
async fn wrong_client_secret_is_bad_client_secret() {
    let emulator = emulator(config()).await;
    let code = emulator.issue_code(Grant::default(), Some(REDIRECT_URI));
    let wrong = ClientCredentials::new(CLIENT_ID, "not-the-secret");
    let result = client(&emulator)
        .oauth_v2_access(&wrong, &code_grant(&code, Some(REDIRECT_URI)))
        .await;
    assert_slack_error(result, "bad_client_secret");
}

/// RFC 7636 appendix B.
const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn pkce_grant(code: &str, verifier: Option<&str>) -> AccessGrant {
    AccessGrant::Code {
        code: AuthorizationCode::new(code),
        redirect_uri: Some(REDIRECT_URI.to_owned()),
        code_verifier: verifier.map(str::to_owned),
    }
}

#[tokio::test]
async fn pkce_code_with_its_verifier_is_redeemed() {
    let emulator = emulator(config()).await;
    let code = pkce_code(&emulator, PKCE_CHALLENGE).await;
    let r = client(&emulator)
        .oauth_v2_access(&credentials(), &pkce_grant(&code, Some(PKCE_VERIFIER)))
        .await
        .unwrap();
    assert!(r.access_token.is_some());
}

#[tokio::test]
async fn pkce_code_with_a_wrong_or_missing_verifier_is_refused() {
    let emulator = emulator(config()).await;
    let client = client(&emulator);
    let code = pkce_code(&emulator, PKCE_CHALLENGE).await;
    let wrong = pkce_grant(&code, Some("wrong-verifier-wrong-verifier-wrong-verifier"));
    assert_slack_error(
        client.oauth_v2_access(&credentials(), &wrong).await,
        "invalid_code_verifier",
    );
    assert_slack_error(
        client
            .oauth_v2_access(&credentials(), &pkce_grant(&code, None))
            .await,
        "invalid_code_verifier",
    );
    assert_eq!(emulator.counters().codes_redeemed, 0);
}

// ---- oauth.v2.access with a refresh token ----------------------------------------------------

#[tokio::test]
async fn refresh_rotates_and_spent_token_is_invalid_refresh_token() {
    let emulator = emulator(rotating_config()).await;
    let client = client(&emulator);
    let (old_access, old_refresh) = emulator.seed_refresh_token(&Grant::default(), false);
    let grant = AccessGrant::RefreshToken(RefreshToken::new(old_refresh.clone()));

    let r = client
        .oauth_v2_access(&credentials(), &grant)
        .await
        .unwrap();
    let new_access = r.access_token.unwrap();
    let new_refresh = r.refresh_token.unwrap();
    assert!(new_access.secret().starts_with("xoxe.xoxb-1-"));
    assert_ne!(new_access.secret(), old_access);
    assert!(new_refresh.secret().starts_with("xoxe-1-"));
    assert_ne!(new_refresh.secret(), old_refresh);
    assert_eq!(r.token_type.as_deref(), Some("bot"));
    assert_eq!(r.expires_in, Some(43_200));
    assert_eq!(emulator.counters().refreshes_served, 1);

    // The spent token: Slack's own string is kept, and nothing in the error shows a token.
    let error = client
        .oauth_v2_access(&credentials(), &grant)
        .await
        .unwrap_err();
    assert_eq!(error.slack_error(), Some("invalid_refresh_token"));
    assert_eq!(
        error.to_string(),
        "oauth.v2.access failed: invalid_refresh_token"
    );
    assert!(!error.is_transient());
    assert_no_secret(&error, &[&old_refresh, new_refresh.secret(), CLIENT_SECRET]);

    // The new one works.
    let next = AccessGrant::RefreshToken(new_refresh);
    let r = client.oauth_v2_access(&credentials(), &next).await.unwrap();
    assert!(r.refresh_token.is_some());
}

#[tokio::test]
async fn user_token_refresh_says_user() {
    let emulator = emulator(rotating_config()).await;
    let (_, refresh) = emulator.seed_refresh_token(&Grant::default(), true);
    let r = client(&emulator)
        .oauth_v2_access(
            &credentials(),
            &AccessGrant::RefreshToken(RefreshToken::new(refresh)),
        )
        .await
        .unwrap();
    assert_eq!(r.token_type.as_deref(), Some("user"));
    assert!(r.access_token.unwrap().secret().starts_with("xoxe.xoxp-1-"));
}

// ---- auth.test, oauth.v2.exchange, auth.revoke -----------------------------------------------

#[tokio::test]
async fn auth_test_with_a_bot_token_gives_bot_id() {
    let emulator = emulator(config()).await;
    let token = emulator.seed_token(&Grant::default(), false);
    let r = client(&emulator)
        .auth_test(&AccessToken::new(token))
        .await
        .unwrap();
    assert_eq!(r.bot_id.unwrap().as_str(), "B0EMULATOR");
    assert_eq!(r.user_id.unwrap().as_str(), "U0EMULBOT");
    assert_eq!(r.team_id.unwrap().as_str(), "T0EMULATOR");
    assert!(r.url.unwrap().ends_with(".slack.com/"));
    assert!(!r.is_enterprise_install);
}

#[tokio::test]
async fn auth_test_with_a_user_token_has_no_bot_id() {
    let emulator = emulator(config()).await;
    let token = emulator.seed_token(&Grant::default(), true);
    let r = client(&emulator)
        .auth_test(&AccessToken::new(token))
        .await
        .unwrap();
    assert!(r.bot_id.is_none());
    assert_eq!(r.user_id.unwrap().as_str(), "U0EMULATOR");
}

#[tokio::test]
async fn auth_test_with_an_unknown_token_is_invalid_auth() {
    let emulator = emulator(config()).await;
    let token = "xoxb-0-0-UNKNOWNTOKENVALUE";
    let error = client(&emulator)
        .auth_test(&AccessToken::new(token))
        .await
        .unwrap_err();
    assert_eq!(error.slack_error(), Some("invalid_auth"));
    assert_no_secret(&error, &[token]);
}

#[tokio::test]
async fn exchange_trades_a_long_lived_token_once() {
    let emulator = emulator(rotating_config()).await;
    let client = client(&emulator);
    let token = AccessToken::new(emulator.seed_token(&Grant::default(), false));
    let r = client
        .oauth_v2_exchange(&credentials(), &token)
        .await
        .unwrap();
    assert!(r.access_token.unwrap().secret().starts_with("xoxe.xoxb-1-"));
    assert!(r.refresh_token.unwrap().secret().starts_with("xoxe-1-"));
    assert_eq!(r.expires_in, Some(43_200));
    assert_eq!(r.token_type.as_deref(), Some("bot"));
    assert_slack_error(
        client.oauth_v2_exchange(&credentials(), &token).await,
        "token_already_exchanged",
    );
}

#[tokio::test]
async fn exchange_without_rotation_is_refused() {
    let emulator = emulator(config()).await;
    let token = AccessToken::new(emulator.seed_token(&Grant::default(), false));
    assert_slack_error(
        client(&emulator)
            .oauth_v2_exchange(&credentials(), &token)
            .await,
        "token_rotation_not_enabled",
    );
}

#[tokio::test]
async fn revoke_test_only_checks_and_revoke_revokes() {
    let emulator = emulator(config()).await;
    let client = client(&emulator);
    let token = AccessToken::new(emulator.seed_token(&Grant::default(), true));

    let checked = client.auth_revoke(&token, true).await.unwrap();
    assert!(!checked.revoked);
    client.auth_test(&token).await.unwrap();

    let revoked = client.auth_revoke(&token, false).await.unwrap();
    assert!(revoked.revoked);
    assert_slack_error(client.auth_test(&token).await, "token_revoked");
}
