//! Cases on leases: exclusive, expiring by the store's clock, re-entrant for their holder,
//! released by it only; refresh intents that outlive an abandoned lease.
//!
//! Expiry is the store's own clock (so that instances with skewed clocks agree), so the expiry
//! cases take short real leases and poll for them to end, bounded.

use std::time::{Duration, Instant};

use slack_oauth::store::{InstallationStore, LeaseAcquisition};

use super::ok;

/// The lease length the cases use when they do not wait for expiry.
pub(crate) const TTL: Duration = Duration::from_secs(30);
/// A short lease, for the cases that wait for one to expire.
const SHORT: Duration = Duration::from_millis(400);

/// Whether `holder` got the lease (for `TTL`).
pub(crate) async fn held<S: InstallationStore>(store: &S, name: &str, holder: &str) -> bool {
    ok(store.try_acquire_lease(name, holder, TTL).await, "lease").is_held()
}

/// Polls until `holder` gets the lease, for at most 10 s; returns when it did.
async fn wait_for<S: InstallationStore>(store: &S, name: &str, holder: &str) -> Instant {
    let started = Instant::now();
    loop {
        if held(store, name, holder).await {
            return Instant::now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a {SHORT:?} lease was still held after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A lease refuses other holders until its TTL has passed on the store's clock, then anyone
/// takes it, and the former holder has lost it.
pub async fn lease_is_exclusive_until_it_expires<S: InstallationStore>(store: &S) {
    let name = "rotate:T1";
    let before = Instant::now();
    assert_eq!(
        ok(store.try_acquire_lease(name, "a", SHORT).await, "lease"),
        LeaseAcquisition::Held {
            pending_intent: None
        },
        "a free lease is taken, with no intent"
    );
    assert!(
        !held(store, name, "b").await,
        "a held lease refuses another holder"
    );
    let taken = wait_for(store, name, "b").await;
    assert!(
        taken.duration_since(before) >= SHORT - Duration::from_millis(50),
        "the lease was taken over after {:?}, before its {SHORT:?} TTL",
        taken.duration_since(before)
    );
    assert!(!held(store, name, "a").await, "the former holder lost it");
}

/// The holder can take its own lease again, which moves its end.
pub async fn lease_is_reentrant_for_its_holder<S: InstallationStore>(store: &S) {
    let name = "rotate:E1";
    let first = ok(store.try_acquire_lease(name, "a", SHORT).await, "lease");
    assert!(first.is_held(), "a free lease is taken");
    assert!(
        held(store, name, "a").await,
        "the holder takes its own lease again"
    );
    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
    assert!(
        !held(store, name, "b").await,
        "re-taking the lease extended it past its first end"
    );
}

/// Only the holder releases a lease; once released, anyone can take it.
pub async fn lease_is_released_only_by_its_holder<S: InstallationStore>(store: &S) {
    let name = "rotate:T2";
    assert!(held(store, name, "a").await);
    ok(
        store.release_lease(name, "b").await,
        "release by another holder",
    );
    assert!(
        !held(store, name, "b").await,
        "a release by someone else does nothing"
    );
    ok(
        store.release_lease(name, "a").await,
        "release by the holder",
    );
    assert!(held(store, name, "b").await, "a released lease is free");
    ok(
        store.release_lease("never-taken", "a").await,
        "release of an unknown lease",
    );
    ok(
        store.abandon_lease("never-taken", "a").await,
        "abandon of an unknown lease",
    );
}

/// Leases with different names do not interact.
pub async fn leases_are_independent_by_name<S: InstallationStore>(store: &S) {
    assert!(held(store, "rotate:T1", "a").await);
    assert!(
        held(store, "rotate:T2", "b").await,
        "another name is another lease"
    );
}

/// An intent is recorded only by the holder of an unexpired lease, and renews the lease for
/// the given time (so that a refresh is never sent under a lease that could expire meanwhile).
pub async fn refresh_intent_needs_the_lease_and_renews_it<S: InstallationStore>(store: &S) {
    let name = "rotation:T1:bot";
    assert!(ok(store.try_acquire_lease(name, "a", SHORT).await, "lease").is_held());
    assert!(
        !ok(
            store.record_refresh_intent(name, "b", "print-1", TTL).await,
            "intent"
        ),
        "someone who does not hold the lease records nothing"
    );
    assert!(
        ok(
            store.record_refresh_intent(name, "a", "print-1", TTL).await,
            "intent"
        ),
        "the holder records an intent"
    );
    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
    assert!(
        !held(store, name, "b").await,
        "recording the intent renewed the lease past its first end"
    );
    assert!(
        !ok(
            store
                .record_refresh_intent("rotation:T9:bot", "a", "print-1", TTL)
                .await,
            "intent"
        ),
        "no intent on a lease nobody took"
    );
}

/// A stale holder (its lease expired and was taken over) can no longer record an intent.
pub async fn expired_holder_cannot_record_an_intent<S: InstallationStore>(store: &S) {
    let name = "rotation:T3:bot";
    assert!(ok(store.try_acquire_lease(name, "a", SHORT).await, "lease").is_held());
    wait_for(store, name, "b").await;
    assert!(
        !ok(
            store.record_refresh_intent(name, "a", "print-1", TTL).await,
            "intent"
        ),
        "the former holder records nothing"
    );
}

/// An abandoned lease is free at once but hands its intent to the next holder; a release
/// forgets it; an abandoned lease without an intent leaves nothing behind.
pub async fn abandoned_lease_keeps_its_intent<S: InstallationStore>(store: &S) {
    let name = "rotation:T1:user:U1";
    assert!(held(store, name, "a").await);
    assert!(ok(
        store.record_refresh_intent(name, "a", "print-1", TTL).await,
        "intent"
    ));
    ok(store.abandon_lease(name, "b").await, "abandon by another");
    assert!(!held(store, name, "b").await, "only the holder abandons");
    ok(store.abandon_lease(name, "a").await, "abandon");
    assert_eq!(
        ok(store.try_acquire_lease(name, "b", TTL).await, "lease"),
        LeaseAcquisition::Held {
            pending_intent: Some("print-1".to_owned())
        },
        "the next holder takes the lease at once and learns the intent"
    );
    ok(store.release_lease(name, "b").await, "release");
    assert_eq!(
        ok(store.try_acquire_lease(name, "c", TTL).await, "lease"),
        LeaseAcquisition::Held {
            pending_intent: None
        },
        "a release forgets the intent"
    );
    ok(
        store.abandon_lease(name, "c").await,
        "abandon without intent",
    );
    assert_eq!(
        ok(store.try_acquire_lease(name, "d", TTL).await, "lease"),
        LeaseAcquisition::Held {
            pending_intent: None
        },
        "an abandoned lease without intent is free and carries none"
    );
}
