//! Refresh-token rotation: new pairs, single use, grace period, family revocation, limits.

use std::collections::HashSet;
use std::time::Duration;

use slack_emulator::{refresh_token_key, EmulatorConfig, Grant};

use crate::support::*;

#[tokio::test]
async fn each_refresh_issues_a_new_pair_and_old_access_tokens_keep_working() {
    let emulator = spawn(rotating()).await;
    let (first_access, mut refresh_token) = emulator.seed_refresh_token(&Grant::default(), false);
    let mut seen = HashSet::from([first_access.clone(), refresh_token.clone()]);
    for _ in 0..3 {
        let response = refresh(&emulator, &refresh_token).await;
        assert_ok(&response);
        assert_eq!(response["token_type"], "bot");
        assert_eq!(response["expires_in"], 43_200);
        assert_eq!(response["bot_user_id"], "U0EMULBOT");
        assert_eq!(response["scope"], "chat:write,commands");
        assert_eq!(response["team"]["id"], "T0EMULATOR");
        let access = s(&response, "/access_token").to_owned();
        assert!(access.starts_with("xoxe.xoxb-1-"));
        refresh_token = s(&response, "/refresh_token").to_owned();
        assert!(seen.insert(access.clone()), "access token reused");
        assert!(seen.insert(refresh_token.clone()), "refresh token reused");
        assert_ok(&auth_test(&emulator, &access).await);
    }
    // "Calling oauth.v2.access will not immediately invalidate your existing access token."
    assert_ok(&auth_test(&emulator, &first_access).await);
    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 3);
    assert_eq!(counters.refresh_redemptions.len(), 3);
    assert!(counters.refresh_redemptions.values().all(|&n| n == 1));
}

#[tokio::test]
async fn user_refresh_returns_a_user_token() {
    let emulator = spawn(rotating()).await;
    let (_, refresh_token) = emulator.seed_refresh_token(&Grant::default(), true);
    let response = refresh(&emulator, &refresh_token).await;
    assert_eq!(response["token_type"], "user");
    assert_eq!(response["scope"], "search:read");
    assert!(s(&response, "/access_token").starts_with("xoxe.xoxp-1-"));
    assert!(response.get("bot_user_id").is_none());
}

#[tokio::test]
async fn spent_token_is_rejected_without_grace_and_counted() {
    let emulator = spawn(rotating()).await;
    let (_, refresh_token) = emulator.seed_refresh_token(&Grant::default(), false);
    assert_ok(&refresh(&emulator, &refresh_token).await);
    let again = refresh(&emulator, &refresh_token).await;
    assert_eq!(error(&again), "invalid_refresh_token");
    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 1);
    assert_eq!(counters.spent_refresh_token_reuse, 1);
    assert_eq!(
        counters.refresh_redemptions[&refresh_token_key(&refresh_token)],
        1
    );
}

#[tokio::test]
async fn spent_token_is_served_within_grace_then_rejected() {
    let emulator = spawn(EmulatorConfig {
        refresh_grace: Duration::from_secs(30),
        ..rotating()
    })
    .await;
    let (_, refresh_token) = emulator.seed_refresh_token(&Grant::default(), false);
    let first = refresh(&emulator, &refresh_token).await;
    emulator.advance_clock(Duration::from_secs(20));
    let second = refresh(&emulator, &refresh_token).await;
    assert_ok(&second);
    assert_ne!(first["access_token"], second["access_token"]);
    assert_ne!(first["refresh_token"], second["refresh_token"]);
    emulator.advance_clock(Duration::from_secs(11));
    assert_eq!(
        error(&refresh(&emulator, &refresh_token).await),
        "invalid_refresh_token"
    );
    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 2);
    assert_eq!(counters.refreshes_in_grace, 1);
    assert_eq!(counters.spent_refresh_token_reuse, 1);
    assert_eq!(
        counters.refresh_redemptions[&refresh_token_key(&refresh_token)],
        2
    );
}

#[tokio::test]
async fn unknown_token_and_rotation_off_are_rejected() {
    let emulator = spawn(rotating()).await;
    assert_eq!(
        error(&refresh(&emulator, "xoxe-1-made-up").await),
        "invalid_refresh_token"
    );
    let body = call(
        &emulator,
        "oauth.v2.access",
        &[("grant_type", "refresh_token")],
    )
    .await;
    assert_eq!(error(&body), "invalid_refresh_token");

    let emulator = spawn(config()).await;
    let (_, refresh_token) = emulator.seed_refresh_token(&Grant::default(), false);
    assert_eq!(
        error(&refresh(&emulator, &refresh_token).await),
        "token_rotation_not_enabled"
    );
    assert_eq!(emulator.counters().refreshes_served, 0);
}

#[tokio::test]
async fn access_token_expires_but_refresh_token_does_not() {
    let emulator = spawn(rotating()).await;
    let (access, refresh_token) = emulator.seed_refresh_token(&Grant::default(), false);
    emulator.advance_clock(Duration::from_secs(43_199));
    assert_ok(&auth_test(&emulator, &access).await);
    emulator.advance_clock(Duration::from_secs(1));
    assert_eq!(error(&auth_test(&emulator, &access).await), "token_expired");
    let response = refresh(&emulator, &refresh_token).await;
    assert_ok(&auth_test(&emulator, s(&response, "/access_token")).await);
}

#[tokio::test]
async fn reuse_can_revoke_the_whole_family() {
    let emulator = spawn(EmulatorConfig {
        reuse_revokes_family: true,
        ..rotating()
    })
    .await;
    let (_, spent) = emulator.seed_refresh_token(&Grant::default(), false);
    let (bystander, _) = emulator.seed_refresh_token(&Grant::default(), false);
    let response = refresh(&emulator, &spent).await;
    let (access, next) = (
        s(&response, "/access_token"),
        s(&response, "/refresh_token"),
    );
    assert_eq!(
        error(&refresh(&emulator, &spent).await),
        "invalid_refresh_token"
    );
    assert_eq!(error(&auth_test(&emulator, access).await), "token_revoked");
    assert_eq!(
        error(&refresh(&emulator, next).await),
        "invalid_refresh_token"
    );
    assert_ok(&auth_test(&emulator, &bystander).await);
}

#[tokio::test]
async fn active_token_limit_revokes_the_oldest() {
    let emulator = spawn(EmulatorConfig {
        max_active_tokens: Some(2),
        ..rotating()
    })
    .await;
    let (first, mut refresh_token) = emulator.seed_refresh_token(&Grant::default(), false);
    let mut tokens = vec![first];
    for _ in 0..2 {
        let response = refresh(&emulator, &refresh_token).await;
        tokens.push(s(&response, "/access_token").to_owned());
        refresh_token = s(&response, "/refresh_token").to_owned();
    }
    assert_eq!(
        error(&auth_test(&emulator, &tokens[0]).await),
        "token_revoked"
    );
    assert_ok(&auth_test(&emulator, &tokens[1]).await);
    assert_ok(&auth_test(&emulator, &tokens[2]).await);
}
