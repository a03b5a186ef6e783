//! `TokenRotator` against the emulator: when it refreshes, what it checks, how it fails.

use std::time::Duration;

use slack_emulator::{refresh_token_key, Fault};
use slack_oauth::clock::{Clock as _, ManualClock};
use slack_oauth::rotation::{RotationError, TokenKind, TokenRotator};
use slack_oauth::secret::RefreshToken;

use time::OffsetDateTime;

use super::{long_ago, rotating_emulator, rotating_installation, rotator};
use crate::support::{self, CannedServer};

const NOW: i64 = 1_700_000_000;

#[tokio::test]
async fn refreshes_at_the_window_edge_and_not_one_second_later() {
    let emulator = rotating_emulator().await;
    let clock = ManualClock::at_unix(NOW);
    let rotator = rotator(&emulator).with_clock(clock.clone());
    let edge = clock.now() + time::Duration::minutes(120);
    let installation = rotating_installation(&emulator, "T1", "U1", edge);
    let bot = installation.to_bot().unwrap();

    let mut later = bot.clone();
    later.bot_token_expires_at = Some(edge + time::Duration::seconds(1));
    assert!(rotator
        .perform_bot_token_rotation(&later, 120)
        .await
        .unwrap()
        .is_none());
    let mut never = bot.clone();
    never.bot_token_expires_at = None;
    assert!(rotator
        .perform_bot_token_rotation(&never, 0)
        .await
        .unwrap()
        .is_none());
    assert_eq!(emulator.counters().refreshes_served, 0);

    let rotated = rotator
        .perform_bot_token_rotation(&bot, 120)
        .await
        .unwrap()
        .expect("expiring exactly at now + window is due");
    assert_eq!(emulator.counters().refreshes_served, 1);
    assert_ne!(rotated.bot_token, bot.bot_token);
    assert_ne!(rotated.bot_refresh_token, bot.bot_refresh_token);
    // New expiry: the rotator's now + Slack's expires_in (43,200 s in the emulator).
    assert_eq!(
        rotated.bot_token_expires_at,
        Some(clock.now() + time::Duration::seconds(43_200))
    );
    assert_eq!(rotated.team_id, bot.team_id);
    assert_eq!(rotated.bot_scopes, bot.bot_scopes);

    // The user token: same rule.
    let mut user_later = installation.clone();
    user_later.user_token_expires_at = Some(edge + time::Duration::seconds(1));
    assert!(rotator
        .perform_user_token_rotation(&user_later, 120)
        .await
        .unwrap()
        .is_none());
    let user = rotator
        .perform_user_token_rotation(&installation, 120)
        .await
        .unwrap()
        .expect("due");
    assert_ne!(user.user_token, installation.user_token);
    assert_eq!(user.bot_token, installation.bot_token, "bot left alone");
    assert_eq!(emulator.counters().refreshes_served, 2);
}

#[tokio::test]
async fn a_refresh_token_of_the_wrong_kind_is_an_error() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let mut bot = installation.to_bot().unwrap();
    // The user's refresh token stored in the bot's field: Slack answers token_type "user".
    bot.bot_refresh_token = installation.user_refresh_token.clone();
    let error = rotator(&emulator)
        .perform_bot_token_rotation(&bot, 120)
        .await
        .unwrap_err();
    match &error {
        RotationError::TokenTypeMismatch { expected, got } => {
            assert_eq!(*expected, TokenKind::Bot);
            assert_eq!(got.as_deref(), Some("user"));
        }
        other => panic!("expected a token type mismatch, got {other:?}"),
    }
    support::assert_no_secret(&error, &[installation.user_refresh_token.unwrap().secret()]);
}

#[tokio::test]
async fn invalid_refresh_token_keeps_slacks_string() {
    let emulator = rotating_emulator().await;
    let mut bot = rotating_installation(&emulator, "T1", "U1", long_ago())
        .to_bot()
        .unwrap();
    bot.bot_refresh_token = Some(RefreshToken::new("xoxe-1-not-a-live-token"));
    let error = rotator(&emulator)
        .perform_bot_token_rotation(&bot, 120)
        .await
        .unwrap_err();
    assert_eq!(error.slack_error(), Some("invalid_refresh_token"));
    assert!(matches!(
        error,
        RotationError::Slack {
            token: TokenKind::Bot,
            ..
        }
    ));
    assert!(!error.is_transient());
    support::assert_no_secret(&error, &["not-a-live-token"]);
}

