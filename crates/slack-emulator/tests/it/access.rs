//! `oauth.v2.access` with a code: credentials, single use, expiry, redirect binding, shapes.

use std::time::Duration;

use serde_json::json;
use slack_emulator::{Grant, InstallKind};

use crate::support::*;

#[tokio::test]
async fn workspace_install_has_slacks_shape() {
    let emulator = spawn(config()).await;
    let code = emulator.issue_code(Grant::default(), Some(REDIRECT_URI));
    let access = redeem(&emulator, &code, Some(REDIRECT_URI)).await;
    assert_ok(&access);
    assert_eq!(access["app_id"], "A0EMULATOR");
    assert_eq!(access["token_type"], "bot");
    assert_eq!(access["scope"], "chat:write,commands");
    assert_eq!(access["bot_user_id"], "U0EMULBOT");
    assert!(s(&access, "/access_token").starts_with("xoxb-"));
    assert_eq!(
        access["team"],
        json!({"id": "T0EMULATOR", "name": "Emulated Workspace"})
    );
    assert!(access["enterprise"].is_null());
    assert_eq!(access["is_enterprise_install"], false);
    assert_eq!(access["authed_user"]["id"], "U0EMULATOR");
    assert_eq!(access["authed_user"]["token_type"], "user");
    assert_eq!(access["authed_user"]["scope"], "search:read");
    assert!(s(&access, "/authed_user/access_token").starts_with("xoxp-"));
    assert!(
        access.get("refresh_token").is_none(),
        "no rotation, no refresh token"
    );
    assert!(access.get("expires_in").is_none());
    assert!(access.get("incoming_webhook").is_none());
    let counters = emulator.counters();
    assert_eq!((counters.codes_issued, counters.codes_redeemed), (1, 1));
    assert_eq!(counters.calls["oauth.v2.access"], 1);
}

