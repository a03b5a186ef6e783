//! The client's HTTP-level failure handling, against the emulator's scripted faults and a canned
//! server: 429 retries and their bound, 5xx, decode errors without bodies, the body cap,
//! timeouts, connection failures, redirects, and that no `ApiError` shows a secret.

use std::time::Duration;

use slack_emulator::{Fault, Grant};
use slack_oauth::api::{AccessGrant, ApiError};
use slack_oauth::secret::{AccessToken, RefreshToken};

use super::calls;
use crate::support::{
    assert_no_secret, client, client_builder, closed_port, code_grant, config, credentials,
    emulator, http_response, rotating_config, CannedServer, CLIENT_SECRET, REDIRECT_URI,
};

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
    let port = closed_port();
    let client = client_builder(&port.api_url).build().unwrap();
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
    let port = closed_port();
    let closed = client_builder(&port.api_url).build().unwrap();
    errors.push(closed.auth_test(&access).await.unwrap_err());
    errors.push(ApiError::Config("x".to_owned()));

    assert_eq!(errors.len(), 10);
    for error in &errors {
        assert_no_secret(error, &secrets);
    }
}
