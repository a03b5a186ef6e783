//! The metrics the library records (`slack_oauth::telemetry`), read back through a Prometheus
//! recorder local to the test's thread.

use metrics_exporter_prometheus::PrometheusBuilder;
use slack_oauth::authorize::{AuthorizeRequest, Authorizer, CachedStore};
use slack_oauth::installation::Installation;
use slack_oauth::secret::BotToken;
use slack_oauth::store::{InstallationStore as _, MemoryStore};
use slack_oauth_test::assert::prometheus_sample;

/// Authorize counts each call by outcome, and as cached only when the cache answered every
/// lookup: the first call of a workspace reads the store, the next is served from memory.
#[test]
fn authorize_calls_are_counted_by_outcome_and_cache() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = CachedStore::new(MemoryStore::new());
            let mut installation = Installation::new("U1", time::OffsetDateTime::now_utc());
            installation.team_id = Some("T1".into());
            installation.bot_token = Some(BotToken::new("xoxb-telemetry")); // fake
            store.save(&installation).await.unwrap();
            let authorizer = Authorizer::new(store);
            for _ in 0..3 {
                let found = authorizer
                    .authorize(&AuthorizeRequest::team("T1"))
                    .await
                    .unwrap();
                assert!(found.is_some());
            }
            let missing = authorizer
                .authorize(&AuthorizeRequest::team("T2"))
                .await
                .unwrap();
            assert!(missing.is_none());
        });
    });
    let page = handle.render();
    let count = |labels: &str| {
        prometheus_sample(&page, &format!("slack_oauth_authorize_total{{{labels}}}"))
    };
    assert_eq!(
        count(r#"outcome="authorized",cached="false""#),
        1.0,
        "{page}"
    );
    assert_eq!(
        count(r#"outcome="authorized",cached="true""#),
        2.0,
        "{page}"
    );
    assert_eq!(
        count(r#"outcome="not_installed",cached="false""#),
        1.0,
        "{page}"
    );
    assert!(!page.contains("xoxb-telemetry"), "{page}");
}
