//! `Rotation::exchange_installation`: long-lived tokens made rotating with `oauth.v2.exchange`,
//! under each token's lease, within the shared budget, saved as a new version (retried).

use std::time::{Duration, Instant};

use slack_emulator::{Emulator, EmulatorConfig, Grant};
use slack_oauth::installation::Installation;
use slack_oauth::rotation::{long_lived_bot, long_lived_user, Rotation, RotationError};
use slack_oauth::secret::{BotToken, UserToken};
use slack_oauth::store::{BudgetSpend, InstallationQuery, InstallationStore, MemoryStore};
use time::OffsetDateTime;

use super::custody::DownAtCommit;
use super::{rotating_emulator, rotator};
use crate::support;

/// An installation of `team` by U1 holding long-lived bot and user tokens `emulator` issued.
fn long_lived(emulator: &Emulator, team: &str) -> Installation {
    let mut grant = Grant::for_team(team);
    grant.user_id = "U1".to_owned();
    let mut installation = Installation::new("U1", OffsetDateTime::now_utc());
    installation.team_id = Some(team.into());
    installation.bot_token = Some(BotToken::new(emulator.seed_token(&grant, false)));
    installation.user_token = Some(UserToken::new(emulator.seed_token(&grant, true)));
    installation
}

fn exchanges(emulator: &Emulator) -> u64 {
    emulator
        .counters()
        .calls
        .get("oauth.v2.exchange")
        .copied()
        .unwrap_or(0)
}

async fn stored(store: &impl InstallationStore, team: &str) -> Installation {
    let query = InstallationQuery::team(team).user("U1");
    store.find_installation(&query).await.unwrap().unwrap()
}

/// A token is long-lived only when it is present with neither a refresh token nor an expiry:
/// each of the three conditions, alone false, makes it not long-lived.
#[test]
fn long_lived_needs_a_token_without_refresh_token_or_expiry() {
    use slack_oauth::secret::RefreshToken;
    let at = OffsetDateTime::UNIX_EPOCH;
    let mut installation = Installation::new("U1", at);
    // Refresh token and expiry absent, but no token either.
    assert!(!long_lived_bot(&installation) && !long_lived_user(&installation));
    installation.bot_token = Some(BotToken::new("xoxb-1")); // fake
    installation.user_token = Some(UserToken::new("xoxp-1")); // fake
    assert!(long_lived_bot(&installation) && long_lived_user(&installation));
    for (bot, refresh_token, expiry) in [
        (true, true, false),
        (true, false, true),
        (false, true, false),
        (false, false, true),
    ] {
        let mut rotating = installation.clone();
        let refresh = refresh_token.then(|| RefreshToken::new("xoxe-1-a")); // fake
        let expires = expiry.then_some(at);
        if bot {
            rotating.bot_refresh_token = refresh;
            rotating.bot_token_expires_at = expires;
        } else {
            rotating.user_refresh_token = refresh;
            rotating.user_token_expires_at = expires;
        }
        let (changed, other) = if bot {
            (long_lived_bot(&rotating), long_lived_user(&rotating))
        } else {
            (long_lived_user(&rotating), long_lived_bot(&rotating))
        };
        assert!(
            !changed,
            "bot {bot}, refresh token {refresh_token}, expiry {expiry}"
        );
        assert!(other, "the other token is untouched");
    }
}

/// Both tokens are exchanged, each spending one call of the budget, and saved; asking again
/// (with the fresh installation, or with the stale long-lived one) sends nothing.
#[tokio::test]
async fn both_tokens_are_exchanged_once_within_the_budget() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new();
    let installation = long_lived(&emulator, "T1");
    store.save(&installation).await.unwrap();
    let rotation = Rotation::new(rotator(&emulator), store.clone()).max_per_minute(10);

    let exchanged = rotation.exchange_installation(&installation).await.unwrap();
    assert!(exchanged.bot && exchanged.user);
    let fresh = stored(&store, "T1").await;
    assert!(!long_lived_bot(&fresh) && !long_lived_user(&fresh));
    assert!(fresh.bot_token_expires_at.is_some() && fresh.user_token_expires_at.is_some());
    assert_ne!(fresh.bot_token, installation.bot_token);
    assert_ne!(fresh.user_token, installation.user_token);
    assert_eq!(exchanged.installation.bot_token, fresh.bot_token);
    assert_eq!(exchanged.installation.user_token, fresh.user_token);
    assert_eq!(exchanges(&emulator), 2);
    let spend = store.spend_refresh_budget(2).await.unwrap();
    assert!(
        matches!(spend, BudgetSpend::Exhausted { used: 2, .. }),
        "two calls were spent: {spend:?}"
    );

    for again in [&fresh, &installation] {
        let exchanged = rotation.exchange_installation(again).await.unwrap();
        assert!(!exchanged.bot && !exchanged.user);
    }
    assert_eq!(exchanges(&emulator), 2, "nothing sent again");
}