#[tokio::test]
async fn answers_are_json_with_http_200_even_when_not_ok() {
    let emulator = spawn(config()).await;
    let response = call_plain(&emulator, "oauth.v2.access", &[("code", "nope")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error(&body), "invalid_client_id");
}

#[tokio::test]
async fn org_wide_and_in_org_installs() {
    let emulator = spawn(config()).await;
    let org = Grant {
        kind: InstallKind::OrgWide,
        ..Grant::default()
    };
    let access = redeem(&emulator, &emulator.issue_code(org, None), None).await;
    assert_ok(&access);
    assert!(access["team"].is_null());
    assert_eq!(
        access["enterprise"],
        json!({"id": "E0EMULATOR", "name": "Emulated Org"})
    );
    assert_eq!(access["is_enterprise_install"], true);

    let in_org = Grant {
        kind: InstallKind::WorkspaceInOrg,
        ..Grant::default()
    };
    let access = redeem(&emulator, &emulator.issue_code(in_org, None), None).await;
    assert_eq!(access["team"]["id"], "T0EMULATOR");
    assert_eq!(access["enterprise"]["id"], "E0EMULATOR");
    assert_eq!(access["is_enterprise_install"], false);
}

#[tokio::test]
async fn user_only_install_omits_bot_fields() {
    let emulator = spawn(rotating()).await;
    let grant = Grant {
        kind: InstallKind::UserOnly,
        bot_scopes: Vec::new(),
        ..Grant::default()
    };
    let access = redeem(&emulator, &emulator.issue_code(grant, None), None).await;
    assert_ok(&access);
    for field in [
        "access_token",
        "token_type",
        "scope",
        "bot_user_id",
        "refresh_token",
    ] {
        assert!(access.get(field).is_none(), "{field} present in {access}");
    }
    assert!(s(&access, "/authed_user/access_token").starts_with("xoxe.xoxp-1-"));
    assert!(s(&access, "/authed_user/refresh_token").starts_with("xoxe-1-"));
    assert_eq!(access["authed_user"]["expires_in"], 43_200);
    assert_eq!(access["team"]["id"], "T0EMULATOR");
}

#[tokio::test]
async fn rotating_install_returns_expiring_pairs_for_bot_and_user() {
    let emulator = spawn(rotating()).await;
    let grant = Grant {
        bot_scopes: vec!["chat:write".into(), "incoming-webhook".into()],
        ..Grant::default()
    };
    let access = redeem(&emulator, &emulator.issue_code(grant, None), None).await;
    assert!(s(&access, "/access_token").starts_with("xoxe.xoxb-1-"));
    assert!(s(&access, "/refresh_token").starts_with("xoxe-1-"));
    assert_eq!(access["expires_in"], 43_200);
    assert!(s(&access, "/authed_user/refresh_token").starts_with("xoxe-1-"));
    assert_ne!(
        access["refresh_token"],
        access["authed_user"]["refresh_token"]
    );
    let webhook = &access["incoming_webhook"];
    assert!(s(webhook, "/url").starts_with(&emulator.url()));
    assert_eq!(webhook["channel_id"], "C0EMULATOR");
    assert!(webhook["channel"].is_string() && webhook["configuration_url"].is_string());
}

#[tokio::test]
async fn code_is_single_use() {
    let emulator = spawn(config()).await;
    let code = emulator.issue_code(Grant::default(), None);
    assert_ok(&redeem(&emulator, &code, None).await);
    assert_eq!(error(&redeem(&emulator, &code, None).await), "invalid_code");
    assert_eq!(
        error(&redeem(&emulator, "made-up", None).await),
        "invalid_code"
    );
    assert_eq!(emulator.counters().codes_redeemed, 1);
}

#[tokio::test]
async fn code_expires_after_ten_minutes_of_emulator_time() {
    let emulator = spawn(config()).await;
    let fresh = emulator.issue_code(Grant::default(), None);
    let stale = emulator.issue_code(Grant::default(), None);
    emulator.advance_clock(Duration::from_secs(9 * 60));
    assert_ok(&redeem(&emulator, &fresh, None).await);
    emulator.advance_clock(Duration::from_secs(61));
    assert_eq!(
        error(&redeem(&emulator, &stale, None).await),
        "invalid_code"
    );
}

#[tokio::test]
async fn code_is_bound_to_its_redirect_uri() {
    let emulator = spawn(config()).await;
    let code = emulator.issue_code(Grant::default(), Some(REDIRECT_URI));
    assert_eq!(
        error(&redeem(&emulator, &code, None).await),
        "bad_redirect_uri"
    );
    let other = "https://app.test/slack/oauth_redirect";
    assert_eq!(
        error(&redeem(&emulator, &code, Some(other)).await),
        "bad_redirect_uri"
    );
    // A failed attempt leaves the code usable.
    assert_ok(&redeem(&emulator, &code, Some(REDIRECT_URI)).await);
}

#[tokio::test]
async fn client_credentials_are_checked_from_basic_auth_or_form() {
    let emulator = spawn(config()).await;
    let code = emulator.issue_code(Grant::default(), None);
    let url = format!("{}oauth.v2.access", emulator.api_url());
    let send = |id: &'static str, secret: &'static str| {
        http()
            .post(&url)
            .basic_auth(id, Some(secret))
            .form(&[("code", code.as_str())])
            .send()
    };
    let body: serde_json::Value = send("999.999", CLIENT_SECRET)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error(&body), "invalid_client_id");
    let body: serde_json::Value = send(CLIENT_ID, "wrong")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error(&body), "bad_client_secret");

    let body: serde_json::Value = call_plain(
        &emulator,
        "oauth.v2.access",
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
            ("code", &code),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(error(&body), "bad_client_secret");
    let body: serde_json::Value = call_plain(
        &emulator,
        "oauth.v2.access",
        &[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ok(&body);
}

#[tokio::test]
async fn unknown_grant_type_is_rejected() {
    let emulator = spawn(config()).await;
    let body = call(&emulator, "oauth.v2.access", &[("grant_type", "password")]).await;
    assert_eq!(error(&body), "invalid_grant_type");
}

#[tokio::test]
async fn unknown_method_is_an_error_and_counted() {
    let emulator = spawn(config()).await;
    let body = call(&emulator, "chat.postMessage", &[]).await;
    assert_eq!(error(&body), "unknown_method");
    assert_eq!(emulator.counters().calls["chat.postMessage"], 1);
}
