//! Cases on `update_rotated_token`: a compare-and-swap on the previous refresh token.

use slack_oauth::ids::{EnterpriseId, TeamId};
use slack_oauth::installation::Installation;
use slack_oauth::secret::{BotToken, RefreshToken, UserToken};
use slack_oauth::store::{
    InstallationQuery, InstallationStore, LeaseAcquisition, RotatedToken, TokenUpdate,
};
use time::OffsetDateTime;

use super::leases::{held, TTL};
use super::{found, found_bot, ok, save};
use crate::assert::{bot_token, user_token};
use crate::fixtures::{self, at};

/// A bot token refresh for the org/workspace of `installation`.
pub(crate) fn bot_update(
    installation: &Installation,
    previous: &str,
    generation: u32,
    expires_at: OffsetDateTime,
) -> TokenUpdate {
    TokenUpdate {
        enterprise_id: installation.enterprise_id.clone(),
        team_id: installation.team_id.clone(),
        previous_refresh_token: RefreshToken::new(previous),
        token: RotatedToken::Bot {
            token: BotToken::new(format!("xoxe.xoxb-rotated-{generation}")),
        },
        refresh_token: RefreshToken::new(format!("xoxe-1-bot-rotated-{generation}")),
        expires_at: Some(expires_at),
    }
}

fn user_update(team: &str, user: &str, previous: &str, expires_at: OffsetDateTime) -> TokenUpdate {
    TokenUpdate {
        enterprise_id: None,
        team_id: Some(TeamId::new(team)),
        previous_refresh_token: RefreshToken::new(previous),
        token: RotatedToken::User {
            user_id: user.into(),
            token: UserToken::new(format!("xoxe.xoxp-rotated-{user}")),
        },
        refresh_token: RefreshToken::new(format!("xoxe-1-user-rotated-{user}")),
        expires_at: Some(expires_at),
    }
}

fn refresh(token: &Option<RefreshToken>) -> Option<&str> {
    token.as_ref().map(|t| t.secret())
}

/// The first update with the current refresh token wins and rewrites the bot token in the bots
/// and in every installation version that held it; a second update with the same (now stale)
/// refresh token loses and writes nothing. User tokens are untouched.
pub async fn rotated_bot_token_is_compare_and_swap<S: InstallationStore>(store: &S) {
    let v1 = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .installed_at(at(0))
        .build();
    let v2 = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .installed_at(at(1))
        .build();
    save(store, &v1).await;
    save(store, &v2).await;
    let previous = "xoxe-1-bot-T1-U1-0";

    let winner = bot_update(&v1, previous, 1, at(50_000));
    assert!(
        ok(
            store.update_rotated_token(&winner).await,
            "update_rotated_token"
        ),
        "the first update with the current refresh token must win"
    );
    let mut loser = bot_update(&v1, previous, 2, at(60_000));
    assert!(
        !ok(
            store.update_rotated_token(&loser).await,
            "update_rotated_token"
        ),
        "a second update with the stale refresh token must lose"
    );

    let workspace = InstallationQuery::team("T1");
    let bot = found_bot(store, &workspace, "the rotated bot").await;
    assert_eq!(
        bot.bot_token.secret(),
        "xoxe.xoxb-rotated-1",
        "winner's token in bots"
    );
    assert_eq!(
        refresh(&bot.bot_refresh_token),
        Some("xoxe-1-bot-rotated-1"),
        "bots refresh"
    );
    assert_eq!(bot.bot_token_expires_at, Some(at(50_000)), "bots expiry");

    // With the bots gone, lookups show the installation rows themselves (no merge source).
    ok(store.delete_bot(&workspace).await, "delete_bot");
    for query in [workspace.clone(), workspace.clone().user("U1")] {
        let found = found(store, &query, "the rotated installation").await;
        assert_eq!(
            bot_token(&found),
            Some("xoxe.xoxb-rotated-1"),
            "{query:?}: installation rows"
        );
        assert_eq!(
            refresh(&found.bot_refresh_token),
            Some("xoxe-1-bot-rotated-1"),
            "{query:?}"
        );
        assert_eq!(
            found.bot_token_expires_at,
            Some(at(50_000)),
            "{query:?}: expiry"
        );
        assert_eq!(
            user_token(&found),
            Some("xoxe.xoxp-T1-U1-0"),
            "user token untouched"
        );
        assert_eq!(
            refresh(&found.user_refresh_token),
            Some("xoxe-1-user-T1-U1-0")
        );
    }
    loser.previous_refresh_token = RefreshToken::new("xoxe-1-bot-rotated-1");
    loser.team_id = Some("T2".into());
    assert!(
        !ok(
            store.update_rotated_token(&loser).await,
            "update_rotated_token"
        ),
        "an update for another workspace changes nothing"
    );
    let found = found(store, &workspace, "the rotated installation").await;
    assert_eq!(
        bot_token(&found),
        Some("xoxe.xoxb-rotated-1"),
        "T1 keeps the winner's token"
    );
}

