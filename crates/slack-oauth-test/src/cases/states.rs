//! Cases on OAuth states: single use, expiry, purge, unknown values.

use std::collections::HashSet;

use slack_oauth::secret::StateValue;
use slack_oauth::store::StateStore;
use time::Duration;

use super::ok;
use crate::fixtures::now;

/// A state is accepted once.
pub async fn state_is_single_use<S: StateStore>(store: &S) {
    let t = now();
    let state = ok(store.issue(t + Duration::minutes(10)).await, "issue");
    assert!(
        ok(store.consume(&state, t).await, "consume"),
        "an issued state is accepted"
    );
    assert!(
        !ok(store.consume(&state, t).await, "consume"),
        "a used state is rejected"
    );
}

/// A state is rejected at and after its expiry, and accepted just before it.
pub async fn expired_state_is_rejected<S: StateStore>(store: &S) {
    let t = now();
    let expires_at = t + Duration::seconds(600);
    let late = ok(store.issue(expires_at).await, "issue");
    assert!(!ok(
        store
            .consume(&late, expires_at + Duration::seconds(1))
            .await,
        "consume"
    ));
    let on_time = ok(store.issue(expires_at).await, "issue");
    assert!(
        !ok(store.consume(&on_time, expires_at).await, "consume"),
        "a state is expired at its expiry instant"
    );
    let in_time = ok(store.issue(expires_at).await, "issue");
    assert!(
        ok(
            store
                .consume(&in_time, expires_at - Duration::seconds(1))
                .await,
            "consume"
        ),
        "a state is valid until its expiry"
    );
}

/// `purge_expired` deletes expired states only, and says how many.
pub async fn purge_removes_only_expired_states<S: StateStore>(store: &S) {
    let t = now();
    let short = ok(store.issue(t + Duration::seconds(10)).await, "issue");
    let long = ok(store.issue(t + Duration::seconds(100)).await, "issue");
    let purged = ok(
        store.purge_expired(t + Duration::seconds(50)).await,
        "purge_expired",
    );
    assert_eq!(purged, 1, "one state had expired by t+50");
    assert!(
        !ok(store.consume(&short, t).await, "consume"),
        "a purged state is gone even for an earlier `now`"
    );
    assert!(
        ok(store.consume(&long, t).await, "consume"),
        "an unexpired state survives purge"
    );
    assert_eq!(
        ok(
            store.purge_expired(t + Duration::seconds(50)).await,
            "purge_expired"
        ),
        0
    );
}

/// `count_live` counts the states neither consumed nor expired at `now`.
pub async fn live_states_are_counted<S: StateStore>(store: &S) {
    let t = now();
    assert_eq!(
        ok(store.count_live(t).await, "count_live"),
        0,
        "empty store"
    );
    let consumed = ok(store.issue(t + Duration::seconds(100)).await, "issue");
    for _ in 0..3 {
        ok(store.issue(t + Duration::seconds(100)).await, "issue");
    }
    ok(store.issue(t + Duration::seconds(10)).await, "issue");
    assert!(ok(store.consume(&consumed, t).await, "consume"));
    assert_eq!(
        ok(store.count_live(t).await, "count_live"),
        4,
        "4 live states at t (5 issued, 1 consumed)"
    );
    assert_eq!(
        ok(
            store.count_live(t + Duration::seconds(10)).await,
            "count_live"
        ),
        3,
        "a state is not live at its expiry instant"
    );
    assert_eq!(
        ok(
            store.count_live(t + Duration::seconds(100)).await,
            "count_live"
        ),
        0
    );
}

/// Values that were never issued are rejected.
pub async fn unknown_state_is_rejected<S: StateStore>(store: &S) {
    let t = now();
    let _issued = ok(store.issue(t + Duration::minutes(10)).await, "issue");
    for value in ["never-issued", "", "' OR '1'='1", "../../etc/passwd"] {
        let state = StateValue::new(value);
        assert!(
            !ok(store.consume(&state, t).await, "consume"),
            "the unknown state {value:?} must be rejected"
        );
    }
}

/// Issued states are distinct and carry at least 128 bits (22 URL-safe base64 characters).
pub async fn issued_states_are_unique<S: StateStore>(store: &S) {
    let t = now();
    let mut seen = HashSet::new();
    for _ in 0..100 {
        let state = ok(store.issue(t + Duration::minutes(10)).await, "issue");
        let value = state.secret().to_owned();
        assert!(value.len() >= 22, "a state must carry at least 128 bits");
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "a state must be URL- and cookie-safe"
        );
        assert!(seen.insert(value), "states must be unique");
    }
}
