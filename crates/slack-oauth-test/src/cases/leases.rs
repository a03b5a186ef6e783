//! Cases on leases: exclusive, expiring, re-entrant for their holder, released by it only.

use slack_oauth::store::InstallationStore;
use time::Duration;

use super::ok;
use crate::fixtures::now;

/// A lease taken until `until` refuses other holders before `until` and is free from `until` on.
pub async fn lease_is_exclusive_until_it_expires<S: InstallationStore>(store: &S) {
    let t = now();
    let until = t + Duration::seconds(30);
    let acquire = |holder: &'static str, at: time::OffsetDateTime, until: time::OffsetDateTime| {
        store.try_acquire_lease("rotate:T1", holder, at, until)
    };
    assert!(
        ok(acquire("a", t, until).await, "lease"),
        "a free lease is taken"
    );
    assert!(
        !ok(
            acquire("b", t + Duration::seconds(10), until).await,
            "lease"
        ),
        "a held lease refuses another holder"
    );
    assert!(
        !ok(
            acquire("b", t + Duration::seconds(29), until).await,
            "lease"
        ),
        "a lease is held until its end"
    );
    let later = t + Duration::seconds(60);
    assert!(
        ok(acquire("b", until, later).await, "lease"),
        "an expired lease is taken by another holder"
    );
    assert!(
        !ok(
            acquire("a", t + Duration::seconds(31), later).await,
            "lease"
        ),
        "the former holder lost it"
    );
}

/// The holder can take its own lease again, which moves its end.
pub async fn lease_is_reentrant_for_its_holder<S: InstallationStore>(store: &S) {
    let t = now();
    let name = "rotate:E1";
    assert!(ok(
        store
            .try_acquire_lease(name, "a", t, t + Duration::seconds(30))
            .await,
        "lease"
    ));
    assert!(
        ok(
            store
                .try_acquire_lease(
                    name,
                    "a",
                    t + Duration::seconds(5),
                    t + Duration::seconds(90)
                )
                .await,
            "lease"
        ),
        "the holder takes its own lease again"
    );
    assert!(
        !ok(
            store
                .try_acquire_lease(
                    name,
                    "b",
                    t + Duration::seconds(60),
                    t + Duration::seconds(120)
                )
                .await,
            "lease"
        ),
        "re-taking the lease extended it"
    );
}

/// Only the holder releases a lease; once released, anyone can take it.
pub async fn lease_is_released_only_by_its_holder<S: InstallationStore>(store: &S) {
    let t = now();
    let until = t + Duration::seconds(30);
    let name = "rotate:T2";
    assert!(ok(
        store.try_acquire_lease(name, "a", t, until).await,
        "lease"
    ));
    ok(
        store.release_lease(name, "b").await,
        "release by another holder",
    );
    assert!(
        !ok(store.try_acquire_lease(name, "b", t, until).await, "lease"),
        "a release by someone else does nothing"
    );
    ok(
        store.release_lease(name, "a").await,
        "release by the holder",
    );
    assert!(
        ok(store.try_acquire_lease(name, "b", t, until).await, "lease"),
        "a released lease is free"
    );
    ok(
        store.release_lease("never-taken", "a").await,
        "release of an unknown lease",
    );
}

/// Leases with different names do not interact.
pub async fn leases_are_independent_by_name<S: InstallationStore>(store: &S) {
    let t = now();
    let until = t + Duration::seconds(30);
    assert!(ok(
        store.try_acquire_lease("rotate:T1", "a", t, until).await,
        "lease"
    ));
    assert!(
        ok(
            store.try_acquire_lease("rotate:T2", "b", t, until).await,
            "lease"
        ),
        "another name is another lease"
    );
}
