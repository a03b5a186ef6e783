//! Expiring tokens through a counting fake refresher: W2, W3, failures, no refresher.

use std::time::Duration;

use slack_oauth::authorize::{AuthorizeError, AuthorizeRequest, AuthorizeResult, Authorizer};
use slack_oauth::clock::ManualClock;
use slack_oauth::installation::Bot;
use slack_oauth::secret::{BotToken, RefreshToken};
use slack_oauth::store::{InstallationQuery, InstallationStore};
use slack_oauth_test::fixtures::{self, at};

use super::fakes::{CountingRefresher, Mode};
use super::on_both_stores;

/// The refresh window the tests use (the default).
const WINDOW: Duration = slack_oauth::authorize::DEFAULT_REFRESH_WINDOW;

fn clock() -> ManualClock {
    ManualClock::at_unix(at(0).unix_timestamp())
}

fn refresher<S: InstallationStore + Clone + 'static>(
    store: &S,
    mode: Mode,
) -> CountingRefresher<S> {
    CountingRefresher::new(store.clone(), at(0) + WINDOW, mode)
}

fn authorizer<S: InstallationStore + Clone + 'static>(
    store: &S,
    refresher: &CountingRefresher<S>,
) -> Authorizer<S, CountingRefresher<S>> {
    Authorizer::new(store.clone())
        .clock(clock())
        .refresher(refresher.clone())
}

fn tokens(result: &AuthorizeResult) -> (String, String) {
    (
        result
            .bot_token
            .as_ref()
            .map_or("-".into(), |t| t.secret().to_owned()),
        result
            .user_token
            .as_ref()
            .map_or("-".into(), |t| t.secret().to_owned()),
    )
}

/// A workspace whose installer U1 and whose user-only installer U2 both hold tokens expiring in a
/// minute.
async fn seed_expiring<S: InstallationStore>(store: &S) {
    let user_only = fixtures::user_only("T1", "U2")
        .installed_at(at(-20))
        .with_rotation(at(60))
        .build();
    store.save(&user_only).await.unwrap();
    let installer = fixtures::workspace("T1", "U1")
        .installed_at(at(-10))
        .with_rotation(at(60))
        .build();
    store.save(&installer).await.unwrap();
}

/// W2 (a): another user with their own install makes exactly one bot refresh and one refresh of
/// their own user token, and is authorized; the installer's user token is not touched.
async fn other_user_refreshes_each_token_once<S: InstallationStore + Clone + 'static>(store: S) {
    seed_expiring(&store).await;
    let counting = refresher(&store, Mode::Refresh);
    let result = authorizer(&store, &counting)
        .authorize(&AuthorizeRequest::team("T1").user("U2"))
        .await
        .unwrap()
        .expect("authorized after one refresh");
    assert_eq!(
        counting.redeemed(),
        ["xoxe-1-bot-T1-U1-0", "xoxe-1-user-T1-U2-0"]
    );
    assert_eq!(
        tokens(&result),
        ("xoxe.xoxb-T1-U1-0-r".into(), "xoxe.xoxp-T1-U2-0-r".into())
    );
    // The next request reads the refreshed tokens: nothing more is redeemed.
    let again = authorizer(&store, &counting)
        .authorize(&AuthorizeRequest::team("T1").user("U2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tokens(&again), tokens(&result));
    assert_eq!(counting.redeemed().len(), 2);
}

/// W2 (b) and §12.6 V8: a request with no user refreshes the bot token once and is authorized.
async fn userless_request_refreshes_bot_once<S: InstallationStore + Clone + 'static>(store: S) {
    seed_expiring(&store).await;
    let counting = refresher(&store, Mode::Refresh);
    let result = authorizer(&store, &counting)
        .authorize(&AuthorizeRequest::team("T1"))
        .await
        .unwrap()
        .expect("authorized");
    assert_eq!(counting.redeemed(), ["xoxe-1-bot-T1-U1-0"]);
    assert_eq!(tokens(&result), ("xoxe.xoxb-T1-U1-0-r".into(), "-".into()));
}

/// The installer's request refreshes the bot and user token in one call.
async fn installer_refreshes_both_in_one_call<S: InstallationStore + Clone + 'static>(store: S) {
    seed_expiring(&store).await;
    let counting = refresher(&store, Mode::Refresh);
    let result = authorizer(&store, &counting)
        .authorize(&AuthorizeRequest::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        counting.redeemed(),
        ["xoxe-1-bot-T1-U1-0", "xoxe-1-user-T1-U1-0"]
    );
    assert_eq!(
        tokens(&result),
        ("xoxe.xoxb-T1-U1-0-r".into(), "xoxe.xoxp-T1-U1-0-r".into())
    );
}

/// W3: another user's request that rotates the bot leaves the installer's user token (and its
/// refresh token) in place.
async fn other_users_request_keeps_installers_user_token<S: InstallationStore + Clone + 'static>(
    store: S,
) {
    seed_expiring(&store).await;
    let counting = refresher(&store, Mode::Refresh);
    for user in ["U2", "U9"] {
        authorizer(&store, &counting)
            .authorize(&AuthorizeRequest::team("T1").user(user))
            .await
            .unwrap()
            .unwrap();
    }
    let installer = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(installer.user_token.unwrap().secret(), "xoxe.xoxp-T1-U1-0");
    assert_eq!(
        installer.user_refresh_token.unwrap().secret(),
        "xoxe-1-user-T1-U1-0"
    );
    let result = authorizer(&store, &counting)
        .authorize(&AuthorizeRequest::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tokens(&result).1, "xoxe.xoxp-T1-U1-0-r");
}

