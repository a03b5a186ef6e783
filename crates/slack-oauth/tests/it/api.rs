//! `slack_oauth::api::Client` over real HTTP: against the emulator for Slack's behaviour, and
//! against a canned server for request shapes and answers the emulator cannot give.

use std::time::Duration;

use base64::Engine as _;
use slack_emulator::{Fault, Grant, InstallKind};
use slack_oauth::api::{AccessGrant, ApiError, ClientCredentials, OAuthV2AccessResponse};
use slack_oauth::secret::{AccessToken, AuthorizationCode, RefreshToken};

use crate::support::{
    assert_no_secret, assert_slack_error, client, client_builder, closed_port_url, code_grant,
    config, credentials, emulator, http_response, pkce_code, rotating_config, CannedServer,
    CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
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

// ---- HTTP failures ---------------------------------------------------------------------------

#[tokio::test]
async fn rate_limited_call_is_retried_after_retry_after() {
    let emulator = emulator(config()).await;
    let token = AccessToken::new(emulator.seed_token(&Grant::default(), false));
    emulator.inject(
        "auth.test",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    let r = client(&emulator).auth_test(&token).await.unwrap();
    assert!(r.bot_id.is_some());
    assert_eq!(calls(&emulator, "auth.test"), 2);
}

#[tokio::test]
async fn rate_limited_code_exchange_is_retried_safely() {
    // Slack does not process a call it answers 429, so the code is still good on the retry.
    let emulator = emulator(config()).await;
    let code = emulator.issue_code(Grant::default(), Some(REDIRECT_URI));
    emulator.inject(
        "oauth.v2.access",
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        2,
    );
    let r = client(&emulator)
        .oauth_v2_access(&credentials(), &code_grant(&code, Some(REDIRECT_URI)))
        .await
        .unwrap();
    assert!(r.access_token.is_some());
    assert_eq!(calls(&emulator, "oauth.v2.access"), 3);
    assert_eq!(emulator.counters().codes_redeemed, 1);
}

#[tokio::test]
async fn rate_limit_gives_up_after_max_retries() {
    let emulator = emulator(config()).await;
    let token = AccessToken::new(emulator.seed_token(&Grant::default(), false));
    emulator.inject(
        "auth.test",
        Fault::RateLimited {
            retry_after_secs: 0,
        },
        10,
    );
    let client = client_builder(&emulator.api_url())
        .max_retries(3)
        .build()
        .unwrap();
    let error = client.auth_test(&token).await.unwrap_err();
    match &error {
        ApiError::RateLimited {
            method,
            retry_after,
        } => {
            assert_eq!(*method, "auth.test");
            assert_eq!(*retry_after, Duration::ZERO);
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(error.is_transient());
    assert_eq!(calls(&emulator, "auth.test"), 4);
}

#[tokio::test]
async fn retry_after_beyond_the_longest_wait_gives_up_at_once() {
    let emulator = emulator(config()).await;
    let token = AccessToken::new(emulator.seed_token(&Grant::default(), false));
    emulator.inject(
        "auth.test",
        Fault::RateLimited {
            retry_after_secs: 120,
        },
        1,
    );
    let error = client(&emulator).auth_test(&token).await.unwrap_err();
    assert!(
        matches!(error, ApiError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(120)),
        "{error:?}"
    );
    assert!(error.to_string().contains("retry after 120s"), "{error}");
    assert_eq!(calls(&emulator, "auth.test"), 1);
}

#[tokio::test]
async fn server_error_is_not_retried() {
    let emulator = emulator(rotating_config()).await;
    let (_, refresh) = emulator.seed_refresh_token(&Grant::default(), false);
    for status in [500, 503] {
        emulator.inject("oauth.v2.access", Fault::ServerError { status }, 1);
        let grant = AccessGrant::RefreshToken(RefreshToken::new(refresh.clone()));
        let error = client(&emulator)
            .oauth_v2_access(&credentials(), &grant)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ApiError::Server { method: "oauth.v2.access", status: s } if s == status),
            "{error:?}"
        );
        assert!(error.is_transient());
        assert_no_secret(&error, &[&refresh, CLIENT_SECRET]);
    }
    assert_eq!(calls(&emulator, "oauth.v2.access"), 2);
}

#[tokio::test]
async fn malformed_json_is_a_decode_error_without_the_body() {
    let emulator = emulator(config()).await;
    let code = emulator.issue_code(Grant::default(), Some(REDIRECT_URI));
    emulator.inject("oauth.v2.access", Fault::MalformedJson, 1);
    let error = client(&emulator)
        .oauth_v2_access(&credentials(), &code_grant(&code, Some(REDIRECT_URI)))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ApiError::Decode { method: "oauth.v2.access", detail } if detail.starts_with("truncated JSON")),
        "{error:?}"
    );
    // The emulator's truncated body is `{"ok":true,"app_id":"A0EMULATOR","access_tok`.
    assert_no_secret(&error, &["A0EMULATOR", "access_tok", &code, CLIENT_SECRET]);
}