#[tokio::test]
async fn a_due_token_without_refresh_token_is_an_error() {
    let emulator = rotating_emulator().await;
    let mut installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    installation.user_refresh_token = None;
    let error = rotator(&emulator)
        .perform_user_token_rotation(&installation, 120)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RotationError::NoRefreshToken {
            token: TokenKind::User
        }
    ));
    assert_eq!(emulator.counters().refreshes_served, 0);
}

#[tokio::test]
async fn rate_limits_are_retried_and_a_give_up_is_an_error() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    let bot = installation.to_bot().unwrap();
    let rotator = rotator(&emulator);

    // One 429: the client waits and retries; the refresh succeeds.
    emulator.inject(
        "oauth.v2.access",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    let mut rotated = rotator
        .perform_bot_token_rotation(&bot, 120)
        .await
        .unwrap()
        .expect("due");
    assert_eq!(emulator.counters().refreshes_served, 1);
    rotated.bot_token_expires_at = Some(long_ago());

    // 429 on every attempt (the client makes 3): an error, and the refresh token is unspent.
    emulator.inject(
        "oauth.v2.access",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        3,
    );
    let error = rotator
        .perform_bot_token_rotation(&rotated, 120)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RotationError::Api {
                token: TokenKind::Bot,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_eq!(emulator.counters().refreshes_served, 1);
    let key = refresh_token_key(rotated.bot_refresh_token.as_ref().unwrap().secret());
    assert_eq!(emulator.counters().refresh_redemptions.get(&key), None);
}

/// A canned `oauth.v2.access` answer to a bot refresh, changed by `edit`.
async fn answer_edited(
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> TokenRotator {
    let mut body = serde_json::json!({
        "ok": true, "app_id": "A1", "access_token": "xoxe.xoxb-1-new", "token_type": "bot",
        "refresh_token": "xoxe-1-new", "expires_in": 43_200, "team": {"id": "T1"},
    });
    edit(body.as_object_mut().unwrap());
    let server = CannedServer::json(200, &body.to_string()).await;
    let client = support::client_builder(server.api_url()).build().unwrap();
    TokenRotator::new(client, support::credentials())
}

/// A canned `oauth.v2.access` answer missing one field.
async fn answer_without(field: &str) -> TokenRotator {
    answer_edited(|body| {
        body.remove(field);
    })
    .await
}

/// Whether an error is the one expected.
type IsExpected = fn(&RotationError) -> bool;

#[tokio::test]
async fn incomplete_answers_are_errors_never_a_half_rotated_token() {
    let emulator = rotating_emulator().await;
    let bot = rotating_installation(&emulator, "T1", "U1", long_ago())
        .to_bot()
        .unwrap();
    let cases: [(&str, IsExpected); 3] = [
        ("refresh_token", |e| {
            matches!(
                e,
                RotationError::MissingRefreshToken {
                    token: TokenKind::Bot
                }
            )
        }),
        ("access_token", |e| {
            matches!(
                e,
                RotationError::MissingAccessToken {
                    token: TokenKind::Bot
                }
            )
        }),
        ("token_type", |e| {
            matches!(e, RotationError::TokenTypeMismatch { got: None, .. })
        }),
    ];
    for (field, expected) in cases {
        let error = answer_without(field)
            .await
            .perform_bot_token_rotation(&bot, 120)
            .await
            .unwrap_err();
        assert!(expected(&error), "without {field}: {error:?}");
        assert!(error.to_string().contains("oauth.v2.access") || field == "token_type");
    }
}

/// The refresh token is spent once Slack answers, so an answer without a usable `expires_in`
/// (missing, zero or negative) is kept, with no expiry, never dropped; one second is an expiry.
#[tokio::test]
async fn an_answer_without_a_usable_expires_in_is_kept_with_no_expiry() {
    let emulator = rotating_emulator().await;
    let bot = rotating_installation(&emulator, "T1", "U1", long_ago())
        .to_bot()
        .unwrap();
    for expires_in in [None, Some(0), Some(-5), Some(1)] {
        let before = OffsetDateTime::now_utc();
        let rotated = answer_edited(|body| {
            body.remove("expires_in");
            if let Some(seconds) = expires_in {
                body.insert("expires_in".into(), seconds.into());
            }
        })
        .await
        .perform_bot_token_rotation(&bot, 120)
        .await
        .unwrap()
        .expect("rotated");
        assert_ne!(rotated.bot_token, bot.bot_token, "the new token is kept");
        assert!(
            rotated.bot_refresh_token.is_some(),
            "with its refresh token"
        );
        match expires_in {
            Some(1) => {
                let expires_at = rotated.bot_token_expires_at.expect("an expiry");
                // Now plus one second, at the whole second the answer was checked.
                let after = OffsetDateTime::now_utc() + time::Duration::SECOND;
                assert!(expires_at > before && expires_at <= after, "{expires_at}");
            }
            _ => assert_eq!(
                rotated.bot_token_expires_at, None,
                "expires_in {expires_in:?}: no expiry"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_and_user_are_refreshed_together() {
    let emulator = rotating_emulator().await;
    let installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    // Both refreshes are slow; they run together (tokio::join!). The assertions are on the
    // outcome only: both tokens rotated, two refreshes, nothing redeemed twice.
    emulator.inject(
        "oauth.v2.access",
        Fault::Slow(Duration::from_millis(300)),
        2,
    );
    let rotated = rotator(&emulator)
        .perform_token_rotation(&installation, 120)
        .await
        .unwrap()
        .expect("both due");
    assert_ne!(rotated.bot_token, installation.bot_token);
    assert_ne!(rotated.user_token, installation.user_token);
    assert!(rotated
        .bot_token
        .as_ref()
        .unwrap()
        .secret()
        .contains("xoxb"));
    assert!(rotated
        .user_token
        .as_ref()
        .unwrap()
        .secret()
        .contains("xoxp"));
    let counters = emulator.counters();
    assert_eq!(counters.refreshes_served, 2);
    assert!(counters.refresh_redemptions.values().all(|n| *n == 1));
    super::assert_refresh_tokens_live(&emulator, &rotated).await;
}

#[tokio::test]
async fn a_failed_user_refresh_keeps_the_new_bot_token() {
    let emulator = rotating_emulator().await;
    let mut installation = rotating_installation(&emulator, "T1", "U1", long_ago());
    installation.user_refresh_token = Some(RefreshToken::new("xoxe-1-revoked"));
    let error = rotator(&emulator)
        .perform_token_rotation(&installation, 120)
        .await
        .unwrap_err();
    assert_eq!(error.slack_error(), Some("invalid_refresh_token"));
    let RotationError::Partial {
        installation: rotated,
        error,
    } = error
    else {
        panic!("expected a partial rotation");
    };
    assert!(matches!(
        *error,
        RotationError::Slack {
            token: TokenKind::User,
            ..
        }
    ));
    assert_ne!(rotated.bot_token, installation.bot_token);
    assert_eq!(rotated.user_token, installation.user_token);
    // The new bot refresh token is the live one.
    let mut due = rotated.to_bot().unwrap();
    due.bot_token_expires_at = Some(long_ago());
    assert!(rotator(&emulator)
        .perform_bot_token_rotation(&due, 0)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn nothing_due_is_none_without_a_call() {
    let emulator = rotating_emulator().await;
    let clock = ManualClock::at_unix(NOW);
    let rotator = rotator(&emulator).with_clock(clock.clone());
    let installation = rotating_installation(
        &emulator,
        "T1",
        "U1",
        clock.now() + time::Duration::hours(5),
    );
    assert!(rotator
        .perform_token_rotation(&installation, 120)
        .await
        .unwrap()
        .is_none());
    assert_eq!(emulator.counters().calls.get("oauth.v2.access"), None);
}
