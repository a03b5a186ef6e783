//! The conformance suite on `MemoryStore`.

use slack_oauth::store::MemoryStore;

slack_oauth_test::store_conformance!(suite, async { MemoryStore::new() });

slack_oauth_test::store_conformance!(any_memory, async {
    slack_oauth::store::AnyStore::connect("memory://", slack_oauth_test::fixtures::CLIENT_ID)
        .await
        .unwrap()
});

#[test]
fn debug_shows_counts_not_tokens() {
    use slack_oauth::store::InstallationStore;
    let store = MemoryStore::new();
    let installation = slack_oauth_test::fixtures::workspace("T1", "U1").build();
    futures::executor::block_on(store.save(&installation)).unwrap();
    let shown = format!("{store:?}");
    assert!(
        shown.contains("installations: 1") && shown.contains("bots: 1"),
        "{shown}"
    );
    assert!(
        !shown.contains("xoxb") && !shown.contains("xoxp"),
        "{shown}"
    );
}

#[test]
fn issue_purges_expired_states_now_and_then() {
    use slack_oauth::store::StateStore;
    futures::executor::block_on(async {
        let t = slack_oauth_test::fixtures::now();
        let clock = slack_oauth::clock::ManualClock::at_unix(t.unix_timestamp());
        let store = MemoryStore::new().with_clock(clock.clone());
        for _ in 0..63 {
            store.issue(t + time::Duration::minutes(10)).await.unwrap();
        }
        assert!(format!("{store:?}").contains("states: 63"), "{store:?}");
        clock.advance(std::time::Duration::from_secs(3600));
        store.issue(t + time::Duration::hours(2)).await.unwrap();
        assert!(format!("{store:?}").contains("states: 1,"), "{store:?}");
    });
}