#[tokio::test]
async fn decode_error_never_shows_a_token_from_the_body() {
    let token = "xoxb-1-2-TOKENINTHEBODY";
    let bodies = [
        // A token where an object belongs.
        format!(r#"{{"ok":true,"authed_user":"{token}"}}"#),
        // A token where a boolean belongs.
        format!(r#"{{"ok":true,"access_token":"{token}","is_enterprise_install":"{token}"}}"#),
        // Not JSON after a token.
        format!(r#"{{"ok":true,"access_token":"{token}" oops}}"#),
    ];
    for body in bodies {
        let server = CannedServer::json(200, &body).await;
        let client = client_builder(server.api_url()).build().unwrap();
        let error = client
            .oauth_v2_access(&credentials(), &code_grant("c", None))
            .await
            .unwrap_err();
        assert!(matches!(error, ApiError::Decode { .. }), "{error:?}");
        assert_no_secret(&error, &[token, "TOKENINTHEBODY"]);
    }
}

#[tokio::test]
async fn decode_error_keeps_the_json_path() {
    let server =
        CannedServer::json(200, r#"{"ok":true,"authed_user":{"expires_in":"soon"}}"#).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let error = client
        .oauth_v2_access(&credentials(), &code_grant("c", None))
        .await
        .unwrap_err();
    let ApiError::Decode { detail, .. } = &error else {
        panic!("expected Decode, got {error:?}");
    };
    assert!(
        detail.starts_with("at authed_user.expires_in: wrong type"),
        "{detail}"
    );
    assert!(!detail.contains("soon"), "{detail}");
}

#[tokio::test]
async fn huge_body_is_refused() {
    let big = format!(r#"{{"ok":true,"pad":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    // With a Content-Length, and without one (read until the connection closes).
    let mut without_length =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n".to_vec();
    without_length.extend_from_slice(big.as_bytes());
    for server in [
        CannedServer::json(200, &big).await,
        CannedServer::spawn(without_length).await,
    ] {
        let client = client_builder(server.api_url()).build().unwrap();
        let error = client
            .auth_test(&AccessToken::new("xoxb-1"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ApiError::Decode { detail, .. } if detail.contains("larger than")),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn slow_answer_beyond_the_request_timeout_is_timeout() {
    let emulator = emulator(config()).await;
    let token = AccessToken::new(emulator.seed_token(&Grant::default(), false));
    emulator.inject("auth.test", Fault::Slow(Duration::from_secs(30)), 1);
    let client = client_builder(&emulator.api_url())
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = client.auth_test(&token).await.unwrap_err();
    assert!(
        matches!(
            error,
            ApiError::Timeout {
                method: "auth.test"
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_no_secret(&error, &[token.secret()]);
}

#[tokio::test]
async fn closed_port_is_connect() {
    let url = closed_port_url().await;
    let client = client_builder(&url).build().unwrap();
    let token = "xoxb-1-2-CONNECTSECRET";
    let error = client
        .auth_test(&AccessToken::new(token))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ApiError::Connect {
                method: "auth.test",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_no_secret(&error, &[token, "CONNECTSECRET"]);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = CannedServer::spawn(http_response(
        302,
        &[("location", "https://evil.test/steal")],
        "",
    ))
    .await;
    let client = client_builder(server.api_url()).build().unwrap();
    let error = client
        .oauth_v2_access(&credentials(), &code_grant("c", None))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ApiError::Status { status: 302, .. }),
        "{error:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn other_statuses_are_status_errors() {
    let server = CannedServer::json(404, r#"{"ok":false,"error":"unknown_method"}"#).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let error = client
        .auth_test(&AccessToken::new("xoxb-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ApiError::Status {
                method: "auth.test",
                status: 404
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());
}

// ---- request shapes (python-reference.md §8.4, §9.1, §12.5 case 14) --------------------------

const EMPTY_OK: &str = r#"{"ok":true}"#;

#[tokio::test]
async fn code_exchange_sends_basic_auth_and_a_form_without_credentials() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let grant = code_grant("123.456.abc", Some(REDIRECT_URI));
    client
        .oauth_v2_access(&credentials(), &grant)
        .await
        .unwrap();

    let [request] = server.requests().try_into().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/oauth.v2.access");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.body,
        "redirect_uri=https%3A%2F%2Fapp.test%2Fslack%2Foauth_redirect&code=123.456.abc"
    );
    assert!(!request.body.contains("client_"));
    let agent = request.header("user-agent").unwrap();
    assert!(
        agent.starts_with("slack-oauth/") && agent.ends_with(" (rust)"),
        "{agent}"
    );
}

#[tokio::test]
async fn basic_auth_matches_python_for_the_spec_example() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let credentials = ClientCredentials::new("111.222", "sec");
    client
        .oauth_v2_access(&credentials, &code_grant("c", None))
        .await
        .unwrap();
    let [request] = server.requests().try_into().unwrap();
    assert_eq!(
        request.header("authorization"),
        Some("Basic MTExLjIyMjpzZWM=")
    );
    assert_eq!(request.body, "code=c");
}

#[tokio::test]
async fn pkce_verifier_follows_the_code() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    client
        .oauth_v2_access(&credentials(), &pkce_grant("c", Some(PKCE_VERIFIER)))
        .await
        .unwrap();
    let [request] = server.requests().try_into().unwrap();
    assert_eq!(
        request.body,
        format!(
            "redirect_uri=https%3A%2F%2Fapp.test%2Fslack%2Foauth_redirect&code=c&code_verifier={PKCE_VERIFIER}"
        )
    );
}

#[tokio::test]
async fn refresh_sends_grant_type_and_refresh_token() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let grant = AccessGrant::RefreshToken(RefreshToken::new("xoxe-1-abc"));
    client
        .oauth_v2_access(&credentials(), &grant)
        .await
        .unwrap();
    let [request] = server.requests().try_into().unwrap();
    assert_eq!(
        request.body,
        "grant_type=refresh_token&refresh_token=xoxe-1-abc"
    );
    assert!(request
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
}

#[tokio::test]
async fn token_methods_send_bearer_auth() {
    let server = CannedServer::json(200, EMPTY_OK).await;
    let client = client_builder(server.api_url()).build().unwrap();
    let token = AccessToken::new("xoxb-1-2-abc");
    client.auth_test(&token).await.unwrap();
    client.auth_revoke(&token, true).await.unwrap();
    client.auth_revoke(&token, false).await.unwrap();
    client
        .oauth_v2_exchange(&credentials(), &token)
        .await
        .unwrap();

    let requests = server.requests();
    let shapes: Vec<(&str, Option<&str>, &str)> = requests
        .iter()
        .map(|r| (r.path.as_str(), r.header("authorization"), r.body.as_str()))
        .collect();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let basic = format!("Basic {basic}");
    // Each request runs on its own connection (the server closes them), in call order.
    assert_eq!(
        shapes,
        [
            ("/api/auth.test", Some("Bearer xoxb-1-2-abc"), ""),
            ("/api/auth.revoke", Some("Bearer xoxb-1-2-abc"), "test=true"),
            (
                "/api/auth.revoke",
                Some("Bearer xoxb-1-2-abc"),
                "test=false"
            ),
            (
                "/api/oauth.v2.exchange",
                Some(basic.as_str()),
                "token=xoxb-1-2-abc"
            ),
        ]
    );
}

// ---- secrets never in errors -----------------------------------------------------------------

#[tokio::test]
async fn no_api_error_shows_a_token() {
    let token = "xoxb-9-9-NEVERSHOWTHIS";
    let refresh = "xoxe-1-NEVERSHOWTHIS";
    let secrets = [token, refresh, "NEVERSHOWTHIS", CLIENT_SECRET];
    let emulator = emulator(rotating_config()).await;
    let client = client(&emulator);
    let access = AccessToken::new(token);
    let grant = AccessGrant::RefreshToken(RefreshToken::new(refresh));

    let mut errors = vec![
        client.auth_test(&access).await.unwrap_err(),
        client.auth_revoke(&access, false).await.unwrap_err(),
        client
            .oauth_v2_access(&credentials(), &grant)
            .await
            .unwrap_err(),
        client
            .oauth_v2_exchange(&credentials(), &access)
            .await
            .unwrap_err(),
    ];
    let faults = [
        Fault::RateLimited {
            retry_after_secs: 600,
        },
        Fault::ServerError { status: 502 },
        Fault::MalformedJson,
        Fault::SlackError("internal_error".to_owned()),
    ];
    for fault in faults {
        emulator.inject("oauth.v2.access", fault, 1);
        errors.push(
            client
                .oauth_v2_access(&credentials(), &grant)
                .await
                .unwrap_err(),
        );
    }
    let closed = client_builder(&closed_port_url().await).build().unwrap();
    errors.push(closed.auth_test(&access).await.unwrap_err());
    errors.push(ApiError::Config("x".to_owned()));

    assert_eq!(errors.len(), 10);
    for error in &errors {
        assert_no_secret(error, &secrets);
    }
}
