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
