//! Cases on history: every save is a version, the latest wins, and the bot merge uses the newest
//! bot.

use slack_oauth::installation::Bot;
use slack_oauth::secret::BotToken;
use slack_oauth::store::{InstallationQuery, InstallationStore};

use super::{absent, found, found_bot, ok, save};
use crate::assert::{bot_token, same_bot, user_token};
use crate::fixtures::{self, at};

/// slack_sdk's `test_save_and_find_token_rotation`: a refreshed installation saved in the same
/// second as the first one wins.
pub async fn token_rotation_history<S: InstallationStore>(store: &S) {
    let first = fixtures::workspace("T1", "U1")
        .with_rotation(at(43_200))
        .build();
    let refreshed = fixtures::workspace("T1", "U1")
        .generation(1)
        .with_rotation(at(86_400))
        .build();
    save(store, &first).await;
    save(store, &refreshed).await;
    let query = InstallationQuery::team("T1");
    let bot = found_bot(store, &query, "the refreshed bot").await;
    assert_eq!(
        bot.bot_refresh_token.as_ref().map(|t| t.secret()),
        Some("xoxe-1-bot-T1-U1-1"),
        "find_bot must return the refreshed refresh token"
    );
    assert_eq!(
        bot.bot_token_expires_at,
        Some(at(86_400)),
        "refreshed expiry"
    );
    for query in [query.clone(), query.clone().user("U1")] {
        let found = found(store, &query, "the refreshed installation").await;
        assert_eq!(
            found.user_refresh_token.as_ref().map(|t| t.secret()),
            Some("xoxe-1-user-T1-U1-1"),
            "{query:?} must return the refreshed user refresh token"
        );
        assert_eq!(
            bot_token(&found),
            Some("xoxe.xoxb-T1-U1-1"),
            "{query:?} bot token"
        );
    }
}

/// "Latest" is the newest `installed_at`, not the last saved row.
pub async fn latest_is_the_newest_installed_at<S: InstallationStore>(store: &S) {
    let newer = fixtures::workspace("T1", "U1")
        .generation(2)
        .installed_at(at(100))
        .build();
    let older = fixtures::workspace("T1", "U1")
        .generation(1)
        .installed_at(at(50))
        .build();
    save(store, &newer).await;
    save(store, &older).await;
    let query = InstallationQuery::team("T1");
    let bot = found_bot(store, &query, "the newest bot").await;
    assert_eq!(
        bot.bot_token.secret(),
        "xoxb-T1-U1-2",
        "find_bot: newest installed_at wins"
    );
    for query in [query.clone(), query.clone().user("U1")] {
        let found = found(store, &query, "the newest installation").await;
        assert_eq!(
            user_token(&found),
            Some("xoxp-T1-U1-2"),
            "{query:?}: newest installed_at wins"
        );
        assert_eq!(found.installed_at, at(100), "{query:?} installed_at");
    }
}

/// Versions saved with the same `installed_at` are ordered by save: the last saved wins, for
/// bots, workspace lookups and user lookups alike (slack_sdk's SQLite store returns the oldest
/// for workspace lookups, W9).
pub async fn same_second_ties_go_to_the_newest_row<S: InstallationStore>(store: &S) {
    for generation in 0..3 {
        let version = fixtures::workspace("T1", "U1")
            .generation(generation)
            .build();
        save(store, &version).await;
    }
    let query = InstallationQuery::team("T1");
    let bot = found_bot(store, &query, "the last saved bot").await;
    assert_eq!(
        bot.bot_token.secret(),
        "xoxb-T1-U1-2",
        "find_bot: the last saved tie wins"
    );
    for query in [query.clone(), query.clone().user("U1")] {
        let found = found(store, &query, "the last saved installation").await;
        assert_eq!(
            user_token(&found),
            Some("xoxp-T1-U1-2"),
            "{query:?}: the last saved tie wins"
        );
        assert_eq!(
            bot_token(&found),
            Some("xoxb-T1-U1-2"),
            "{query:?}: bot token"
        );
    }
}

/// A user lookup carries the workspace's newest bot, even when that bot came from another user's
/// install or from `save_bot`.
pub async fn bot_merge_carries_the_newest_bot<S: InstallationStore>(store: &S) {
    let first = fixtures::workspace("T1", "U1").installed_at(at(0)).build();
    let second = fixtures::workspace("T1", "U2")
        .generation(1)
        .with_rotation(at(9_000))
        .installed_at(at(10))
        .build();
    save(store, &first).await;
    save(store, &second).await;

    let u1 = InstallationQuery::team("T1").user("U1");
    let found_u1 = found(store, &u1, "U1's installation").await;
    assert_eq!(
        user_token(&found_u1),
        Some("xoxp-T1-U1-0"),
        "U1 keeps U1's user token"
    );
    assert_eq!(
        bot_token(&found_u1),
        Some("xoxe.xoxb-T1-U2-1"),
        "U1 gets the newest bot token"
    );
    assert_eq!(
        found_u1.bot_refresh_token.as_ref().map(|t| t.secret()),
        Some("xoxe-1-bot-T1-U2-1"),
        "the merge carries the newest bot's refresh token"
    );
    assert_eq!(
        found_u1.bot_token_expires_at,
        Some(at(9_000)),
        "merged bot expiry"
    );

    let mut newest_bot = Bot::new(BotToken::new("xoxb-T1-saved-alone"), at(20));
    newest_bot.team_id = Some("T1".into());
    newest_bot.app_id = Some(fixtures::APP_ID.into());
    newest_bot.bot_id = Some("BT1".into());
    ok(store.save_bot(&newest_bot).await, "save_bot");
    let found_u1 = found(store, &u1, "U1's installation").await;
    assert_eq!(
        bot_token(&found_u1),
        Some("xoxb-T1-saved-alone"),
        "bot from save_bot merged"
    );
    assert_eq!(
        found_u1.bot_refresh_token, None,
        "merge copies the bot's (absent) refresh token"
    );
    assert_eq!(
        found_u1.bot_token_expires_at, None,
        "merge copies the bot's (absent) expiry"
    );
}

/// `save_bot` alone stores a bot that `find_bot` returns, and no installation.
pub async fn save_bot_alone<S: InstallationStore>(store: &S) {
    let mut bot = Bot::new(BotToken::new("xoxb-alone"), at(5));
    bot.app_id = Some(fixtures::APP_ID.into());
    bot.enterprise_id = Some("E1".into());
    bot.team_id = Some("T1".into());
    bot.team_name = Some("Team T1".into());
    bot.bot_id = Some("BT1".into());
    bot.bot_user_id = Some("UBT1".into());
    bot.bot_scopes = slack_oauth::installation::Scopes::parse(fixtures::BOT_SCOPES);
    ok(store.save_bot(&bot).await, "save_bot");
    let query = InstallationQuery::team("T1").enterprise("E1");
    let found = found_bot(store, &query, "the saved bot").await;
    same_bot(&found, &bot, "save_bot round trip");
    absent(store, &query, "save_bot stores no installation").await;
}