/// A refresh token Slack refuses means "reinstall": not authorized, no error. A transient failure
/// is an error (the caller answers 5xx and Slack retries).
async fn revoked_is_unauthorized_and_transient_is_an_error<
    S: InstallationStore + Clone + 'static,
>(
    store: S,
) {
    seed_expiring(&store).await;
    let revoked = refresher(&store, Mode::Revoked);
    let result = authorizer(&store, &revoked)
        .authorize(&AuthorizeRequest::team("T1").user("U1"))
        .await
        .unwrap();
    assert!(result.is_none());
    let unavailable = refresher(&store, Mode::Unavailable);
    let error = authorizer(&store, &unavailable)
        .authorize(&AuthorizeRequest::team("T1").user("U1"))
        .await
        .unwrap_err();
    assert!(matches!(error, AuthorizeError::Refresh(_)), "{error}");
    assert!(!error.to_string().contains("xoxe"), "{error}");
}

/// Without a refresher an expiring token is returned as stored.
async fn without_refresher_tokens_are_returned_as_stored<S: InstallationStore + Clone + 'static>(
    store: S,
) {
    seed_expiring(&store).await;
    let result = Authorizer::new(store.clone())
        .clock(clock())
        .authorize(&AuthorizeRequest::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tokens(&result),
        ("xoxe.xoxb-T1-U1-0".into(), "xoxe.xoxp-T1-U1-0".into())
    );
}

/// §12.6 V5: `expires_at == now + window` is refreshed, one second later is not.
async fn window_boundary<S: InstallationStore + Clone + 'static>(store: S) {
    let edge = at(0) + WINDOW;
    let on_edge = fixtures::workspace("T1", "U1").with_rotation(edge).build();
    store.save(&on_edge).await.unwrap();
    let later = fixtures::workspace("T2", "U1")
        .with_rotation(edge + Duration::from_secs(1))
        .build();
    store.save(&later).await.unwrap();
    let counting = CountingRefresher::new(store.clone(), at(10_000_000), Mode::Refresh);
    let authorizer = authorizer(&store, &counting);
    authorizer
        .authorize(&AuthorizeRequest::team("T2"))
        .await
        .unwrap()
        .unwrap();
    assert!(counting.redeemed().is_empty());
    authorizer
        .authorize(&AuthorizeRequest::team("T1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counting.redeemed(), ["xoxe-1-bot-T1-U1-0"]);
}

/// The bot path (bot-only mode) refreshes an expiring bot once, through `refresh_bot`.
async fn bot_only_refreshes_the_bot_once<S: InstallationStore + Clone + 'static>(store: S) {
    let mut bot = Bot::new(BotToken::new("xoxe.xoxb-bot"), at(0));
    bot.team_id = Some("T1".into());
    bot.bot_refresh_token = Some(RefreshToken::new("xoxe-1-bot"));
    bot.bot_token_expires_at = Some(at(60));
    store.save_bot(&bot).await.unwrap();
    let counting = refresher(&store, Mode::Refresh);
    let result = authorizer(&store, &counting)
        .bot_only(true)
        .authorize(&AuthorizeRequest::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counting.redeemed(), ["xoxe-1-bot"]);
    assert_eq!(tokens(&result).0, "xoxe.xoxb-bot-r");
}

on_both_stores! {
    w2_other_user => other_user_refreshes_each_token_once;
    w2_userless => userless_request_refreshes_bot_once;
    installer_refresh => installer_refreshes_both_in_one_call;
    w3 => other_users_request_keeps_installers_user_token;
    refresh_failures => revoked_is_unauthorized_and_transient_is_an_error;
    no_refresher => without_refresher_tokens_are_returned_as_stored;
    boundary => window_boundary;
    bot_refresh => bot_only_refreshes_the_bot_once;
}

/// The same scenarios through the cache wrapper: the refresher's in-place writes go through it
/// and invalidate, so the second authorize sees the refreshed tokens.
mod cached {
    use slack_oauth::authorize::CachedStore;

    #[tokio::test]
    async fn w2_and_w3_on_cached_sqlite() {
        let store = CachedStore::new(slack_oauth_test::sqlite::temporary().await);
        super::other_user_refreshes_each_token_once(store.clone()).await;
        let store = CachedStore::new(slack_oauth_test::sqlite::temporary().await);
        super::other_users_request_keeps_installers_user_token(store).await;
    }

    #[tokio::test]
    async fn w2_on_cached_memory() {
        let store = CachedStore::new(slack_oauth::store::MemoryStore::new());
        super::userless_request_refreshes_bot_once(store.clone()).await;
        super::installer_refreshes_both_in_one_call(CachedStore::new(
            slack_oauth::store::MemoryStore::new(),
        ))
        .await;
    }
}
