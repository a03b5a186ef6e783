//! Lazy rotation at authorize time through the real exactly-once path (`Rotation` as the
//! authorizer's `TokenRefresher`): many concurrent requests for one expiring installation cause
//! one refresh per token, and every caller gets the fresh token (reliability.md R1).

use std::collections::HashSet;

use slack_oauth::authorize::{AuthorizeRequest, Authorizer};
use slack_oauth::rotation::Rotation;
use slack_oauth::store::{InstallationQuery, InstallationStore, MemoryStore};
use time::OffsetDateTime;

use super::{assert_refresh_tokens_live, rotating_emulator, rotating_installation, rotator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_authorizations_refresh_each_token_once() {
    let emulator = rotating_emulator().await;
    let store = MemoryStore::new();
    let soon = OffsetDateTime::now_utc() + time::Duration::minutes(5);
    let installation = rotating_installation(&emulator, "T1", "U1", soon);
    store.save(&installation).await.unwrap();
    let authorizer =
        Authorizer::new(store.clone()).refresher(Rotation::new(rotator(&emulator), store.clone()));

    let calls = (0..50).map(|_| {
        let authorizer = authorizer.clone();
        tokio::spawn(async move {
            authorizer
                .authorize(&AuthorizeRequest::team("T1").user("U1"))
                .await
                .expect("authorize succeeds")
                .expect("the workspace is installed")
        })
    });
    let results = futures::future::join_all(calls).await;

    let counters = emulator.counters();
    assert_eq!(
        counters.refreshes_served, 2,
        "one refresh per token (bot, user)"
    );
    assert!(counters.refresh_redemptions.values().all(|n| *n == 1));
    let bot_tokens: HashSet<String> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .unwrap()
                .bot_token
                .as_ref()
                .unwrap()
                .secret()
                .to_owned()
        })
        .collect();
    assert_eq!(bot_tokens.len(), 1, "every caller got the same bot token");
    let fresh = bot_tokens.into_iter().next().unwrap();
    assert_ne!(
        Some(fresh.as_str()),
        installation.bot_token.as_ref().map(|t| t.secret())
    );

    let stored = store
        .find_installation(&InstallationQuery::team("T1").user("U1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.bot_token.as_ref().unwrap().secret(), fresh);
    assert!(
        stored.user_token.is_some(),
        "the installer's user token is kept (W3)"
    );
    assert_refresh_tokens_live(&emulator, &stored).await;
}
