//! `app_uninstalled` and `tokens_revoked`, workspace and org-wide.

use slack_oauth::authorize::lifecycle::{self, LifecycleEvent};
use slack_oauth::authorize::{AuthorizeRequest, AuthorizeResult, Authorizer};
use slack_oauth::store::{InstallationQuery, InstallationStore};
use slack_oauth_test::fixtures::{self, at};

use super::on_both_stores;

async fn authorize<S: InstallationStore + Clone + 'static>(
    store: &S,
    request: AuthorizeRequest,
) -> Option<AuthorizeResult> {
    Authorizer::new(store.clone())
        .authorize(&request)
        .await
        .unwrap()
}

fn event(json: serde_json::Value) -> LifecycleEvent {
    LifecycleEvent::from_event(&json).unwrap()
}

async fn app_uninstalled_deletes_the_workspace<S: InstallationStore + Clone + 'static>(store: S) {
    store
        .save(&fixtures::workspace("T1", "U1").build())
        .await
        .unwrap();
    store
        .save(&fixtures::user_only("T1", "U2").installed_at(at(5)).build())
        .await
        .unwrap();
    store
        .save(&fixtures::workspace("T2", "U1").build())
        .await
        .unwrap();
    let uninstalled = event(serde_json::json!({"type": "app_uninstalled"}));
    lifecycle::apply(
        &store,
        &InstallationQuery::team("T1").user("U1"),
        &uninstalled,
    )
    .await
    .unwrap();
    assert!(authorize(&store, AuthorizeRequest::team("T1"))
        .await
        .is_none());
    assert!(authorize(&store, AuthorizeRequest::team("T1").user("U2"))
        .await
        .is_none());
    assert!(authorize(&store, AuthorizeRequest::team("T2"))
        .await
        .is_some());
}

async fn app_uninstalled_deletes_an_org_wide_install<S: InstallationStore + Clone + 'static>(
    store: S,
) {
    store
        .save(&fixtures::org_wide("E1", "U1").build())
        .await
        .unwrap();
    store
        .save(&fixtures::workspace("T3", "U3").enterprise("E1").build())
        .await
        .unwrap();
    let uninstalled = event(serde_json::json!({"type": "app_uninstalled"}));
    lifecycle::apply(&store, &InstallationQuery::org("E1"), &uninstalled)
        .await
        .unwrap();
    assert!(authorize(&store, AuthorizeRequest::org("E1").in_team("T3"))
        .await
        .is_none());
    assert!(
        authorize(&store, AuthorizeRequest::team("T3").enterprise("E1"))
            .await
            .is_some(),
        "the org's separately installed workspace stays"
    );
}

async fn tokens_revoked_deletes_users_and_bot<S: InstallationStore + Clone + 'static>(store: S) {
    store
        .save(&fixtures::user_only("T1", "U2").installed_at(at(0)).build())
        .await
        .unwrap();
    store
        .save(&fixtures::workspace("T1", "U1").installed_at(at(5)).build())
        .await
        .unwrap();
    let users = event(serde_json::json!({
        "type": "tokens_revoked",
        "tokens": {"oauth": ["U2"], "bot": []}
    }));
    lifecycle::apply(&store, &InstallationQuery::team("T1"), &users)
        .await
        .unwrap();
    let u2 = authorize(&store, AuthorizeRequest::team("T1").user("U2"))
        .await
        .unwrap();
    assert!(u2.user_token.is_none());
    assert_eq!(u2.bot_token.unwrap().secret(), "xoxb-T1-U1-0");

    let bot = event(serde_json::json!({
        "type": "tokens_revoked",
        "tokens": {"bot": ["UBT1"]}
    }));
    lifecycle::apply(&store, &InstallationQuery::team("T1"), &bot)
        .await
        .unwrap();
    assert!(authorize(&store, AuthorizeRequest::team("T1"))
        .await
        .is_none());
    let u1 = authorize(&store, AuthorizeRequest::team("T1").user("U1"))
        .await
        .unwrap();
    assert!(u1.bot_token.is_none(), "the revoked bot token is gone");
    assert_eq!(u1.user_token.unwrap().secret(), "xoxp-T1-U1-0");
}

async fn tokens_revoked_in_an_org_wide_install<S: InstallationStore + Clone + 'static>(store: S) {
    store
        .save(&fixtures::org_wide("E1", "U1").build())
        .await
        .unwrap();
    let revoked = event(serde_json::json!({
        "type": "tokens_revoked",
        "tokens": {"oauth": ["U1"], "bot": ["UBE1"]}
    }));
    lifecycle::apply(&store, &InstallationQuery::org("E1"), &revoked)
        .await
        .unwrap();
    assert!(authorize(&store, AuthorizeRequest::org("E1").user("U1"))
        .await
        .is_none());
}

#[test]
fn other_events_are_not_lifecycle_events() {
    for json in [
        serde_json::json!({"type": "message"}),
        serde_json::json!({"type": "tokens_revoked"}),
        serde_json::json!({"type": "tokens_revoked", "tokens": "nope"}),
        serde_json::json!({"type": 7}),
        serde_json::json!([]),
    ] {
        assert_eq!(LifecycleEvent::from_event(&json), None, "{json}");
    }
    assert!(LifecycleEvent::is_lifecycle_type("app_uninstalled"));
}

on_both_stores! {
    uninstalled => app_uninstalled_deletes_the_workspace;
    uninstalled_org => app_uninstalled_deletes_an_org_wide_install;
    revoked => tokens_revoked_deletes_users_and_bot;
    revoked_org => tokens_revoked_in_an_org_wide_install;
}
