//! `auth.test`, `oauth.v2.exchange` and `auth.revoke`.

use slack_emulator::{EmulatorConfig, Grant, InstallKind};

use crate::support::*;

#[tokio::test]
async fn auth_test_describes_bot_and_user_tokens() {
    let emulator = spawn(config()).await;
    let access = redeem(
        &emulator,
        &emulator.issue_code(Grant::default(), None),
        None,
    )
    .await;

    let response = http()
        .post(format!("{}auth.test", emulator.api_url()))
        .bearer_auth(s(&access, "/access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-oauth-scopes"], "chat:write,commands");
    let bot: serde_json::Value = response.json().await.unwrap();
    assert_ok(&bot);
    assert_eq!(bot["url"], "https://emulated-workspace.slack.com/");
    assert_eq!(bot["team"], "Emulated Workspace");
    assert_eq!(bot["team_id"], "T0EMULATOR");
    assert_eq!(bot["user_id"], "U0EMULBOT");
    assert_eq!(bot["bot_id"], "B0EMULATOR");
    assert_eq!(bot["is_enterprise_install"], false);
    assert!(bot.get("enterprise_id").is_none());

    // The token as a form field works too.
    let user: serde_json::Value = call_plain(
        &emulator,
        "auth.test",
        &[("token", s(&access, "/authed_user/access_token"))],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ok(&user);
    assert_eq!(user["user_id"], "U0EMULATOR");
    assert!(user.get("bot_id").is_none());
}

#[tokio::test]
async fn auth_test_for_org_wide_token_names_the_org() {
    let emulator = spawn(config()).await;
    let grant = Grant {
        kind: InstallKind::OrgWide,
        ..Grant::default()
    };
    let token = emulator.seed_token(&grant, false);
    let response = auth_test(&emulator, &token).await;
    assert_eq!(response["team_id"], "E0EMULATOR");
    assert_eq!(response["enterprise_id"], "E0EMULATOR");
    assert_eq!(response["is_enterprise_install"], true);
    assert_eq!(
        response["url"],
        "https://emulated-org.enterprise.slack.com/"
    );
}

#[tokio::test]
async fn auth_test_rejects_missing_and_unknown_tokens() {
    let emulator = spawn(config()).await;
    let missing: serde_json::Value = call_plain(&emulator, "auth.test", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(error(&missing), "not_authed");
    assert_eq!(
        error(&auth_test(&emulator, "xoxb-made-up").await),
        "invalid_auth"
    );

    let lenient = spawn(EmulatorConfig {
        strict_tokens: false,
        ..config()
    })
    .await;
    let response = auth_test(&lenient, "xoxb-made-up").await;
    assert_ok(&response);
    assert_eq!(response["bot_id"], "B0EMULATOR");
}

#[tokio::test]
async fn exchange_turns_a_long_lived_token_into_a_pair_once() {
    let emulator = spawn(rotating()).await;
    let legacy = emulator.seed_token(&Grant::default(), false);
    assert!(legacy.starts_with("xoxb-"));
    let exchanged = call(&emulator, "oauth.v2.exchange", &[("token", &legacy)]).await;
    assert_ok(&exchanged);
    assert_eq!(exchanged["token_type"], "bot");
    assert!(s(&exchanged, "/access_token").starts_with("xoxe.xoxb-1-"));
    assert_eq!(exchanged["expires_in"], 43_200);
    let again = call(&emulator, "oauth.v2.exchange", &[("token", &legacy)]).await;
    assert_eq!(error(&again), "token_already_exchanged");
    let unknown = call(&emulator, "oauth.v2.exchange", &[("token", "xoxb-nope")]).await;
    assert_eq!(error(&unknown), "invalid_token");

    // The long-lived token works until the first refresh of the new pair.
    assert_ok(&auth_test(&emulator, &legacy).await);
    assert_ok(&refresh(&emulator, s(&exchanged, "/refresh_token")).await);
    assert_eq!(error(&auth_test(&emulator, &legacy).await), "token_expired");

    let user_legacy = emulator.seed_token(&Grant::default(), true);
    let user = call(&emulator, "oauth.v2.exchange", &[("token", &user_legacy)]).await;
    assert_eq!(user["token_type"], "user");
    assert!(s(&user, "/access_token").starts_with("xoxe.xoxp-1-"));
}

#[tokio::test]
async fn exchange_needs_rotation_and_credentials() {
    let emulator = spawn(config()).await;
    let legacy = emulator.seed_token(&Grant::default(), false);
    let response = call(&emulator, "oauth.v2.exchange", &[("token", &legacy)]).await;
    assert_eq!(error(&response), "token_rotation_not_enabled");
    let response: serde_json::Value =
        call_plain(&emulator, "oauth.v2.exchange", &[("token", &legacy)])
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(error(&response), "invalid_client_id");
}

#[tokio::test]
async fn revoke_revokes_one_token() {
    let emulator = spawn(rotating()).await;
    let (access, refresh_token) = emulator.seed_refresh_token(&Grant::default(), false);
    let (other, _) = emulator.seed_refresh_token(&Grant::default(), false);

    let revoke = |token: String, test: &'static str| {
        let emulator = emulator.clone();
        async move {
            http()
                .post(format!("{}auth.revoke", emulator.api_url()))
                .bearer_auth(token)
                .form(&[("test", test)])
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let dry = revoke(access.clone(), "1").await;
    assert_ok(&dry);
    assert_eq!(dry["revoked"], false);
    assert_ok(&auth_test(&emulator, &access).await);

    let done = revoke(access.clone(), "0").await;
    assert_eq!(done["revoked"], true);
    assert_eq!(error(&auth_test(&emulator, &access).await), "token_revoked");
    assert_eq!(error(&revoke(access.clone(), "0").await), "token_revoked");
    assert_ok(&auth_test(&emulator, &other).await);

    assert_eq!(revoke(refresh_token.clone(), "0").await["revoked"], true);
    assert_eq!(
        error(&refresh(&emulator, &refresh_token).await),
        "invalid_refresh_token"
    );
    assert_eq!(
        error(&revoke("xoxb-unknown".to_owned(), "0").await),
        "invalid_auth"
    );
}