/// Slack's refusal keeps its error string and leaves the stored tokens as they were.
#[tokio::test]
async fn slacks_refusal_is_kept_and_nothing_changes() {
    let emulator = support::emulator(EmulatorConfig {
        rotation: false,
        ..support::config()
    })
    .await;
    let store = MemoryStore::new();
    let installation = long_lived(&emulator, "T1");
    store.save(&installation).await.unwrap();
    let error = Rotation::new(rotator(&emulator), store.clone())
        .exchange_installation(&installation)
        .await
        .unwrap_err();
    assert_eq!(
        error.slack_error(),
        Some("token_rotation_not_enabled"),
        "{error:?}"
    );
    assert_eq!(stored(&store, "T1").await.bot_token, installation.bot_token);
}

/// The bot exchanged and the user token refused: a partial error holding the installation as
/// stored, with the new bot token.
#[tokio::test]
async fn a_refused_user_token_after_the_bot_is_partial() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new();
    let mut installation = long_lived(&emulator, "T1");
    installation.user_token = Some(UserToken::new("xoxp-unknown")); // fake
    store.save(&installation).await.unwrap();
    let error = Rotation::new(rotator(&emulator), store.clone())
        .exchange_installation(&installation)
        .await
        .unwrap_err();
    let RotationError::Partial {
        installation: partial,
        error,
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!(error.slack_error(), Some("invalid_token"), "{error:?}");
    let fresh = stored(&store, "T1").await;
    assert!(!long_lived_bot(&fresh));
    assert_eq!(partial.bot_token, fresh.bot_token);
}

/// With no bot token to exchange, a refused user token is Slack's error itself, not a partial
/// rotation.
#[tokio::test]
async fn a_refused_user_token_alone_is_slacks_error() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new();
    let mut installation = long_lived(&emulator, "T1");
    installation.bot_token = None;
    installation.user_token = Some(UserToken::new("xoxp-unknown")); // fake
    store.save(&installation).await.unwrap();
    let error = Rotation::new(rotator(&emulator), store)
        .exchange_installation(&installation)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RotationError::Slack { error, .. } if error == "invalid_token"),
        "{error:?}"
    );
}

/// A save that fails is retried within the retry window; with no window the error comes back
/// and the long-lived token stays stored (it keeps working).
#[tokio::test]
async fn a_failed_save_is_retried_within_the_window() {
    let emulator = rotating_emulator().await;
    let store = DownAtCommit::new(MemoryStore::new());
    let installation = long_lived(&emulator, "T1");
    store.save(&installation).await.unwrap();
    store.refuse_saves(2);
    let exchanged = Rotation::new(rotator(&emulator), store.clone())
        .exchange_installation(&installation)
        .await
        .unwrap();
    assert!(exchanged.bot && exchanged.user);
    assert!(!long_lived_bot(&stored(&store, "T1").await));

    let other = long_lived(&emulator, "T2");
    store.save(&other).await.unwrap();
    store.refuse_saves(1);
    let error = Rotation::new(rotator(&emulator), store.clone())
        .save_retry_for(Duration::ZERO)
        .exchange_installation(&other)
        .await
        .unwrap_err();
    assert!(matches!(error, RotationError::Store(_)), "{error:?}");
    assert_eq!(stored(&store, "T2").await.bot_token, other.bot_token);
}

/// A token whose lease another instance holds is exchanged once that lease is gone, not
/// before.
#[tokio::test]
async fn the_exchange_waits_for_the_tokens_lease() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new();
    let installation = long_lived(&emulator, "T1");
    store.save(&installation).await.unwrap();
    let lease = format!("rotation:{}:-:T1:bot", support::CLIENT_ID);
    let held = store
        .try_acquire_lease(&lease, "another-instance", Duration::from_millis(400))
        .await
        .unwrap();
    assert!(held.is_held());
    let started = Instant::now();
    let exchanged = Rotation::new(rotator(&emulator), store.clone())
        .exchange_installation(&installation)
        .await
        .unwrap();
    assert!(exchanged.bot);
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "exchanged under another instance's lease after {:?}",
        started.elapsed()
    );
}
