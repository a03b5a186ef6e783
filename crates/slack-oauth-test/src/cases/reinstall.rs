//! Cases on reinstall marks: a lost grant is marked once, on the rows that still hold its
//! refresh token, seen by every lookup, and cleared by the next install.

use slack_oauth::installation::ReinstallFlag;
use slack_oauth::secret::RefreshToken;
use slack_oauth::store::{InstallationQuery, InstallationStore, LostGrant};

use super::{found, found_bot, ok, save};
use crate::fixtures::{self, at};

fn lost(team: &str, user: Option<&str>, refresh_token: &str, reason: &str) -> LostGrant {
    LostGrant {
        enterprise_id: None,
        team_id: Some(team.into()),
        user_id: user.map(Into::into),
        refresh_token: RefreshToken::new(refresh_token),
        flag: ReinstallFlag::new(reason, at(500)),
    }
}

/// Marking a lost bot grant: exactly the first call sets it; every lookup (bot, workspace,
/// user with the bot merged, listing) carries it; the user token stays unmarked.
pub async fn lost_bot_grant_is_marked_once<S: InstallationStore>(store: &S) {
    let installation = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .installed_at(at(0))
        .build();
    save(store, &installation).await;
    let grant = lost("T1", None, "xoxe-1-bot-T1-U1-0", "invalid_refresh_token");
    assert!(
        ok(store.flag_reinstall(&grant).await, "flag"),
        "the first mark is set"
    );
    assert!(
        !ok(store.flag_reinstall(&grant).await, "flag"),
        "a second mark of the same grant reports that it was already set"
    );
    let expected = Some(grant.flag.clone());
    let team = InstallationQuery::team("T1");
    let bot = found_bot(store, &team, "the marked bot").await;
    assert_eq!(bot.needs_reinstall, expected, "find_bot carries the mark");
    let workspace = found(store, &team, "the workspace").await;
    assert_eq!(
        workspace.bot_needs_reinstall, expected,
        "find_installation carries the bot's mark"
    );
    assert_eq!(
        workspace.user_needs_reinstall, None,
        "the user token is not marked"
    );
    let user = found(store, &team.clone().user("U1"), "the user's installation").await;
    assert_eq!(user.bot_needs_reinstall, expected, "a user lookup too");
    let listed = ok(store.list_installations().await, "list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].bot_needs_reinstall, expected, "listing too");
    assert_eq!(listed[0].user_needs_reinstall, None);
}

/// Only rows that still hold the lost refresh token are marked: a grant already rotated (by a
/// sibling) is never marked by mistake.
pub async fn mark_needs_the_lost_refresh_token<S: InstallationStore>(store: &S) {
    let installation = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .installed_at(at(0))
        .build();
    save(store, &installation).await;
    let stale = lost(
        "T1",
        None,
        "xoxe-1-bot-already-rotated",
        "invalid_refresh_token",
    );
    assert!(
        !ok(store.flag_reinstall(&stale).await, "flag"),
        "a refresh token no row holds marks nothing"
    );
    let elsewhere = lost("T2", None, "xoxe-1-bot-T1-U1-0", "invalid_refresh_token");
    assert!(
        !ok(store.flag_reinstall(&elsewhere).await, "flag"),
        "another workspace's grant marks nothing here"
    );
    let bot = found_bot(store, &InstallationQuery::team("T1"), "the bot").await;
    assert_eq!(bot.needs_reinstall, None, "nothing marked");
}

/// A lost user grant marks that user's token only.
pub async fn lost_user_grant_marks_that_user<S: InstallationStore>(store: &S) {
    for (user, second) in [("U1", 0), ("U2", 1)] {
        let installation = fixtures::workspace("T1", user)
            .with_rotation(at(100))
            .installed_at(at(second))
            .build();
        save(store, &installation).await;
    }
    let grant = lost("T1", Some("U1"), "xoxe-1-user-T1-U1-0", "token_revoked");
    assert!(ok(store.flag_reinstall(&grant).await, "flag"), "marked");
    let team = InstallationQuery::team("T1");
    let u1 = found(store, &team.clone().user("U1"), "U1").await;
    assert_eq!(
        u1.user_needs_reinstall,
        Some(grant.flag.clone()),
        "U1 marked"
    );
    assert_eq!(u1.bot_needs_reinstall, None, "the bot is not");
    let u2 = found(store, &team.clone().user("U2"), "U2").await;
    assert_eq!(u2.user_needs_reinstall, None, "U2 is not");
    let bot = found_bot(store, &team, "the bot").await;
    assert_eq!(bot.needs_reinstall, None, "the bot is not");
}

/// A new install of the workspace starts unmarked, whatever the saved value says.
pub async fn reinstall_clears_the_mark<S: InstallationStore>(store: &S) {
    let first = fixtures::workspace("T1", "U1")
        .with_rotation(at(100))
        .installed_at(at(0))
        .build();
    save(store, &first).await;
    let grant = lost("T1", None, "xoxe-1-bot-T1-U1-0", "invalid_refresh_token");
    assert!(ok(store.flag_reinstall(&grant).await, "flag"));
    let team = InstallationQuery::team("T1");
    // The app saves what it read (marked) as the new install: the mark is not carried over.
    let mut again = fixtures::workspace("T1", "U1")
        .with_rotation(at(100_000))
        .generation(1)
        .installed_at(at(1_000))
        .build();
    again.bot_needs_reinstall = Some(grant.flag.clone());
    again.user_needs_reinstall = Some(grant.flag.clone());
    save(store, &again).await;
    let bot = found_bot(store, &team, "the reinstalled bot").await;
    assert_eq!(
        bot.needs_reinstall, None,
        "a reinstall clears the bot's mark"
    );
    let workspace = found(store, &team, "the reinstalled workspace").await;
    assert!(!workspace.needs_reinstall(), "and the installation's");
}