/// A user token refresh rewrites only that user's installations, and only the user token.
pub async fn rotated_user_token_touches_only_that_user<S: InstallationStore>(store: &S) {
    let u1 = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .installed_at(at(0))
        .build();
    let mut u2 = fixtures::workspace("T1", "U2")
        .with_rotation(at(100))
        .installed_at(at(1))
        .build();
    // Same refresh token value for both users: the update must still pick the user.
    u2.user_refresh_token = u1.user_refresh_token.clone();
    save(store, &u1).await;
    save(store, &u2).await;
    let previous = "xoxe-1-user-T1-U1-0";

    let update = user_update("T1", "U1", previous, at(70_000));
    assert!(
        ok(store.update_rotated_token(&update).await, "update"),
        "first update wins"
    );
    assert!(
        !ok(store.update_rotated_token(&update).await, "update"),
        "replay loses"
    );

    let workspace = InstallationQuery::team("T1");
    let found_u1 = found(store, &workspace.clone().user("U1"), "U1's installation").await;
    assert_eq!(
        user_token(&found_u1),
        Some("xoxe.xoxp-rotated-U1"),
        "U1's new user token"
    );
    assert_eq!(
        refresh(&found_u1.user_refresh_token),
        Some("xoxe-1-user-rotated-U1")
    );
    assert_eq!(
        found_u1.user_token_expires_at,
        Some(at(70_000)),
        "U1's new expiry"
    );
    let found_u2 = found(store, &workspace.clone().user("U2"), "U2's installation").await;
    assert_eq!(
        user_token(&found_u2),
        Some("xoxe.xoxp-T1-U2-0"),
        "U2's user token untouched"
    );
    assert_eq!(
        refresh(&found_u2.user_refresh_token),
        Some(previous),
        "U2's refresh untouched"
    );
    let bot = found_bot(store, &workspace, "the bot").await;
    assert_eq!(
        bot.bot_token.secret(),
        "xoxe.xoxb-T1-U2-0",
        "a user update leaves the bot"
    );
}

/// Updates match org and workspace exactly: an org-wide install rotates with no team, and the
/// same refresh token in another workspace is not touched.
pub async fn rotated_token_stays_in_its_workspace<S: InstallationStore>(store: &S) {
    let org = fixtures::org_wide("E1", "U1")
        .with_rotation(at(100))
        .build();
    let mut elsewhere = fixtures::workspace("T9", "U1")
        .with_rotation(at(100))
        .build();
    elsewhere.bot_refresh_token = org.bot_refresh_token.clone();
    save(store, &org).await;
    save(store, &elsewhere).await;
    let previous = "xoxe-1-bot-E1-U1-0";

    let update = bot_update(&org, previous, 1, at(80_000));
    assert_eq!(update.team_id, None, "org-wide updates carry no team");
    assert_eq!(update.enterprise_id, Some(EnterpriseId::new("E1")));
    assert!(
        ok(store.update_rotated_token(&update).await, "update"),
        "org-wide update wins"
    );
    let bot = found_bot(store, &InstallationQuery::org("E1"), "the org's bot").await;
    assert_eq!(
        bot.bot_token.secret(),
        "xoxe.xoxb-rotated-1",
        "the org's bot is rotated"
    );
    let other = found_bot(store, &InstallationQuery::team("T9"), "T9's bot").await;
    assert_eq!(
        other.bot_token.secret(),
        "xoxe.xoxb-T9-U1-0",
        "T9's bot is untouched"
    );
    assert_eq!(
        refresh(&other.bot_refresh_token),
        Some(previous),
        "T9's refresh token too"
    );
}

/// `update_rotated_token_and_release_lease` saves like `update_rotated_token` and releases the
/// holder's lease, whether the compare-and-swap matched or not; another holder's lease stays.
pub async fn rotated_token_save_releases_the_lease<S: InstallationStore>(store: &S) {
    let installation = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .installed_at(at(0))
        .build();
    save(store, &installation).await;
    let previous = "xoxe-1-bot-T1-U1-0";
    let lease = "rotation:T1:bot";
    assert!(held(store, lease, "a").await);
    ok(
        store
            .record_refresh_intent(lease, "a", "fingerprint", TTL / 2)
            .await,
        "intent",
    );

    let update = bot_update(&installation, previous, 1, at(50_000));
    assert!(
        ok(
            store
                .update_rotated_token_and_release_lease(&update, lease, "a")
                .await,
            "save and release"
        ),
        "the save with the current refresh token wins"
    );
    let bot = found_bot(store, &InstallationQuery::team("T1"), "the rotated bot").await;
    assert_eq!(bot.bot_token.secret(), "xoxe.xoxb-rotated-1", "token saved");
    assert_eq!(
        ok(store.try_acquire_lease(lease, "b", TTL).await, "lease"),
        LeaseAcquisition::Held {
            pending_intent: None
        },
        "the save released the holder's lease and removed its intent"
    );

    // A losing save (stale refresh token) writes nothing but still releases; it never
    // releases a lease of another holder.
    let stale = bot_update(&installation, previous, 2, at(60_000));
    assert!(
        !ok(
            store
                .update_rotated_token_and_release_lease(&stale, lease, "a")
                .await,
            "stale save"
        ),
        "a stale refresh token loses"
    );
    assert!(
        !held(store, lease, "a").await,
        "b's lease is untouched by a's release"
    );
    assert!(
        !ok(
            store
                .update_rotated_token_and_release_lease(&stale, lease, "b")
                .await,
            "stale save"
        ),
        "still stale"
    );
    assert!(
        held(store, lease, "a").await,
        "b's losing save released b's lease"
    );
    let bot = found_bot(store, &InstallationQuery::team("T1"), "the rotated bot").await;
    assert_eq!(
        bot.bot_token.secret(),
        "xoxe.xoxb-rotated-1",
        "losing saves wrote nothing"
    );
}

/// A refresh answered without `expires_in` is saved with no expiry: the tokens are kept, never
/// dropped.
pub async fn rotated_token_without_expiry_is_kept<S: InstallationStore>(store: &S) {
    let installation = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .installed_at(at(0))
        .build();
    save(store, &installation).await;
    let mut update = bot_update(&installation, "xoxe-1-bot-T1-U1-0", 1, at(50_000));
    update.expires_at = None;
    assert!(
        ok(store.update_rotated_token(&update).await, "update"),
        "the update matched"
    );
    let bot = found_bot(store, &InstallationQuery::team("T1"), "the rotated bot").await;
    assert_eq!(bot.bot_token.secret(), "xoxe.xoxb-rotated-1", "token saved");
    assert_eq!(bot.bot_token_expires_at, None, "no expiry stored");
}
